"""Unsafe/safe prompt pairs for the low-rank refusal vector (``unlearn.methods.refusal.edit``).

A pair is two prompts that differ only in the concept: ``"a nude woman on a beach"`` /
``"a woman on a beach"``. Pairs come from a file (JSON, JSONL, YAML or CSV with ``unsafe`` and ``safe``
columns; optional ``concept``, ``unsafe_words``, ``safe_words``) or are generated from the concept and a
neutral substitute with a few scene templates (:func:`make_pairs`).

The words in which the two prompts differ are kept with the pair (``unsafe_words`` / ``safe_words``):
``token_reduce="concept"`` averages the activations over exactly those tokens.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from unlearn.toyworld.grammar import article, concept_kind, prompts_for_concept
from unlearn.toyworld.render import COLOURS, SHAPES

__all__ = [
    "CONCEPT_PRESETS",
    "PAIR_TEMPLATES",
    "PairFileError",
    "PromptPair",
    "as_pairs",
    "differing_words",
    "load_pairs",
    "make_pairs",
    "toyworld_pairs",
]


class PairFileError(ValueError):
    """A prompt-pair file is malformed (the message names the file, the row and the fix)."""


@dataclasses.dataclass(frozen=True)
class PromptPair:
    """One unsafe prompt and its safe twin.

    ``unsafe_words`` / ``safe_words`` are the phrases in which the two prompts differ (filled in from a
    word-level diff when not given). ``safe_words`` is empty when the safe prompt simply drops the concept.
    """

    unsafe: str
    safe: str
    concept: str = ""
    unsafe_words: tuple[str, ...] = ()
    safe_words: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.unsafe.strip() or not self.safe.strip():
            raise ValueError(
                f"a prompt pair needs two non-empty prompts; got unsafe={self.unsafe!r}, safe={self.safe!r}"
            )
        if not self.unsafe_words:
            u, s = differing_words(self.unsafe, self.safe)
            object.__setattr__(self, "unsafe_words", tuple(u))
            if not self.safe_words:
                object.__setattr__(self, "safe_words", tuple(s))
        object.__setattr__(self, "unsafe_words", tuple(self.unsafe_words))
        object.__setattr__(self, "safe_words", tuple(self.safe_words))

    def to_dict(self) -> dict[str, Any]:
        return {
            "unsafe": self.unsafe,
            "safe": self.safe,
            "concept": self.concept,
            "unsafe_words": list(self.unsafe_words),
            "safe_words": list(self.safe_words),
        }


_WORD = re.compile(r"[\w'-]+")


def differing_words(unsafe: str, safe: str) -> tuple[list[str], list[str]]:
    """Phrases (runs of adjacent words) present in one prompt and not at the same place in the other.

    >>> differing_words("a nude woman on a beach", "a woman on a beach")
    (['nude'], [])
    >>> differing_words("a naked man in a room", "a clothed man in a room")
    (['naked'], ['clothed'])
    """
    a, b = _WORD.findall(unsafe), _WORD.findall(safe)
    sm = difflib.SequenceMatcher(a=[w.lower() for w in a], b=[w.lower() for w in b], autojunk=False)
    out_a, out_b = [], []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            continue
        if i2 > i1:
            out_a.append(" ".join(a[i1:i2]))
        if j2 > j1:
            out_b.append(" ".join(b[j1:j2]))
    return out_a, out_b


#: scene templates with one ``{}`` slot. "person": the slot modifies an adult subject (an adjective such as
#: "nude"); "object": the slot is a noun phrase ("golf ball"). The first ``num_pairs`` are used.
PAIR_TEMPLATES: dict[str, tuple[str, ...]] = {
    "person": (
        "a {} woman walking on a beach at sunset",
        "a {} man standing in a sunlit room",
        "a {} person dancing in a forest",
        "a {} couple lying on a bed",
        "a {} woman sitting by a lake in the evening",
        "a {} man running through a park in the morning",
        "a {} woman standing under the rain on a city street",
        "a {} man swimming in the sea",
        "a {} person walking across a field of grass",
        "a {} woman posing in front of a white wall",
    ),
    "object": (
        "the {} on a table in a bright room",
        "the {} lying on the grass in a park",
        "a close up video of the {}",
        "the {} in the middle of a city street",
        "the {} by a lake at sunset",
        "the {} in a forest in the morning",
        "the {} on the beach under a blue sky",
        "the {} in front of a white wall",
        "a slow motion video of the {} in the snow",
        "the {} near a house in the evening",
    ),
}

#: how a concept name becomes pair words: the text put in the slot, the neutral substitute ("" = drop the
#: word) and the template set. Concepts not listed use ``text=concept, substitute="object", templates="object"``.
#: A substitute word (rather than dropping the concept word) keeps the two prompts token-aligned; with
#: dropped words every later token and the padding shift by one position, and the mean difference then
#: mixes the concept with "one token fewer" (measured on tiny models: the edit then fails to separate the
#: concept from unrelated prompts; see docs/refusal_vector.md).
CONCEPT_PRESETS: dict[str, dict[str, str]] = {
    "nudity": {"text": "nude", "substitute": "clothed", "templates": "person"},
    "nude": {"text": "nude", "substitute": "clothed", "templates": "person"},
    "naked": {"text": "naked", "substitute": "clothed", "templates": "person"},
    "sexual": {"text": "nude", "substitute": "clothed", "templates": "person"},
}


def _fill(template: str, words: str) -> str:
    return re.sub(r"\s+", " ", template.replace("{}", words)).strip()


def make_pairs(
    concept: str,
    num_pairs: int = 5,
    *,
    concept_text: str | None = None,
    substitute: str | None = None,
    templates: str | Sequence[str] | None = None,
) -> list[PromptPair]:
    """Generate ``num_pairs`` pairs by filling scene templates with the concept and with a neutral substitute.

    Args:
        concept: the concept's name ("nudity", "golf ball"); it labels the pairs.
        num_pairs: how many pairs (the paper uses five).
        concept_text: the words put in the template's slot for the unsafe prompt (default from
            :data:`CONCEPT_PRESETS`, else ``concept``), e.g. "nude" for "nudity".
        substitute: the words for the safe prompt (default from :data:`CONCEPT_PRESETS`, e.g. "clothed";
            "object" for unlisted concepts); "" drops the concept word ("a woman on a beach").
        templates: a template-set name of :data:`PAIR_TEMPLATES` or a list of templates with one ``{}``.

    >>> make_pairs("nudity", 1)[0].unsafe, make_pairs("nudity", 1)[0].safe
    ('a nude woman walking on a beach at sunset', 'a clothed woman walking on a beach at sunset')
    >>> make_pairs("nudity", 1, substitute="")[0].safe
    'a woman walking on a beach at sunset'
    """
    if not concept or not concept.strip():
        raise ValueError("make_pairs needs a concept name, e.g. 'nudity'")
    preset = CONCEPT_PRESETS.get(
        concept.strip().lower(), {"text": concept.strip(), "substitute": "object", "templates": "object"}
    )
    text = concept_text if concept_text is not None else preset["text"]
    sub = substitute if substitute is not None else preset["substitute"]
    tmpl: Sequence[str] | str = templates if templates is not None else preset["templates"]
    if isinstance(tmpl, str):
        if tmpl not in PAIR_TEMPLATES:
            raise ValueError(
                f"unknown template set {tmpl!r}; known: {sorted(PAIR_TEMPLATES)} (or give a list of templates with "
                f"'{{}}')"
            )
        tmpl = PAIR_TEMPLATES[tmpl]
    bad = [t for t in tmpl if t.count("{}") != 1]
    if bad:
        raise ValueError(f"every pair template needs exactly one '{{}}' slot; these do not: {bad}")
    if num_pairs < 1:
        raise ValueError(f"num_pairs must be >= 1; got {num_pairs}")
    if num_pairs > len(tmpl):
        raise ValueError(f"asked for {num_pairs} pairs but only {len(tmpl)} templates exist; pass more templates")
    if text.strip().lower() == sub.strip().lower():
        raise ValueError(
            f"the concept text {text!r} and its substitute {sub!r} are the same; the pairs would not differ"
        )
    return [
        PromptPair(_fill(t, text), _fill(t, sub), concept, (text,), (sub,) if sub.strip() else ())
        for t in tmpl[:num_pairs]
    ]


def _words(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(w.strip() for w in value.split("|") if w.strip())
    return tuple(str(w) for w in value)


def _pair_from_row(row: Any, where: str, default_concept: str) -> PromptPair:
    if isinstance(row, (list, tuple)) and len(row) == 2:
        row = {"unsafe": row[0], "safe": row[1]}
    if not isinstance(row, Mapping):
        raise PairFileError(
            f"{where}: a pair must be an object with 'unsafe' and 'safe' (or a 2-item list); got {row!r}"
        )
    missing = [k for k in ("unsafe", "safe") if not str(row.get(k) or "").strip()]
    if missing:
        raise PairFileError(f"{where}: missing or empty {missing}; every pair needs an 'unsafe' and a 'safe' prompt")
    try:
        return PromptPair(
            str(row["unsafe"]).strip(),
            str(row["safe"]).strip(),
            str(row.get("concept") or default_concept),
            _words(row.get("unsafe_words")),
            _words(row.get("safe_words")),
        )
    except ValueError as err:
        raise PairFileError(f"{where}: {err}") from err


def as_pairs(items: Iterable[Any], concept: str = "", where: str = "pairs") -> list[PromptPair]:
    """Normalise :class:`PromptPair`, dicts or ``(unsafe, safe)`` tuples to a list of pairs."""
    out = []
    for i, it in enumerate(items):
        out.append(it if isinstance(it, PromptPair) else _pair_from_row(it, f"{where}[{i}]", concept))
    return out


def load_pairs(path: str | Path, concept: str = "", num_pairs: int | None = None) -> list[PromptPair]:
    """Read pairs from a JSON / JSONL / YAML / CSV / TSV file.

    JSON and YAML: a list of ``{"unsafe": ..., "safe": ...}`` objects (or 2-item lists), or an object with
    such a list under ``pairs``. CSV/TSV: a header row with ``unsafe`` and ``safe`` columns. Optional fields:
    ``concept`` (rows of several concepts in one file), ``unsafe_words`` / ``safe_words`` (lists, or one
    string with ``|`` between phrases). ``num_pairs`` keeps the first N rows (per concept).
    """
    path = Path(path)
    if not path.is_file():
        raise PairFileError(f"prompt-pair file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8-sig")
    suffix = path.suffix.lower()
    rows: list[tuple[str, Any]] = []
    if suffix in (".csv", ".tsv"):
        reader = csv.DictReader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        if "unsafe" not in fields or "safe" not in fields:
            raise PairFileError(
                f"{path}: the header row must name 'unsafe' and 'safe' columns; found {reader.fieldnames}"
            )
        for i, r in enumerate(reader):
            rows.append((f"{path}:{i + 2}", {k.strip().lower(): v for k, v in r.items() if k is not None}))
    elif suffix == ".jsonl":
        for i, line in enumerate(text.splitlines()):
            if line.strip():
                try:
                    rows.append((f"{path}:{i + 1}", json.loads(line)))
                except json.JSONDecodeError as err:
                    raise PairFileError(f"{path}:{i + 1}: not valid JSON ({err})") from err
    elif suffix in (".json", ".yaml", ".yml"):
        try:
            if suffix == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except Exception as err:  # noqa: BLE001 - json and yaml raise different types
            raise PairFileError(f"{path}: could not parse ({err})") from err
        if isinstance(data, Mapping):
            data = data.get("pairs")
        if not isinstance(data, list):
            raise PairFileError(f"{path}: expected a list of pairs (or an object with a 'pairs' list)")
        rows = [(f"{path}[{i}]", r) for i, r in enumerate(data)]
    else:
        raise PairFileError(f"{path}: unknown pair-file type {suffix!r}; use .json, .jsonl, .yaml, .csv or .tsv")
    pairs = [_pair_from_row(r, where, concept) for where, r in rows]
    if not pairs:
        raise PairFileError(f"{path}: holds no pairs")
    if num_pairs is not None:
        kept: list[PromptPair] = []
        counts: dict[str, int] = {}
        for p in pairs:
            if counts.get(p.concept, 0) < num_pairs:
                kept.append(p)
                counts[p.concept] = counts.get(p.concept, 0) + 1
        pairs = kept
    return pairs


def toyworld_pairs(
    concept: str = "red ring", num_pairs: int = 5, seed: int = 0, substitute: str = "neighbours", style: str = "rich"
) -> list[PromptPair]:
    """Pairs from the toy world's grammar (``unlearn.toyworld``): TRAIN-split prompts of ``concept`` and the
    same prompts with the concept's words replaced (held-out templates are never used).

    ``substitute``: ``"neighbours"`` (default) cycles through the classes that share one attribute with the
    concept ("red ring" → "blue ring", "red square", ...): the contrast is then what distinguishes the class
    from the classes to preserve; or a class/word such as ``"green square"`` used for every pair.
    """

    kind = concept_kind(concept)
    if substitute == "neighbours":
        subs: list[dict[str, str]] = []
        others_c = [c for c in COLOURS if c != kind["colour"]]
        others_s = [x for x in SHAPES if x != kind["shape"]]
        for i in range(max(len(others_c), len(others_s))):
            if kind["shape"] and i < len(others_c) and kind["colour"]:
                subs.append({"colour": others_c[i]})
            if kind["colour"] and i < len(others_s) and kind["shape"]:
                subs.append({"shape": others_s[i]})
            if not kind["shape"] and i < len(others_c):
                subs.append({"colour": others_c[i]})
            if not kind["colour"] and i < len(others_s):
                subs.append({"shape": others_s[i]})
    else:
        target = concept_kind(substitute)
        subs = [{k: v for k, v in target.items() if v is not None and kind[k] is not None}]
        if not subs[0]:
            raise ValueError(f"substitute {substitute!r} names no attribute of {concept!r} to replace")
    records = prompts_for_concept(concept, num_pairs, split="train", style=style, seed=seed)
    pairs = []
    for i, r in enumerate(records):
        sub = subs[i % len(subs)]
        words = list(r.words)
        old, new = [], []
        for attr, idx in (("colour", r.colour_index), ("shape", r.shape_index)):
            if attr in sub:
                old.append(words[idx])
                words[idx] = sub[attr]
                new.append(sub[attr])
                if idx > 0 and words[idx - 1] in ("a", "an"):
                    words[idx - 1] = article(words[idx])
        pairs.append(PromptPair(r.text, " ".join(words), concept, tuple(old), tuple(new)))
    return pairs
