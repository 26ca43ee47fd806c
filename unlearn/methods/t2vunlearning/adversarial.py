"""Gradient steps on an embedding: the small optimiser behind adversarial training and the embedding attacks.

:func:`optimise_embedding` minimises ``loss_fn(param)`` over one tensor with signed-gradient steps (PGD, the
inner maximisation of adversarial training, with a projection onto an L∞ ball) or Adam (textual inversion,
UnlearnDiffAtk's relaxed tokens, with their own projections). Only ``param`` gets gradients
(``torch.autograd.grad``), so the model it flows through keeps its ``.grad`` untouched.

:func:`worst_case_conditioning` is T2VUnlearning's attack step (AdvUnlearn-style): a perturbation of the text
conditioning, within ``epsilon`` times the conditioning's standard deviation per entry, that makes the adapted
model predict what the frozen model predicts for the concept, i.e. that undoes the erasure on this batch.

:class:`ConditioningBank` and :func:`persistent_adversary_steps` are the persistent adversary
(``T2VUnlearning(adversary="persistent")``, after Receler): one unbounded perturbation of the text conditioning
per training prompt, kept across training steps with its own Adam moments, so that it accumulates
``steps × adversarial_steps`` updates over a run instead of starting from scratch in every batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn

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


#: the persistent adversary's Adam learning rate, in units of the conditioning's standard deviation: Receler's
#: ``torch.optim.Adam([advrs_prompt_embs[idx]], lr=0.1, weight_decay=0.1)`` (``train_receler.py:106``)
RECELER_ADVERSARY_LR = 0.1
#: its (L2, coupled: added to the gradient) weight decay (same line). Not this repository's default: Adam
#: normalises the gradient but not the decay, and the adversary's MSE over a whole video gives each conditioning
#: entry a gradient of ~1e-6, so a decay of 0.1 pins the bank at ~1e-3 std (toy run p_k5, research/notes/
#: 28_adversary.md: bank RMS 3e-4 to 2e-2 std, where the embedding attack ends at 0.87 std)
RECELER_ADVERSARY_WEIGHT_DECAY = 0.1
#: Adam's moment decays and epsilon: ``torch.optim.Adam``'s defaults, which Receler keeps (same line)
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


class ConditioningBank(nn.Module):
    """Persistent adversarial perturbations of the text conditioning, with their Adam state, as buffers.

    Entry ``i`` is an additive perturbation of every token state of training prompt ``i``'s conditioning
    (``[L, D]``), in units of ``scale`` (the standard deviation of the conditioning the bank first saw): the space
    of :class:`~unlearn.attacks.EmbeddingAttack`. Its Adam moments and step count are buffers too, so a Lightning
    checkpoint (``adversary.*`` in its ``state_dict``) carries the adversary across a resume exactly. The buffers
    start empty and grow on first use (:meth:`ensure`); ``T2VUnlearning.on_load_checkpoint`` sizes them from a
    checkpoint before Lightning loads it.
    """

    delta: Tensor
    exp_avg: Tensor
    exp_avg_sq: Tensor
    steps: Tensor
    scale: Tensor

    def __init__(self) -> None:
        super().__init__()
        for name in ("delta", "exp_avg", "exp_avg_sq"):
            self.register_buffer(name, torch.zeros(0, 0, 0))
        self.register_buffer("steps", torch.zeros(0, dtype=torch.long))
        self.register_buffer("scale", torch.zeros(()))

    @property
    def entries(self) -> int:
        return int(self.delta.shape[0])

    def resize(self, entries: int, shape: tuple[int, int], device: torch.device | str | None = None) -> None:
        """Make room for ``entries`` perturbations of shape ``shape``; existing entries are kept (zero rows are
        added: a new entry starts at the clean conditioning)."""
        device = self.delta.device if device is None else device
        old = self.entries
        if old and tuple(self.delta.shape[1:]) != tuple(shape):
            raise ValueError(
                f"the adversary's bank holds perturbations of shape {tuple(self.delta.shape[1:])}; this conditioning "
                f"is {tuple(shape)} (a different text encoder or max length)"
            )
        if entries <= old and old:
            return
        for name in ("delta", "exp_avg", "exp_avg_sq"):
            grown = torch.zeros(entries, *shape, device=device, dtype=torch.float32)
            if old:
                grown[:old] = getattr(self, name).to(device)
            setattr(self, name, grown)
        steps = torch.zeros(entries, dtype=torch.long, device=device)
        if old:
            steps[:old] = self.steps.to(device)
        self.steps = steps

    def ensure(self, rows: Tensor, hidden_states: Tensor, entries: int | None = None) -> None:
        """Size the bank for ``rows`` (and at least ``entries``) and fix ``scale`` from ``hidden_states`` on first
        use."""
        need = max(1 if rows.is_meta else int(rows.max()) + 1, int(entries or 0))  # meta: the FLOP projection
        self.resize(need, tuple(hidden_states.shape[1:]), hidden_states.device)
        if self.scale.is_meta or float(self.scale) <= 0:
            self.scale = hidden_states.detach().float().std().to(self.delta.device)

    def adam_step(self, rows: Tensor, grad: Tensor, lr: float, weight_decay: float) -> None:
        """One ``torch.optim.Adam`` step (L2 weight decay added to the gradient, bias correction by each entry's
        own step count) on the entries ``rows`` with gradients ``grad`` (``[B, L, D]``); rows that occur twice in
        a batch get their gradients summed and one step."""
        beta1, beta2 = ADAM_BETAS
        if rows.is_meta:  # the FLOP projection (benchmarks/fullsize_cost.py): one bank entry per video
            unique, inverse = rows, torch.arange(len(rows), device=rows.device)
        else:
            unique, inverse = torch.unique(rows, return_inverse=True)
        g = torch.zeros(len(unique), *grad.shape[1:], device=grad.device, dtype=torch.float32)
        g.index_add_(0, inverse, grad.float())
        with torch.no_grad():
            d = self.delta[unique]
            if weight_decay:
                g = g + weight_decay * d
            m = self.exp_avg[unique].mul_(beta1).add_(g, alpha=1 - beta1)
            v = self.exp_avg_sq[unique].mul_(beta2).addcmul_(g, g, value=1 - beta2)
            n = self.steps[unique] + 1
            shape = (-1,) + (1,) * (g.dim() - 1)
            c1 = (1 - beta1 ** n.double()).float().reshape(shape)
            c2 = (1 - beta2 ** n.double()).float().reshape(shape)
            d = d - lr * (m / c1) / ((v / c2).sqrt() + ADAM_EPS)
            self.delta[unique] = d
            self.exp_avg[unique] = m
            self.exp_avg_sq[unique] = v
            self.steps[unique] = n


def persistent_adversary_steps(
    predict: Callable[[PromptEmbedding], Tensor],
    cond: PromptEmbedding,
    concept_prediction: Tensor,
    bank: ConditioningBank,
    rows: Tensor,
    steps: int,
    lr: float,
    weight_decay: float,
) -> list[Tensor]:
    """``steps`` Adam steps of the bank entries ``rows`` towards the conditioning under which the adapted model
    predicts the frozen model's concept prediction (Receler's ``loss_adv``, ``train_receler.py:157``: the MSE
    between the erased model's prediction on the adversarial conditioning and the frozen one's on the concept).
    Only the bank gets gradients (``torch.autograd.grad``): the adapters' ``.grad`` stays untouched and each
    step's graph is freed before the next. Returns the objective before each step (detached scalars)."""
    bank.ensure(rows, cond.hidden_states)
    target = concept_prediction.detach().float()
    scale = bank.scale.to(cond.hidden_states.device)
    losses = []
    for _ in range(steps):
        with torch.enable_grad():
            d = bank.delta[rows].clone().requires_grad_(True)
            pred = predict(perturbed_conditioning(cond, scale * d))
            loss = torch.mean((pred.float() - target) ** 2)
            (grad,) = torch.autograd.grad(loss, [d])
        losses.append(loss.detach())
        bank.adam_step(rows, grad, lr, weight_decay)
    return losses


def perturbed_conditioning(cond: PromptEmbedding, perturbation: Tensor) -> PromptEmbedding:
    """``cond`` with ``perturbation`` added to its (detached) token states, in float32, cast back to their dtype."""
    h = cond.hidden_states.detach()
    return PromptEmbedding((h.float() + perturbation).to(h.dtype), cond.attention_mask, cond.pooled)


def bank_conditioning(cond: PromptEmbedding, bank: ConditioningBank, rows: Tensor) -> PromptEmbedding:
    """``cond`` with the bank's perturbations of ``rows`` added (no gradient to the bank)."""
    return perturbed_conditioning(cond, bank.scale.to(cond.hidden_states.device) * bank.delta[rows])
