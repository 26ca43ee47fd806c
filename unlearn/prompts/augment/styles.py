"""Prompt styles of the backbones: what an augmentation source is asked to write.

Each :class:`PromptStyle` has an instruction for a language model and few-shot examples written for a
neutral example concept ("a vintage bicycle"), so the model sees the *form* of the prompts without
being shown content of the concept it must write about. Register more with :func:`register_style`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PromptStyle", "STYLES", "get_style", "register_style"]


@dataclass(frozen=True)
class PromptStyle:
    """How prompts of one backbone look.

    ``tokens_per_prompt`` sizes the generation budget of language-model sources.
    """

    name: str
    description: str
    example_concept: str
    examples: tuple[str, ...]
    tokens_per_prompt: int = 64


STYLES: dict[str, PromptStyle] = {}
_ALIASES = {
    "cogx": "cogvideox",
    "cogvideo": "cogvideox",
    "hunyuan": "hunyuanvideo",
    "zeroscope_v2": "zeroscope",
    "modelscope": "zeroscope",
}


def register_style(style: PromptStyle, *, overwrite: bool = False) -> PromptStyle:
    if style.name in STYLES and not overwrite:
        raise ValueError(f"style {style.name!r} is already registered (pass overwrite=True to replace it)")
    STYLES[style.name] = style
    return style


def get_style(name: str) -> PromptStyle:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in STYLES:
        raise ValueError(f"unknown prompt style {name!r}; known: {sorted(STYLES)} (aliases: {sorted(_ALIASES)})")
    return STYLES[key]


register_style(
    PromptStyle(
        name="cogvideox",
        description=(
            "CogVideoX style: each prompt is ONE long, richly detailed paragraph of about 60 to 120 words, in "
            "flowing natural sentences. Describe the main subject and its appearance, what happens and how things "
            "move over time, the setting and background, the lighting, colours and mood, and the camera movement."
        ),
        example_concept="a vintage bicycle",
        examples=(
            "A vintage bicycle with a cream-coloured frame and a wicker basket full of fresh tulips leans against a "
            "sun-washed brick wall in a quiet European alley. A light breeze turns the front wheel a little, and its "
            "chrome spokes catch the late-afternoon sun, scattering small glints across the worn cobblestones. The "
            "camera glides slowly from the basket down to the cracked leather saddle while pigeons wander past in the "
            "background. Warm golden tones and long soft shadows give the scene a calm, nostalgic feeling.",
            "At dawn, a rider in a tweed jacket pedals a vintage bicycle along a winding coastal road high above the "
            "sea. Mist drifts over the cliffs, and the first rays of sunlight turn the water from grey to shimmering "
            "silver. The camera tracks alongside at wheel height, showing the rusted chain turning and the rider's "
            "scarf fluttering in the wind, then rises to reveal the whole curving road ahead. The colours are muted "
            "blues and pale gold, and the atmosphere is peaceful and open.",
        ),
        tokens_per_prompt=200,
    )
)

register_style(
    PromptStyle(
        name="hunyuanvideo",
        description=(
            "HunyuanVideo style: each prompt is ONE short sentence of 10 to 25 words describing the subject, action "
            "and setting, followed by two or three short style tags separated by commas (lighting, atmosphere, shot "
            "type), each tag capitalised, ending with a full stop."
        ),
        example_concept="a vintage bicycle",
        examples=(
            "A vintage bicycle leaning against a brick wall in a quiet alley. Golden hour lighting, Nostalgic "
            "atmosphere, Medium shot.",
            "A woman riding a vintage bicycle along a coastal road at dawn. Soft natural light, Calm mood.",
        ),
        tokens_per_prompt=48,
    )
)

register_style(
    PromptStyle(
        name="zeroscope",
        description=(
            "ZeroScope style: each prompt is a short caption of 5 to 15 words naming the subject and what it does, "
            "without style tags or long descriptions."
        ),
        example_concept="a vintage bicycle",
        examples=(
            "a vintage bicycle leaning against a brick wall",
            "a woman riding a vintage bicycle along the coast",
        ),
        tokens_per_prompt=32,
    )
)

register_style(
    PromptStyle(
        name="plain",
        description="Plain style: each prompt is a short, simple description of a scene, 5 to 20 words.",
        example_concept="a vintage bicycle",
        examples=("a video of a vintage bicycle in a park", "a vintage bicycle parked by a river"),
        tokens_per_prompt=32,
    )
)
