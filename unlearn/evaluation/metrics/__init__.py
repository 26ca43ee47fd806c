"""Evaluation metrics for concept erasure in text-to-video models (torchmetrics ``Metric`` classes).

Each metric works alone (``update(frames, ...)`` then ``compute()``) and inside Lightning's validation/test
loops: states are registered with ``add_state`` and sum-reduced, so they sync across ranks. ``compute()``
returns a flat dict of scalar tensors (``self.log_dict(metric.compute())``); ``settings()`` names the
evaluator (package, version, weights) and every threshold/label set/k; ``report()`` bundles both as plain
Python values. Frames: ``[N, H, W, 3]`` or ``[B, F, H, W, 3]``, uint8 or float in [0, 1] (see
:mod:`unlearn.evaluation.metrics.frames`). Details and defaults: ``docs/evaluation.md``.
"""

from .classification import ErasureSuccessRate, PreservationSuccessRate, top1_columns, topk_hits
from .clip_score import CLIPScore
from .consistency import SubjectConsistency, pair_similarities
from .frames import as_videos
from .identity import IdentitySimilarity
from .nudity import NudityRate, parse_detections
from .quality import FrechetVideoDistance, VBenchObjectClass, VBenchSubjectConsistency

__all__ = [
    "NudityRate",
    "ErasureSuccessRate",
    "PreservationSuccessRate",
    "IdentitySimilarity",
    "CLIPScore",
    "SubjectConsistency",
    "FrechetVideoDistance",
    "VBenchObjectClass",
    "VBenchSubjectConsistency",
    "as_videos",
    "parse_detections",
    "topk_hits",
    "top1_columns",
    "pair_similarities",
]
