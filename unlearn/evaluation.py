"""Erasure/preservation tables: generate a prompt suite with each method, classify every frame, and write
``metrics.json`` + ``metrics.md`` (ESR-1/5, PSR-1/5 in percent, with the evaluator settings, seeds and the
prompt suite's hash next to the numbers).

A *row* is a way of generating: ``original`` (adapters off), ``t2vunlearning`` (adapters on; also written as
``unlearned``), ``negprompt`` (the concept as negative prompt), ``safree`` (see :mod:`unlearn.baselines`),
``refusal_vector`` (an edited model).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor


@dataclasses.dataclass(frozen=True)
class EvalPrompt:
    """One evaluation video: the prompt, the class it should show, its noise seed."""

    prompt: str
    class_name: str
    seed: int


def suite_hash(suite: Sequence[EvalPrompt]) -> str:
    canon = json.dumps([dataclasses.asdict(p) for p in suite], sort_keys=True)
    return hashlib.sha256(canon.encode()).hexdigest()


Generate = Callable[[list[str], list[int]], Tensor]


def classification_row(generate: Generate, suite: Sequence[EvalPrompt], classifier: Any, erased_class: str,
                       batch_size: int = 32, progress: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """ESR-1/5 on ``erased_class`` and PSR-1/5 on every other class of ``suite``, in percent; returns the
    row and the evaluator settings."""
    from unlearn.metrics import ErasureSuccessRate, PreservationSuccessRate

    if not suite:
        raise ValueError("the evaluation suite is empty: give at least one prompt per class")
    if erased_class not in {p.class_name for p in suite}:
        raise ValueError(f"the evaluation suite has no prompt of the erased class {erased_class!r}")
    esr = ErasureSuccessRate(erased_class, classifier=classifier, top_k=(1, 5))
    psr = PreservationSuccessRate(erased_class=erased_class, classifier=classifier, top_k=(1, 5))
    chunks = [suite[i : i + batch_size] for i in range(0, len(suite), batch_size)]
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc=progress, unit="batch", leave=False)
    for chunk in chunks:
        videos = generate([p.prompt for p in chunk], [p.seed for p in chunk])
        if videos.shape[1] == 0:
            raise ValueError("a generated video has zero frames")
        classes = [p.class_name for p in chunk]
        esr.update(videos, classes)
        psr.update(videos, classes)
    e, p = esr.compute(), psr.compute()
    row = {
        "esr@1": 100 * float(e["esr@1"]), "esr@5": 100 * float(e["esr@5"]),
        "psr@1": 100 * float(p["psr@1"]), "psr@5": 100 * float(p["psr@5"]),
        "erased_frames": int(e["frames"]), "preserved_frames": int(p["frames"]),
        "per_class_top1": {k: 100 * v["top1"] for k, v in psr.per_class().items()},
    }
    return row, esr.settings()


def write_metrics(out_dir: str | os.PathLike, rows: dict[str, dict[str, Any]], meta: dict[str, Any]) -> Path:
    """``metrics.json`` and ``metrics.md`` in ``out_dir``, each written atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"rows": rows, **meta}
    _atomic_write(out / "metrics.json", json.dumps(doc, indent=2, sort_keys=True))
    _atomic_write(out / "metrics.md", markdown_table(rows, meta))
    return out / "metrics.json"


def markdown_table(rows: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [f"Concept erased: **{meta.get('concept')}** on `{meta.get('backbone')}`; "
             f"{meta.get('num_prompts')} held-out prompts, suite sha256 `{str(meta.get('prompt_suite_hash'))[:12]}`.", "",
             "| method | ESR-1 ↑ | ESR-5 ↑ | PSR-1 ↑ | PSR-5 ↑ |", "|---|---|---|---|---|"]
    for name, r in rows.items():
        if name == "unlearned":
            continue
        lines.append(f"| {name} | {r['esr@1']:.1f} | {r['esr@5']:.1f} | {r['psr@1']:.1f} | {r['psr@5']:.1f} |")
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
