"""CLIP score (prompt alignment) with open_clip.

Not torchmetrics' ``CLIPScore`` (that one wraps transformers' CLIP); this one takes any open_clip model:
a named architecture + pretrained tag, a local checkpoint, a ``local-dir:`` folder, or a ready
:class:`~unlearn.evaluation.evaluators.OpenCLIPModel`. Score per frame: ``max(100 · cos(image, prompt), 0)`` (the
torchmetrics / Hessel et al. scaling with w = 100), averaged over all frames; the raw mean cosine is
reported too.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from unlearn.evaluation.evaluators.clip import OpenCLIPModel

from ._base import EvaluationMetric, warn_nan
from .frames import as_videos, per_video, to_float


class CLIPScore(EvaluationMetric):
    """Frame-level prompt alignment: mean over frames of ``max(100·cos(image_emb, text_emb), 0)``.

    Args:
        model_name: open_clip architecture (or ``local-dir:``/``hf-hub:`` id). Default 'ViT-B-32'.
        pretrained: pretrained tag ('openai') or local checkpoint path; ``None`` = random weights (tests).
        model_kwargs: architecture overrides passed to ``open_clip.create_model`` (tiny test models).
        clip: a ready :class:`~unlearn.evaluation.evaluators.OpenCLIPModel` (overrides the three arguments above).

    ``update(frames, prompts)``: one prompt per video (or one for all). ``compute()`` returns
    ``clip_score`` (0..100), ``clip_cosine`` (mean raw cosine) and ``frames``.
    """

    higher_is_better = True

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | None = "openai",
        model_kwargs: dict[str, Any] | None = None,
        clip: Any | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if clip is None:
            clip = OpenCLIPModel(model_name, pretrained=pretrained, model_kwargs=model_kwargs)
        self._set_evaluator("clip", clip)
        self.add_state("score_sum", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("cosine_sum", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("frames", default=torch.tensor(0), dist_reduce_fx="sum")
        self._add_video_stats(("frames", "score_sum"))  # one row per update_embeddings call (one video)

    @staticmethod
    def scores(image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """Row-wise ``cos(image_i, text_i)`` of ``[N, D]`` embeddings (need not be normalised)."""
        if image_embeds.ndim != 2 or image_embeds.shape != text_embeds.shape:
            raise ValueError(
                f"image and text embeddings must both be [N, D] of equal shape, got {list(image_embeds.shape)} and "
                f"{list(text_embeds.shape)}"
            )
        return (F.normalize(image_embeds.float(), dim=-1) * F.normalize(text_embeds.float(), dim=-1)).sum(-1)

    def update(self, frames: Any, prompts: Any) -> None:
        videos = as_videos(frames)
        texts = per_video(prompts, len(videos), "prompts")
        if not all(isinstance(t, str) for t in texts):
            raise ValueError("prompts must be strings (one per video, or one for all)")
        clip = self._evaluator_on_device(self.clip)
        text_embeds = clip.encode_texts(texts)
        for video, text_embed in zip(videos, text_embeds):
            image_embeds = clip.encode_images(to_float(video).to(self.device))
            self.update_embeddings(image_embeds, text_embed.expand_as(image_embeds))

    def update_embeddings(self, image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> None:
        """Add precomputed per-frame image embeddings ``[N, D]`` and their prompts' embeddings ``[N, D]``
        (or one ``[D]`` prompt embedding for all rows); one call is one video for the intervals."""
        image_embeds = torch.as_tensor(image_embeds)
        text_embeds = torch.as_tensor(text_embeds)
        if text_embeds.ndim == 1:
            text_embeds = text_embeds.expand_as(image_embeds)
        cosine = self.scores(image_embeds, text_embeds).to(self.score_sum.device)
        self._mark_updated()
        score = (100.0 * cosine).clamp(min=0).sum()
        self.cosine_sum += cosine.sum()
        self.score_sum += score
        self.frames += cosine.numel()
        self._append_video(cosine.numel(), score)

    def compute(self) -> dict[str, torch.Tensor]:
        n = int(self.frames)
        if n == 0:
            warn_nan("CLIPScore.compute(): no frames were scored; the score is NaN")
            nan = torch.tensor(float("nan"))
            return {"clip_score": nan, "clip_cosine": nan.clone(), "frames": self.frames.clone()}
        return {
            "clip_score": (self.score_sum / n).float(),
            "clip_cosine": (self.cosine_sum / n).float(),
            "frames": self.frames.clone(),
        }

    def settings(self) -> dict[str, Any]:
        return {
            "metric": "CLIPScore",
            "definition": "mean over frames of max(100 * cos(image embedding, prompt embedding), 0)",
            "evaluator": self._evaluator_settings(self.clip),
        }
