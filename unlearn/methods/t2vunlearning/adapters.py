"""Zero-initialised adapters on the video tokens, and the switch that attention processors consult.

The switch owns one :class:`VideoTokenAdapter` per attention site. Processors (one class per backbone
family, in ``backbones/``) call :meth:`AdapterSwitch.adapt` on the video tokens that leave the attention
layer and, when a concept map is requested, :meth:`AdapterSwitch.record_concept_map`. Because the
adapters are off with one switch, the same backbone copy gives both the frozen and the adapted prediction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from unlearn.backbones import Switch
from unlearn.backbones.attention import concept_map_route

from .losses import token_mean_squares


class VideoTokenAdapter(nn.Module):
    """``o = Up(GELU(Down(h)))`` with ``Up`` zero-initialised, so the adapted model starts as the frozen one."""

    def __init__(self, dim: int, inner_dim: int = 128) -> None:
        super().__init__()
        self.down = nn.Linear(dim, inner_dim)
        self.act = nn.GELU()
        self.up = nn.Linear(inner_dim, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: Tensor) -> Tensor:
        return self.up(self.act(self.down(h)))


class AdapterSwitch(nn.Module, Switch):
    """All adapters of one backbone plus the per-forward switches the processors read.

    - ``enabled`` / ``scale``: adapters on (scaled) or off (frozen model).
    - capture: inside :meth:`capturing`, per site, the mean square of each video token's adapter output
      (``mean_c (o^l_{n,c})²``, ``[B, N_video]`` float32, with gradient) and, if concept token masks were given,
      the head-averaged attention mass of every video token on the concept tokens (``[B, F, S]``) are recorded
      for the localization loss. The outputs themselves are not kept: ``‖o ⊙ (1 − M)‖²`` is a sum over tokens
      of ``(1 − M_n)·‖o_n‖²``, so the per-token squares are all L_loc needs (no float32 copy of ``o``).
    """

    def __init__(self, dims: Sequence[int], inner_dim: int = 128, site_names: Sequence[str] | None = None) -> None:
        super().__init__()
        if not dims:
            raise ValueError("AdapterSwitch needs at least one attention site")
        self.adapters = nn.ModuleList([VideoTokenAdapter(d, inner_dim) for d in dims])
        self.site_names = list(site_names) if site_names is not None else [str(i) for i in range(len(dims))]
        self.inner_dim = inner_dim
        self.enabled = True
        self.scale = 1.0
        self._capture = False
        self.concept_tokens: Tensor | None = None
        self.token_squares: dict[int, Tensor] = {}
        self.concept_maps: dict[int, Tensor] = {}
        #: per-forward facts a processor may need (e.g. number of latent frames); set by the backbone
        self.context: dict[str, int] = {}
        #: where the concept maps come from inside :meth:`capturing` ("fused" kernel or "chunked" recompute;
        #: unlearn.backbones.attention.concept_map_route); T2VUnlearning sets it from model.concept_map_kernel
        self.concept_map_route = "fused"

    # -------------------------------------------------------------- used by processors
    def adapt(self, site: int, video_tokens: Tensor) -> Tensor:
        """Add adapter ``site``'s output to ``video_tokens`` (``[B, N, C]``) when adapters are on."""
        o = self.delta(site, video_tokens)
        return video_tokens if o is None else video_tokens + o.to(video_tokens.dtype)

    def delta(self, site: int, video_tokens: Tensor) -> Tensor | None:
        """Adapter ``site``'s scaled output on ``video_tokens`` (in the adapter's dtype), or ``None`` when the
        adapters are off (what :meth:`adapt` adds; :class:`AdapterStack` sums it over several sets)."""
        if not self.enabled or self.scale == 0.0:
            return None
        adapter = self.adapters[site]
        dtype = adapter.up.weight.dtype
        o = adapter(video_tokens.to(dtype))
        if self.scale != 1.0:
            o = o * self.scale
        if self._capture or (torch.is_grad_enabled() and o.requires_grad):
            # also in trainable forwards outside a capture: gradient checkpointing recomputes this layer after
            # the capture has ended, and the recomputation must save the same tensors as the forward did
            squares = token_mean_squares(o)
            if self._capture:
                self.token_squares[site] = squares
        return o

    @property
    def wants_concept_map(self) -> bool:
        return self._capture and self.concept_tokens is not None

    def record_concept_map(self, site: int, probs: Tensor) -> None:
        """``probs``: ``[B, F, S]`` attention mass of each video token on the concept tokens (no grad)."""
        self.concept_maps[site] = probs.detach()

    def concept_key_mask(self, text_first: bool, num_video: int) -> Tensor:
        """Bool ``[B, N_keys]`` (on the CPU) marking concept keys in a joint text+video key sequence."""
        assert self.concept_tokens is not None
        ct = self.concept_tokens
        pad = torch.zeros(ct.shape[0], num_video, dtype=torch.bool, device=ct.device)
        return torch.cat([ct, pad], 1) if text_first else torch.cat([pad, ct], 1)

    # -------------------------------------------------------------- used by the method
    @contextlib.contextmanager
    def disabled(self) -> Iterator[None]:
        """Adapters off: the backbone is the frozen model."""
        prev = self.enabled
        self.enabled = False
        try:
            yield
        finally:
            self.enabled = prev

    @contextlib.contextmanager
    def scaled(self, scale: float) -> Iterator[None]:
        prev = self.scale
        self.scale = float(scale)
        try:
            yield
        finally:
            self.scale = prev

    @contextlib.contextmanager
    def capturing(self, concept_tokens: Tensor | None = None) -> Iterator[None]:
        """Record the adapters' per-token squares (and concept maps when ``concept_tokens`` ``[B, L_text]`` is
        given). The token masks are kept on the CPU, where the processors find the concept columns without a
        device synchronisation per layer (one copy per forward instead)."""
        self._capture = True
        self.concept_tokens = None if concept_tokens is None else concept_tokens.to("cpu", torch.bool)
        self.token_squares, self.concept_maps = {}, {}
        try:
            with concept_map_route(self.concept_map_route):
                yield
        finally:
            self._capture = False
            self.concept_tokens = None

    def take(self) -> tuple[list[Tensor], list[Tensor]]:
        """Captured per-token adapter squares (``[B, N_video]``) and concept maps, in site order; clears them."""
        squares = [self.token_squares[i] for i in sorted(self.token_squares)]
        maps = [self.concept_maps[i] for i in sorted(self.concept_maps)]
        self.token_squares, self.concept_maps = {}, {}
        return squares, maps


class AdapterStack:
    """Several adapter sets on one stock denoiser (what :func:`~unlearn.methods.t2vunlearning.attach_adapters`
    installs): every set adds its own scaled output, computed from the same video tokens, so
    ``h + s₁·A₁(h) + s₂·A₂(h)`` (the way diffusers combines several LoRAs with ``set_adapters``). One set gives
    exactly what its switch alone gives. The attention hooks and the backbone's context hooks see the stack
    as one switch (``adapt``, ``adapters``, ``context``).
    """

    def __init__(self) -> None:
        #: name → switch, in attaching order
        self.sets: dict[str, AdapterSwitch] = {}
        #: per-forward facts the backbone's context hooks set (e.g. ZeroScope's number of frames)
        self.context: dict[str, int] = {}
        #: the backbone family whose hooks carry the stack (set by attach_adapters; removes them on detach)
        self.family: Any = None

    @property
    def adapters(self) -> nn.ModuleList:
        """The first set's adapters (one per attention site: what the backbone counts the sites against)."""
        if not self.sets:
            raise ValueError("no adapter set is attached")
        return next(iter(self.sets.values())).adapters

    @property
    def scales(self) -> dict[str, float]:
        """Each set's scale (``stack.sets[name].scale = s`` changes one)."""
        return {name: c.scale for name, c in self.sets.items()}

    def adapt(self, site: int, video_tokens: Tensor) -> Tensor:
        out = video_tokens
        for switch in self.sets.values():
            o = switch.delta(site, video_tokens)
            if o is not None:
                out = out + o.to(video_tokens.dtype)
        return out
