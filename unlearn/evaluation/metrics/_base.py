"""Shared behaviour of the evaluation metrics: evaluator handling, settings and JSON-ready reports."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from unlearn.evaluation.evaluators.base import evaluator_info, module_device


class EvaluationMetric(Metric):
    """A torchmetrics ``Metric`` that runs an evaluator model and records how it was configured.

    * ``compute()`` returns a flat dict of scalar tensors (loggable with ``LightningModule.log_dict``).
    * ``settings()`` returns the metric's configuration and its evaluator's name/version/weights.
    * ``report()`` returns ``{"metric", "values", "settings"}`` with plain floats: write it next to results.

    The evaluator is held outside the module tree (it is not a child module): its weights stay out of
    checkpoints and ``state_dict``; an ``nn.Module`` evaluator is moved to the metric's device on update.
    """

    is_differentiable = False
    full_state_update = False

    def _set_evaluator(self, name: str, evaluator: Any) -> None:
        object.__setattr__(self, name, evaluator)  # bypass nn.Module registration

    def _evaluator_on_device(self, evaluator: Any) -> Any:
        if isinstance(evaluator, nn.Module) and module_device(evaluator) != self.device:
            evaluator.to(self.device)
        return evaluator

    def _mark_updated(self) -> None:
        """Called by the ``update_*`` entry points that bypass ``update`` (precomputed detections, logits,
        embeddings, features): invalidates torchmetrics' cached ``compute()`` result like ``update`` does."""
        self._update_count += 1
        self._computed = None

    # -- per-video statistics, for intervals over prompts ---------------------------------------------------
    def _add_video_stats(self, columns: tuple[str, ...]) -> None:
        """Keep one row of ``columns`` per video in a ``cat`` state (torchmetrics gathers it across ranks; kept
        as float because torchmetrics pads a rank without videos with an empty tensor of the metric's dtype)."""
        self.video_columns = tuple(columns)
        self.add_state("video_stats", default=[], dist_reduce_fx="cat")

    def _append_video(self, *values: float | torch.Tensor) -> None:
        row = torch.cat([torch.as_tensor(v, dtype=torch.float32).reshape(-1).cpu() for v in values])
        if row.numel() != len(self.video_columns):
            raise RuntimeError(f"{type(self).__name__}: {row.numel()} per-video values for {self.video_columns}")
        self.video_stats.append(row.to(self.device))

    def video_table(self) -> torch.Tensor:
        """``[videos, len(video_columns)]`` float64, one row per video (synced inside ``sync_context``)."""
        stats = self.video_stats
        if isinstance(stats, list):
            stats = dim_zero_cat(stats) if stats else torch.zeros(0)
        return stats.double().reshape(-1, len(self.video_columns))

    def settings(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _evaluator_settings(self, evaluator: Any) -> dict[str, Any]:
        return evaluator_info(evaluator)

    def report(self) -> dict[str, Any]:
        values = {}
        for key, value in self.compute().items():
            if isinstance(value, torch.Tensor):
                value = value.item() if value.numel() == 1 else value.tolist()
            values[key] = value
        return {"metric": type(self).__name__, "values": values, "settings": self.settings()}


def warn_nan(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


def nan() -> float:
    return math.nan
