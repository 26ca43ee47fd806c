"""Negative prompting: the concept as the negative prompt of classifier-free guidance.

Each denoising step uses ``v_neg + g·(v_cond − v_neg)`` with ``v_neg = v(x_t, "<concept keywords>", t)`` in place
of the empty-prompt prediction, so sampling is pushed away from the concept.

On models sampled with classifier-free guidance (CogVideoX, ZeroScope, Wan, the toy world) ``g`` is the
sampling guidance scale. A guidance-distilled model (``backbone.guidance_distilled``: HunyuanVideo) is sampled
without classifier-free guidance (its guidance is an input of the transformer), so there the negative prompt
would never enter the update; this baseline then uses *true* classifier-free guidance on top of the embedded
guidance, as diffusers' ``HunyuanVideoPipeline(true_cfg_scale=...)`` does, with
``DISTILLED_TRUE_CFG_SCALE`` unless the row gives a scale, and the embedded guidance set to 1.0 while it
samples: the T2VUnlearning authors' HunyuanVideo script (TobisawaMisakii/T2VUnlearning,
``test_hunyuan_negprompt.py`` lines 88-96: ``negative_prompt="nudity", true_cfg_scale=6.0, guidance_scale=1.0``,
30 steps).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from unlearn.backbones import PromptEmbedding, VideoBackbone

#: true-CFG scale of negative prompting on guidance-distilled backbones when the row gives none: the
#: T2VUnlearning authors' ``true_cfg_scale=6.0`` (test_hunyuan_negprompt.py:91)
DISTILLED_TRUE_CFG_SCALE = 6.0
#: embedded (distilled) guidance while negative prompting samples with true CFG: the T2VUnlearning authors'
#: ``guidance_scale=1.0`` (test_hunyuan_negprompt.py:94)
DISTILLED_EMBEDDED_GUIDANCE = 1.0


def negative_guidance_scale(
    backbone: VideoBackbone, guidance_scale: float | None, sampling_scale: float | None = None
) -> float:
    """The classifier-free guidance scale with which a negative prompt acts on ``backbone``.

    ``guidance_scale`` (the row's choice) wins; else the run's ``sampling_scale``, else the backbone's default,
    unless that is 1 (no guidance: a guidance-distilled model), where :data:`DISTILLED_TRUE_CFG_SCALE` is used.
    A scale of 1 or less is refused: the negative prompt would have no effect (or the opposite one).
    """
    if guidance_scale is not None:
        scale = float(guidance_scale)
        if scale <= 1.0:
            raise ValueError(
                f"negative prompting with guidance_scale={scale}: at 1 the negative prompt has no effect (below 1 it "
                "pulls towards the concept). Fix: give a scale > 1 or leave it unset for the backbone's default."
            )
        return scale
    scale = float(backbone.defaults.guidance_scale if sampling_scale is None else sampling_scale)
    if scale <= 1.0:
        if not backbone.guidance_distilled:
            raise ValueError(
                f"{backbone.name} samples with guidance_scale={scale}, where a negative prompt has no effect. Fix: "
                "give the negative-prompting row a guidance scale > 1 (row option guidance_scale)."
            )
        scale = DISTILLED_TRUE_CFG_SCALE
    return scale


class NegativePrompting:
    """The concept keywords as the negative prompt. ``sample`` mirrors :meth:`VideoBackbone.sample` and
    returns latents.

    Args:
        backbone: any registered backbone (its adapters should be off).
        concept_keywords: words/phrases naming the concept; joined with ", " into the negative prompt.
        guidance_scale: classifier-free guidance scale with the negative prompt (true CFG on guidance-distilled
            backbones). None: the sampling scale, or :data:`DISTILLED_TRUE_CFG_SCALE` on a guidance-distilled
            backbone whose sampling scale is 1.
        embedded_guidance_scale: guidance-distilled backbones only: the embedded guidance while sampling
            (None: :data:`DISTILLED_EMBEDDED_GUIDANCE`, the authors' 1.0; give the backbone's own value, e.g.
            6.0, to stack true CFG on the distilled guidance).
    """

    def __init__(
        self,
        backbone: VideoBackbone,
        concept_keywords: Sequence[str],
        guidance_scale: float | None = None,
        embedded_guidance_scale: float | None = None,
    ) -> None:
        keywords = [k for k in concept_keywords if k and k.strip()]
        if not keywords:
            raise ValueError("negative prompting needs at least one concept keyword (the row's concept or keywords)")
        self.backbone = backbone
        self.keywords = list(keywords)
        self.guidance_scale = guidance_scale
        if guidance_scale is not None:
            negative_guidance_scale(backbone, guidance_scale)  # bad values fail at construction
        if embedded_guidance_scale is not None and not backbone.guidance_distilled:
            raise ValueError(
                f"embedded_guidance_scale is an input of guidance-distilled models; {backbone.name} has none. Fix: "
                "leave it unset."
            )
        self.embedded_guidance_scale = (
            (DISTILLED_EMBEDDED_GUIDANCE if embedded_guidance_scale is None else float(embedded_guidance_scale))
            if backbone.guidance_distilled
            else None
        )

    @contextlib.contextmanager
    def embedded_guidance(self):
        """The backbone's embedded guidance set to the row's for the duration of a ``with`` block."""
        bb = self.backbone
        if self.embedded_guidance_scale is None:
            yield
            return
        saved = bb.embedded_guidance_scale
        bb.embedded_guidance_scale = self.embedded_guidance_scale
        try:
            yield
        finally:
            bb.embedded_guidance_scale = saved

    @property
    def negative_prompt(self) -> str:
        return ", ".join(self.keywords)

    def scale(self, sampling_scale: float | None = None) -> float:
        """The guidance scale used with a run whose sampling scale is ``sampling_scale``."""
        return negative_guidance_scale(self.backbone, self.guidance_scale, sampling_scale)

    def settings(self, sampling_scale: float | None = None) -> dict[str, Any]:
        """What the row computes, for results files."""
        return {
            "negative_prompt": self.negative_prompt,
            "guidance_scale": self.scale(sampling_scale),
            "true_cfg": bool(self.backbone.guidance_distilled),
            "embedded_guidance_scale": self.embedded_guidance_scale,
        }

    @torch.no_grad()
    def sample(
        self, prompts: Sequence[str], seeds: Sequence[int], cond: PromptEmbedding | None = None, **sampling: Any
    ) -> Tensor:
        """Latents of ``prompts``; ``cond``: their conditioning when it is not their text's (an attack's)."""
        scale = self.scale(sampling.pop("guidance_scale", None))
        with self.embedded_guidance():
            return self.backbone.sample(
                list(prompts),
                list(seeds),
                cond=cond,
                negative_prompt=self.negative_prompt,
                guidance_scale=scale,
                **sampling,
            )
