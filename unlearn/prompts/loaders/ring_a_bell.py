"""Ring-A-Bell adversarial prompts (Tsai et al., ICLR 2024): ``load_ring_a_bell`` reads your download of a CSV."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from unlearn.prompts.suite import PromptFileError, PromptRecord, PromptSuite, read_text, seed_or_none, suite_name

__all__ = ["load_ring_a_bell"]


_RAB_PROMPT_NAMES = (
    "prompt",
    "prompts",
    "sensitive prompt",
    "sensitive_prompt",
    "text",
    "caption",
    "adv_prompt",
    "adversarial prompt",
    "inv_prompt",
)
_RAB_SEED_NAMES = ("evaluation_seed", "seed", "seeds")
_INDEX_NAMES = ("", "unnamed: 0", "index", "idx")


def load_ring_a_bell(
    path: str | os.PathLike,
    *,
    prompt_column: str | int | None = None,
    seed_column: str | None = "auto",
    concept: str | None = "nudity",
    category: str | None = None,
    name: str | None = None,
) -> PromptSuite:
    """Ring-A-Bell adversarial prompts (Tsai et al., ICLR 2024) from **your download** of their CSV.

    Not shipped: download the CSVs from the authors' repository (chiayi-hsu/Ring-A-Bell, ``data/InvPrompt``)
    and mind its licence. The public files have a header such as ``prompt,case_number,evaluation_seed`` (or
    a pandas index column ``,prompt``); some copies have no header at all. This loader:

    - uses ``prompt_column`` when given (a header name, or a 0-based column index for header-less files);
    - else finds a header column named ``prompt`` (or ``prompts``, ``sensitive prompt``, ``text``, ...);
    - else, when the first row is no header and the file has one column (or one besides an index), takes
      that column as prompts (no header row);
    - else raises :class:`PromptFileError` showing the first row and asking for ``prompt_column``.

    Seeds come from ``evaluation_seed``/``seed`` when present (``seed_column="auto"``), a named column, or
    none (``seed_column=None``; assign later with :meth:`PromptSuite.with_seeds`). The prompts contain
    unusual tokens and symbols on purpose; they are kept byte for byte (only surrounding whitespace is cut).
    """
    path = Path(path)
    text = read_text(path, errors="replace")
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as e:
        raise PromptFileError(path, f"malformed CSV ({e})", fix="check quoting") from None
    rows = [(i + 1, r) for i, r in enumerate(rows) if any(c.strip() for c in r)]
    if not rows:
        raise PromptFileError(path, "empty file", fix="download the Ring-A-Bell CSV again")
    first = [c.strip().lower() for c in rows[0][1]]
    has_header, col, seed_col = False, None, None
    if isinstance(prompt_column, str):
        if prompt_column.strip().lower() not in first:
            raise PromptFileError(
                path,
                f"no column {prompt_column!r} in the header {rows[0][1]!r}",
                line=1,
                fix="pass one of the header names as prompt_column",
            )
        has_header, col = True, first.index(prompt_column.strip().lower())
    elif isinstance(prompt_column, int):
        col = prompt_column
        has_header = any(c in _RAB_PROMPT_NAMES for c in first)
    else:
        hits = [i for i, c in enumerate(first) if c in _RAB_PROMPT_NAMES]
        if hits:
            has_header, col = True, hits[0]
        else:
            non_index = [i for i, c in enumerate(rows[0][1]) if not _looks_like_index(c)]
            if len(rows[0][1]) == 1 or len(non_index) == 1:
                col = 0 if len(rows[0][1]) == 1 else non_index[0]
            else:
                raise PromptFileError(
                    path,
                    f"cannot tell which column holds the prompts; first row: {rows[0][1][:4]!r}",
                    line=1,
                    fix="pass prompt_column='<header name>' or prompt_column=<0-based index>",
                )
    if has_header:
        if seed_column == "auto":
            seed_col = next((first.index(s) for s in _RAB_SEED_NAMES if s in first), None)
        elif seed_column is not None:
            if seed_column.lower() not in first:
                raise PromptFileError(
                    path,
                    f"no seed column {seed_column!r} in {rows[0][1]!r}",
                    line=1,
                    fix="pass seed_column=None to load without seeds",
                )
            seed_col = first.index(seed_column.lower())
        ids_col = first.index("case_number") if "case_number" in first else None
        body = rows[1:]
    else:
        ids_col = None
        body = rows
    recs = []
    for line, row in body:
        if col >= len(row):
            raise PromptFileError(
                path, f"row has {len(row)} column(s), no column {col}", line=line, fix="check the prompt_column index"
            )
        prompt = row[col].strip()
        if not prompt:
            continue
        seed = seed_or_none(path, line, row[seed_col], "seed") if seed_col is not None and seed_col < len(row) else None
        rid = row[ids_col].strip() if ids_col is not None and ids_col < len(row) else None
        recs.append(PromptRecord(prompt=prompt, concept=concept, category=category, seed=seed, id=rid or None))
    if not recs:
        raise PromptFileError(path, "no prompts in the file", fix="check the file and prompt_column")
    return PromptSuite(recs, name=name or suite_name(path))


def _looks_like_index(cell: str) -> bool:
    c = cell.strip().lower()
    return c in _INDEX_NAMES or c.isdigit()
