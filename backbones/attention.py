"""What every family's attention processor shares: its two hooks' state, and the text→video attention
probabilities of concept tokens without the token-by-token matrix.

The concept mask needs, for every video query ``q``, the softmax probability mass on the concept keys,
where the softmax runs over *all* keys (text and video). The public code materialises the full
``[heads, N, N]`` softmax (about 19 GB per CogVideoX-2B layer at 49 frames, 480×720, bf16). Here queries are
processed in chunks: for a chunk only ``[heads, chunk, N_keys]`` logits exist at once, from which the
per-row log-sum-exp and the concept mass follow exactly.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

class HookedAttnProcessor:
    """Base of the family processors: a diffusers processor's ``__call__``, copied, plus two hooks that consult
    ``controller`` (the concept map and the adapter of site ``site_index``; ``backbones/README.md``).

    Args:
        controller: the object holding the adapters (``adapt``, ``wants_concept_map``, ``record_concept_map``,
            ``concept_key_mask``, ``concept_tokens``, ``context``), e.g.
            :class:`unlearn.methods.t2vunlearning.AdapterController`; ``None`` runs the stock computation.
        site_index: which attention site this processor serves (adapter ``site_index``).
    """

    def __init__(self, controller: Any, site_index: int) -> None:
        self.controller = controller
        self.site_index = site_index


#: default bound on the elements of one logits chunk (fp32: 2**26 elements = 256 MiB)
DEFAULT_CHUNK_ELEMENTS = 2**26


def concept_attention_probs(
    query: Tensor,
    key: Tensor,
    concept_keys: Tensor,
    scale: float | None = None,
    chunk_size: int | None = None,
    key_padding_mask: Tensor | None = None,
) -> Tensor:
    """Head-averaged softmax mass of each query on the concept keys.

    Args:
        query: ``[B, H, Nq, D]`` queries (after the layer's norm and rotary embedding).
        key: ``[B, H, Nk, D]`` all keys the layer attends to (after norm and rotary embedding).
        concept_keys: bool ``[B, Nk]``, True at the concept's text tokens.
        scale: logit scale, default ``1/sqrt(D)`` as in scaled_dot_product_attention.
        chunk_size: queries per chunk; default keeps one chunk's logits under ``DEFAULT_CHUNK_ELEMENTS``.
        key_padding_mask: optional bool ``[B, Nk]``, False at keys the layer masks out.

    Returns:
        ``[B, Nq]``: ``mean_h Σ_{c ∈ concept} softmax_k(q·k·scale)[c]`` in float32.
    """
    if query.dim() != 4 or key.dim() != 4:
        raise ValueError(f"query and key must be [B, H, N, D]; got {tuple(query.shape)} and {tuple(key.shape)}")
    b, h, nq, d = query.shape
    nk = key.shape[2]
    if concept_keys.shape != (b, nk):
        raise ValueError(f"concept_keys must be [B, Nk] = {(b, nk)}; got {tuple(concept_keys.shape)}")
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    if chunk_size is None:
        chunk_size = max(1, DEFAULT_CHUNK_ELEMENTS // max(1, b * h * nk))
    keys_t = key.float().transpose(-1, -2)
    concept = concept_keys[:, None, None, :].to(query.device)
    neg_inf = torch.finfo(torch.float32).min
    pad = None if key_padding_mask is None else ~key_padding_mask[:, None, None, :].to(query.device)
    out = []
    for start in range(0, nq, chunk_size):
        logits = torch.matmul(query[:, :, start : start + chunk_size].float(), keys_t).mul_(scale)
        if pad is not None:
            logits.masked_fill_(pad, neg_inf)
        lse = torch.logsumexp(logits, dim=-1, keepdim=True)
        # exp(logit - lse) only where the key is a concept token; the rest is zeroed before summing
        probs = logits.sub_(lse).exp_().masked_fill_(~concept, 0.0)
        out.append(probs.sum(-1).mean(1))
        del logits, probs, lse
    return torch.cat(out, dim=1)


def dense_concept_attention_probs(query: Tensor, key: Tensor, concept_keys: Tensor, scale: float | None = None) -> Tensor:
    """Reference implementation that materialises the full softmax (tests and benchmarks only)."""
    d = query.shape[-1]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    attn = torch.softmax(query.float() @ key.float().transpose(-1, -2) * scale, dim=-1)
    return (attn * concept_keys[:, None, None, :].float()).sum(-1).mean(1)
