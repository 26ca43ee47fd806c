"""Offline augmentation from a template grammar: no model, deterministic from the seed.

A grammar is anything with ``sample(concept, synonyms, style, rng) -> str`` (the :class:`Grammar`
protocol), or a plain function with that signature. :class:`TemplateGrammar` is the built-in kind:
per-style templates whose ``{slot}`` fields are filled from phrase lists (slots may nest), and
``{concept}`` is filled with the concept or one of its synonyms. The toy world, or a user, passes its own.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .base import AugmentationError, AugmentationSource, concept_terms

__all__ = ["Grammar", "TemplateGrammar", "TemplateSource", "DEFAULT_GRAMMAR"]

_SLOT = re.compile(r"\{(\w+)\}")


@runtime_checkable
class Grammar(Protocol):
    """Writes one prompt for ``concept`` (or a synonym) in ``style``, using only ``rng`` for randomness."""

    def sample(self, concept: str, synonyms: Sequence[str], style: str, rng: random.Random) -> str: ...


@dataclass(frozen=True)
class TemplateGrammar:
    """Templates per style, filled from phrase lists.

    - ``templates[style]``: strings with ``{concept}`` and ``{slot}`` fields;
    - ``slots[slot]``: phrases to choose from; a phrase may contain further ``{slot}`` fields (expanded up
      to ``max_depth`` levels);
    - ``concept_weight``: probability of using the concept itself rather than a synonym (when synonyms are
      given).

    The first letter of the result is capitalised. :meth:`fingerprint` hashes the whole grammar, so the
    augmentation cache notices any edit.
    """

    name: str
    templates: Mapping[str, Sequence[str]]
    slots: Mapping[str, Sequence[str]] = field(default_factory=dict)
    concept_weight: float = 0.5
    max_depth: int = 6

    def __post_init__(self) -> None:
        for style, temps in self.templates.items():
            if not temps:
                raise ValueError(f"grammar {self.name!r}: style {style!r} has no templates")
            for t in temps:
                if "{concept}" not in t:
                    raise ValueError(f"grammar {self.name!r}: template {t!r} has no {{concept}} field")
        referenced = {m for temps in self.templates.values() for t in temps for m in _SLOT.findall(t)}
        referenced |= {m for phrases in self.slots.values() for p in phrases for m in _SLOT.findall(p)}
        missing = sorted(referenced - set(self.slots) - {"concept"})
        if missing:
            raise ValueError(f"grammar {self.name!r}: slots {missing} are used but not defined")
        empty = sorted(k for k, v in self.slots.items() if not v)
        if empty:
            raise ValueError(f"grammar {self.name!r}: slots {empty} have no phrases")

    @property
    def styles(self) -> list[str]:
        return sorted(self.templates)

    def fingerprint(self) -> str:
        blob = json.dumps(
            {
                "name": self.name,
                "templates": {k: list(v) for k, v in self.templates.items()},
                "slots": {k: list(v) for k, v in self.slots.items()},
                "concept_weight": self.concept_weight,
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def sample(self, concept: str, synonyms: Sequence[str], style: str, rng: random.Random) -> str:
        if style not in self.templates:
            raise AugmentationError(
                f"grammar {self.name!r} has no templates for style {style!r}; it has "
                f"{self.styles}. Fix: pick one of those styles or add templates"
            )
        terms = concept_terms(concept, synonyms)
        term = terms[0] if len(terms) == 1 or rng.random() < self.concept_weight else rng.choice(terms[1:])
        text = rng.choice(list(self.templates[style]))

        def fill(match: re.Match) -> str:
            key = match.group(1)
            if key == "concept":
                return "\0CONCEPT\0"  # protect the concept from slot expansion (it may contain braces)
            return rng.choice(list(self.slots[key]))

        for _ in range(self.max_depth):
            new = _SLOT.sub(fill, text)
            if new == text:
                break
            text = new
        if _SLOT.search(text):
            raise AugmentationError(
                f"grammar {self.name!r}: slots still unexpanded after {self.max_depth} levels "
                f"in {text!r} (a slot refers to itself?)"
            )
        text = " ".join(text.replace("\0CONCEPT\0", term).split())
        return text[:1].upper() + text[1:]


class _CallableGrammar:
    def __init__(self, fn: Callable[[str, Sequence[str], str, random.Random], str]):
        self.fn = fn
        self.name = getattr(fn, "__qualname__", type(fn).__name__)

    def sample(self, concept, synonyms, style, rng):
        return self.fn(concept, synonyms, style, rng)


class TemplateSource(AugmentationSource):
    """Augmentation without a model: prompts sampled from a grammar, deterministic for a given seed.

    ``grammar``: a :class:`TemplateGrammar`, any object with ``sample(concept, synonyms, style, rng)``, or a
    function ``(concept, synonyms, style, rng) -> str``; default :data:`DEFAULT_GRAMMAR` (styles
    ``cogvideox``, ``hunyuanvideo``, ``zeroscope``, ``plain``). ``max_tries_per_prompt`` bounds the
    sampling loop when the grammar repeats itself; fewer than ``n`` distinct prompts may come back.
    """

    kind = "template"

    def __init__(self, grammar: Grammar | Callable | None = None, *, max_tries_per_prompt: int = 20):
        super().__init__()
        if grammar is None:
            grammar = DEFAULT_GRAMMAR
        elif not isinstance(grammar, Grammar):
            if not callable(grammar):
                raise TypeError("grammar must have a sample(concept, synonyms, style, rng) method or be callable")
            grammar = _CallableGrammar(grammar)
        self.grammar = grammar
        self.max_tries_per_prompt = max_tries_per_prompt

    @property
    def model_id(self) -> str:
        name = getattr(self.grammar, "name", type(self.grammar).__name__)
        fp = self.grammar.fingerprint() if hasattr(self.grammar, "fingerprint") else ""
        return f"grammar:{name}" + (f"@{fp}" if fp else "")

    def instructions(self, style: str) -> str:
        if isinstance(self.grammar, TemplateGrammar):
            return json.dumps({"templates": list(self.grammar.templates.get(style, []))}, sort_keys=True)
        return f"grammar {self.model_id} style {style}"

    def generate(self, concept: str, n: int, style: str, seed: int, synonyms: Sequence[str] = ()) -> list[str]:
        self.calls += 1
        rng = random.Random(f"template|{seed}|{concept}|{style}|{'|'.join(synonyms)}")
        out: list[str] = []
        seen: set[str] = set()
        for _ in range(max(1, n) * self.max_tries_per_prompt):
            if len(out) >= n:
                break
            p = self.grammar.sample(concept, list(synonyms), style, rng)
            k = " ".join(p.split()).casefold()
            if k not in seen:
                seen.add(k)
                out.append(p)
        return out


# ----------------------------------------------------------------------------------------------------------------
# the default grammar: generic scenes in which a concept (a noun phrase) appears

_PLACES = [
    "in a sunlit meadow",
    "inside a quiet, dimly lit room",
    "on a crowded city street",
    "on a windswept beach",
    "in a misty pine forest",
    "beside a still mountain lake",
    "in a cozy wooden cabin",
    "on a rooftop at dusk",
    "in a minimalist white studio",
    "in an old stone courtyard",
    "along a rainy neon-lit alley",
    "in a sunny garden",
    "on a quiet country road",
    "in a spacious loft apartment",
    "by a riverbank at dawn",
    "in a desert under a wide sky",
    "in a snowy village square",
    "in a grand hall with tall windows",
]

DEFAULT_GRAMMAR = TemplateGrammar(
    name="default",
    templates={
        "cogvideox": [
            "{opening} {concept} {place}. {motion} {camera} {light}",
            "{place_cap}, the scene centres on {concept}. {detail} {motion} {camera} {light}",
            "{opening} {concept}, shown in rich detail {place}. {detail} {camera} {light}",
        ],
        "hunyuanvideo": [
            "{short_lead} {concept} {place}. {tag_light}, {tag_mood}.",
            "{short_lead} {concept} {place}. {tag_light}, {tag_mood}, {tag_shot}.",
            "{concept} {place}, {short_action}. {tag_mood}, {tag_shot}.",
        ],
        "zeroscope": [
            "{short_lead_lc} {concept} {place}",
            "{concept} {place}, {short_action}",
            "{concept}, {zs_quality}",
        ],
        "plain": ["a video of {concept}", "{concept} {place}", "a short clip showing {concept}"],
    },
    slots={
        "opening": [
            "The video opens on",
            "In a cinematic shot, we see",
            "The scene shows",
            "A slow reveal introduces",
            "The footage captures",
            "In this video,",
        ],
        "place": _PLACES,
        "place_cap": [p[:1].upper() + p[1:] for p in _PLACES],
        "detail": [
            "Every texture is crisp, from the surfaces to the smallest details in the background.",
            "Small details fill the frame: dust in the air, soft reflections, and gentle shadows.",
            "The surroundings are rich with colour, texture and quiet movement.",
            "The composition is balanced, with the subject framed against a softly blurred background.",
        ],
        "motion": [
            "As time passes, the scene slowly comes alive with gentle movement.",
            "Leaves drift through the frame while the light shifts subtly from moment to moment.",
            "A light breeze stirs the air, and distant figures move quietly in the background.",
            "Clouds move overhead and the shadows stretch slowly across the ground.",
            "Everything moves in a slow, deliberate rhythm, as if time has softened.",
        ],
        "camera": [
            "The camera glides slowly forward, revealing more of the surroundings.",
            "The camera orbits in a smooth arc, keeping the subject at the centre of the frame.",
            "A handheld camera follows closely, giving the moment an intimate, documentary feel.",
            "The camera starts in a close-up and pulls back to a wide establishing shot.",
            "A slow tracking shot moves from left to right across the scene.",
        ],
        "light": [
            "Warm golden light and long soft shadows give the scene a calm, dreamy mood.",
            "Cool blue tones and soft diffused light create a quiet, reflective atmosphere.",
            "Bright natural daylight makes the colours vivid and the mood cheerful.",
            "Low-key lighting with deep shadows lends the scene a moody, cinematic look.",
            "The soft glow of evening light bathes everything in amber and rose.",
        ],
        "short_lead": ["A cinematic shot of", "A close-up of", "A wide shot of", "Footage of", "A slow pan over"],
        "short_lead_lc": ["a video of", "a clip of", "footage of", "a shot of"],
        "short_action": [
            "slow motion",
            "camera slowly zooming in",
            "time-lapse",
            "handheld camera",
            "gentle camera pan",
        ],
        "tag_light": [
            "Natural lighting",
            "Golden hour lighting",
            "Soft studio lighting",
            "Low-key lighting",
            "Backlit",
            "Overcast light",
        ],
        "tag_mood": [
            "Calm atmosphere",
            "Moody atmosphere",
            "Dreamy mood",
            "Warm tones",
            "Cinematic mood",
            "Muted atmosphere",
        ],
        "tag_shot": ["Medium shot", "Close-up", "Wide shot", "Tracking shot", "Low angle"],
        "zs_quality": ["high quality", "cinematic", "4k", "detailed, smooth motion"],
    },
)
