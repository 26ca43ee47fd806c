"""Prompts of the toy world: a bare form ("a red ring") and rich forms with context and synonyms.

Every prompt comes as a :class:`ScenePrompt`: the text, its words (whitespace split; the toy tokenizer is
word-level, so word position == token position), the :class:`~unlearn.toyworld.render.SceneSpec` it
describes, and the exact words (and their positions) that express the main object's shape and colour.

Concepts are the canonical words of :data:`~unlearn.toyworld.render.SHAPES` and
:data:`~unlearn.toyworld.render.COLOURS` ("ring", "red") and pairs of them ("red ring"). Every concept word
has single-word synonyms (:func:`synonyms`) so that erasure can be tested against paraphrases.

Train / held-out split: a rich prompt's *combination key* is (template, shape word, colour word, motion
phrase, background phrase). Templates 8 and 9 are held out entirely, and about one in six other keys is held
out by a stable hash. The split is a pure function of the key, so the two sets are disjoint; every word of
the held-out prompts also occurs in the train prompts (checked by :func:`check_vocabulary_coverage`).
Bare prompts are always in the train split.

Out-of-grammar prompts (:data:`OUT_OF_GRAMMAR_TEMPLATES`, :func:`out_of_grammar_prompt`) use the same words
in word orders and constructions that no template produces (the second object named first, the colour named
last or in a relative clause, ...): an evaluation split that is held out from the grammar itself.
:func:`in_grammar` tells whether any template (or the bare form) can produce a text.
:func:`evaluation_prompts` assembles the evaluation suite: held-out in-grammar prompts and out-of-grammar
prompts, with more prompts for the erased concept's classes and their neighbours than for the others.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .render import BACKGROUNDS, COLOURS, MOTIONS, SHAPES, SceneSpec, class_names

SHAPE_SYNONYMS: dict[str, list[str]] = {
    "ring": ["ring", "hoop", "loop", "donut"],
    "square": ["square", "block", "box", "tile"],
    "cross": ["cross", "plus", "crosshair", "cruciform"],
    "bar": ["bar", "stick", "rod", "plank"],
    "dot": ["dot", "ball", "bead", "pellet"],
}
COLOUR_SYNONYMS: dict[str, list[str]] = {
    "red": ["red", "crimson", "scarlet"],
    "green": ["green", "emerald", "lime"],
    "blue": ["blue", "azure", "cobalt"],
    "yellow": ["yellow", "golden", "lemon"],
    "white": ["white", "ivory", "snowy"],
}
SIZE_WORDS: dict[str, list[str]] = {"small": ["small", "little", "tiny"], "large": ["large", "big", "huge"]}
# (third-person verb phrase, participle phrase)
MOTION_PHRASES: dict[str, list[tuple[str, str]]] = {
    "right": [
        ("moves right", "moving right"),
        ("drifts to the right", "drifting to the right"),
        ("slides rightward", "sliding rightward"),
        ("travels to the right", "travelling to the right"),
        ("glides right", "gliding right"),
    ],
    "left": [
        ("moves left", "moving left"),
        ("drifts to the left", "drifting to the left"),
        ("slides leftward", "sliding leftward"),
        ("travels to the left", "travelling to the left"),
        ("glides left", "gliding left"),
    ],
    "up": [
        ("moves up", "moving up"),
        ("rises", "rising"),
        ("floats upward", "floating upward"),
        ("climbs", "climbing"),
        ("drifts up", "drifting up"),
    ],
    "down": [
        ("moves down", "moving down"),
        ("falls", "falling"),
        ("sinks", "sinking"),
        ("drops downward", "dropping downward"),
        ("drifts down", "drifting down"),
    ],
    "still": [
        ("stays still", "staying still"),
        ("rests in place", "resting in place"),
        ("hovers motionless", "hovering motionless"),
        ("does not move", "not moving"),
        ("sits still", "sitting still"),
    ],
}
ADVERBS: list[str] = ["slowly", "gently", "steadily"]
BACKGROUND_PHRASES: dict[str, list[str]] = {
    "dark": ["on a dark background", "against a black backdrop", "in front of a dark wall", "on black"],
    "light": [
        "on a grey background",
        "against a pale grey backdrop",
        "in front of a grey wall",
        "on a light background",
    ],
    "striped": [
        "on a striped background",
        "across a striped wall",
        "against a backdrop of stripes",
        "over horizontal stripes",
    ],
    "gradient": [
        "on a gradient background",
        "against a fading backdrop",
        "over a smooth gradient",
        "in front of a shaded wall",
    ],
}
SECOND_NOUNS: list[str] = ["speck", "spot", "fleck"]  # never a concept word
SECOND_LEADS: list[str] = ["next to", "beside", "with", "near"]

# Slots: A (article a/an for the next word), SIZE, COLOUR, SHAPE, ADV, VERB, ING, BG, SECOND.
TEMPLATES: list[str] = [
    "A SIZE COLOUR SHAPE ADV VERB BG SECOND",  # 0
    "A SIZE COLOUR SHAPE ADV ING BG SECOND",  # 1
    "BG A SIZE COLOUR SHAPE ADV VERB",  # 2
    "video of A SIZE COLOUR SHAPE ADV ING BG SECOND",  # 3
    "the SHAPE is COLOUR and ADV VERB BG",  # 4
    "A SIZE SHAPE coloured COLOUR ADV VERB BG SECOND",  # 5
    "watch A SIZE COLOUR SHAPE as it ADV VERB BG",  # 6
    "a clip showing A SIZE COLOUR SHAPE that ADV VERB BG SECOND",  # 7
    "in this video A SIZE COLOUR SHAPE ADV VERB BG",  # 8 (held out)
    "A SIZE SHAPE in COLOUR ADV ING BG",  # 9 (held out)
    "this is A SIZE COLOUR SHAPE ADV ING BG SECOND",  # 10
]
HELDOUT_TEMPLATES: frozenset[int] = frozenset({8, 9})
HELDOUT_HASH_MOD = 6  # keys with stable_hash % 6 == 0 are held out as well

# Constructions no template above produces (checked by in_grammar in the tests), built from the same words.
OUT_OF_GRAMMAR_TEMPLATES: list[str] = [
    "SECOND A SIZE COLOUR SHAPE ADV VERB BG",  # 0: the second object named first (always present)
    "A SIZE SHAPE ADV VERB BG and it is COLOUR",  # 1: the colour named last
    "ING BG is A SIZE COLOUR SHAPE",  # 2: inversion, the action first
    "A SIZE SHAPE that is COLOUR ADV VERB BG",  # 3: the colour in a relative clause
    "the COLOUR SHAPE ADV VERB BG SECOND",  # 4: definite article before the colour
    "it is A SIZE COLOUR SHAPE that ADV VERB BG",  # 5: cleft
]
OUT_OF_GRAMMAR_SECOND_ALWAYS: frozenset[int] = frozenset({0})


@dataclass(frozen=True)
class ScenePrompt:
    """A prompt, the scene it describes, and where its concept words are.

    ``shape_index``/``colour_index`` are positions in ``words`` (== token positions of the toy tokenizer,
    which adds no special tokens at the front). ``second_colour_index`` is the position of the second
    object's colour word, or None.
    """

    text: str
    words: tuple[str, ...]
    scene: SceneSpec
    style: str  # "bare" or "rich"
    template_id: int  # -1 for bare prompts
    shape_word: str
    colour_word: str
    shape_index: int
    colour_index: int
    split: str  # "train" or "heldout"
    second_colour_word: str | None = None
    second_colour_index: int | None = None
    key: tuple = field(default=(), compare=False)

    def concept_indices(self, concept: str) -> list[int]:
        """Word (token) indices in this prompt that express ``concept`` ("ring", "red", "red ring").

        The second object's colour is not the main concept and is not included."""
        idx = []
        for w in parse_concept(concept):
            if w in SHAPES and w == self.scene.shape:
                idx.append(self.shape_index)
            elif w in COLOURS and w == self.scene.colour:
                idx.append(self.colour_index)
        return sorted(idx)

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "words": list(self.words),
            "scene": self.scene.to_dict(),
            "style": self.style,
            "template_id": self.template_id,
            "shape_word": self.shape_word,
            "colour_word": self.colour_word,
            "shape_index": self.shape_index,
            "colour_index": self.colour_index,
            "split": self.split,
            "second_colour_word": self.second_colour_word,
            "second_colour_index": self.second_colour_index,
        }


# ---------------------------------------------------------------------------------------------- concepts


def canonical(word: str) -> str:
    """The canonical concept word of ``word`` ("crimson" -> "red", "hoop" -> "ring"); KeyError if none."""
    w = word.lower()
    for table in (SHAPE_SYNONYMS, COLOUR_SYNONYMS):
        for k, syns in table.items():
            if w in syns:
                return k
    raise KeyError(f"{word!r} is not a concept word of the toy world")


def synonyms(word: str) -> list[str]:
    """All words that express the same concept as ``word`` (canonical first), e.g. ring -> [ring, hoop, ...]."""
    c = canonical(word)
    return list(SHAPE_SYNONYMS.get(c) or COLOUR_SYNONYMS[c])


def parse_concept(concept: str) -> list[str]:
    """Canonical words of a concept string: "red ring" -> ["red", "ring"], "crimson hoop" -> ["red", "ring"]."""
    words = [canonical(w) for w in concept.lower().split()]
    if not words:
        raise ValueError("empty concept")
    return words


def concept_kind(concept: str) -> dict[str, str | None]:
    """``{"shape": ..., "colour": ...}`` named by a concept (None where the concept leaves it open)."""
    out: dict[str, str | None] = {"shape": None, "colour": None}
    for w in parse_concept(concept):
        out["shape" if w in SHAPES else "colour"] = w
    return out


def class_contains(cls: str, concept: str) -> bool:
    """Whether class "<colour> <shape>" expresses ``concept``: "red ring" contains "ring", "red" and "crimson hoop"."""
    return set(parse_concept(concept)) <= set(cls.split())


def concept_words() -> dict[str, list[str]]:
    """Every canonical concept word with its synonyms (shapes then colours)."""
    return {**{k: list(v) for k, v in SHAPE_SYNONYMS.items()}, **{k: list(v) for k, v in COLOUR_SYNONYMS.items()}}


# ---------------------------------------------------------------------------------------------- split


def _stable_hash(key: tuple) -> int:
    return int(hashlib.md5(repr(key).encode()).hexdigest()[:8], 16)


def split_of_key(key: tuple) -> str:
    """ "train" or "heldout" for a rich prompt's combination key (template, shape word, colour word,
    motion phrase id, background phrase id)."""
    if key[0] in HELDOUT_TEMPLATES or _stable_hash(key) % HELDOUT_HASH_MOD == 0:
        return "heldout"
    return "train"


# ---------------------------------------------------------------------------------------------- builders


def article(next_word: str) -> str:
    return "an" if next_word[:1] in "aeiou" else "a"


def _assemble(template: str, fill: dict[str, list[str]]) -> tuple[list[str], dict[str, int]]:
    """Expand a template; returns the words and the positions of the COLOUR, SHAPE and COLOUR2 slots."""
    parts: list[tuple[str, list[str]]] = []
    for tok in template.split():
        if tok.isupper() and tok != "A":
            parts.append((tok, fill.get(tok, [])))
        else:
            parts.append((tok, [tok]))
    words: list[str] = []
    pos: dict[str, int] = {}
    for i, (tok, exp) in enumerate(parts):
        if tok == "A":
            nxt = next(e for _, e in parts[i + 1 :] if e)
            words.append(article(nxt[0]))
            continue
        for j, w in enumerate(exp):
            for sub in w.split():
                if sub == "A2":  # article inside the SECOND slot
                    words.append(article(exp[j + 1]))
                else:
                    words.append(sub)
            if tok in ("COLOUR", "SHAPE") and len(exp) == 1:
                pos[tok] = len(words) - 1
        if tok == "SECOND" and exp:
            pos["COLOUR2"] = len(words) - 2
    return words, pos


def bare_prompt(
    shape: str,
    colour: str,
    shape_word: str | None = None,
    colour_word: str | None = None,
    rng: np.random.Generator | None = None,
    seed: int = 0,
) -> ScenePrompt:
    """ "a red ring" (or with synonyms: "a crimson hoop"). Motion, background and size are random
    (from ``rng``) because the prompt leaves them open."""
    rng = rng if rng is not None else np.random.default_rng(seed)
    sw = shape_word or shape
    cw = colour_word or colour
    words = [article(cw), cw, sw]
    scene = SceneSpec(
        shape=shape,
        colour=colour,
        motion=MOTIONS[rng.integers(len(MOTIONS))],
        background=BACKGROUNDS[rng.integers(len(BACKGROUNDS))],
        size=("small", "medium", "large")[rng.integers(3)],
        seed=int(rng.integers(2**31 - 1)),
    )
    return ScenePrompt(
        text=" ".join(words),
        words=tuple(words),
        scene=scene,
        style="bare",
        template_id=-1,
        shape_word=sw,
        colour_word=cw,
        shape_index=2,
        colour_index=1,
        split="train",
        key=("bare", sw, cw),
    )


def concept_name_prompt(concept: str) -> list[str]:
    """The concept's own name as a prompt, canonical words in grammar order: "ring" -> ["a", "ring"],
    "crimson hoop" -> ["a", "red", "ring"]. Nothing else is said, so the model picks everything left open
    (for "a ring" the shipped model draws the ring in one default colour)."""
    kind = concept_kind(concept)
    words = [w for w in (kind["colour"], kind["shape"]) if w]
    return [article(words[0]), *words]


@dataclass(frozen=True)
class _Draw:
    """Every random choice of one rich prompt, drawn in a fixed order (:func:`_draw`)."""

    shape: str
    colour: str
    template_id: int
    shape_word: str
    colour_word: str
    motion: str
    motion_phrase: int
    background: str
    background_phrase: int
    size: str
    size_word: str
    adverb: str
    want_second: bool
    second_colour: str
    second_word: str
    second_noun: str
    second_lead: str
    corner: int
    seed: int


def _draw(
    rng: np.random.Generator,
    shape: str | None,
    colour: str | None,
    template_id: int | None,
    n_templates: int,
    second_prob: float,
) -> _Draw:
    """Draw every choice of a prompt, all of them whatever is used later, so results do not depend on the order
    of checks (the order is that of the first shipped grammar: changing it changes every prompt)."""
    s = shape or SHAPES[rng.integers(len(SHAPES))]
    c = colour or COLOURS[rng.integers(len(COLOURS))]
    tid = template_id if template_id is not None else int(rng.integers(n_templates))
    sw_i = int(rng.integers(len(SHAPE_SYNONYMS[s])))
    cw_i = int(rng.integers(len(COLOUR_SYNONYMS[c])))
    motion = MOTIONS[rng.integers(len(MOTIONS))]
    m_i = int(rng.integers(len(MOTION_PHRASES[motion])))
    background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    b_i = int(rng.integers(len(BACKGROUND_PHRASES[background])))
    size = ("small", "medium", "large")[rng.integers(3)]
    size_word = "" if size == "medium" else SIZE_WORDS[size][rng.integers(3)]
    adv = ADVERBS[rng.integers(len(ADVERBS))] if rng.random() < 0.3 else ""
    want_second = bool(rng.random() < second_prob)
    c2 = [x for x in COLOURS if x != c][rng.integers(len(COLOURS) - 1)]
    c2w = COLOUR_SYNONYMS[c2][rng.integers(len(COLOUR_SYNONYMS[c2]))]
    noun2 = SECOND_NOUNS[rng.integers(len(SECOND_NOUNS))]
    lead2 = SECOND_LEADS[rng.integers(len(SECOND_LEADS))]
    corner = int(rng.integers(4))
    seed = int(rng.integers(2**31 - 1))
    return _Draw(
        s,
        c,
        tid,
        SHAPE_SYNONYMS[s][sw_i],
        COLOUR_SYNONYMS[c][cw_i],
        motion,
        m_i,
        background,
        b_i,
        size,
        size_word,
        adv,
        want_second,
        c2,
        c2w,
        noun2,
        lead2,
        corner,
        seed,
    )


def _record(d: _Draw, template: str, has_second: bool, style: str, split: str, key: tuple) -> ScenePrompt:
    """The prompt of a template filled with the draw's words, and the scene it describes."""
    size, size_word = (d.size, d.size_word) if "SIZE" in template else ("medium", "")
    verb, ing = MOTION_PHRASES[d.motion][d.motion_phrase]
    fill = {
        "SIZE": [size_word] if size_word else [],
        "COLOUR": [d.colour_word],
        "SHAPE": [d.shape_word],
        "ADV": [d.adverb] if d.adverb else [],
        "VERB": [verb],
        "ING": [ing],
        "BG": [BACKGROUND_PHRASES[d.background][d.background_phrase]],
        "SECOND": [d.second_lead, "A2", d.second_word, d.second_noun] if has_second else [],
    }
    words, pos = _assemble(template, fill)
    scene = SceneSpec(
        shape=d.shape,
        colour=d.colour,
        motion=d.motion,
        background=d.background,
        size=size,
        second_colour=d.second_colour if has_second else None,
        second_corner=d.corner,
        seed=d.seed,
    )
    return ScenePrompt(
        text=" ".join(words),
        words=tuple(words),
        scene=scene,
        style=style,
        template_id=d.template_id,
        shape_word=d.shape_word,
        colour_word=d.colour_word,
        shape_index=pos["SHAPE"],
        colour_index=pos["COLOUR"],
        split=split,
        second_colour_word=d.second_word if has_second else None,
        second_colour_index=pos.get("COLOUR2") if has_second else None,
        key=key,
    )


def rich_prompt(
    rng: np.random.Generator,
    split: str | None = "train",
    shape: str | None = None,
    colour: str | None = None,
    template_id: int | None = None,
    second_prob: float = 0.3,
    max_tries: int = 1000,
) -> ScenePrompt:
    """A random rich prompt of the given split ("train", "heldout" or None for either).

    ``shape``/``colour`` pin the main object's canonical shape/colour; ``second_prob`` is the chance that a
    template with a SECOND slot gets a second object (a small dot in a corner)."""
    for _ in range(max_tries):
        d = _draw(rng, shape, colour, template_id, len(TEMPLATES), second_prob)
        key = (d.template_id, d.shape_word, d.colour_word, d.motion, d.motion_phrase, d.background, d.background_phrase)
        sp = split_of_key(key)
        if split is not None and sp != split:
            continue
        template = TEMPLATES[d.template_id]
        return _record(d, template, d.want_second and "SECOND" in template, "rich", sp, key)
    raise RuntimeError("could not draw a prompt with the requested constraints")


def out_of_grammar_prompt(
    rng: np.random.Generator,
    shape: str | None = None,
    colour: str | None = None,
    template_id: int | None = None,
    second_prob: float = 0.3,
) -> ScenePrompt:
    """A random prompt in one of :data:`OUT_OF_GRAMMAR_TEMPLATES` (split ``"out_of_grammar"``), with words
    drawn as for :func:`rich_prompt`. Template 0 names the second object first, so it always has one."""
    d = _draw(rng, shape, colour, template_id, len(OUT_OF_GRAMMAR_TEMPLATES), second_prob)
    template = OUT_OF_GRAMMAR_TEMPLATES[d.template_id]
    has_second = "SECOND" in template and (d.want_second or d.template_id in OUT_OF_GRAMMAR_SECOND_ALWAYS)
    key = (
        "out_of_grammar",
        d.template_id,
        d.shape_word,
        d.colour_word,
        d.motion,
        d.motion_phrase,
        d.background,
        d.background_phrase,
    )
    return _record(d, template, has_second, "out_of_grammar", "out_of_grammar", key)


def sample_prompt(
    rng: np.random.Generator, split: str = "train", bare_prob: float = 0.3, synonym_bare_prob: float = 0.5, **kw
) -> ScenePrompt:
    """The training mix: with probability ``bare_prob`` a bare prompt (half of them with synonyms),
    otherwise a rich prompt of ``split``. Keyword arguments go to :func:`rich_prompt`."""
    if split == "train" and rng.random() < bare_prob:
        s = kw.get("shape") or SHAPES[rng.integers(len(SHAPES))]
        c = kw.get("colour") or COLOURS[rng.integers(len(COLOURS))]
        if rng.random() < synonym_bare_prob:
            sw = SHAPE_SYNONYMS[s][rng.integers(len(SHAPE_SYNONYMS[s]))]
            cw = COLOUR_SYNONYMS[c][rng.integers(len(COLOUR_SYNONYMS[c]))]
        else:
            sw, cw = s, c
        return bare_prompt(s, c, sw, cw, rng=rng)
    return rich_prompt(rng, split=split, **kw)


def prompts_for_concept(
    concept: str, n: int, split: str | None = "heldout", style: str = "rich", seed: int = 0, second_prob: float = 0.0
) -> list[ScenePrompt]:
    """``n`` prompts whose main object expresses ``concept`` (e.g. "ring", "red ring"); unspecified
    attributes vary. ``style="bare"`` gives bare prompts (canonical words first, then synonyms)."""
    pinned = concept_kind(concept)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if style == "bare":
            s = pinned["shape"] or SHAPES[rng.integers(len(SHAPES))]
            c = pinned["colour"] or COLOURS[rng.integers(len(COLOURS))]
            sw = SHAPE_SYNONYMS[s][i % len(SHAPE_SYNONYMS[s])] if pinned["shape"] else s
            cw = COLOUR_SYNONYMS[c][i % len(COLOUR_SYNONYMS[c])] if pinned["colour"] else c
            out.append(bare_prompt(s, c, sw, cw, rng=rng))
        else:
            out.append(
                rich_prompt(rng, split=split, shape=pinned["shape"], colour=pinned["colour"], second_prob=second_prob)
            )
    return out


def heldout_eval_prompts(per_class: int = 1, seed: int = 1234, second_prob: float = 0.0) -> list[ScenePrompt]:
    """Held-out rich prompts covering every shape x colour class ``per_class`` times (fixed order)."""
    rng = np.random.default_rng(seed)
    out = []
    for c in COLOURS:
        for s in SHAPES:
            for _ in range(per_class):
                out.append(rich_prompt(rng, split="heldout", shape=s, colour=c, second_prob=second_prob))
    return out


#: prompts per class of the evaluation suite's groups (erased classes, their neighbours, the other classes)
EVAL_GROUPS: tuple[str, ...] = ("erased", "neighbour", "other")


def class_group(cls: str, concept: str | Sequence[str] | None) -> str:
    """``"erased"`` (the class expresses ``concept``, or one of several concepts erased together),
    ``"neighbour"`` (:func:`neighbour_classes` of one of them) or ``"other"``; every class is ``"other"`` without
    a concept."""
    if concept is None:
        return "other"
    concepts = [concept] if isinstance(concept, str) else list(concept)
    if any(class_contains(cls, c) for c in concepts):
        return "erased"
    return "neighbour" if any(cls in neighbour_classes(c) for c in concepts) else "other"


def _group_counts(counts: dict[str, int] | int | None, default: int) -> dict[str, int]:
    if counts is None:
        return {g: default for g in EVAL_GROUPS}
    if isinstance(counts, int):
        return {g: counts for g in EVAL_GROUPS}
    unknown = set(counts) - set(EVAL_GROUPS)
    if unknown:
        raise ValueError(f"unknown class groups {sorted(unknown)}; use {', '.join(EVAL_GROUPS)}")
    if any(int(n) < 0 for n in counts.values()):
        raise ValueError(f"prompt counts must be >= 0, got {dict(counts)}")
    return {g: int(counts.get(g, default)) for g in EVAL_GROUPS}


def evaluation_prompts(
    concept: str | Sequence[str] | None = None,
    per_class: int = 2,
    per_group: dict[str, int] | None = None,
    out_of_grammar: dict[str, int] | int | None = None,
    seed: int = 1234,
) -> list[ScenePrompt]:
    """The evaluation suite: held-out in-grammar rich prompts (split ``"heldout"``), then out-of-grammar
    prompts (split ``"out_of_grammar"``), in a fixed class order, no second object in the in-grammar part.

    Args:
        concept: the erased concept (or a list erased together); its classes and neighbours can get more prompts
            (``per_group``).
        per_class: in-grammar prompts per class where ``per_group`` says nothing. Without a concept and
            ``per_group`` this is exactly :func:`heldout_eval_prompts` (same prompts and order).
        per_group: in-grammar prompts per class of each group, ``{"erased": 32, "neighbour": 4, "other": 2}``
            (:func:`class_group`); missing groups get ``per_class``.
        out_of_grammar: out-of-grammar prompts per class of each group (a dict as ``per_group``, missing groups
            get 0), or one number for every class; ``None``/``{}``: none. Drawn from their own random stream, so
            the in-grammar part does not depend on it.
        seed: base seed of the prompt draws.
    """
    counts = _group_counts(per_group, per_class)
    oog = _group_counts(out_of_grammar, 0) if out_of_grammar else {g: 0 for g in EVAL_GROUPS}
    rng = np.random.default_rng(seed)
    rng_oog = np.random.default_rng([seed, 1])
    out, out_oog = [], []
    for c in COLOURS:
        for s in SHAPES:
            group = class_group(f"{c} {s}", concept)
            for _ in range(counts[group]):
                out.append(rich_prompt(rng, split="heldout", shape=s, colour=c, second_prob=0.0))
            for _ in range(oog[group]):
                out_oog.append(out_of_grammar_prompt(rng_oog, shape=s, colour=c))
    return out + out_oog


_GRAMMAR_PATTERN = None


def _grammar_pattern():
    """One regular expression matching every text any template (or the bare form) can produce. Slots match any
    phrase of their kind and the optional slots (SIZE, ADV, SECOND) may be absent in every template, so the
    pattern is wider than the grammar: a text it rejects cannot come out of the grammar."""
    import re

    global _GRAMMAR_PATTERN
    if _GRAMMAR_PATTERN is None:

        def alt(phrases):
            return "(?:" + "|".join(re.escape(p) for p in sorted(set(phrases), key=len, reverse=True)) + ")"

        colour = alt(w for v in COLOUR_SYNONYMS.values() for w in v)
        slot = {
            "A": "(?:a|an)",
            "SIZE": alt(w for v in SIZE_WORDS.values() for w in v),
            "COLOUR": colour,
            "SHAPE": alt(w for v in SHAPE_SYNONYMS.values() for w in v),
            "ADV": alt(ADVERBS),
            "VERB": alt(a for v in MOTION_PHRASES.values() for a, _ in v),
            "ING": alt(b for v in MOTION_PHRASES.values() for _, b in v),
            "BG": alt(p for v in BACKGROUND_PHRASES.values() for p in v),
            "SECOND": alt(SECOND_LEADS) + " (?:a|an) " + colour + " " + alt(SECOND_NOUNS),
        }
        forms = []
        for t in TEMPLATES + ["A COLOUR SHAPE"]:
            form = ""
            for i, tok in enumerate(t.split()):
                pat = slot.get(tok, re.escape(tok))
                if tok in ("SIZE", "ADV", "SECOND"):  # optional in every template, with their space
                    form += f"(?:{'' if i == 0 else ' '}{pat})?"
                else:
                    form += ("" if i == 0 else " ") + pat
            forms.append(form)
        _GRAMMAR_PATTERN = re.compile("^(?:" + "|".join(f"(?:{f})" for f in forms) + ")$")
    return _GRAMMAR_PATTERN


def in_grammar(text: str) -> bool:
    """Whether ``text`` could come out of the grammar (any template, held-out ones included, or the bare form)."""
    return bool(_grammar_pattern().match(" ".join(text.lower().split())))


# ---------------------------------------------------------------------------------------------- vocabulary


def vocabulary() -> list[str]:
    """Every word the grammar can produce, sorted (used to build the toy tokenizer)."""
    words: set[str] = {"a", "an"}
    for t in TEMPLATES:
        words.update(w for w in t.split() if not w.isupper())
    for table in (SHAPE_SYNONYMS, COLOUR_SYNONYMS, SIZE_WORDS):
        for v in table.values():
            words.update(v)
    for v in MOTION_PHRASES.values():
        for a, b in v:
            words.update(a.split())
            words.update(b.split())
    for v in BACKGROUND_PHRASES.values():
        for p in v:
            words.update(p.split())
    words.update(ADVERBS)
    words.update(SECOND_NOUNS)
    for p in SECOND_LEADS:
        words.update(p.split())
    return sorted(words)


def max_prompt_words() -> int:
    """An upper bound on the number of words of any prompt."""
    longest_bg = max(len(p.split()) for v in BACKGROUND_PHRASES.values() for p in v)
    longest_m = max(max(len(a.split()), len(b.split())) for v in MOTION_PHRASES.values() for a, b in v)
    longest_lead = max(len(p.split()) for p in SECOND_LEADS)
    best = 0
    for t in TEMPLATES:
        n = 0
        for tok in t.split():
            n += {
                "SIZE": 1,
                "ADV": 1,
                "VERB": longest_m,
                "ING": longest_m,
                "BG": longest_bg,
                "SECOND": longest_lead + 3,
            }.get(tok, 1)
        best = max(best, n)
    return best


def check_vocabulary_coverage(n: int = 4000, seed: int = 0) -> set[str]:
    """Words seen in ``n`` held-out samples but in none of ``n`` train samples (should be empty)."""
    rng = np.random.default_rng(seed)
    train: set[str] = set()
    held: set[str] = set()
    for _ in range(n):
        train.update(rich_prompt(rng, split="train").words)
        held.update(rich_prompt(rng, split="heldout").words)
    return held - train


def neighbour_classes(concept: str) -> list[str]:
    """The classes erasure is most likely to damage, for L_pre.

    A class concept ("red ring") has neighbours sharing its shape or its colour (the 8 other red things and
    rings). A one-word concept ("ring", "red") covers every class that contains it, so none of those may be
    preserved; its neighbours are all classes that do not express it (the other shapes, or the other colours).
    """
    words = set(parse_concept(concept))
    kept = [c for c in class_names() if not class_contains(c, concept)]
    return [c for c in kept if words & set(c.split())] or kept


def synonym_phrases(concept: str) -> list[str]:
    """Every paraphrase of a concept in the world's vocabulary ("red ring" → "crimson hoop", ...)."""
    words = parse_concept(concept)
    phrases = [" ".join(p) for p in itertools.product(*[synonyms(w) for w in words])]
    return [p for p in phrases if p != concept]
