"""What an evaluation makes of a prompt suite: :class:`EvalVideos`, the videos to make (prompt, seed, label, split),
from a suite file (a :class:`~unlearn.prompts.PromptSuite`), a builtin suite or the toy world's held-out prompts,
with a content hash recorded next to every result (``prompt_suite_hash``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

from unlearn.checks import InputError
from unlearn.prompts import LOADERS, PromptRecord, PromptSuite, load_prompts
from unlearn.toyworld.grammar import evaluation_prompts

#: the toy world suite's split names: held-out prompts of the training grammar, and constructions it never makes
TOY_SPLITS = {"heldout": "in_grammar", "out_of_grammar": "out_of_grammar"}


class EmptySuiteError(InputError):
    """The prompt suite holds no prompt (after filtering)."""


@dataclasses.dataclass(frozen=True)
class EvalVideo:
    """One evaluation video: its position in the suite (the video's file name), the prompt, the noise seed,
    and the label the video should show (class, identity or concept; ``None`` when the suite names none).
    ``split`` names the part of the suite the prompt belongs to, reported separately (the toy world's
    ``in_grammar`` / ``out_of_grammar``); ``None`` for suites without splits."""

    index: int
    prompt: str
    seed: int
    label: str | None = None
    category: str | None = None
    id: str | None = None
    split: str | None = None


@dataclasses.dataclass
class EvalVideos:
    """The videos an evaluation makes from a prompt suite, in order (``name``: the suite's); ``sha256`` is recorded
    beside every result, so two tables compare only when their suites hash alike."""

    name: str
    items: list[EvalVideo]
    source: str = ""

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __getitem__(self, i: int) -> EvalVideo:
        return self.items[i]

    @property
    def labels(self) -> list[str]:
        """Distinct labels in order of first appearance."""
        return list(dict.fromkeys(it.label for it in self.items if it.label))

    @property
    def splits(self) -> list[str]:
        """Distinct split names in order of first appearance (empty for a suite without splits)."""
        return list(dict.fromkeys(it.split for it in self.items if it.split))

    def sha256(self) -> str:
        """Content hash over (prompt, label, seed) of every item, in order (unchanged since the first tables),
        and the split of items that have one."""
        canon = [
            {
                "class_name": it.label or "",
                "prompt": it.prompt,
                "seed": it.seed,
                **({"split": it.split} if it.split else {}),
            }
            for it in self.items
        ]
        return hashlib.sha256(json.dumps(canon, sort_keys=True).encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for it in self.items:
            counts[it.label or ""] = counts.get(it.label or "", 0) + 1
        out = {
            "name": self.name,
            "source": self.source,
            "sha256": self.sha256(),
            "num_prompts": len(self.items),
            "seeds": [it.seed for it in self.items],
            "prompts_per_label": counts,
        }
        if self.splits:
            out["prompts_per_split"] = {sp: sum(it.split == sp for it in self.items) for sp in self.splits}
        return out


def _as_list(v: str | Iterable[str] | None) -> list[str] | None:
    if v is None:
        return None
    return [v] if isinstance(v, str) else list(v)


def _item(index: int, record: PromptRecord) -> EvalVideo:
    """A prompt record as an evaluation item: its label is its concept, else its category."""
    return EvalVideo(
        index, record.prompt, record.seed, record.concept or record.category, record.category, record.id, None
    )


def load_suite(
    suite: str | os.PathLike | Sequence[Any] | Any,
    *,
    format: str = "suite",
    per_class: int = 2,
    seed: int = 1234,
    labels: str | Iterable[str] | None = None,
    categories: str | Iterable[str] | None = None,
    per_label: int | None = None,
    limit: int | None = None,
    name: str | None = None,
    concept: str | Sequence[str] | None = None,
    per_group: dict[str, int] | None = None,
    out_of_grammar: dict[str, int] | int | None = None,
    **loader_kwargs: Any,
) -> EvalVideos:
    """Load an evaluation suite.

    Args:
        suite: ``"toyworld"`` (the toy world's held-out rich prompts, ``per_class`` per class),
            ``"builtin:<name>"`` (``imagenet10``, ``faces``, ...), a suite file (``.jsonl``/``.csv``/``.json``/
            ``.txt``), ``"<loader>:<path>"`` for the public-suite loaders (``ring_a_bell:rab.csv``,
            ``safesora:safesora.jsonl``, ``i2p:i2p.csv``, ...; see ``unlearn.prompts.LOADERS``), or in Python a
            ``PromptSuite``, a list of ``EvalVideo``/``PromptRecord``/strings.
        format: loader name for a plain path (default ``suite``).
        per_class, seed: toy world only: prompts per class and base seed; ``seed + index`` also fills the
            missing seeds of other suites (as the evaluation callback does).
        concept, per_group, out_of_grammar: toy world only (:func:`unlearn.toyworld.grammar.evaluation_prompts`):
            the erased concept, in-grammar prompts per class of its groups (``{"erased": 32, "neighbour": 4,
            "other": 2}``) and out-of-grammar prompts per class (same keys); the items carry the split
            ``in_grammar`` or ``out_of_grammar``.
        labels / categories: keep only these labels (a record's ``concept``, else its ``category``) /
            categories.
        per_label: keep the first N prompts of each label. limit: keep the first N prompts.
        loader_kwargs: passed to the loader (e.g. ``categories="sexual"`` for I2P).

    Raises:
        PromptFileError: the file is missing or malformed (names file, line and fix).
        EmptySuiteError: nothing is left to evaluate.
    """
    source = str(suite) if isinstance(suite, (str, os.PathLike)) else type(suite).__name__
    # the suite's prompts as EvalVideo items (index: position in the unfiltered suite; seed None where the source gives
    # none), filtered and renumbered below
    rows: list[EvalVideo] = []
    toy_options = {
        k: v
        for k, v in dict(concept=concept, per_group=per_group, out_of_grammar=out_of_grammar).items()
        if v is not None
    }
    if toy_options and not (isinstance(suite, str) and suite == "toyworld"):
        raise ValueError(f"{sorted(toy_options)} apply to the toy world suite only (suite {source!r})")
    if isinstance(suite, str) and suite == "toyworld":
        # held-out rich prompts (templates and combinations never used for training), and out-of-grammar ones
        records = evaluation_prompts(
            concept, per_class=per_class, per_group=per_group, out_of_grammar=out_of_grammar, seed=seed
        )
        with_splits = any(r.split != "heldout" for r in records)  # the plain held-out suite has no splits
        rows = [
            EvalVideo(
                i,
                r.text,
                seed + i,
                label=f"{r.scene.colour} {r.scene.shape}",
                split=TOY_SPLITS[r.split] if with_splits else None,
            )
            for i, r in enumerate(records)
        ]
        default_name = "toyworld"
    elif isinstance(suite, (str, os.PathLike)):
        spec, fmt = str(suite), format
        head, sep, rest = spec.partition(":")
        if sep and head.lower().replace("-", "_") in LOADERS and head != "builtin":
            fmt, spec = head, rest
        records = load_prompts(spec, format=fmt, **loader_kwargs)
        rows = [_item(i, r) for i, r in enumerate(records)]
        default_name = getattr(records, "name", None) or os.path.basename(spec)
    else:
        default_name = getattr(suite, "name", None) or "suite"
        for i, r in enumerate(suite if not isinstance(suite, PromptSuite) else suite.records):
            if isinstance(r, EvalVideo):
                rows.append(dataclasses.replace(r, index=i))
            elif isinstance(r, (PromptRecord, str)):
                rows.append(_item(i, r if isinstance(r, PromptRecord) else PromptRecord(r)))
            else:
                raise TypeError(f"cannot use {type(r).__name__} as an evaluation prompt")
    # missing seeds: base seed + position in the unfiltered suite, so filtering never changes a video
    rows = [it if it.seed is not None else dataclasses.replace(it, seed=seed + it.index) for it in rows]
    total = len(rows)
    keep_labels, keep_cats = _as_list(labels), _as_list(categories)
    if keep_labels is not None:
        wanted = {x.casefold() for x in keep_labels}
        rows = [r for r in rows if r.label is not None and r.label.casefold() in wanted]
    if keep_cats is not None:
        rows = [r for r in rows if r.category in set(keep_cats)]
    if per_label is not None:
        seen: dict[str | None, int] = {}
        kept = []
        for r in rows:
            if seen.get(r.label, 0) < per_label:
                seen[r.label] = seen.get(r.label, 0) + 1
                kept.append(r)
        rows = kept
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        filters = {
            k: v
            for k, v in dict(labels=keep_labels, categories=keep_cats, per_label=per_label, limit=limit).items()
            if v is not None
        }
        raise EmptySuiteError(
            f"the prompt suite {source!r} is empty"
            + (f" after filtering with {filters} ({total} prompts before)" if filters else "")
            + ". Fix: check the suite file and the label/category filters (labels come from each record's "
            "concept, else its category)"
        )
    items = [dataclasses.replace(r, index=i, seed=int(r.seed)) for i, r in enumerate(rows)]
    return EvalVideos(name or default_name, items, source)
