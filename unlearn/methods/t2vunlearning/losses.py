"""The T2VUnlearning objective: ``L = L_unlearn + α·L_loc + β·L_pre`` (see docs/method.md)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def negatively_guided_target(pred_uncond: Tensor, pred_cond: Tensor, eta: float) -> Tensor:
    """``v_neg = v(x_t, ∅, t) − η · (v(x_t, c, t) − v(x_t, ∅, t))``.

    The same formula serves v-, ε- and flow-prediction models: the scaling differences cancel.
    """
    if pred_uncond.shape != pred_cond.shape:
        raise ValueError(f"pred_uncond {tuple(pred_uncond.shape)} and pred_cond {tuple(pred_cond.shape)} differ in shape")
    return pred_uncond - eta * (pred_cond - pred_uncond)


def unlearning_loss(pred_adapted: Tensor, target: Tensor) -> Tensor:
    """``‖v_neg − v_θ'(x_t, c, t)‖²`` averaged over elements."""
    return torch.mean((pred_adapted.float() - target.float()) ** 2)


def preservation_loss(pred_adapted: Tensor, pred_frozen: Tensor) -> Tensor:
    """``‖v_θ'(x_pre, c_pre, t) − v_θ(x_pre, c_pre, t)‖²`` averaged over elements."""
    return torch.mean((pred_adapted.float() - pred_frozen.float()) ** 2)


def concept_mask(concept_map: Tensor, threshold: float = 0.5) -> tuple[Tensor, Tensor]:
    """Per-frame normalised map and its thresholded mask.

    Args:
        concept_map: ``[B, F, S]`` attention mass of each video token on the concept tokens.
        threshold: tokens whose normalised value is at least this are inside the mask.

    Returns:
        ``(soft, mask)``, both ``[B, F, S]`` float: ``soft`` min-max normalised to [0, 1] within each frame,
        ``mask`` = ``soft >= threshold``.
    """
    if concept_map.dim() != 3:
        raise ValueError(f"concept_map must be [B, F, S]; got {tuple(concept_map.shape)}")
    lo = concept_map.amin(-1, keepdim=True)
    hi = concept_map.amax(-1, keepdim=True)
    soft = (concept_map - lo) / (hi - lo).clamp_min(1e-12)
    return soft, (soft >= threshold).float()


def localization_loss(adapter_outputs: Sequence[Tensor], masks: Sequence[Tensor]) -> Tensor:
    """``(1/L) Σ_l ‖o^l ⊙ (1 − M^l)‖²``, each layer and each video normalised by its number of masked-out
    entries, then averaged over the batch.

    Args:
        adapter_outputs: per layer ``[B, N, C]`` adapter outputs on the video tokens.
        masks: per layer ``[B, N]`` (or ``[B, F, S]`` with ``F·S = N``) concept masks, 1 inside the concept.

    A video whose mask covers every token contributes 0. Averaging per video (not over the pooled batch) makes
    the loss of a batch the mean of its videos' losses, like the other terms: N processes with batch B then
    train exactly as one process with batch N·B (DDP averages the gradients), and with batch 1 (the paper's)
    both normalisations are the same.
    """
    if len(adapter_outputs) != len(masks) or not adapter_outputs:
        raise ValueError(f"need one mask per adapter output; got {len(adapter_outputs)} outputs and {len(masks)} masks")
    total = adapter_outputs[0].new_zeros((), dtype=torch.float32)
    for o, m in zip(adapter_outputs, masks):
        m = m.reshape(m.shape[0], -1)
        if m.shape != o.shape[:2]:
            raise ValueError(f"mask {tuple(m.shape)} does not match adapter output tokens {tuple(o.shape[:2])}")
        outside = (1.0 - m.to(o.device, torch.float32))[..., None]
        count = outside.sum(dim=(1, 2)) * o.shape[-1]
        per_video = ((o.float() * outside) ** 2).sum(dim=(1, 2)) / count.clamp_min(1.0)
        total = total + per_video.mean()
    return total / len(adapter_outputs)
