"""ESD's object prompts (``small_imagenet_prompts.csv`` of ESD / UnlearnDiffAtk): ``load_esd_csv``."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from unlearn.prompts.suite import (
    PromptFileError,
    PromptRecord,
    PromptSuite,
    find_concept_words,
    optional_str,
    read_csv_dicts,
    seed_or_none,
    suite_name,
)

__all__ = ["load_esd_csv"]


def load_esd_csv(
    path: str | os.PathLike,
    *,
    classes: str | Iterable[str] | None = None,
    category: str = "object",
    name: str | None = None,
) -> PromptSuite:
    """ESD-style object prompts (``small_imagenet_prompts.csv``: ``case_number,prompt,evaluation_seed,class``).

    Not shipped (MIT, ESD / UnlearnDiff); our own video prompts for the same classes are
    ``builtin_suite("imagenet10")``. Record: concept = ``class``, seed = ``evaluation_seed``,
    id = ``case_number``, concept_words = the class name when it occurs in the prompt.
    """
    path = Path(path)
    header, rows = read_csv_dicts(path)
    for col in ("prompt", "class"):
        if col not in header:
            raise PromptFileError(
                path,
                f"no {col!r} column in the header {header!r}",
                line=1,
                fix="give an ESD prompt CSV (case_number,prompt,evaluation_seed,class)",
            )
    wanted = None if classes is None else ({classes} if isinstance(classes, str) else set(classes))
    recs = []
    for line, row in rows:
        cls_name = (row.get("class") or "").strip()
        if wanted is not None and cls_name not in wanted:
            continue
        prompt = (row.get("prompt") or "").strip()
        if not prompt:
            raise PromptFileError(path, "empty prompt", line=line, fix="fill or delete the row")
        recs.append(
            PromptRecord(
                prompt=prompt,
                concept=cls_name or None,
                category=category,
                seed=seed_or_none(path, line, row.get("evaluation_seed"), "evaluation_seed"),
                concept_words=tuple(find_concept_words(prompt, [cls_name])) if cls_name else (),
                id=optional_str(row.get("case_number")),
            )
        )
    if not recs:
        raise PromptFileError(path, f"no prompts for classes {sorted(wanted or [])}", fix="check the class names")
    return PromptSuite(recs, name=name or suite_name(path))
