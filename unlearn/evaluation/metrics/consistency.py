"""Subject consistency: how similar consecutive frames of a video look in a feature space."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from unlearn.evaluation.evaluators.base import FrameFeatureExtractor
from unlearn.evaluation.evaluators.efficientnet_lite import EfficientNetLiteClassifier

from ._base import EvaluationMetric, warn_nan
from .frames import as_videos, to_float

_MODES = ("consecutive", "vbench")


def _default_extractor() -> FrameFeatureExtractor:
    return EfficientNetLiteClassifier()


def pair_similarities(features: torch.Tensor, mode: str = "consecutive", clamp_negative: bool = False) -> torch.Tensor:
    """Per-pair similarities of one video's frame features ``[F, D]`` → ``[F - 1]``.

    ``consecutive``: ``cos(f_i, f_{i-1})``. ``vbench``: ``(cos(f_i, f_{i-1}) + cos(f_i, f_0)) / 2`` — VBench's
    subject-consistency formula (VBench uses DINO ViT-B/16 features and clamps negatives to 0).
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    feats = F.normalize(features.float().flatten(1), dim=-1)
    previous = (feats[1:] * feats[:-1]).sum(-1)
    if clamp_negative:
        previous = previous.clamp(min=0)
    if mode == "consecutive":
        return previous
    first = (feats[1:] * feats[:1]).sum(-1)
    if clamp_negative:
        first = first.clamp(min=0)
    return (previous + first) / 2


class SubjectConsistency(EvaluationMetric):
    """Mean cosine similarity of feature vectors of consecutive frames, over all frame pairs of all videos.

    Args:
        extractor: a ``FrameFeatureExtractor`` (``features(frames) -> [N, D]``) or a plain callable
            ``frames [N, H, W, 3] float in [0, 1] -> [N, D]``. Default: EfficientNet-Lite2's
            pooled 1280-d features (ship offline). VBench uses DINO ViT-B/16, which does not ship; an
            :class:`~unlearn.evaluation.evaluators.OpenCLIPModel` or any other extractor plugs in the same way.
        mode: ``"consecutive"`` (default) or ``"vbench"`` (average of previous-frame and first-frame cosines).
        clamp_negative: clamp negative cosines to 0 (VBench does).

    ``compute()`` returns ``subject_consistency`` (mean over all pairs, so longer videos weigh more, as in
    VBench), ``pairs`` and ``videos``. Single-frame videos add no pair (they are counted in
    ``single_frame_videos``); with no pair at all the score is NaN (with a warning).
    """

    higher_is_better = True

    def __init__(
        self,
        extractor: FrameFeatureExtractor | None = None,
        mode: str = "consecutive",
        clamp_negative: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        extractor = extractor if extractor is not None else _default_extractor()
        if not callable(getattr(extractor, "features", None)) and not callable(extractor):
            raise ValueError(
                "extractor must have features(frames) -> [N, D] (FrameFeatureExtractor) or be a callable doing that"
            )
        self._set_evaluator("extractor", extractor)
        self.mode = mode
        self.clamp_negative = bool(clamp_negative)
        self.add_state("sim_sum", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("pairs", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("videos", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("single_frame_videos", default=torch.tensor(0), dist_reduce_fx="sum")
        self._add_video_stats(("pairs", "sim_sum"))  # for the bootstrap over prompts

    def update(self, frames: Any) -> None:
        extractor = self._evaluator_on_device(self.extractor)
        features = getattr(extractor, "features", None) or extractor
        for video in as_videos(frames):
            self.update_features(features(to_float(video).to(self.device)))

    def update_features(self, features: torch.Tensor) -> None:
        """Add one video's precomputed per-frame features ``[F, D]``."""
        features = torch.as_tensor(features)
        if features.ndim < 2 or features.shape[0] == 0:
            raise ValueError(f"features must be [F, D] with F >= 1, got {list(features.shape)}")
        if not bool(torch.isfinite(features).all()):
            raise ValueError("features contain NaN or infinite values")
        self._mark_updated()
        self.videos += 1
        if features.shape[0] == 1:
            self.single_frame_videos += 1
            self._append_video(0, 0.0)
            return
        sims = pair_similarities(features, self.mode, self.clamp_negative).to(self.sim_sum.device)
        self.sim_sum += sims.sum()
        self.pairs += sims.numel()
        self._append_video(sims.numel(), sims.sum())

    def compute(self) -> dict[str, torch.Tensor]:
        pairs = int(self.pairs)
        if pairs == 0:
            warn_nan("SubjectConsistency.compute(): no frame pairs were scored; the score is NaN")
        score = self.sim_sum / pairs if pairs else torch.tensor(float("nan"))
        return {
            "subject_consistency": score.float(),
            "pairs": self.pairs.clone(),
            "videos": self.videos.clone(),
            "single_frame_videos": self.single_frame_videos.clone(),
        }

    def settings(self) -> dict[str, Any]:
        return {
            "metric": "SubjectConsistency",
            "mode": self.mode,
            "clamp_negative": self.clamp_negative,
            "definition": "mean over frame pairs of cos(f_i, f_{i-1})"
            if self.mode == "consecutive"
            else "mean over frames i>0 of (cos(f_i, f_{i-1}) + cos(f_i, f_0)) / 2 (VBench)",
            "evaluator": self._evaluator_settings(self.extractor),
        }
