"""Gradient steps on an embedding: the small optimiser behind adversarial training and the embedding attacks.

:func:`optimise_embedding` minimises ``loss_fn(param)`` over one tensor with signed-gradient steps (PGD, the
inner maximisation of adversarial training, with a projection onto an L∞ ball) or Adam (textual inversion,
UnlearnDiffAtk's relaxed tokens, with their own projections). Only ``param`` gets gradients
(``torch.autograd.grad``), so the model it flows through keeps its ``.grad`` untouched.

:func:`worst_case_conditioning` is T2VUnlearning's attack step (AdvUnlearn-style): a perturbation of the text
conditioning, within ``epsilon`` times the conditioning's standard deviation per entry, that makes the adapted
model predict what the frozen model predicts for the concept, i.e. that undoes the erasure on this batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from unlearn.backbones import PromptEmbedding


def optimise_embedding(
    param: Tensor,
    loss_fn: Callable[[Tensor], Tensor],
    steps: int,
    step_size: float,
    method: Literal["sign", "adam"] = "adam",
    project: Callable[[Tensor], Tensor] | None = None,
    weight_decay: float = 0.0,
    after_step: Callable[[int], None] | None = None,
) -> list[float]:
    """Minimise ``loss_fn(param)`` in place over ``steps`` steps; returns the loss before each step.

    Args:
        param: the tensor to optimise (a leaf; its ``requires_grad`` is switched on for the loop).
        loss_fn: a scalar loss of ``param``.
        steps: gradient steps (0 leaves ``param`` as it is).
        step_size: the signed step (``sign``) or Adam's learning rate (``adam``).
        method: ``sign`` (``param -= step_size · sign(grad)``, PGD) or ``adam``.
        project: applied to ``param`` after every step (a ball, a simplex), in place of the stepped value.
        weight_decay: Adam's (L2) weight decay.
        after_step: called with the number of steps taken after each one (snapshots along the way).
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if method not in ("sign", "adam"):
        raise ValueError(f"method must be 'sign' or 'adam', got {method!r}")
    param.requires_grad_(True)
    opt = torch.optim.Adam([param], lr=step_size, weight_decay=weight_decay) if method == "adam" else None
    losses = []
    for i in range(steps):
        loss = loss_fn(param)
        grad = torch.autograd.grad(loss, [param])[0]
        losses.append(float(loss.detach()))
        with torch.no_grad():
            if opt is None:
                param -= step_size * grad.sign()
            else:
                param.grad = grad
                opt.step()
                param.grad = None
            if project is not None:
                param.copy_(project(param))
        if after_step is not None:
            after_step(i + 1)
    param.requires_grad_(False)
    return losses


def worst_case_conditioning(
    predict: Callable[[PromptEmbedding], Tensor],
    cond: PromptEmbedding,
    concept_prediction: Tensor,
    steps: int,
    epsilon: float,
    step_size: float | None = None,
    generator: torch.Generator | None = None,
) -> PromptEmbedding:
    """The conditioning within ``epsilon`` (L∞, in units of the conditioning's standard deviation) of ``cond``
    under which the adapted model comes closest to the frozen model's concept prediction.

    Args:
        predict: the adapted model's prediction for a conditioning (the batch's ``x_t`` and ``t`` fixed).
        cond: the batch's text conditioning.
        concept_prediction: the frozen model's conditional prediction (what the concept looks like here).
        steps: PGD steps (random start inside the ball, then signed steps).
        epsilon: radius per entry, relative to ``cond.hidden_states.std()``.
        step_size: per step, relative like ``epsilon`` (default ``2.5 · epsilon / steps``, Madry et al.).
        generator: for the random start.
    """
    h = cond.hidden_states.detach()
    radius = float(epsilon) * float(h.float().std())
    step = (2.5 * float(epsilon) / max(steps, 1) if step_size is None else float(step_size)) * float(h.float().std())
    start = (torch.rand(h.shape, generator=generator, device="cpu").to(h.device, h.dtype) * 2 - 1) * radius
    delta = start.clone()
    target = concept_prediction.detach().float()

    def loss(d: Tensor) -> Tensor:
        pred = predict(PromptEmbedding(h + d, cond.attention_mask, cond.pooled))
        return torch.mean((pred.float() - target) ** 2)

    optimise_embedding(delta, loss, steps, step, method="sign", project=lambda d: d.clamp(-radius, radius))
    return PromptEmbedding(h + delta.detach(), cond.attention_mask, cond.pooled)
