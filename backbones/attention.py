"""What every family's attention processor shares: its two hooks' state, and the text→video attention
probabilities of concept tokens without the token-by-token matrix.

The concept mask needs, for every video query ``q``, the softmax probability mass on the concept keys, where
the softmax runs over *all* keys (text and video):  ``P[q, c] = exp(q·k_c·scale − lse[q])`` with ``lse[q]``
the log-sum-exp of the query's row. Two routes, one result:

- :func:`attention_with_concept_map` (what the processors' hooks use, through
  :func:`attention_recording_concept_map`): the layer's own fused attention kernel — the
  one ``scaled_dot_product_attention`` would pick (CPU flash, CUDA flash / memory-efficient / cuDNN) — returns
  the per-row log-sum-exp together with the output, so the map costs only the logits of the few concept-token
  columns (``[B, H, N_video, N_concept]``), not a second attention pass.
- :func:`concept_attention_probs` (the fallback where no fused kernel serves the inputs, and the benchmark
  reference): queries in chunks, each chunk's ``[heads, chunk, N_keys]`` logits and log-sum-exp computed exactly.

Both run in float32 with autocast switched off (under ``bf16-mixed`` autocast would otherwise turn the map's
matmul into bf16 and flip mask tokens near the threshold).

The fused route rests on each kernel's log-sum-exp convention (flash, memory-efficient and cuDNN return it in
different layouts, and a kernel or PyTorch release may change them), so it is guarded at run time:
:func:`checking_concept_map` compares the fused map of the next attention call(s) with the chunked recompute of
the same inputs and :meth:`ConceptMapCheck.verify` stops the run on a mismatch (:class:`ConceptMapKernelError`).
:func:`concept_map_route` ``("chunked")`` is the fallback: every map from the chunked route (exact, slower).
Whoever computes concept maps can wrap the forward in both; T2VUnlearning checks its first training step and
sets the route from ``model.concept_map_kernel``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import unlearn.compat as compat


class HookedAttnProcessor:
    """Base of the family processors: a diffusers processor's ``__call__``, copied, plus two hooks that consult
    ``switch`` (the concept map and the adapter of site ``site_index``; ``backbones/README.md``).

    Args:
        switch: the object holding the adapters (``adapt``, ``wants_concept_map``, ``record_concept_map``,
            ``concept_key_mask``, ``concept_tokens``, ``context``), e.g.
            :class:`unlearn.methods.t2vunlearning.AdapterSwitch`; ``None`` runs the stock computation.
        site_index: which attention site this processor serves (adapter ``site_index``).
    """

    def __init__(self, switch: Any, site_index: int) -> None:
        self.switch = switch
        self.site_index = site_index


#: default bound on the elements of one logits chunk (fp32: 2**26 elements = 256 MiB)
DEFAULT_CHUNK_ELEMENTS = 2**26

#: ``torch._fused_sdp_choice`` codes (``torch.nn.attention.SDPBackend``; called through ``unlearn.compat``)
_FLASH, _EFFICIENT, _CUDNN = 1, 2, 3
#: what each code is called in check results and benchmark rows (None: no fused kernel, the chunked route)
KERNEL_NAMES = {_FLASH: "flash", _EFFICIENT: "efficient", _CUDNN: "cudnn", None: "chunked"}
#: the two routes of the concept map (``model.concept_map_kernel``)
CONCEPT_MAP_ROUTES = ("fused", "chunked")
#: largest |fused − chunked| the run-time check accepts, on the map itself (a probability mass in [0, 1]). Both
#: routes take fp32 logits of the same (bf16) q and k; they differ by the kernel's accumulation order (measured on
#: the CPU kernel: < 1e-6). A wrong log-sum-exp convention (log2 vs natural log, a padded row, another layout)
#: is off by O(0.1..1); mask thresholds are 0.5 of the normalised map.
MAP_CHECK_ATOL = 1e-3

_ROUTE: ContextVar[str] = ContextVar("concept_map_route", default="fused")


class ConceptMapKernelError(RuntimeError):
    """The fused kernel's concept map differs from the chunked recompute of the same attention call."""


@contextlib.contextmanager
def concept_map_route(route: str) -> Iterator[None]:
    """Within the block every concept map comes from ``route``: ``"fused"`` (the layer's fused kernel's
    log-sum-exp, the default) or ``"chunked"`` (:func:`concept_attention_probs`; exact, a second pass over the
    keys). The layer's attention output is the same either way."""
    if route not in CONCEPT_MAP_ROUTES:
        raise ValueError(f"concept map route must be one of {CONCEPT_MAP_ROUTES}; got {route!r}")
    token = _ROUTE.set(route)
    try:
        yield
    finally:
        _ROUTE.reset(token)


@dataclass
class ConceptMapCheck:
    """What :func:`checking_concept_map` found: one entry per compared attention call (``kernel``, ``max_abs``
    = max |fused − chunked| over the call's map, ``rows`` compared, ``device``, ``dtype``)."""

    layers: int = 1
    atol: float = MAP_CHECK_ATOL
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        return len(self.results) < self.layers

    @property
    def max_abs(self) -> float | None:
        return max((r["max_abs"] for r in self.results), default=None)

    def compare(self, fused: Tensor, reference: Tensor, kernel: int | None, query: Tensor) -> None:
        diff = (fused.float() - reference.float().to(fused.device)).abs()
        self.results.append(
            {
                "kernel": KERNEL_NAMES.get(kernel, str(kernel)),
                "max_abs": float(diff.max()) if diff.numel() else 0.0,
                "rows": int(reference.shape[-1]),
                "device": str(query.device),
                "dtype": str(query.dtype).replace("torch.", ""),
            }
        )

    def verify(self, what: str = "the concept map", fix: str = "set model.concept_map_kernel: chunked") -> None:
        """Raise :class:`ConceptMapKernelError` naming the kernel, the difference and ``fix`` on a mismatch."""
        for r in self.results:
            if not r["max_abs"] <= self.atol:  # NaN fails too
                raise ConceptMapKernelError(
                    f"{what} from the fused attention kernel ({r['kernel']}, {r['device']}, {r['dtype']}) differs "
                    f"from the chunked recompute of the same attention call by {r['max_abs']:.3g} (tolerance "
                    f"{self.atol:g}): the concept masks would be wrong. Fix: {fix} (the exact chunked route, "
                    f"slower), and report the kernel and torch {torch.__version__}"
                )


_CHECK: ContextVar[ConceptMapCheck | None] = ContextVar("concept_map_check", default=None)


@contextlib.contextmanager
def checking_concept_map(layers: int = 1, atol: float = MAP_CHECK_ATOL) -> Iterator[ConceptMapCheck]:
    """Compare the fused-kernel map of the next ``layers`` attention calls that take it with the chunked
    recompute of the same inputs (one extra chunked pass per compared call); inspect or :meth:`~ConceptMapCheck.
    verify` the yielded :class:`ConceptMapCheck` after the forward. Calls on the chunked route are not compared."""
    check = ConceptMapCheck(layers=layers, atol=atol)
    token = _CHECK.set(check)
    try:
        yield check
    finally:
        _CHECK.reset(token)


def _autocast_off(device: torch.device) -> contextlib.AbstractContextManager:
    if device.type in ("cuda", "cpu"):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


def _sdpa_dtype(*tensors: Tensor) -> list[Tensor]:
    """The dtype scaled_dot_product_attention would run in: autocast's, when autocast is on for the device."""
    device = tensors[0].device
    if device.type in ("cuda", "cpu") and torch.is_autocast_enabled(device.type):
        dtype = torch.get_autocast_dtype(device.type)
        return [t.to(dtype) if t.is_floating_point() else t for t in tensors]
    return list(tensors)


def _as_4d(mask: Tensor | None, b: int, nk: int) -> Tensor | None:
    # [B, Nk] key masks (diffusers' dispatcher accepts them) → [B, 1, 1, Nk]
    if mask is not None and mask.dim() == 2 and mask.shape == (b, nk):
        return mask[:, None, None, :]
    return mask


def _additive(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """A bool mask (True = attend) as the additive float mask the fused kernels take."""
    if mask.dtype != torch.bool:
        return mask.to(dtype)
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, float("-inf"))


def _fused_kernel(query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None) -> int | None:
    """Which LSE-returning kernel computes this attention exactly as ``scaled_dot_product_attention`` would."""
    device = query.device.type
    if device == "meta":
        # no kernel runs on meta (the full-size cost benchmark): take the choice a CUDA device makes
        head_dim = query.shape[-1]
        if mask is None and query.dtype in (torch.float16, torch.bfloat16) and head_dim % 8 == 0 and head_dim <= 256:
            return _FLASH
        return _EFFICIENT
    if device not in ("cpu", "cuda") or (device == "cuda" and query.shape[-1] % 8):
        return None  # (scaled_dot_product_attention pads such head dims for the CUDA kernels; the fallback serves)
    choice = compat.fused_sdp_choice(query, key, value, mask)
    if device == "cpu":
        return _FLASH if choice == _FLASH else None
    return choice if choice in (_FLASH, _EFFICIENT, _CUDNN) else None


def _fused_attention(
    query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None, scale: float | None, kernel: int
) -> tuple[Tensor, Tensor]:
    """``(output, lse [B, H, Nq])`` from the kernel ``kernel`` (gradients flow through the output)."""
    b, h, nq, _ = query.shape
    nk = key.shape[2]
    if query.device.type == "cpu":
        fmask = None if mask is None else _additive(mask, query.dtype)
        return compat.flash_attention_cpu(query, key, value, fmask, scale)
    if kernel == _FLASH:
        out, lse = compat.flash_attention(query, key, value, scale)[:2]
        return out, lse
    bias = None
    if mask is not None:
        # as scaled_dot_product_attention prepares it: additive, the key axis padded to 16 elements for alignment
        bias = _additive(mask, query.dtype)
        pad = (-nk) % 16
        if pad:
            bias = F.pad(bias, (0, pad))[..., :nk]
        bias = bias.expand(b, h, nq, nk)
    if kernel == _EFFICIENT:
        out, lse = compat.efficient_attention(query, key, value, bias, True, scale)[:2]
    else:
        out, lse = compat.cudnn_attention(query, key, value, bias, scale)[:2]
    # the efficient kernel pads its log-sum-exp rows to a multiple of 32; cuDNN's carries a trailing axis
    return out, lse.reshape(b, h, -1)[..., :nq]


def attention_with_concept_map(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    concept_keys: Tensor,
    *,
    query_rows: slice | None = None,
    attn_mask: Tensor | None = None,
    scale: float | None = None,
    heads_first: bool = True,
) -> tuple[Tensor, Tensor]:
    """The layer's attention output and the concept map from the same kernel call.

    Args:
        query, key, value: ``[B, H, N, D]`` as the layer hands them to ``scaled_dot_product_attention`` (after
            its norms and rotary embeddings); ``[B, N, H, D]`` with ``heads_first=False`` (diffusers'
            ``dispatch_attention_fn`` layout), in which case the output comes back in that layout too.
        concept_keys: bool ``[B, Nk]``, True at the concept's text tokens. Best kept on the CPU (the switch
            does): the concept columns are found there without a device synchronisation.
        query_rows: the video queries among the rows (None: all rows).
        attn_mask: the layer's mask as ``scaled_dot_product_attention`` takes it (bool: True = attend; or
            additive float), broadcastable to ``[B, H, Nq, Nk]``; a ``[B, Nk]`` key mask is accepted too.
        scale: the logit scale the layer passes (None: ``1/sqrt(D)``, the kernel's default).

    Returns:
        ``(output, probs)``: ``output`` ``[B, H, Nq, D]`` exactly as ``scaled_dot_product_attention`` computes it
        (same kernel, gradients included); ``probs`` ``[B, N_rows]`` float32 without gradient,
        ``mean_h Σ_{c ∈ concept} softmax_k(q·k·scale)[c]`` for the selected rows.
    """
    if not heads_first:
        out, probs = attention_with_concept_map(
            query.transpose(1, 2),
            key.transpose(1, 2),
            value.transpose(1, 2),
            concept_keys,
            query_rows=query_rows,
            attn_mask=attn_mask,
            scale=scale,
        )
        return out.transpose(1, 2), probs
    if query.dim() != 4 or key.dim() != 4:
        raise ValueError(f"query and key must be [B, H, N, D]; got {tuple(query.shape)} and {tuple(key.shape)}")
    b, nk = query.shape[0], key.shape[2]
    if concept_keys.shape != (b, nk):
        raise ValueError(f"concept_keys must be [B, Nk] = {(b, nk)}; got {tuple(concept_keys.shape)}")
    rows = query_rows if query_rows is not None else slice(None)
    mask = _as_4d(attn_mask, b, nk)
    query, key, value = _sdpa_dtype(query, key, value)
    logit_scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    kernel = _fused_kernel(query, key, value, mask) if _ROUTE.get() == "fused" else None
    if kernel is None:
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scale)
        with torch.no_grad():
            probs = concept_attention_probs(
                query[:, :, rows], key, concept_keys, logit_scale, key_padding_mask=_key_padding(mask, b, nk)
            )
        return out, probs
    with _autocast_off(query.device):
        out, lse = _fused_attention(query, key, value, mask, scale, kernel)
    with torch.no_grad(), _autocast_off(query.device):
        cols = concept_keys.any(0).nonzero().flatten()
        weights = concept_keys[:, cols].to(device=query.device, dtype=torch.float32)[:, None, None, :]
        cols = cols.to(key.device)
        logits = query[:, :, rows].float() @ key.index_select(2, cols).float().transpose(-1, -2)
        logits.mul_(logit_scale)
        if mask is not None:
            m = mask.expand(b, -1, query.shape[2], -1)[:, :, rows].index_select(-1, cols)
            logits = logits.masked_fill(~m, float("-inf")) if m.dtype == torch.bool else logits + m.float()
        probs = logits.sub_(lse[:, :, rows].float()[..., None]).exp_().mul_(weights).sum(-1).mean(1)
    check = _CHECK.get()
    if check is not None and check.pending:
        with torch.no_grad():
            try:
                padding = _key_padding(mask, b, nk)
            except ValueError:  # a mask the chunked route does not take: compare a later call
                return out, probs
            check.compare(
                probs,
                concept_attention_probs(query[:, :, rows], key, concept_keys, logit_scale, None, padding),
                kernel,
                query,
            )
    return out, probs


def attention_recording_concept_map(
    attend: Callable[..., Tensor],
    concept_keys: Tensor,
    record: Callable[[Tensor], None],
    *,
    query_rows: slice | None = None,
    heads_first: bool = True,
) -> Callable[..., Tensor]:
    """A layer's attention call that also records its concept map: what a processor's concept-map hook hands to
    the copied diffusers code in place of ``attend`` (the copy calls ``attention(...)``; see the ``with ...->attention``
    renames of the processors' ``# Copied from`` markers).

    Args:
        attend: the layer's own attention function: ``F.scaled_dot_product_attention`` (``[B, H, N, D]``) or
            diffusers' ``dispatch_attention_fn`` (``[B, N, H, D]``, with ``heads_first=False``).
        concept_keys: bool ``[B, Nk]``, True at the concept tokens among the keys.
        record: receives the map, ``[B, N_rows]`` float32 without gradient (the processor reshapes and stores it).
        query_rows: the video queries among the rows (None: all rows).
        heads_first: the layout ``attend`` takes and returns.

    Returns:
        A function with ``attend``'s signature. Its output is what ``attend`` computes: by default on the fused
        kernel ``scaled_dot_product_attention`` would choose, whose log-sum-exp gives the map
        (:func:`attention_with_concept_map`). A call whose keys are not the ones ``concept_keys`` describes (Wan's
        image keys in I2V) is ``attend`` unchanged. A call that needs more than those kernels take (dropout, a
        causal mask, or a diffusers attention backend / parallel config named in the call) runs ``attend`` and takes
        the map from the chunked route, so that gradient checkpointing, which recomputes the layer without the map,
        runs the same kernel.
    """

    def attention(
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attn_mask: Tensor | None = None,
        dropout_p: float = 0.0,
        is_causal: bool = False,
        scale: float | None = None,
        **kwargs: Any,
    ) -> Tensor:
        call = dict(attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale, **kwargs)
        if key.shape[2 if heads_first else 1] != concept_keys.shape[1]:
            return attend(query, key, value, **call)
        if dropout_p or is_causal or any(v is not None for v in kwargs.values()):
            out = attend(query, key, value, **call)
            q, k = (query, key) if heads_first else (query.transpose(1, 2), key.transpose(1, 2))
            b, nk = q.shape[0], k.shape[2]
            with torch.no_grad():
                record(
                    concept_attention_probs(
                        q[:, :, query_rows or slice(None)],
                        k,
                        concept_keys,
                        scale,
                        key_padding_mask=_key_padding(_as_4d(attn_mask, b, nk), b, nk),
                    )
                )
            return out
        out, probs = attention_with_concept_map(
            query,
            key,
            value,
            concept_keys,
            query_rows=query_rows,
            attn_mask=attn_mask,
            scale=scale,
            heads_first=heads_first,
        )
        record(probs)
        return out

    return attention


def _key_padding(mask: Tensor | None, b: int, nk: int) -> Tensor | None:
    """A mask that only removes keys (``[B or 1, 1, 1, Nk]``) as bool ``[B, Nk]`` (True = attend)."""
    if mask is None:
        return None
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[2] != 1:
        raise ValueError(f"the chunked concept map takes key-padding masks [B, 1, 1, Nk]; got {tuple(mask.shape)}")
    keep = mask if mask.dtype == torch.bool else mask > float("-inf")
    return keep.reshape(-1, nk).expand(b, nk)


def concept_attention_probs(
    query: Tensor,
    key: Tensor,
    concept_keys: Tensor,
    scale: float | None = None,
    chunk_size: int | None = None,
    key_padding_mask: Tensor | None = None,
) -> Tensor:
    """Head-averaged softmax mass of each query on the concept keys, queries in chunks.

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
    concept = concept_keys[:, None, None, :].to(query.device)
    neg_inf = torch.finfo(torch.float32).min
    pad = None if key_padding_mask is None else ~key_padding_mask[:, None, None, :].to(query.device)
    out = []
    with _autocast_off(query.device):
        keys_t = key.float().transpose(-1, -2)
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


def dense_concept_attention_probs(
    query: Tensor, key: Tensor, concept_keys: Tensor, scale: float | None = None
) -> Tensor:
    """Reference implementation that materialises the full softmax (tests and benchmarks only)."""
    d = query.shape[-1]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    with _autocast_off(query.device):
        attn = torch.softmax(query.float() @ key.float().transpose(-1, -2) * scale, dim=-1)
        return (attn * concept_keys[:, None, None, :].float().to(query.device)).sum(-1).mean(1)
