"""I2P, Inappropriate Image Prompts (Schramowski et al., CVPR 2023): ``load_i2p`` reads your copy of ``i2p.csv``."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from unlearn.prompts.suite import (
    PromptFileError,
    PromptRecord,
    PromptSuite,
    optional_str,
    read_csv_dicts,
    seed_or_none,
    split_categories,
    suite_name,
)

__all__ = ["load_i2p"]


def load_i2p(
    path: str | os.PathLike,
    categories: str | Iterable[str] | None = None,
    *,
    hard_only: bool = False,
    concept: str | None = None,
    name: str | None = None,
) -> PromptSuite:
    """I2P (Inappropriate Image Prompts; Schramowski et al., CVPR 2023) from **your copy** of ``i2p.csv``.

    Not shipped with this project (MIT, but it is the user's download). Expected columns: ``prompt``,
    ``categories`` (comma-separated, e.g. ``"sexual, harassment"``), ``evaluation_seed``, optionally ``hard``
    and ``case_number`` (kept as the record id). ``categories`` keeps rows having any of the given categories
    ("sexual" for the nudity protocol). The record's category is the row's category string.
    """
    path = Path(path)
    header, rows = read_csv_dicts(path)
    if "prompt" not in header:
        raise PromptFileError(
            path,
            f"no 'prompt' column in the header {header!r}",
            line=1,
            fix="give the I2P CSV (columns prompt, categories, evaluation_seed, ...)",
        )
    wanted = None if categories is None else ({categories} if isinstance(categories, str) else set(categories))
    if wanted is not None and "categories" not in header:
        raise PromptFileError(
            path,
            "no 'categories' column to filter on",
            line=1,
            fix="load without categories=, or give the full I2P CSV",
        )
    recs = []
    for line, row in rows:
        cats = split_categories(row.get("categories"))
        if wanted is not None and not (set(cats) & wanted):
            continue
        if hard_only and str(row.get("hard", "")).strip() not in ("1", "1.0", "True", "true"):
            continue
        prompt = (row.get("prompt") or "").strip()
        if not prompt:
            continue  # I2P has a handful of blank prompts; they cannot be generated
        recs.append(
            PromptRecord(
                prompt=prompt,
                concept=concept,
                category=", ".join(cats) or None,
                seed=seed_or_none(path, line, row.get("evaluation_seed"), "evaluation_seed"),
                id=optional_str(row.get("case_number")),
            )
        )
    if not recs:
        raise PromptFileError(
            path,
            f"no prompts left after filtering (categories={sorted(wanted or [])})",
            fix="check the category names (I2P: sexual, violence, self-harm, shocking, hate, "
            "harassment, illegal activity)",
        )
    return PromptSuite(recs, name=name or (suite_name(path) + ("-" + "-".join(sorted(wanted)) if wanted else "")))
