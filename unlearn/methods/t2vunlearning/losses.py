"""The T2VUnlearning objective: ``L = L_unlearn + α·L_loc + β·L_pre`` (see docs/method.md)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch
from torch import Tensor


def negatively_guided_target(pred_uncond: Tensor, pred_cond: Tensor, eta: float) -> Tensor:
    """``v_neg = v(x_t, ∅, t) − η · (v(x_t, c, t) − v(x_t, ∅, t))``.

    The same formula serves v-, ε- and flow-prediction models: the scaling differences cancel.
    """
    if pred_uncond.shape != pred_cond.shape:
        raise ValueError(
            f"pred_uncond {tuple(pred_uncond.shape)} and pred_cond {tuple(pred_cond.shape)} differ in shape"
        )
    return pred_uncond - eta * (pred_cond - pred_uncond)


def unlearning_loss(pred_adapted: Tensor, target: Tensor) -> Tensor:
    """``‖v_neg − v_θ'(x_t, c, t)‖²`` averaged over elements."""
    return torch.mean((pred_adapted.float() - target.float()) ** 2)


def preservation_loss(pred_adapted: Tensor, pred_frozen: Tensor) -> Tensor:
    """``‖v_θ'(x_pre, c_pre, t) − v_θ(x_pre, c_pre, t)‖²`` averaged over elements."""
    return torch.mean((pred_adapted.float() - pred_frozen.float()) ** 2)


#: Receler's mask threshold (``train_receler.py:241``, ``--mask_thres`` default 0.1); the T2VUnlearning authors'
#: mask code (``receler/concept_reg_cogvideo.py:93``) takes it as an argument without a default, the paper states none
RECELER_MASK_THRESHOLD = 0.1


def concept_mask(
    concept_map: Tensor, threshold: float = RECELER_MASK_THRESHOLD, region: str = "frame"
) -> tuple[Tensor, Tensor]:
    """Normalised map and its thresholded mask.

    Args:
        concept_map: ``[B, F, S]`` attention mass of each video token on the concept tokens.
        threshold: tokens whose normalised value is at least this are inside the mask (Receler: ``>=``,
            ``concept_reg.py:33``).
        region: ``"frame"``: min-max within each frame (the T2VUnlearning authors' ``get_cross_attn_mask``,
            ``receler/concept_reg_cogvideo.py:82-85``, ``amin/amax(dim=(2, 3))`` over a frame's h×w);
            ``"video"``: over the whole video.

    Returns:
        ``(soft, mask)``, both ``[B, F, S]`` float: ``soft`` min-max normalised to [0, 1] within each frame (or
        video), ``mask`` = ``soft >= threshold``.
    """
    if concept_map.dim() != 3:
        raise ValueError(f"concept_map must be [B, F, S]; got {tuple(concept_map.shape)}")
    if region not in ("frame", "video"):
        raise ValueError(f"region must be 'frame' or 'video'; got {region!r}")
    dims = (-1,) if region == "frame" else (-2, -1)
    lo = concept_map.amin(dims, keepdim=True)
    hi = concept_map.amax(dims, keepdim=True)
    soft = (concept_map - lo) / (hi - lo).clamp_min(1e-12)
    return soft, (soft >= threshold).float()


def token_mean_squares(o: Tensor) -> Tensor:
    """``mean_c o[..., c]²`` per token in float32: ``[..., N]`` from adapter outputs ``[..., N, C]``.

    What L_loc needs of an adapter output (the switch records it per layer instead of ``o``). The norm
    kernel accumulates in float32 from ``o``'s own dtype with autocast off, so under ``bf16-mixed`` no float32
    copy of ``o`` is made or kept; its backward holds ``o`` itself, which gradient checkpointing recomputes like
    any activation of the layer.
    """
    off = (
        torch.autocast(device_type=o.device.type, enabled=False) if o.device.type in ("cuda", "cpu") else nullcontext()
    )
    with off:
        acc = torch.promote_types(o.dtype, torch.float32)  # float32 for bf16/fp16/fp32, float64 stays float64
        return torch.linalg.vector_norm(o, dim=-1, dtype=acc).square() / o.shape[-1]


def localization_loss(
    token_squares: Sequence[Tensor],
    masks: Sequence[Tensor],
    per_sample_elements: int | None = None,
    channels: int | Sequence[int] | None = None,
) -> Tensor:
    """``L_loc = (1/L) Σ_l ‖o^l ⊙ (1 − M^l)‖²``, the paper's Eq. (7), averaged over the videos of the batch.

    Args:
        token_squares: per layer ``[B, N]``: :func:`token_mean_squares` of the adapter outputs ``o^l``
            (``[B, N, C]``), i.e. ``‖o_n‖² / C`` per video token (what :class:`AdapterSwitch` records).
        masks: per layer ``[B, N]`` (or ``[B, F, S]`` with ``F·S = N``) concept masks, 1 inside the concept.
        per_sample_elements: the paper's squared norm, averaged over the batch, is divided by this number —
            pass the element count of one sample's prediction, the divisor that turns the paper's
            ``‖v_neg − v_θ'‖²`` into :func:`unlearning_loss`'s mean, so that α weighs ``L_loc`` against
            ``L_unlearn`` exactly as in the paper. ``None``: each video's squared norm is divided by its own
            number of masked-out entries instead (a per-entry mean; α then means something else).
        channels: the adapter output width ``C`` (one int, or one per layer); needed with
            ``per_sample_elements`` to turn the per-token means back into the squared norm.

    Since ``‖o ⊙ (1 − M)‖² = C·Σ_n (1 − M_n)²·(‖o_n‖²/C)`` and a video's masked-out entries number
    ``C·Σ_n (1 − M_n)``, the per-token squares are all L_loc needs, so no float32 copy of an adapter output is
    kept. A video whose mask covers every token contributes 0. Averaging per video (not over the pooled batch)
    makes the loss of a batch the mean of its videos' losses, like the other terms: N processes with batch B
    then train exactly as one process with batch N·B (DDP averages the gradients); with batch 1 (the paper's)
    it is the same as averaging over the pooled batch.
    """
    if len(token_squares) != len(masks) or not token_squares:
        raise ValueError(f"need one mask per adapter output; got {len(token_squares)} outputs and {len(masks)} masks")
    if per_sample_elements is not None:
        if per_sample_elements < 1:
            raise ValueError(f"per_sample_elements must be >= 1; got {per_sample_elements}")
        if channels is None:
            raise ValueError("localization_loss(per_sample_elements=...) needs the adapter output width: pass channels")
        widths = [channels] * len(token_squares) if isinstance(channels, int) else list(channels)
        if len(widths) != len(token_squares):
            raise ValueError(f"need one channel count per layer; got {len(widths)} for {len(token_squares)} layers")
    acc = torch.promote_types(token_squares[0].dtype, torch.float32)
    total = token_squares[0].new_zeros((), dtype=acc)
    for i, (sq, m) in enumerate(zip(token_squares, masks)):
        m = m.reshape(m.shape[0], -1)
        if sq.dim() != 2 or m.shape != sq.shape:
            raise ValueError(f"mask {tuple(m.shape)} does not match adapter output tokens {tuple(sq.shape)}")
        outside = 1.0 - m.to(sq.device, acc)
        weighted = (sq * outside.square()).sum(dim=1)  # ‖o ⊙ (1 − M)‖² / C per video
        if per_sample_elements is not None:
            per_video = weighted * widths[i] / per_sample_elements
        else:  # each video's masked-out entries (its tokens outside the mask × channels)
            per_video = weighted / outside.sum(dim=1).clamp_min(1.0)
        total = total + per_video.mean()
    return total / len(token_squares)
