"""T2VSafetyBench prompts (Miao et al., NeurIPS 2024 D&B): ``load_t2vsafetybench`` reads your clone."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from unlearn.prompts.suite import (
    PromptFileError,
    PromptRecord,
    PromptSuite,
    format_from_suffix,
    iter_json_rows,
    optional_str,
    read_csv_dicts,
    read_text,
    row_location,
    suite_name,
)

__all__ = ["load_t2vsafetybench", "T2VSAFETYBENCH_CATEGORIES"]

#: T2VSafetyBench's 14 aspects; file ``N.txt`` holds the prompts of aspect N (README of the benchmark)
T2VSAFETYBENCH_CATEGORIES: dict[int, str] = {
    1: "Pornography",
    2: "Borderline Pornography",
    3: "Violence",
    4: "Gore",
    5: "Disturbing Content",
    6: "Public Figures",
    7: "Discrimination",
    8: "Political Sensitivity",
    9: "Copyright and Trademark",
    10: "Illegal Activities",
    11: "Misinformation",
    12: "Sequential Action Risk",
    13: "Dynamic Variation Risk",
    14: "Coherent Contextual Risk",
}


def _t2v_category(spec: str | int) -> tuple[int | None, str]:
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        i = int(spec)
        if i not in T2VSAFETYBENCH_CATEGORIES:
            raise ValueError(f"T2VSafetyBench has categories 1-14, not {i}")
        return i, T2VSAFETYBENCH_CATEGORIES[i]
    for i, n in T2VSAFETYBENCH_CATEGORIES.items():
        if n.lower() == str(spec).strip().lower():
            return i, n
    return None, str(spec).strip()


def load_t2vsafetybench(
    path: str | os.PathLike,
    *,
    categories: str | int | Iterable[str | int] | None = None,
    category: str | None = None,
    concept: str | None = None,
    name: str | None = None,
) -> PromptSuite:
    """T2VSafetyBench prompts (Miao et al., NeurIPS 2024 D&B) from **your clone** of the benchmark.

    Not shipped; the public repository (yibo-miao/T2VSafetyBench) has no licence file, so it may not be
    redistributed. Layout there: ``T2VSafetyBench/N.txt`` (and ``Tiny-T2VSafetyBench/N.txt``), one prompt a
    line, N = 1..14 the aspect (:data:`T2VSAFETYBENCH_CATEGORIES`: 1 Pornography, 2 Borderline
    Pornography, 3 Violence, ...). ``path`` may be:

    - that folder: every ``N.txt`` is read, category = the aspect name;
    - one ``.txt`` file: category = the aspect of its number, or ``category=``;
    - a ``.csv`` with a ``prompt`` column (and optionally ``category``);
    - a ``.json``/``.jsonl``: a list of strings, or objects with ``prompt`` (and ``category``).

    ``categories`` keeps the given aspects (numbers or names). Lines are read like the benchmark's own
    loader (UTF-8, undecodable bytes replaced); blank lines are skipped.
    """
    path = Path(path)
    wanted: set[str] | None = None
    if categories is not None:
        specs = [categories] if isinstance(categories, (str, int)) else list(categories)
        wanted = {_t2v_category(s)[1].lower() for s in specs}
    recs: list[PromptRecord] = []

    def add(prompt: str, cat: str | None, rid: str | None) -> None:
        prompt = prompt.strip()
        if not prompt:
            return
        if wanted is not None and (cat or "").lower() not in wanted:
            return
        recs.append(PromptRecord(prompt=prompt, concept=concept, category=cat, id=rid))

    def read_txt(p: Path, cat: str | None, num: int | None) -> None:
        lines = read_text(p, errors="replace").splitlines()
        for j, line in enumerate(lines, start=1):
            add(line, cat, f"{num if num is not None else suite_name(p)}-{j}")

    if path.is_dir():
        files = sorted((p for p in path.glob("*.txt") if p.stem.isdigit()), key=lambda p: int(p.stem))
        if not files:
            raise PromptFileError(
                path,
                "no N.txt files in the folder",
                fix="point at the T2VSafetyBench folder that holds 1.txt ... 14.txt",
            )
        for p in files:
            num, cat = _t2v_category(int(p.stem)) if int(p.stem) in T2VSAFETYBENCH_CATEGORIES else (int(p.stem), p.stem)
            read_txt(p, cat, num)
    else:
        fmt = format_from_suffix(path)
        if fmt == "txt":
            if category is not None:
                num, cat = _t2v_category(category)
            elif path.stem.isdigit() and int(path.stem) in T2VSAFETYBENCH_CATEGORIES:
                num, cat = _t2v_category(int(path.stem))
            else:
                num, cat = None, None
            read_txt(path, cat, num)
        elif fmt == "csv":
            header, rows = read_csv_dicts(path, errors="replace")
            low = {h.lower(): h for h in header}
            if "prompt" not in low:
                raise PromptFileError(
                    path, f"no 'prompt' column in {header!r}", line=1, fix="name the prompt column 'prompt'"
                )
            for line, row in rows:
                cat = row.get(low["category"]) if "category" in low else category
                add(row[low["prompt"]], _t2v_category(cat)[1] if cat else None, str(line))
        else:
            text = read_text(path, errors="replace")
            for line, obj in iter_json_rows(path, text, fmt):
                if isinstance(obj, str):
                    add(obj, _t2v_category(category)[1] if category else None, None)
                elif isinstance(obj, Mapping) and isinstance(obj.get("prompt"), str):
                    cat = obj.get("category", category)
                    add(
                        obj["prompt"],
                        _t2v_category(cat)[1] if cat not in (None, "") else None,
                        optional_str(obj.get("id")),
                    )
                else:
                    loc = row_location(line)
                    raise PromptFileError(
                        path,
                        "expected a string or an object with 'prompt'",
                        line=loc["line"],
                        fix='write prompts as strings or {"prompt": ..., "category": ...}',
                    )
    if not recs:
        raise PromptFileError(
            path,
            f"no prompts (categories={sorted(wanted) if wanted else None})",
            fix="check the category numbers/names (1-14) and the path",
        )
    return PromptSuite(recs, name=name or suite_name(path))
