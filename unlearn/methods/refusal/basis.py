"""The refusal subspace of one layer: the normalised mean difference (unsafe − safe), contrastive PCA
directions, Gram-Schmidt, and the closed-form projection ``W' = (I − s·UUᵀ)W`` (Facchiano et al.)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor

__all__ = ["combine_bases", "contrastive_directions", "orthonormalize", "project_out", "refusal_basis"]

BasisMode = Literal["mean_cpca", "cpca"]


def orthonormalize(columns: Tensor, tol: float = 1e-6, max_rank: int | None = None) -> Tensor:
    """Gram-Schmidt (twice, float64) over the columns of ``[D, n]`` in order, dropping a column whose
    residual is below ``tol`` × its norm. The first kept column is the normalised first column, so order
    matters. Returns float64 ``[D, k]`` with ``UᵀU = I``."""
    cols = columns.to(torch.float64)
    kept: list[Tensor] = []
    for j in range(cols.shape[1]):
        v = cols[:, j].clone()
        norm0 = v.norm()
        if norm0 == 0 or not torch.isfinite(norm0):
            continue
        for _ in range(2):
            for u in kept:
                v = v - (u @ v) * u
        if v.norm() <= tol * norm0:
            continue
        kept.append(v / v.norm())
        if max_rank is not None and len(kept) >= max_rank:
            break
    if not kept:
        return cols.new_zeros(cols.shape[0], 0)
    return torch.stack(kept, 1)


def _sym_eig(a: Tensor, b: Tensor, ca: float, cb: float) -> tuple[Tensor, Tensor]:
    """Eigen-decomposition of ``ca·aᵀa + cb·bᵀb`` (``a``: ``[n, D]``, ``b``: ``[m, D]``), largest first,
    through the row space when ``n + m < D``."""
    stacked = torch.cat([a, b])
    coeff = torch.cat([torch.full((a.shape[0],), ca, dtype=a.dtype), torch.full((b.shape[0],), cb, dtype=a.dtype)])
    d = stacked.shape[1]
    if stacked.shape[0] >= d:
        mat = stacked.T @ (coeff[:, None] * stacked)
        evals, evecs = torch.linalg.eigh((mat + mat.T) / 2)
    else:
        q, r = torch.linalg.qr(stacked.T)  # [D, r], [r, r]: stacked = rᵀ qᵀ
        small = r @ (coeff[:, None] * r.T)
        evals, small_vecs = torch.linalg.eigh((small + small.T) / 2)
        evecs = q @ small_vecs
    order = torch.argsort(evals, descending=True)
    return evals[order], evecs[:, order]


def contrastive_directions(
    unsafe: Tensor, safe: Tensor, cpca_weight: float = 1.0, center: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Eigenvalues (descending) and eigenvectors (columns) of ``M(unsafe) − w·Cov(safe)``.

    ``M(unsafe)`` is the unsafe covariance (``center=None``) or the unsafe second moment about ``center``.
    Directions with a positive eigenvalue vary more among unsafe samples than among safe ones.
    """
    u = unsafe.to(torch.float64)
    s = safe.to(torch.float64)
    cu = u - (u.mean(0) if center is None else center.to(torch.float64))
    cs = s - s.mean(0)
    return _sym_eig(cu, cs, 1.0 / u.shape[0], -float(cpca_weight) / s.shape[0])


def refusal_basis(
    unsafe_acts: Tensor,
    safe_acts: Tensor,
    rank: int = 2,
    cpca_weight: float = 1.0,
    mode: BasisMode = "mean_cpca",
    tol: float = 1e-6,
    return_info: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Any]]:
    """Orthonormal basis ``[D, k]`` (float64, ``k <= rank``) of the concept subspace of one layer.

    ``"mean_cpca"``: column 0 is the normalised refusal vector ``mean(unsafe) − mean(safe)``; the next
    columns are the top eigenvectors (positive eigenvalue only) of ``Cov(unsafe) − w·Cov(safe)``,
    orthogonalised against the previous ones. ``"cpca"``: the top eigenvectors of
    ``E_unsafe[(x − μ_safe)(x − μ_safe)ᵀ] − w·Cov(safe)`` (= ``Cov(unsafe) + ddᵀ − w·Cov(safe)``), each
    oriented along ``d``. Directions with non-positive eigenvalue never enter (fewer than ``rank`` columns
    can come back).
    """
    if unsafe_acts.dim() != 2 or safe_acts.dim() != 2 or unsafe_acts.shape[1] != safe_acts.shape[1]:
        raise ValueError(
            f"activations must be [N, D] with equal D; got {tuple(unsafe_acts.shape)} and {tuple(safe_acts.shape)}"
        )
    u = unsafe_acts.to(torch.float64)
    s = safe_acts.to(torch.float64)
    diff = u.mean(0) - s.mean(0)
    scale = max(float(u.abs().max()), float(s.abs().max()), 1e-30)
    info: dict[str, Any] = {"mean_diff_norm": float(diff.norm())}
    if mode == "mean_cpca":
        cols = [diff[:, None]] if diff.norm() > tol * scale else []
        if rank > 1 or not cols:
            evals, evecs = contrastive_directions(u, s, cpca_weight)
            top = float(evals.abs().max()) if evals.numel() else 0.0
            pos = evals > tol * max(top, 1e-30)
            cols.append(evecs[:, pos])
            info["cpca_eigenvalues"] = [float(e) for e in evals[:rank]]
        basis = orthonormalize(torch.cat(cols, 1), tol, max_rank=rank)
    elif mode == "cpca":
        evals, evecs = contrastive_directions(u, s, cpca_weight, center=s.mean(0))
        top = float(evals.abs().max()) if evals.numel() else 0.0
        keep = evecs[:, evals > tol * max(top, 1e-30)][:, :rank]
        signs = torch.where(keep.T @ diff < 0, -1.0, 1.0).to(keep.dtype)
        basis = orthonormalize(keep * signs, tol, max_rank=rank)
        info["cpca_eigenvalues"] = [float(e) for e in evals[:rank]]
    else:
        raise ValueError(f"unknown basis mode {mode!r}")
    info["rank"] = basis.shape[1]
    if basis.shape[1]:
        info["mean_diff_captured"] = float((basis.T @ diff).norm() / max(float(diff.norm()), 1e-30))
    return (basis, info) if return_info else basis


def combine_bases(bases: Sequence[Tensor], tol: float = 1e-6) -> Tensor:
    """One orthonormal basis of the span of several (stacked in order, orthonormalised)."""
    bases = [b for b in bases if b.numel()]
    if not bases:
        raise ValueError("combine_bases got no non-empty basis")
    return orthonormalize(torch.cat([b.to(torch.float64) for b in bases], 1), tol)


def project_out(
    weight: Tensor, bias: Tensor | None, basis: Tensor, strength: float = 1.0
) -> tuple[Tensor, Tensor | None]:
    """The closed-form edit of a Linear layer ``y = Wx + b`` (``weight`` ``[D_out, D_in]``, ``basis``
    ``[D_out, k]`` orthonormal): ``W' = (I − s·UUᵀ)W``, ``b' = (I − s·UUᵀ)b``, computed in float64 and
    returned in the weight's dtype. Deterministic: the same inputs give the same bits."""
    if basis.dim() != 2 or basis.shape[0] != weight.shape[0]:
        raise ValueError(f"basis {tuple(basis.shape)} does not match the layer's output width {weight.shape[0]}")
    u = basis.to(device=weight.device, dtype=torch.float64)
    w = weight.detach().to(torch.float64)
    new_w = (w - float(strength) * (u @ (u.T @ w))).to(weight.dtype)
    new_b = None
    if bias is not None:
        b = bias.detach().to(torch.float64)
        new_b = (b - float(strength) * (u @ (u.T @ b))).to(bias.dtype)
    return new_w, new_b
