"""A soft-prompt attack on the text conditioning itself (the attack space of adversarial training).

For each target, a perturbation of the text encoder's *output* (every token's state) is optimised with the
row's denoising loss on the original model's video of that target (Adam), optionally within an L∞ ball of
``epsilon`` times the conditioning's standard deviation. No prompt need produce the perturbed conditioning, so
this is stronger than any prompt or token attack: it shows what the text pathway can still reach when
prompt-level attacks fail, and it is the space in which ``T2VUnlearning(adversarial_steps=...)`` trains
(AdvUnlearn's inner attack, here at attack time with a larger budget).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from unlearn.backbones import PromptEmbedding
from unlearn.methods.t2vunlearning import optimise_embedding

from .base import Attack, AttackContext, Try, denoising_loss


class EmbeddingAttack(Attack):
    """Per-target perturbations of the text conditioning (budget: ``steps`` denoiser forward+backward passes of
    ``batch_size`` videos).

    Args:
        steps: optimisation steps.
        lr: Adam's learning rate, in units of the conditioning's standard deviation.
        batch_size: targets per step.
        epsilon: L∞ radius per entry in units of the conditioning's standard deviation (None: unbounded).
    """

    name = "embedding"
    white_box = True

    def __init__(self, steps: int = 150, lr: float = 0.05, batch_size: int = 8, epsilon: float | None = None) -> None:
        if steps < 1 or batch_size < 1 or (epsilon is not None and epsilon <= 0):
            raise ValueError(
                f"embedding attack needs steps >= 1, batch_size >= 1 and epsilon > 0 or None; got "
                f"{steps}, {batch_size}, {epsilon}"
            )
        self.steps, self.lr, self.batch_size, self.epsilon = steps, float(lr), batch_size, epsilon
        self._details: dict[str, Any] = {}

    def run(self, ctx: AttackContext, row: str) -> list[Try]:
        bb = ctx.backbone
        clean = bb.encode_prompts(ctx.prompts)
        h = clean.hidden_states.detach()
        scale = float(h.float().std())
        delta = torch.zeros_like(h, dtype=torch.float32)
        x0 = ctx.concept_latents()
        timesteps = bb.timesteps_for(
            int(ctx.generator.sampling.get("num_inference_steps") or bb.defaults.num_inference_steps)
        ).to(h.device)
        g = ctx.torch_generator(self.name, row)
        n = len(ctx.prompts)

        def cond(d: Tensor, rows: Tensor | slice) -> PromptEmbedding:
            return PromptEmbedding(
                (h[rows].float() + scale * d[rows]).to(h.dtype),
                None if clean.attention_mask is None else clean.attention_mask[rows],
                None if clean.pooled is None else clean.pooled[rows],
            )

        project = None if self.epsilon is None else (lambda d: d.clamp(-self.epsilon, self.epsilon))
        with ctx.generator.row_model(row) as rm:

            def loss(d: Tensor) -> Tensor:
                b = torch.randperm(n, generator=g)[: self.batch_size].to(h.device)
                return denoising_loss(rm, x0[b], cond(d, b), timesteps, g, prompts=[ctx.prompts[i] for i in b.tolist()])

            losses = optimise_embedding(delta, loss, self.steps, self.lr, method="adam", project=project)
        self._details = {
            "loss_curve": losses[:: max(1, len(losses) // 20)],
            "delta_rms_in_std": float(delta.pow(2).mean().sqrt()),
            "delta_max_in_std": float(delta.abs().max()),
        }
        return [Try(list(ctx.prompts), cond(delta.detach(), slice(None)))]
