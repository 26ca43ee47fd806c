"""Erasure / Preservation Success Rate (ESD protocol): per-frame top-k classification of generated videos.

* ESR-k = 1 − top-k accuracy on the frames generated for the erased class.
* PSR-k = mean over the preserved classes of each class's top-k accuracy (every class weighted equally,
  whatever its number of frames; with the protocol's equal frames per class this equals the frame average).

A frame is a top-k hit for class t when fewer than k *other* classes score at least as high as t
(``#{c ≠ t : logit_c ≥ logit_t} < k``). Ties therefore count against the target — deterministic and
independent of class order (``torch.topk`` breaks ties arbitrarily). With k ≥ number of classes every frame
is a hit. Logits must be finite (NaN logits would make every comparison false).

Outcomes: a classifier may score columns after its classes that are no class (``outcome_names``, e.g. the toy
classifier's ``"nothing"`` and ``"off-palette <shape>"``). A frame whose best outcome scores at least as high
as its best class is *classified as that outcome*: it is a miss for every k (a blank frame is never the
prompted class; for ESR it counts as erased, and the outcome counts say how often that happened). Otherwise
the rule above applies among the classes alone, so ESR/PSR keep their meaning over the classes.

For intervals each metric also keeps per-video statistics (class, frames, hits per k) as ``cat`` states, which
torchmetrics gathers across ranks; one ``update_logits`` call is one video per target class in it (``update``
calls it once per video).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from unlearn.evaluation.evaluators.base import FrameClassifier
from unlearn.evaluation.evaluators.efficientnet_lite import EfficientNetLiteClassifier
from unlearn.evaluation.evaluators.imagenet import class_aliases_of, resolve_class_index

from ._base import EvaluationMetric, warn_nan
from .frames import as_videos, per_video, to_float


def topk_hits(logits: torch.Tensor, targets: torch.Tensor, top_k: Sequence[int], num_outcomes: int = 0) -> torch.Tensor:
    """``[N, K]`` bool: frame n's target is within the top ``top_k[j]`` (ties count against the target).

    The last ``num_outcomes`` columns are outcomes, not classes: a frame whose best outcome scores at least as
    high as its best class is a miss for every k; otherwise only the classes compete."""
    classes = logits[:, : logits.shape[1] - num_outcomes]
    target_scores = classes.gather(1, targets.view(-1, 1))
    rivals = (classes >= target_scores).sum(dim=1) - 1  # other classes scoring at least as high
    ks = torch.as_tensor(list(top_k), device=logits.device).view(1, -1)
    hits = rivals.view(-1, 1) < ks
    if num_outcomes:
        hits &= ~outcome_frames(logits, num_outcomes).view(-1, 1)
    return hits


def outcome_frames(logits: torch.Tensor, num_outcomes: int) -> torch.Tensor:
    """``[N]`` bool: the frame is classified as an outcome (its best outcome scores >= its best class)."""
    if not num_outcomes:
        return torch.zeros(logits.shape[0], dtype=torch.bool, device=logits.device)
    split = logits.shape[1] - num_outcomes
    return logits[:, split:].max(dim=1).values >= logits[:, :split].max(dim=1).values


def top1_columns(logits: torch.Tensor, num_outcomes: int = 0) -> torch.Tensor:
    """``[N]`` column of each frame's top-1 label: the best outcome when the frame is classified as an outcome
    (:func:`outcome_frames`), else the best class."""
    split = logits.shape[1] - num_outcomes
    best_class = logits[:, :split].argmax(dim=1)
    if not num_outcomes:
        return best_class
    return torch.where(outcome_frames(logits, num_outcomes), split + logits[:, split:].argmax(dim=1), best_class)


def _default_classifier() -> FrameClassifier:
    return EfficientNetLiteClassifier()


class _PerClassTopK(EvaluationMetric):
    """Per-class frame counts and top-k hit counts; subclasses turn them into ESR / PSR."""

    higher_is_better = True

    def __init__(
        self,
        classifier: FrameClassifier | None = None,
        top_k: int | Sequence[int] = (1, 5),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        classifier = classifier if classifier is not None else _default_classifier()
        if not callable(getattr(classifier, "logits", None)) or not hasattr(classifier, "class_names"):
            raise ValueError("classifier must provide class_names and logits(frames) -> [N, C] (FrameClassifier)")
        self._set_evaluator("classifier", classifier)
        self.class_names: tuple[str, ...] = tuple(classifier.class_names)
        if not self.class_names:
            raise ValueError("the classifier has no classes")
        ks = [top_k] if isinstance(top_k, int) else list(top_k)
        if not ks or any(int(k) != k or int(k) < 1 for k in ks):
            raise ValueError(f"top_k must be positive integers, got {top_k!r}")
        self.top_k: tuple[int, ...] = tuple(sorted({int(k) for k in ks}))
        self.outcome_names: tuple[str, ...] = tuple(getattr(classifier, "outcome_names", None) or ())
        num_classes = len(self.class_names)
        self.add_state("class_frames", default=torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state(
            "class_hits", default=torch.zeros(num_classes, len(self.top_k), dtype=torch.long), dist_reduce_fx="sum"
        )
        # frames of each class whose top-1 is each outcome ("nothing", ...): shown next to ESR/PSR, not hidden
        self.add_state(
            "class_outcomes",
            default=torch.zeros(num_classes, len(self.outcome_names), dtype=torch.long),
            dist_reduce_fx="sum",
        )
        # top-1 label (class or outcome) of every frame of each class: what was drawn instead
        self.add_state(
            "class_top1",
            default=torch.zeros(num_classes, num_classes + len(self.outcome_names), dtype=torch.long),
            dist_reduce_fx="sum",
        )
        # per video, for intervals over prompts: target class, frames, and hits for each k
        self._add_video_stats(("class", "frames", *(f"hits@{k}" for k in self.top_k)))

    def class_index(self, target: int | str | torch.Tensor) -> int:
        """Column index of a class given by index or name (case-insensitive; synonyms when the classifier has them)."""
        return resolve_class_index(target, self.class_names, class_aliases_of(self.classifier))

    def update(self, frames: Any, target_class: Any) -> None:
        """Classify every frame; ``target_class`` (index or name) is the class each video was generated for:
        one value per video, or one for all videos of the call."""
        videos = as_videos(frames)
        targets = [self.class_index(t) for t in per_video(target_class, len(videos), "target_class")]
        classifier = self._evaluator_on_device(self.classifier)
        for video, target in zip(videos, targets):
            self.update_logits(classifier.logits(to_float(video).to(self.device)), target)

    def update_logits(self, logits: torch.Tensor, target_class: Any) -> None:
        """Add precomputed per-frame scores ``[N, C]`` (``[N, C + O]`` with ``O`` outcome columns); ``target_class``:
        one class for all rows or one per row. One call is one video per target class in it (for the intervals)."""
        logits = torch.as_tensor(logits)
        num_classes = len(self.class_names)
        columns = num_classes + len(self.outcome_names)
        if logits.ndim != 2 or logits.shape[1] != columns:
            what = f" ({num_classes} classes + {len(self.outcome_names)} outcomes)" if self.outcome_names else ""
            raise ValueError(f"logits must have shape [N, {columns}]{what}, got {list(logits.shape)}")
        if logits.shape[0] == 0:
            raise ValueError("logits hold zero frames")
        if not bool(torch.isfinite(logits).all()):
            raise ValueError("the classifier returned NaN or infinite logits")
        rows = per_video(target_class, logits.shape[0], "target_class")
        targets = torch.tensor([self.class_index(t) for t in rows], device=logits.device)
        num_outcomes = len(self.outcome_names)
        hits = topk_hits(logits.float(), targets, self.top_k, num_outcomes).long()
        top1 = top1_columns(logits.float(), num_outcomes)
        self._mark_updated()
        device = self.class_frames.device
        targets, hits, top1 = targets.to(device), hits.to(device), top1.to(device)
        self.class_frames.index_add_(0, targets, torch.ones_like(targets))
        self.class_hits.index_add_(0, targets, hits)
        self.class_top1.index_put_((targets, top1), torch.ones_like(targets), accumulate=True)
        if num_outcomes:
            is_outcome = top1 >= num_classes
            self.class_outcomes.index_put_(
                (targets[is_outcome], top1[is_outcome] - num_classes),
                torch.ones_like(targets[is_outcome]),
                accumulate=True,
            )
        for t in torch.unique(targets).tolist():
            sel = targets == t
            self._append_video(t, sel.sum(), hits[sel].sum(dim=0))

    def per_class_accuracy(self) -> torch.Tensor:
        """``[C, K]`` top-k accuracy per class (NaN for classes without frames); synced across ranks."""
        frames = self.class_frames.float().unsqueeze(1)
        return torch.where(
            frames > 0, self.class_hits.float() / frames.clamp(min=1), torch.full_like(frames, float("nan"))
        )

    def per_class(self) -> dict[str, dict[str, float]]:
        """``{class name: {"frames": n, "top1": acc, ...}}`` for every class that received frames."""
        accuracy = self.per_class_accuracy()
        out = {}
        for c in torch.nonzero(self.class_frames > 0).flatten().tolist():
            row = {"frames": int(self.class_frames[c])}
            row.update({f"top{k}": float(accuracy[c, j]) for j, k in enumerate(self.top_k)})
            out[self.class_names[c]] = row
        return out

    def videos(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-video ``(class [V], frames [V], hits [V, K])`` (long), in arrival order; synced inside
        ``sync_context`` like every state."""
        table = self.video_table().round().long()
        return table[:, 0], table[:, 1], table[:, 2:]

    def top1_labels(self, c: int) -> dict[str, int]:
        """``{label: frames}``: top-1 labels (classes and outcomes) of the frames of class ``c``, most first."""
        labels = list(self.class_names) + list(self.outcome_names)
        counts = self.class_top1[c].tolist()
        order = sorted((i for i, n in enumerate(counts) if n), key=lambda i: (-counts[i], i))
        return {labels[i]: int(counts[i]) for i in order}

    def report(self) -> dict[str, Any]:
        report = super().report()
        report["per_class"] = self.per_class()
        return report

    def _settings(self, **extra: Any) -> dict[str, Any]:
        return {
            "metric": type(self).__name__,
            "top_k": list(self.top_k),
            "num_classes": len(self.class_names),
            "tie_rule": "hit iff fewer than k other classes score >= the target",
            "outcomes": list(self.outcome_names),
            "outcome_rule": "a frame whose best outcome scores >= its best class is that outcome: a miss for every k"
            if self.outcome_names
            else None,
            **extra,
            "evaluator": self._evaluator_settings(self.classifier),
        }


class ErasureSuccessRate(_PerClassTopK):
    """ESR-k = 1 − top-k accuracy of the classifier on frames generated for the erased class.

    Args:
        erased_class: the erased class (index or name, e.g. ``"chain saw"``).
        classifier: a ``FrameClassifier`` (default: EfficientNet-Lite2 over ImageNet-1k, offline).
        top_k: the k values to report (default 1 and 5).

    ``update(frames, target_class)`` takes videos of any class; only frames of the erased class enter ESR.
    ``compute()`` returns ``esr@k`` for each k and ``frames`` (erased-class frames). Without erased-class
    frames ESR is NaN, with a warning naming the class.
    """

    def __init__(
        self,
        erased_class: int | str,
        classifier: FrameClassifier | None = None,
        top_k: int | Sequence[int] = (1, 5),
        **kwargs: Any,
    ) -> None:
        super().__init__(classifier=classifier, top_k=top_k, **kwargs)
        self.erased_index = self.class_index(erased_class)

    def compute(self) -> dict[str, torch.Tensor]:
        e = self.erased_index
        frames = int(self.class_frames[e])
        if frames == 0:
            warn_nan(
                f"ErasureSuccessRate: no frames of the erased class '{self.class_names[e]}' were given; ESR is NaN"
            )
        accuracy = self.per_class_accuracy()[e]
        out = {f"esr@{k}": (1.0 - accuracy[j]).float() for j, k in enumerate(self.top_k)}
        out["frames"] = self.class_frames[e].clone()
        return out

    def settings(self) -> dict[str, Any]:
        return self._settings(
            erased_class=self.class_names[self.erased_index],
            erased_index=self.erased_index,
            definition="ESR-k = 1 - top-k accuracy on frames of the erased class",
        )


class PreservationSuccessRate(_PerClassTopK):
    """PSR-k = mean over preserved classes of each class's top-k accuracy (classes weighted equally).

    Args:
        preserved_classes: the preserved classes (indices or names). Default: every class that receives
            frames, except ``erased_class``.
        erased_class: excluded from the default preserved set (ignored when ``preserved_classes`` is given,
            where it must not appear).
        classifier, top_k: as for :class:`ErasureSuccessRate`.

    ``compute()`` returns ``psr@k``, ``classes`` (preserved classes that received frames and enter the mean),
    ``classes_missing`` (listed preserved classes without frames: left out of the mean, with a warning) and
    ``frames``. With no preserved frames at all PSR is NaN (with a warning).
    """

    def __init__(
        self,
        preserved_classes: Sequence[int | str] | None = None,
        erased_class: int | str | None = None,
        classifier: FrameClassifier | None = None,
        top_k: int | Sequence[int] = (1, 5),
        **kwargs: Any,
    ) -> None:
        super().__init__(classifier=classifier, top_k=top_k, **kwargs)
        self.erased_index = self.class_index(erased_class) if erased_class is not None else None
        if preserved_classes is not None:
            indices = [self.class_index(c) for c in preserved_classes]
            if not indices:
                raise ValueError("preserved_classes is empty")
            if len(set(indices)) != len(indices):
                raise ValueError(f"preserved_classes lists a class twice: {list(preserved_classes)}")
            if self.erased_index is not None and self.erased_index in indices:
                raise ValueError(
                    f"the erased class '{self.class_names[self.erased_index]}' is also in preserved_classes"
                )
            self.preserved_indices: tuple[int, ...] | None = tuple(indices)
        else:
            self.preserved_indices = None

    def classes_used(self) -> tuple[list[int], list[int]]:
        """``(preserved classes with frames, listed preserved classes without frames)`` (indices)."""
        return self._classes()

    def _classes(self) -> tuple[list[int], list[int]]:
        seen = set(torch.nonzero(self.class_frames > 0).flatten().tolist())
        if self.preserved_indices is None:
            return sorted(c for c in seen if c != self.erased_index), []
        used = [c for c in self.preserved_indices if c in seen]
        return used, [c for c in self.preserved_indices if c not in seen]

    def compute(self) -> dict[str, torch.Tensor]:
        used, missing = self._classes()
        if missing and used:
            warn_nan(
                "PreservationSuccessRate: no frames for preserved classes "
                f"{[self.class_names[c] for c in missing]}; they are left out of the mean"
            )
        if not used:
            warn_nan(
                "PreservationSuccessRate: no frames of any preserved class were given "
                f"{[self.class_names[c] for c in missing] if missing else ''}; PSR is NaN"
            )
            values = torch.full((len(self.top_k),), float("nan"))
        else:
            values = self.per_class_accuracy()[used].mean(dim=0)
        out = {f"psr@{k}": values[j].float() for j, k in enumerate(self.top_k)}
        out["classes"] = torch.tensor(len(used))
        out["classes_missing"] = torch.tensor(len(missing))
        out["frames"] = self.class_frames[used].sum() if used else torch.tensor(0)
        return out

    def settings(self) -> dict[str, Any]:
        preserved = (
            [self.class_names[c] for c in self.preserved_indices]
            if self.preserved_indices is not None
            else "every class with frames except the erased class"
        )
        return self._settings(
            preserved_classes=preserved,
            erased_class=self.class_names[self.erased_index] if self.erased_index is not None else None,
            definition="PSR-k = mean over preserved classes (equal weight) of per-class top-k accuracy",
        )
