"""Unified Concept Editing (Gandikota et al., WACV 2024, arXiv:2308.14761): a closed-form edit of the
projections that read the text, following the authors' code (``rohitgandikota/unified-concept-editing``,
``trainscripts/uce_sd_erase.py`` and ``trainscripts/uce_flux_edit.py``; line numbers below are of those files).

For each edited ``nn.Linear`` ``W`` (Eq. 7 of the paper, ``uce_sd_erase.py:55-82``)::

    W' = (λ W + e Σ_i v*_i c_iᵀ + p Σ_j v_j c_jᵀ) (λ I + e Σ_i c_i c_iᵀ + p Σ_j c_j c_jᵀ)⁻¹

``c_i``: the layer's input at the *last token* of erased concept i (``uce_sd_erase.py:34-42``: index
``attention_mask.sum() − 2``, the last token before the end token); ``v*_i``: the original layer's output at
the last token of its guide concept (default the empty prompt, ``uce_sd_erase.py:137-141``); ``c_j``/``v_j``:
input and original output of the preserved concepts (default none, ``:148-149``). λ = 0.5, e = p = 1
(``:105-107``).

Which layers: on cross-attention models (ZeroScope, Wan) the ``attn2.to_k``/``to_v`` projections, as on
Stable Diffusion (``uce_sd_erase.py:17-20``); on joint-attention models the denoiser's text input
projections, as the authors do on Flux (``uce_flux_edit.py:25-28``: ``context_embedder`` and the pooled
``text_embedder.linear_1``): CogVideoX ``patch_embed.text_proj``, HunyuanVideo's token-refiner input and
pooled-text projections. That is the shared ``layers="auto"`` preset (:func:`unlearn.methods.weight_edits.
resolve_layers`), which checks that every path of the prompt into the prediction passes an edited layer.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from unlearn.backbones import ConceptNotInPromptError
from unlearn.methods.weight_edits import (
    WeightEdit,
    collect_token_activations,
    get_linear,
    linear_digest,
    load_weight_edit,
    resolve_layers,
)

__all__ = [
    "EDIT_FILE",
    "UCEConfig",
    "apply_uce_edit",
    "expand_concepts",
    "last_token_index",
    "load_uce_edit",
    "uce_weight",
]

#: file name of the edit inside an output folder
EDIT_FILE = "uce_edit.safetensors"


@dataclasses.dataclass
class UCEConfig:
    """Options of the UCE edit (defaults: the authors' ``uce_sd_erase.py``).

    Args:
        layers: which ``nn.Linear`` layers to edit: a preset of :func:`unlearn.methods.weight_edits.resolve_layers`
            (default ``"auto"``: text-only key/value projections where they carry every text path, else the
            denoiser's text input projections) or module-name patterns.
        lamb: λ, the weight of the original weights (``uce_sd_erase.py:107``: 0.5).
        erase_scale: e, the weight of the erased concepts' terms (``:105``: 1).
        preserve_scale: p, the weight of the preserved concepts' terms (``:106``: 1).
        token: which text position is ``c``: ``"last"`` (the authors': the last token before the end token)
            or ``"mean"`` (the mean over the prompt's tokens; not the authors').
        expand_prompts: also edit the authors' five templated variants of every concept and guide
            (``uce_sd_erase.py:155-190``; default off, ``:109``).
        concept_type: ``"object"`` or ``"art"``: the template set of ``expand_prompts`` and the default guide
            (``"art"`` for art, else the empty prompt, ``:137-141``).
        probe_size / probe_timestep / batch_size: the probe forward that records the layers' inputs (text-only
            layers do not depend on the first two).
    """

    layers: str | list[str] = "auto"
    lamb: float = 0.5
    erase_scale: float = 1.0
    preserve_scale: float = 1.0
    token: Literal["last", "mean"] = "last"
    expand_prompts: bool = False
    concept_type: Literal["object", "art"] = "object"
    probe_size: tuple[int, int, int] | None = None
    probe_timestep: int | None = None
    batch_size: int = 4

    def __post_init__(self) -> None:
        if self.lamb < 0 or self.erase_scale < 0 or self.preserve_scale < 0:
            raise ValueError("lamb, erase_scale and preserve_scale must be >= 0")
        if self.token not in ("last", "mean"):
            raise ValueError(f"token must be 'last' or 'mean'; got {self.token!r}")
        if self.concept_type not in ("object", "art"):
            raise ValueError(f"concept_type must be 'object' or 'art'; got {self.concept_type!r}")
        if self.probe_size is not None:
            self.probe_size = tuple(int(x) for x in self.probe_size)  # type: ignore[assignment]

    def default_guide(self) -> str:
        return "art" if self.concept_type == "art" else ""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["probe_size"] = list(self.probe_size) if self.probe_size is not None else None
        return d


#: the authors' templates of ``expand_prompts`` (``uce_sd_erase.py:161-165`` art, ``:177-181`` object)
_TEMPLATES = {
    "art": ("painting by {}", "art by {}", "artwork by {}", "picture by {}", "style of {}"),
    "object": ("image of {}", "photo of {}", "portrait of {}", "picture of {}", "painting of {}"),
}


def expand_concepts(concepts: Sequence[str], guides: Sequence[str], concept_type: str) -> tuple[list[str], list[str]]:
    """The authors' prompt expansion (``uce_sd_erase.py:155-190``): each concept and its guide, then five
    templated variants of each pair."""
    out_c, out_g = list(concepts), list(guides)
    for c, g in zip(concepts, guides, strict=True):
        for t in _TEMPLATES[concept_type]:
            out_c.append(t.format(c))
            out_g.append(t.format(g))
    return out_c, out_g


def last_token_index(backbone: Any, prompt: str) -> int:
    """Position (in the encoded text sequence) of the prompt's last token before the end token: the authors'
    ``attention_mask.sum() − 2`` (``uce_sd_erase.py:34-39``). The empty prompt has no word token: position 0
    (on CLIP the start token, the authors' index for ``""``)."""
    if not prompt.strip():
        return 0
    try:
        return max(backbone.concept_token_indices(prompt, [prompt]))
    except ConceptNotInPromptError as e:
        raise ValueError(f"UCE: cannot locate the tokens of {prompt!r} in its own encoding ({e})") from None


def _positions(backbone: Any, prompts: Sequence[str], length: int, token: str) -> Tensor:
    """Weights ``[B, L]`` over text positions that make each prompt's ``c`` (one-hot, or a mean)."""
    w = torch.zeros(len(prompts), length, dtype=torch.float64)
    if length == 1:  # a pooled path: one vector per prompt
        w[:, 0] = 1.0
        return w
    for i, p in enumerate(prompts):
        if token == "last" or not p.strip():
            w[i, last_token_index(backbone, p)] = 1.0
        else:
            idx = backbone.concept_token_indices(p, [p])
            w[i, idx] = 1.0 / len(idx)
    return w


def uce_weight(
    weight: Tensor,
    c_erase: Tensor,
    v_erase: Tensor,
    c_keep: Tensor | None = None,
    v_keep: Tensor | None = None,
    lamb: float = 0.5,
    erase_scale: float = 1.0,
    preserve_scale: float = 1.0,
) -> Tensor:
    """The closed form (Eq. 7, ``uce_sd_erase.py:56-82``) in float64: ``weight`` ``[D_out, D_in]``; ``c_*``
    ``[N, D_in]`` inputs; ``v_*`` ``[N, D_out]`` targets of ``W' c`` (bias excluded)."""
    w = weight.detach().to(torch.float64)
    d_in = w.shape[1]
    mat1 = lamb * w
    mat2 = lamb * torch.eye(d_in, dtype=torch.float64, device=w.device)
    ce, ve = c_erase.to(w), v_erase.to(w)
    mat1 = mat1 + erase_scale * ve.T @ ce
    mat2 = mat2 + erase_scale * ce.T @ ce
    if c_keep is not None and c_keep.numel():
        ck, vk = c_keep.to(w), v_keep.to(w)
        mat1 = mat1 + preserve_scale * vk.T @ ck
        mat2 = mat2 + preserve_scale * ck.T @ ck
    # mat1 @ inverse(mat2), solved rather than inverted (mat2 is symmetric positive definite for lamb > 0)
    return torch.linalg.solve(mat2, mat1.T).T


def apply_uce_edit(
    backbone: Any,
    concepts: str | Sequence[str],
    guide_concepts: str | Sequence[str] | None = None,
    preserve_concepts: Sequence[str] | None = None,
    config: UCEConfig | None = None,
    *,
    keep_originals: bool = True,
    progress: bool = False,
    **overrides: Any,
) -> WeightEdit:
    """Erase ``concepts`` from ``backbone`` in place with UCE; returns the :class:`WeightEdit` (new weights).

    Args:
        concepts: the prompts of the concepts to erase (``--edit_concepts``).
        guide_concepts: what each concept is mapped to: one for all or one per concept (default: the empty
            prompt; ``"art"`` with ``concept_type="art"``).
        preserve_concepts: concepts whose outputs the edit keeps (default none).
        config: options; ``overrides`` replace single fields.
        keep_originals: keep CPU copies of the edited layers' original weights (``restore``, ``delta``).
    """
    config = dataclasses.replace(config or UCEConfig(), **overrides)
    if config.lamb <= 0 and not preserve_concepts:
        raise ValueError("UCE with lamb = 0 and no preserved concept is singular; give lamb > 0 (authors: 0.5)")
    t0 = time.perf_counter()
    erase = [concepts] if isinstance(concepts, str) else [str(c) for c in concepts]
    if not erase or any(not c.strip() for c in erase):
        raise ValueError(f"UCE needs non-empty concepts to erase; got {erase!r}")
    if guide_concepts is None:
        guides = [config.default_guide()]
    else:
        guides = [guide_concepts] if isinstance(guide_concepts, str) else [str(g) for g in guide_concepts]
    if len(guides) == 1:
        guides = guides * len(erase)  # uce_sd_erase.py:142-143
    if len(guides) != len(erase):
        raise ValueError(f"{len(guides)} guide concepts for {len(erase)} erased ones: give one, or one per concept")
    keep = [str(p) for p in preserve_concepts or []]
    if config.expand_prompts:
        erase, guides = expand_concepts(erase, guides, config.concept_type)
    layers = resolve_layers(backbone, config.layers, config)
    prompts = list(dict.fromkeys(erase + guides + keep))
    acts = collect_token_activations(backbone, prompts, layers, config, progress=progress, record="input", label="uce")
    index = {p: i for i, p in enumerate(prompts)}
    t1 = time.perf_counter()
    weights: dict[str, Tensor] = {}
    stats: dict[str, Any] = {}
    before: dict[str, str] = {}
    for n in layers:
        a = acts[n].to(torch.float64)  # [P, L, D_in]
        pos = _positions(backbone, prompts, a.shape[1], config.token)
        c = torch.einsum("pl,pld->pd", pos, a)  # one input vector per prompt
        mod = get_linear(n, backbone.denoiser, backbone.text_encoder)
        w = mod.weight.detach().to(device="cpu", dtype=torch.float64)
        # targets of W'c: the original layer's output without its bias (W c); the authors' layers have none on
        # SD, on Flux they leave it out of the solve as well, so W'c_i = W c_g makes the outputs equal with it
        v = c @ w.T
        ci = c[[index[p] for p in erase]]
        vi = v[[index[g] for g in guides]]
        ck = c[[index[p] for p in keep]] if keep else None
        vk = v[[index[p] for p in keep]] if keep else None
        new = uce_weight(w, ci, vi, ck, vk, config.lamb, config.erase_scale, config.preserve_scale)
        before[n] = linear_digest(mod)
        weights[n] = new.to(mod.weight.dtype)
        stats[n] = {
            "relative_change": float((new - w).norm() / w.norm().clamp_min(1e-30)),
            "erase_residual": float((ci @ new.T - vi).norm() / vi.norm().clamp_min(1e-30)),
        }
    t2 = time.perf_counter()
    edit = WeightEdit(
        weights=weights,
        method="uce",
        concepts=erase if not config.expand_prompts else list(dict.fromkeys(erase)),
        config={
            **config.to_dict(),
            "edit_concepts": erase,
            "guide_concepts": guides,
            "preserve_concepts": keep,
        },
        backbone=getattr(backbone, "registry_name", "") or backbone.name,
        source=str(getattr(backbone, "source", "")),
        stats=stats,
    )
    edit.apply_to(backbone, check=False, keep_originals=keep_originals)
    edit.record_digests(backbone, before)
    edit.timings = {"collect": t1 - t0, "solve": t2 - t1, "apply": time.perf_counter() - t2}
    edit.timings["total"] = time.perf_counter() - t0
    return edit


def load_uce_edit(path: str) -> WeightEdit:
    """A UCE edit file (or a folder holding ``uce_edit.safetensors``); ``.apply_to(model)`` re-does it."""
    p = Path(path)
    return load_weight_edit(p / EDIT_FILE if p.is_dir() else p, method="uce")
