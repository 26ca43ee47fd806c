"""Generation + evaluation of the paper's tables: a resumable file-based runner and a Lightning test loop.

* :class:`EvaluationRunner` / :func:`run_evaluation` — generate ``videos/<row>_<index>_<label>.mp4`` for a
  prompt suite and each method row, score them, write ``metrics.json`` + ``metrics.md`` (+ plots), the pair
  ``unlearn fit``'s evaluation callback writes. On the command line: ``unlearn evaluate`` (its flags are the
  runner's parameters; ``unlearn evaluate --help``).
* :class:`EvaluationModule` + :class:`VideoEvalDataModule` — the same evaluation inside Lightning's test loop
  (``unlearn test --config configs/eval_toy.yaml``); the metrics are torchmetrics and sync across ranks.
* :func:`load_suite`, :class:`RowSpec`, :class:`RowGenerator`, :class:`MetricConfig`,
  :class:`RowMetrics`, :class:`VideoStore` — the pieces, for other drivers (``benchmarks/paper_tables.py``).
"""

from __future__ import annotations

import importlib

_LAZY = {
    "EvaluationRunner": ".runner",
    "run_evaluation": ".runner",
    "score_in_memory": ".runner",
    "RESULTS_FORMAT": ".runner",
    "EvalVideo": ".suites",
    "EvalVideos": ".suites",
    "EmptySuiteError": ".suites",
    "load_suite": ".suites",
    "RowSpec": ".rows",
    "RowGenerator": ".rows",
    "RowModel": ".rows",
    "ROW_KINDS": ".rows",
    "parse_rows": ".rows",
    "apply_row_options": ".rows",
    "MetricConfig": ".scoring",
    "RowMetrics": ".scoring",
    "Evaluators": ".scoring",
    "classification_summary": ".scoring",
    "joint_classification_row": ".scoring",
    "VideoStore": ".store",
    "VideoFileError": ".store",
    "EvaluationModule": ".loop",
    "VideoEvalDataModule": ".loop",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
