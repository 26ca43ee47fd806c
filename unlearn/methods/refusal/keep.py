"""How several refusal directions are combined without removing what the kept prompts use (issue #28).

The plain edit (``combine="stack"``) stacks each concept's basis and orthonormalises the union: with three
toy concepts the span then holds axes every class uses (the sum of the three "red ring − neighbours"-style
differences is close to "the three erased colours − the fourth colour"), and PSR-1 of the kept classes fell
from 89 to 31 (docs/results/toy_robustness.md).

``combine="kept_whitened"`` asks, per layer, for the subspace that removes the most of each concept's mean
difference per unit of *kept* activation energy it removes. The edit ``W' = (I − UUᵀ)W`` takes
``‖Uᵀx‖²`` from a kept output ``x``; over the kept outputs that is ``tr(Uᵀ S U)`` with ``S`` their second
moment (uncentred: the common part every prompt shares is energy the edit would take from every prompt).
Maximising the captured concept difference ``(uᵀd)²`` against ``uᵀ(S + λI)u`` is a generalised Rayleigh
quotient whose optimum is ``u ∝ (S + λI)⁻¹ d`` (Fisher's discriminant with a ridge); for several directions
``D = [d₁ … d_k]`` the top-k generalised eigenvectors of ``(DDᵀ, S + λI)`` span ``(S + λI)⁻¹D``, so whitening
each concept's basis and stacking the results *is* the joint optimum, whatever the order of the concepts.
``λ = kept_ridge · tr(S)/D`` (the ridge relative to the mean eigenvalue of ``S``): ``kept_ridge → ∞`` gives
back the plain stacked edit, ``kept_ridge → 0`` the directions orthogonal to everything the kept prompts use.

The kept outputs are the token outputs (attended positions) of every concept's *safe* prompts: the twins
that differ from an unsafe prompt only by the concept (in the toy world the neighbour classes, "blue ring",
"red square", ...), i.e. what the edit must leave alone; with several concepts each concept's direction is
whitened against the safe prompts of all of them. Nothing beyond the pairs is needed.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: the combination rules of ``RefusalVectorConfig.combine``
COMBINE_MODES = ("stack", "kept_whitened")


def whiten_against_kept(basis: Tensor, kept: Tensor, ridge: float) -> Tensor:
    """``(S + λI)⁻¹ · basis`` (float64 ``[D, k]``, columns not normalised) with ``S = keptᵀkept / n`` the
    second moment of the kept outputs ``kept`` ``[n, D]`` and ``λ = ridge · tr(S) / D``.

    Solved in the smaller of the two spaces: directly (``D × D``) when ``n ≥ D``, else through Woodbury's
    identity ``(KᵀK/n + λI)⁻¹ = (I − Kᵀ(nλI + KKᵀ)⁻¹K) / λ`` (``n × n``), so a full-size layer (D in the
    thousands) with a few hundred kept tokens costs a small solve.
    """
    if basis.dim() != 2 or kept.dim() != 2 or basis.shape[0] != kept.shape[1]:
        raise ValueError(
            f"basis [D, k] and kept outputs [n, D] must share D; got {tuple(basis.shape)}, {tuple(kept.shape)}"
        )
    if not ridge > 0:
        raise ValueError(f"kept_ridge must be > 0 (the ridge keeps the solve well posed); got {ridge}")
    b = basis.to(torch.float64)
    k = kept.to(torch.float64)
    n, d = k.shape
    if n == 0 or b.shape[1] == 0:
        return b.clone()
    energy = float((k * k).sum()) / n  # tr(S)
    lam = float(ridge) * max(energy, 1e-30) / d
    if n >= d:
        s = k.T @ k / n
        return torch.linalg.solve(s + lam * torch.eye(d, dtype=torch.float64), b)
    small = k @ k.T + n * lam * torch.eye(n, dtype=torch.float64)
    return (b - k.T @ torch.linalg.solve(small, k @ b)) / lam


def kept_energy_share(basis: Tensor, kept: Tensor) -> float:
    """Share of the kept outputs' energy inside span(``basis``) (orthonormal ``[D, k]``): what the edit at
    strength 1 removes from them, ``‖Uᵀx‖² / ‖x‖²`` summed over the kept outputs."""
    if basis.shape[1] == 0 or kept.shape[0] == 0:
        return 0.0
    k = kept.to(torch.float64)
    return float((k @ basis.to(torch.float64)).pow(2).sum() / max(float((k * k).sum()), 1e-30))
