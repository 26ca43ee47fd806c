"""UnlearnDiffAtk (Zhang et al., ECCV 2024): adversarial prompt tokens that make the *erased* model denoise the
original model's video of the prompt again.

For each target prompt, ``num_tokens`` adversarial tokens are put in front of it. Each is a distribution over
the vocabulary (the concept's words left out), kept on the probability simplex. A step draws one token per
position from the distributions (straight-through: the gradient reaches the distributions as if they were the
one-hot draw, clipped to [-1, 1] as the authors do), embeds the prompt, and takes the erased row's denoising
loss on the original model's final latent of that prompt, noised to a random sampler step; Adam updates the
distributions and they are projected back onto the simplex. The attacked prompt is the most likely token of
each position, decoded, in front of the target prompt. ``checkpoints`` snapshots along the way are each
generated, and a target counts as recovered when one of them shows the concept (the authors stop each prompt's
attack at its first success, which is the same count).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from unlearn.methods.t2vunlearning import optimise_embedding

from .base import Attack, AttackContext, Try, denoising_loss


def project_simplex(z: Tensor) -> Tensor:
    """Euclidean projection of each row of ``z`` (last dimension) onto the probability simplex."""
    u, _ = torch.sort(z, dim=-1, descending=True)
    css = u.cumsum(-1) - 1
    k = torch.arange(1, z.shape[-1] + 1, device=z.device, dtype=z.dtype)
    rho = ((u - css / k) > 0).to(z.dtype).mul(k).argmax(-1, keepdim=True)
    theta = css.gather(-1, rho) / (rho + 1).to(z.dtype)
    return (z - theta).clamp_min(0)


class _StraightThroughDraw(torch.autograd.Function):
    """One-hot draw from each row's distribution; the gradient passes to the distribution, clipped."""

    @staticmethod
    def forward(ctx: Any, probs: Tensor, generator: torch.Generator) -> Tensor:
        flat = probs.detach().reshape(-1, probs.shape[-1]).float().clamp_min(0).cpu()
        idx = torch.multinomial(flat + 1e-12, 1, generator=generator).reshape(probs.shape[:-1])
        return torch.nn.functional.one_hot(idx, probs.shape[-1]).to(probs.device, probs.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return torch.nn.functional.hardtanh(grad), None


class UnlearnDiffAtk(Attack):
    """UnlearnDiffAtk's prefix-token attack (budget: ``steps`` denoiser forward+backward passes per target,
    ``checkpoints`` videos per target).

    Args:
        num_tokens: adversarial tokens in front of the prompt (the authors: 3 for objects, 5 for nudity).
        steps: optimisation steps (each: one random sampler step, batch = every target).
        lr: Adam's learning rate on the token distributions (the authors: 0.01).
        weight_decay: Adam's weight decay (the authors: 0.1).
        checkpoints: snapshots generated and judged (evenly spaced; the last is the final tokens).
    """

    name = "unlearndiffatk"
    white_box = True

    def __init__(
        self, num_tokens: int = 5, steps: int = 40, lr: float = 0.01, weight_decay: float = 0.1, checkpoints: int = 1
    ) -> None:
        if num_tokens < 1 or steps < 1 or not 1 <= checkpoints <= steps:
            raise ValueError(
                f"unlearndiffatk needs num_tokens >= 1, steps >= 1 and 1 <= checkpoints <= steps; got "
                f"{num_tokens}, {steps}, {checkpoints}"
            )
        self.num_tokens, self.steps, self.lr, self.weight_decay, self.checkpoints = (
            num_tokens,
            steps,
            float(lr),
            float(weight_decay),
            checkpoints,
        )
        self._details: dict[str, Any] = {}

    def run(self, ctx: AttackContext, row: str) -> list[Try]:
        bb = ctx.backbone
        x0 = ctx.concept_latents()
        ids, mask = bb.text_input_ids(ctx.prompts)
        table = bb.text_input_embeddings()
        device = table.weight.device
        ids = ids.to(device)
        mask = mask.to(device) if mask is not None else None
        base = table(ids).detach()
        allowed = ctx.allowed_token_ids().to(device)
        vocab = table.weight[allowed].detach()  # [V', D]
        n, length = ids.shape
        k = self.num_tokens
        if k >= length:
            raise ValueError(f"unlearndiffatk: {k} adversarial tokens do not fit the text length {length}")
        # after a leading start token (CLIP's), else at the very front
        start = (
            1 if bb.tokenizer.bos_token_id is not None and bool((ids[:, 0] == bb.tokenizer.bos_token_id).all()) else 0
        )
        timesteps = bb.timesteps_for(
            int(ctx.generator.sampling.get("num_inference_steps") or bb.defaults.num_inference_steps)
        ).to(device)
        g = ctx.torch_generator(self.name, row)
        z = torch.full((n, k, len(allowed)), 1.0 / len(allowed), device=device)

        def embed(onehot: Tensor) -> tuple[Tensor, Tensor | None]:
            adv = onehot @ vocab.to(onehot.dtype)
            emb = torch.cat([base[:, :start], adv.to(base.dtype), base[:, start : length - k]], 1)
            if mask is None:
                return emb, None
            return emb, torch.cat([mask[:, :start], torch.ones_like(mask[:, :k]), mask[:, start : length - k]], 1)

        tries: list[Try] = []
        cuts = {round(self.steps * (j + 1) / self.checkpoints) for j in range(self.checkpoints)}

        def snapshot(done: int) -> None:
            if done in cuts:
                tokens = allowed[z.argmax(-1)]
                prefixes = [bb.tokenizer.decode(t.tolist(), skip_special_tokens=True).strip() for t in tokens]
                tries.append(Try([f"{pre} {p}".strip() for pre, p in zip(prefixes, ctx.prompts)]))

        with ctx.generator.row_model(row) as rm:

            def loss(zz: Tensor) -> Tensor:
                emb, m = embed(_StraightThroughDraw.apply(zz, g))
                return denoising_loss(rm, x0, bb.encode_input_embeddings(emb, m), timesteps, g)

            losses = optimise_embedding(
                z,
                loss,
                self.steps,
                self.lr,
                method="adam",
                project=project_simplex,
                weight_decay=self.weight_decay,
                after_step=snapshot,
            )
        self._details = {
            "prompts": [t.prompts for t in tries],
            "loss_first": losses[0],
            "loss_last": losses[-1],
            "loss_curve": losses[:: max(1, len(losses) // 20)],
        }
        return tries
