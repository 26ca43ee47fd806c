"""VideoEraser (EMNLP 2025; authors' code ``bluedream02/VideoEraser``, ``CogVideoX/cogvideox_pipeline.py``, line
numbers below are of that file): training-free, at sampling time.

Each step predicts three branches (``:842-860``): the negative prompt (the concepts joined with ", ", ``:743-744``),
the prompt, and the *concept branch* (the concepts' encoding, ``:771-788``). Two parts:

- **Selective prompt-embedding adjustment (SPEA)** (``:762-794``, ``mask_to_onp`` ``:136-189``): SAFREE's trigger
  detection on the prompt (each real token masked in turn; a token whose masked prompt lies ``≥ (1 + α)`` times
  the mean of the others from the concept subspace is a trigger, α = 0.01) and projection ``(I − P_c) P_in h`` of
  the trigger positions, for the first 13 steps (``:851``: ``0 <= i <= 12``). As published the projection
  lands on the concept branch (``mask_to_onp`` splits the three-branch batch with ``chunk(2)``: its "text" half is
  the concept branch), and that is what this class does: the prompt's own embedding is never changed.
- **Adversarial-resilient noise guidance (ARNG)** (``:870-897``): SLD-style guidance away from the concept branch
  with momentum: ``s = clamp(|v_t − v_c|·5000, max 1)``, zeroed where ``v_t − v_c ≥ 1``; ``g_c = s·(v_c − v_u) +
  0.5·m``; ``m ← 0.7·m + 0.3·g_c``; ``v = v_u + w·((v_t − v_u) − g_c)`` (from step 0). Defaults ``:620-624``.

The trigger detection and projection are :class:`SAFREE`'s (the authors' ``mask_to_onp``/``projection_matrix`` are
SAFREE's functions), so this class uses a SAFREE object for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from unlearn.backbones import PromptEmbedding, VideoBackbone

from .negprompt import negative_guidance_scale
from .safree import SAFREE


class VideoEraser:
    """VideoEraser on a backbone. ``sample`` mirrors :meth:`VideoBackbone.sample` and returns latents.

    Args:
        backbone: any registered backbone (its adapters should be off).
        concept_keywords: words/phrases naming the concept (the negative prompt and the concept branch).
        alpha: α of SPEA's trigger rule (authors: 0.01, ``cogvideox_pipeline.py:793``).
        safe_steps: first steps with the adjusted concept branch (None: 13, ``:851``: steps 0..12).
        concept_guidance_scale: ARNG's scale (authors: 5000, ``:620``).
        concept_warmup_steps: steps before ARNG acts (authors: 0, ``:621``).
        concept_threshold: ARNG's cut on ``v_t − v_c`` (authors: 1.0, ``:622``).
        concept_momentum_scale: momentum weight (authors: 0.5, ``:623``).
        concept_mom_beta: momentum decay (authors: 0.7, ``:624``).
        guidance_scale: classifier-free guidance scale (None: the sampling scale; true CFG on guidance-distilled
            backbones, as the negative-prompting row).
        spea: apply SPEA (False: ARNG and the negative prompt only).
    """

    def __init__(
        self,
        backbone: VideoBackbone,
        concept_keywords: Sequence[str],
        alpha: float = 0.01,
        safe_steps: int | None = None,
        concept_guidance_scale: float = 5000.0,
        concept_warmup_steps: int = 0,
        concept_threshold: float = 1.0,
        concept_momentum_scale: float = 0.5,
        concept_mom_beta: float = 0.7,
        guidance_scale: float | None = None,
        spea: bool = True,
    ) -> None:
        if concept_guidance_scale < 0 or concept_momentum_scale < 0 or not 0 <= concept_mom_beta <= 1:
            raise ValueError(
                "VideoEraser: concept_guidance_scale and concept_momentum_scale must be >= 0 and concept_mom_beta "
                f"in [0, 1]; got {concept_guidance_scale}, {concept_momentum_scale}, {concept_mom_beta}"
            )
        if concept_warmup_steps < 0:
            raise ValueError(f"VideoEraser: concept_warmup_steps must be >= 0; got {concept_warmup_steps}")
        self.backbone = backbone
        self.safree = SAFREE(
            backbone, concept_keywords, alpha=alpha, safe_steps=safe_steps, guidance_scale=guidance_scale
        )
        self.keywords = self.safree.keywords
        self.spea = bool(spea)
        self.concept_guidance_scale = float(concept_guidance_scale)
        self.concept_warmup_steps = int(concept_warmup_steps)
        self.concept_threshold = float(concept_threshold)
        self.concept_momentum_scale = float(concept_momentum_scale)
        self.concept_mom_beta = float(concept_mom_beta)
        self.guidance_scale = guidance_scale

    @property
    def negative_prompt(self) -> str:
        return ", ".join(self.keywords)

    def settings(self, sampling_scale: float | None = None) -> dict[str, Any]:
        """What the row computes, for results files."""
        return {
            "keywords": list(self.keywords),
            "negative_prompt": self.negative_prompt,
            "concept_branch": self.negative_prompt,
            "guidance_scale": negative_guidance_scale(self.backbone, self.guidance_scale, sampling_scale),
            "spea": self.spea,
            "alpha": self.safree.alpha,
            "safe_steps": self.safree.safe_steps,
            "concept_guidance_scale": self.concept_guidance_scale,
            "concept_warmup_steps": self.concept_warmup_steps,
            "concept_threshold": self.concept_threshold,
            "concept_momentum_scale": self.concept_momentum_scale,
            "concept_mom_beta": self.concept_mom_beta,
        }

    def arng(self, pred_uncond: Tensor, pred_text: Tensor, pred_concept: Tensor, momentum: Tensor | None, step: int):
        """The guidance direction of one step and the new momentum (``cogvideox_pipeline.py:870-895``)."""
        guidance = pred_text - pred_uncond
        if momentum is None:
            momentum = torch.zeros_like(guidance)
        diff = pred_text - pred_concept
        scale = torch.clamp(diff.abs() * self.concept_guidance_scale, max=1.0)
        scale = torch.where(diff >= self.concept_threshold, torch.zeros_like(scale), scale)
        g_c = (pred_concept - pred_uncond) * scale + self.concept_momentum_scale * momentum
        momentum = self.concept_mom_beta * momentum + (1 - self.concept_mom_beta) * g_c
        if step >= self.concept_warmup_steps:
            guidance = guidance - g_c
        return guidance, momentum

    @torch.no_grad()
    def sample(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        cond: PromptEmbedding | None = None,
        *,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
    ) -> Tensor:
        """Latents of ``prompts`` (``cond``: their conditioning when it is not their text's; SPEA still detects
        the trigger tokens on ``prompts``)."""
        bb = self.backbone
        prompts, seeds = list(prompts), [int(s) for s in seeds]
        if len(prompts) != len(seeds):
            raise ValueError(f"sample got {len(prompts)} prompts but {len(seeds)} seeds")
        d = bb.defaults
        f, h, w = num_frames or d.num_frames, height or d.height, width or d.width
        steps = num_inference_steps or d.num_inference_steps
        g = negative_guidance_scale(bb, self.guidance_scale, guidance_scale)
        n = len(prompts)
        cond = bb.encode_prompts(prompts) if cond is None else cond
        uncond = bb.encode_prompts([self.negative_prompt] * n)
        concept = bb.encode_prompts([self.negative_prompt] * n)
        if self.spea:
            # mask_to_onp: the prompt's trigger positions, projected on the concept branch (see the module doc)
            adjusted, _ = self.safree.project_embedding(concept, prompts)
            cut = self.safree.steps_for(steps, 0.0)
        else:
            adjusted, cut = concept, 0
        scheduler = bb.new_scheduler()
        scheduler.set_timesteps(steps, device=bb.device)
        latents = bb.initial_noise(seeds, f, h, w) * getattr(scheduler, "init_noise_sigma", 1.0)
        momentum = None
        for i, t in enumerate(scheduler.timesteps):
            x_in = scheduler.scale_model_input(latents, t) if hasattr(scheduler, "scale_model_input") else latents
            branch = adjusted if i < cut else concept
            ts = t.to(bb.device).reshape(1).expand(3 * n)
            pred = bb.predict(torch.cat([x_in] * 3), ts, PromptEmbedding.cat([uncond, cond, branch])).float()
            pred_u, pred_t, pred_c = pred.chunk(3)
            guidance, momentum = self.arng(pred_u, pred_t, pred_c, momentum, i)
            g_i = bb.guidance_scale_at(g, i, t, steps)
            latents = bb.scheduler_step(scheduler, (pred_u + g_i * guidance).to(latents.dtype), t, latents)
        return latents
