"""The backbone contract: what every video diffusion model must offer to be unlearned.

A backbone wraps the real diffusers/transformers components of one model family (denoiser, text encoder,
tokenizer, VAE, scheduler) and exposes the handful of operations the methods need:

- ``prediction_type``: what the denoiser predicts (``"v_prediction"``, ``"epsilon"`` or ``"flow"``).
- ``encode_prompts(prompts)``: text conditioning, cached per prompt string.
- ``predict(latents, timesteps, cond)``: one denoiser call in the backbone's latent layout.
- ``sample(...)``: classifier-free-guided denoising with the backbone's own scheduler, optionally stopped
  early and observed step by step (this is how pseudo data is made).
- ``attention_sites_of(denoiser)``: the attention layers where text meets video, in a fixed order.
- ``processor_class``: the attention processor that applies adapters to the video tokens and reports the
  text-to-video attention map of concept tokens (see :class:`unlearn.methods.t2vunlearning.AdapterSwitch`).
- ``concept_token_indices(prompt, phrases)``: where the concept's words sit in the tokenized prompt.
- ``decode(latents)``: frames as uint8 ``[B, F, H, W, 3]``.
- ``noisy_target(x0, noise, timesteps)``: ``x_t`` and the quantity ``predict`` should return there (denoising
  losses of white-box attacks).
- ``text_input_ids`` / ``text_input_embeddings`` / ``encode_input_embeddings``: the text encoder at the level
  of token embeddings, differentiable (white-box prompt attacks; families that lack them say so).

Loading is shared: a family declares its weights folder (``components``), how to build random test-sized parts
(``tiny_components``) and what its constructor reads from the parts (``init_kwargs``); :meth:`VideoBackbone.load`,
``from_pretrained``, ``tiny``, ``as_pipeline`` and ``save_pretrained`` do the rest, once, here.

``backbones/README.md`` walks through adding a backbone.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import hashlib
import inspect
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from .loading import Component, WeightsFolderError, load_components, resolve_dtype

PredictionType = Literal["v_prediction", "epsilon", "flow"]


class ConceptNotInPromptError(ValueError):
    """The concept's words do not occur in a prompt whose concept mask is needed."""


@dataclasses.dataclass
class PromptEmbedding:
    """Text conditioning for a batch of prompts, as the denoiser consumes it.

    ``hidden_states`` is ``[B, L, D]``; ``attention_mask`` (``[B, L]``) and ``pooled`` (``[B, D']``) are
    optional because only some families use them.
    """

    hidden_states: Tensor
    attention_mask: Tensor | None = None
    pooled: Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.hidden_states.shape[0]

    def _map(self, fn: Callable[[Tensor], Tensor]) -> PromptEmbedding:
        return PromptEmbedding(
            fn(self.hidden_states),
            None if self.attention_mask is None else fn(self.attention_mask),
            None if self.pooled is None else fn(self.pooled),
        )

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> PromptEmbedding:
        def move(t: Tensor) -> Tensor:
            # masks stay integer/bool; only floating tensors change dtype
            return t.to(device=device, dtype=dtype if (dtype is not None and t.is_floating_point()) else None)

        return self._map(move)

    def __getitem__(self, index: Any) -> PromptEmbedding:
        return self._map(lambda t: t[index])

    def repeat(self, n: int) -> PromptEmbedding:
        return self._map(lambda t: t.repeat_interleave(n, dim=0))

    @staticmethod
    def cat(items: Sequence[PromptEmbedding]) -> PromptEmbedding:
        first = items[0]
        return PromptEmbedding(
            torch.cat([i.hidden_states for i in items]),
            None if first.attention_mask is None else torch.cat([i.attention_mask for i in items]),
            None if first.pooled is None else torch.cat([i.pooled for i in items]),
        )

    def to_dict(self, prefix: str = "") -> dict[str, Tensor]:
        out = {f"{prefix}hidden_states": self.hidden_states}
        if self.attention_mask is not None:
            out[f"{prefix}attention_mask"] = self.attention_mask
        if self.pooled is not None:
            out[f"{prefix}pooled"] = self.pooled
        return out

    @classmethod
    def from_dict(cls, tensors: dict[str, Tensor], prefix: str = "") -> PromptEmbedding:
        return cls(
            tensors[f"{prefix}hidden_states"],
            tensors.get(f"{prefix}attention_mask"),
            tensors.get(f"{prefix}pooled"),
        )


@dataclasses.dataclass(frozen=True)
class AttentionSite:
    """One attention layer where text and video tokens meet.

    ``name`` is the module path inside the denoiser, ``module`` the diffusers ``Attention`` module, and
    ``video_dim`` the width of the video tokens that leave the layer (the adapter's width).
    """

    name: str
    module: nn.Module
    video_dim: int


@dataclasses.dataclass(frozen=True)
class SamplingSettings:
    """How a video is sampled: the one type of these settings. A backbone's ``defaults`` are its native ones (used
    where a config leaves them unset); the evaluation rows take these fields as their sampling keys; pseudo-data
    generation holds one (``PseudoDataSettings.sampling``) beside its own fields."""

    num_frames: int
    height: int
    width: int
    num_inference_steps: int
    guidance_scale: float


class Switch(abc.ABC):
    """What turns a method's change of the backbone off and on: an evaluation row's one handle on the model a
    method trained or edited. T2VUnlearning's adapters (``unlearn.methods.t2vunlearning.AdapterSwitch``) and the
    weight edits of UCE, ESD and the refusal vector (``unlearn.methods.weight_edits.EditSwitch``) implement it;
    rows, callbacks and attacks are typed against this, never against one method's class."""

    @abc.abstractmethod
    def disabled(self) -> contextlib.AbstractContextManager[None]:
        """Inside: the original model (the change off), whatever the switch held before; restored on exit."""

    @abc.abstractmethod
    def scaled(self, scale: float) -> contextlib.AbstractContextManager[None]:
        """Inside: the change at strength ``scale`` (1.0 as trained, 0.0 off); restored on exit."""


class VideoBackbone(nn.Module, abc.ABC):
    """Base class of every backbone wrapper. Subclasses implement the abstract methods below.

    The wrapper holds exactly one copy of the denoiser. Its parameters are frozen; the adapters live in an
    :class:`unlearn.methods.t2vunlearning.AdapterSwitch` that the processors consult, so "adapters off" gives the
    frozen model's prediction without a second copy.
    """

    #: registry name, set by :func:`unlearn.backbones.registry.register_backbone`
    name: ClassVar[str] = ""
    #: what the denoiser predicts
    prediction_type: ClassVar[PredictionType]
    #: attention processor class with adapter and concept-map hooks; built as ``processor_class(switch, i)``
    processor_class: ClassVar[type]
    #: layout of the video tokens relative to text tokens, documented for readers of the processor
    token_layout: ClassVar[str] = ""
    #: True for guidance-distilled models (HunyuanVideo): their stock sampling uses no classifier-free
    #: guidance (``SamplingSettings.guidance_scale`` 1.0), so a negative prompt needs an explicit true-CFG scale
    guidance_distilled: ClassVar[bool] = False
    #: name prefix of the attention sites whose concept maps make T2VUnlearning's averaged concept mask (None:
    #: every site); HunyuanVideo: the single-stream blocks, the only ones the authors' mask code hooks
    concept_map_sites: ClassVar[str | None] = None

    # loading: what a family declares (the shared control flow is :meth:`load` and what it calls)
    #: the weights folder, entry by entry, in loading order: checked, loaded and named in errors from this table
    components: ClassVar[dict[str, Component]] = {}
    #: the entry holding the denoiser (``"transformer"``, ``"unet"``)
    denoiser_entry: ClassVar[str] = "transformer"
    #: the stock pipeline (a class name in ``diffusers``) built from the same parts by :meth:`as_pipeline`
    pipeline_class: ClassVar[str | None] = None
    #: whether weights may come from the model hub (otherwise ``pretrained`` is always a local folder)
    hub: ClassVar[bool] = True
    #: ``source`` of a tiny model, formatted with ``seed`` and the loading options (part of the fingerprint)
    tiny_source: ClassVar[str] = "tiny-seed{seed}"

    def __init__(
        self,
        denoiser: nn.Module,
        scheduler: Any,
        text_encoder: nn.Module | None,
        tokenizer: Any,
        vae: nn.Module | None,
        *,
        defaults: SamplingSettings,
        source: str,
        max_text_length: int,
    ) -> None:
        super().__init__()
        self.denoiser = denoiser
        self.text_encoder = text_encoder
        self.vae = vae
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        self.defaults = defaults
        self.source = source
        self.max_text_length = max_text_length
        self.requires_grad_(False)
        self.eval()
        self._prompt_cache: OrderedDict[str, PromptEmbedding] = OrderedDict()
        self._prompt_cache_size = 4096
        #: side modules parked off the denoiser's device (park_side_modules / side_modules_on_device)
        self._parked: set[str] = set()
        self.switch: Any = None

    # ------------------------------------------------------------------ loading (shared control flow)
    @classmethod
    def load(
        cls,
        pretrained: str | None = None,
        tiny: bool = False,
        torch_dtype: str | torch.dtype = "bfloat16",
        hub_id: str | None = None,
        seed: int = 0,
        **options: Any,
    ) -> VideoBackbone:
        """What :func:`~unlearn.backbones.registry.build_backbone` calls.

        Args:
            pretrained: a local diffusers folder or a hub id (default ``hub_id``).
            tiny: a random test-sized model (no download, CPU-sized). It wins over a hub id in ``pretrained``, so
                a shipped full-size config runs as a smoke test with one key (``--model.init_args.tiny true``); a
                local path in ``pretrained`` (an existing folder, or a path starting with ``/``, ``.`` or ``~``)
                is loaded and checked instead.
            torch_dtype: ``"bfloat16"``, ``"float32"``, ... (a ``torch.dtype`` passes through).
            hub_id: the weights when ``pretrained`` is not given (the registry passes each name's).
            seed: seed of the tiny model's random weights.
            options: the family's own loading options (:meth:`load_options`), e.g. CogVideoX's ``variant``,
                ``max_text_length``, HunyuanVideo's ``embedded_guidance_scale``, ZeroScope's ``scheduler_class``.
        """
        dtype = resolve_dtype(torch_dtype)
        # tiny replaces hub weights (a shipped config's hub id) but never a local folder the user named: weights
        # they point at are loaded and checked, not silently swapped for a random model
        if tiny and not (pretrained and _names_local_path(pretrained)):
            return cls.tiny(seed=seed, torch_dtype=dtype, **options)
        if not (pretrained or hub_id):
            raise ValueError(
                f"{cls.__name__}.load: no weights given. Fix: pass pretrained=<hub id or local folder>, or tiny=True "
                "for a random test model (build_backbone(name, ...) passes the name's hub id)."
            )
        return cls.from_pretrained(pretrained or hub_id, torch_dtype=dtype, **options)

    @classmethod
    def from_pretrained(
        cls, pretrained: str, torch_dtype: str | torch.dtype = "bfloat16", **options: Any
    ) -> VideoBackbone:
        """Real weights from a local folder or a hub id, loaded entry by entry from :attr:`components`.

        A local folder is checked first (one :class:`~unlearn.backbones.loading.WeightsFolderError` naming every
        missing entry); an ``OSError``
        while loading becomes one error naming the entry and the fix.
        """
        options = cls._resolve_options(options)
        dtype = resolve_dtype(torch_dtype)
        parts = load_components(cls.components, str(pretrained), dtype, options, cls.__name__, hub=cls.hub)
        return cls.from_components(parts, source=str(pretrained), **options)

    @classmethod
    def tiny(cls, seed: int = 0, torch_dtype: str | torch.dtype = torch.float32, **options: Any) -> VideoBackbone:
        """A random test-sized model from :meth:`tiny_components`, deterministic from ``seed``."""
        options = cls._resolve_options(options)
        dtype = resolve_dtype(torch_dtype)
        torch.manual_seed(seed)
        parts = cls.tiny_components(**cls._declared(cls.tiny_components, options))
        source = cls.tiny_source.format(seed=seed, **options)
        return cls.from_components(parts, source=source, **options).to(dtype)

    @classmethod
    def from_components(cls, parts: Mapping[str, Any], *, source: str, **options: Any) -> VideoBackbone:
        """The backbone holding ``parts`` (entry → loaded part, as :attr:`components` names them)."""
        options = cls._resolve_options(options)
        kwargs = cls.init_kwargs(parts, **cls._declared(cls.init_kwargs, options))
        return cls(
            parts[cls.denoiser_entry],
            parts["scheduler"],
            parts.get("text_encoder"),
            parts.get("tokenizer"),
            parts.get("vae"),
            source=source,
            **kwargs,
        )

    @classmethod
    def tiny_components(cls, **options: Any) -> dict[str, Any]:
        """Random test-sized parts, keyed like :attr:`components` (the seed is set before this is called)."""
        raise NotImplementedError(f"{cls.__name__} has no tiny test model (it defines no tiny_components)")

    @classmethod
    def init_kwargs(cls, parts: Mapping[str, Any], **options: Any) -> dict[str, Any]:
        """What the constructor needs besides denoiser, scheduler, text encoder, tokenizer, VAE and source, read
        from the parts' configs: ``defaults``, ``max_text_length`` and the family's own arguments. Its keyword
        parameters (and those of :meth:`tiny_components`) are the family's loading options."""
        raise NotImplementedError(f"{cls.__name__} defines no init_kwargs (see backbones/README.md)")

    @classmethod
    def load_options(cls) -> dict[str, Any]:
        """The family's loading options and their defaults: the keyword parameters of :meth:`init_kwargs` and
        :meth:`tiny_components`."""
        options: dict[str, Any] = {}
        for hook in (cls.init_kwargs, cls.tiny_components):
            for p in inspect.signature(hook).parameters.values():
                if p.name != "parts" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                    options.setdefault(p.name, None if p.default is p.empty else p.default)
        return options

    @classmethod
    def _resolve_options(cls, given: Mapping[str, Any]) -> dict[str, Any]:
        known = cls.load_options()
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise TypeError(
                f"{cls.__name__}: unknown loading option(s) {', '.join(map(repr, unknown))}; it takes "
                f"{', '.join(known) or 'none'} (besides pretrained, tiny, torch_dtype, hub_id, seed)."
            )
        return {**known, **given}

    @staticmethod
    def _declared(hook: Callable[..., Any], options: Mapping[str, Any]) -> dict[str, Any]:
        """The options ``hook`` declares."""
        params = inspect.signature(hook).parameters
        return {k: v for k, v in options.items() if k in params}

    def as_pipeline(self):
        """The stock diffusers pipeline (:attr:`pipeline_class`) sharing this backbone's modules, with a fresh
        scheduler of the same class and config."""
        if self.pipeline_class is None:
            raise NotImplementedError(f"{type(self).__name__}: no stock diffusers pipeline holds this backbone's parts")
        import diffusers

        pipeline = getattr(diffusers, self.pipeline_class)
        params = inspect.signature(pipeline.__init__).parameters
        parts = {}
        for entry in self.components:
            if entry not in params:
                continue
            if entry == self.denoiser_entry:
                parts[entry] = self.denoiser
            elif entry == "scheduler":
                parts[entry] = type(self.scheduler).from_config(self.scheduler.config)
            else:
                parts[entry] = getattr(self, entry)
        return pipeline(**parts)

    def save_pretrained(self, path: str) -> None:
        """A folder :meth:`from_pretrained` reads back (the stock pipeline's layout)."""
        self.as_pipeline().save_pretrained(path, safe_serialization=True)

    # ------------------------------------------------------------------ abstract family-specific parts
    @abc.abstractmethod
    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, ...]:
        """Shape of one sample's latent (no batch dimension) for a video of this size."""

    @abc.abstractmethod
    def _encode(self, prompts: list[str]) -> PromptEmbedding:
        """Run the text encoder(s) on a list of prompts (no caching; called under no_grad)."""

    @abc.abstractmethod
    def predict(self, latents: Tensor, timesteps: Tensor, cond: PromptEmbedding) -> Tensor:
        """One denoiser call. ``latents`` in the backbone's layout, ``timesteps`` ``[B]``; returns a tensor
        shaped like ``latents`` holding the ``prediction_type`` quantity."""

    @abc.abstractmethod
    def decode(self, latents: Tensor) -> Tensor:
        """Latents to frames: uint8 ``[B, F, H, W, 3]``."""

    @classmethod
    @abc.abstractmethod
    def attention_sites_of(cls, denoiser: nn.Module) -> list[AttentionSite]:
        """Attention layers where text meets video, in a fixed order (adapter ``i`` belongs to site ``i``)."""

    def check_video_size(
        self, num_frames: int, height: int, width: int, keys: Sequence[str] = ("num_frames", "height", "width")
    ) -> None:
        """Raise ``ValueError`` (naming ``keys``, the values and the sizes that work) unless this backbone can
        generate a video of ``num_frames`` frames of ``height`` × ``width`` pixels. The default checks that
        they are positive and that :meth:`latent_shape` accepts them; a family with more rules (CogVideoX's
        4k+1 frames) extends it."""
        for key, value in zip(keys, (num_frames, height, width)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive integer; got {value!r}")
        try:
            self.latent_shape(num_frames, height, width)
        except ValueError as e:
            raise ValueError(f"{'/'.join(keys)} = {num_frames}/{height}/{width}: {e}") from None

    @classmethod
    def check_weights_files(cls, folder: str, name: str | None = None) -> None:
        """Raise :class:`WeightsFolderError` naming the file when the local weights folder ``folder`` belongs to
        another model family (its ``model_index.json``), or holds a ``.safetensors`` file that is truncated or
        has a malformed header, or a shard index naming a missing shard. Reads headers only (milliseconds)."""
        root = Path(folder).expanduser()
        index = root / "model_index.json"
        # the family's stem: a CogVideoXImageToVideoPipeline folder is a CogVideoX folder, a WanPipeline is not
        prefix = cls.pipeline_class.removesuffix("Pipeline") if cls.pipeline_class else None
        if prefix and index.is_file():
            try:
                found = json.loads(index.read_text(encoding="utf-8")).get("_class_name", "")
            except (ValueError, UnicodeDecodeError) as e:
                raise WeightsFolderError(f"{index}: not valid JSON ({e})") from None
            if found and not str(found).startswith(prefix):
                raise WeightsFolderError(
                    f"{root} holds a {found} (model_index.json), not a {prefix}* pipeline that "
                    f"{name or cls.name or cls.__name__} loads. Fix: pass the folder of this family's weights, or "
                    "choose the "
                    "backbone that matches the folder"
                )
        for f in sorted(root.rglob("*.safetensors")):
            problem = _safetensors_problem(f)
            if problem:
                raise WeightsFolderError(f"{f}: {problem}. Fix: download this file again (the folder is damaged)")
        for idx in sorted(root.rglob("*.safetensors.index.json")):
            try:
                shards = set(json.loads(idx.read_text(encoding="utf-8"))["weight_map"].values())
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
                raise WeightsFolderError(f"{idx}: not a valid shard index ({type(e).__name__}: {e})") from None
            missing = sorted(s for s in shards if not (idx.parent / s).is_file())
            if missing:
                raise WeightsFolderError(f"{idx} names shards that are missing: {missing[:3]}. Fix: download them")

    # ------------------------------------------------------------------ shared behaviour
    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The denoiser's compute dtype. diffusers models answer for themselves: parts they keep in float32
        (``_keep_in_fp32_modules``, e.g. Wan's norms loaded in bfloat16) do not count."""
        dtype = getattr(self.denoiser, "dtype", None)
        return dtype if isinstance(dtype, torch.dtype) else next(self.denoiser.parameters()).dtype

    def attention_sites(self) -> list[AttentionSite]:
        return self.attention_sites_of(self.denoiser)

    # ------------------------------------------------------------------ where the modules besides the denoiser live
    def side_modules(self) -> dict[str, nn.Module]:
        """The modules besides the denoiser (text encoders, VAE): needed to encode prompts and decode videos, not by
        a training step on cached pseudo data."""
        return {name: m for name, m in self.named_children() if name != "denoiser"}

    def park_side_modules(self, device: torch.device | str = "cpu", only: Sequence[str] | None = None) -> None:
        """Move the text encoders and the VAE (``only``: those named) to ``device`` (default the CPU), off the
        training device. Prompt encoding still works there (embeddings are moved to the denoiser's device);
        decoding needs :meth:`side_modules_on_device`."""
        for name, module in self.side_modules().items():
            if only is None or name in only:
                module.to(device)
                self._parked.add(name)

    def resident_side_modules(self) -> set[str]:
        """Names of the side modules not parked off the denoiser's device (what each phase keeps beside it)."""
        return set(self.side_modules()) - self._parked

    def text_encoder_names(self) -> list[str]:
        """The side modules that encode prompts (every one but the VAE)."""
        return [name for name in self.side_modules() if name != "vae"]

    @contextlib.contextmanager
    def side_modules_on_device(self, vae_tiling: bool = False, only: Sequence[str] | None = None) -> Iterator[None]:
        """Text encoders and VAE (``only``: those named) on the denoiser's device for the duration (e.g. a
        sampling callback), then back where they were. ``vae_tiling`` decodes in tiles and one video at a time
        where the VAE offers it (diffusers' ``enable_tiling``/``enable_slicing``), which bounds the decoder's
        memory at full size."""
        parts = {n: m for n, m in self.side_modules().items() if only is None or n in only}
        where = {name: _module_device(m) for name, m in parts.items()}
        parked = set(self._parked)
        for module in parts.values():
            module.to(self.device)
        self._parked -= set(parts)
        vae = parts.get("vae")
        saved = None
        if vae_tiling and vae is not None and hasattr(vae, "enable_tiling"):
            saved = (getattr(vae, "use_tiling", False), getattr(vae, "use_slicing", False))
            vae.enable_tiling()
            if hasattr(vae, "enable_slicing"):
                vae.enable_slicing()
        try:
            yield
        finally:
            if saved is not None:
                vae.use_tiling, vae.use_slicing = saved
            for name, module in parts.items():
                if where[name] is not None:
                    module.to(where[name])
            self._parked = parked

    @contextlib.contextmanager
    def side_modules_parked(self, device: torch.device | str = "cpu") -> Iterator[None]:
        """Every side module off the denoiser's device for the duration, then back where it was."""
        parts = self.side_modules()
        where = {name: _module_device(m) for name, m in parts.items()}
        parked = set(self._parked)
        self.park_side_modules(device)
        try:
            yield
        finally:
            for name, module in parts.items():
                if where[name] is not None:
                    module.to(where[name])
            self._parked = parked

    @torch.no_grad()
    def generate_offloaded(self, prompts: Sequence[str], seeds: Sequence[int], **sampling: Any) -> Tensor:
        """Videos (uint8 ``[B, F, H, W, 3]``) made phase by phase, so that the denoiser never shares the device
        with the text encoders or the VAE: the prompts (and the empty negative prompt) are encoded once with only
        the text encoders brought to the device (the embeddings stay in the prompt cache), the latents are
        denoised with every side module parked, and decoded with only the VAE on the device, tiled and one
        video at a time. At full size this is what keeps CogVideoX-5B's sample videos under 24 GiB (T5-XXL alone
        is 8.9 GiB of bf16 weights; docs/results/fullsize_cost.md)."""
        negative = sampling.get("negative_prompt", "")
        negatives = [negative] * len(prompts) if isinstance(negative, str) else list(negative)
        with self.prompts_encoded_then_parked([*prompts, *negatives]):
            latents = self.sample(prompts, seeds, **sampling)
            with self.side_modules_on_device(vae_tiling=True, only=["vae"]):
                return self.decode(latents)

    @contextlib.contextmanager
    def prompts_encoded_then_parked(self, prompts: Sequence[str]) -> Iterator[None]:
        """Encode ``prompts`` once with only the text encoders on the denoiser's device (the embeddings stay in
        the prompt cache, so :meth:`encode_prompts` of them costs nothing later), then park every side module for
        the duration: a denoising phase (pseudo data, sample videos) holds the denoiser alone."""
        with self.side_modules_parked():
            with self.side_modules_on_device(only=self.text_encoder_names()):
                self.encode_prompts(list(dict.fromkeys(prompts)))
            yield

    @classmethod
    def _sites_for_switch(cls, denoiser: nn.Module, switch: Any) -> list[AttentionSite]:
        sites = cls.attention_sites_of(denoiser)
        if len(sites) != len(switch.adapters):
            raise ValueError(
                f"{cls.__name__}: the denoiser has {len(sites)} attention sites but the adapters cover "
                f"{len(switch.adapters)}; were they trained on a different model configuration?"
            )
        return sites

    @classmethod
    def install_adapter_processors(cls, denoiser: nn.Module, switch: Any) -> None:
        """Give every attention site a processor that applies ``switch``'s adapters and records concept
        maps (training needs the maps: they come from the layer's own q and k)."""
        sites = cls._sites_for_switch(denoiser, switch)
        for i, site in enumerate(sites):
            site.module.set_processor(cls.processor_class(switch, i))
        cls.install_context_hooks(denoiser, switch)

    @classmethod
    def adapt_attention_output(cls, output: Any, switch: Any, site_index: int) -> Any:
        """An attention module's output with adapter ``site_index`` applied to its video tokens.

        The family knows where those are; the default serves modules that return the video tokens
        ``[B, N, C]`` (Wan's cross-attention) or a tuple whose first element they are (CogVideoX and
        HunyuanVideo return ``(video, text)``).
        """
        if isinstance(output, tuple):
            return (switch.adapt(site_index, output[0]), *output[1:])
        return switch.adapt(site_index, output)

    @classmethod
    def install_context_hooks(cls, denoiser: nn.Module, switch: Any) -> None:
        """Hooks that keep ``switch.context`` current inside a stock pipeline, which knows nothing of the
        switch (none by default; ZeroScope tells it the number of frames)."""

    @classmethod
    def install_adapter_hooks(cls, denoiser: nn.Module, switch: Any) -> list[Any]:
        """Apply ``switch``'s adapters through forward hooks on the attention modules' outputs.

        The pipeline keeps its own attention processors, so whatever attention backend the user chose
        (``set_attention_backend``, FlashAttention, Sage, ...) keeps working; this is how exported adapters
        attach to a stock pipeline. Hooks installed earlier on ``denoiser`` are replaced. Returns the handles.
        """
        sites = cls._sites_for_switch(denoiser, switch)
        for handle in getattr(denoiser, "_t2v_unlearn_adapter_hooks", []):
            handle.remove()

        def hook_for(index: int) -> Callable[..., Any]:
            def hook(module: nn.Module, args: tuple, output: Any) -> Any:
                return cls.adapt_attention_output(output, switch, index)

            return hook

        handles = [site.module.register_forward_hook(hook_for(i)) for i, site in enumerate(sites)]
        denoiser._t2v_unlearn_adapter_hooks = handles
        cls.install_context_hooks(denoiser, switch)
        return handles

    @classmethod
    def remove_adapter_hooks(cls, denoiser: nn.Module) -> None:
        """Undo :meth:`install_adapter_hooks`: the output hooks and the context hooks are removed."""
        for handle in denoiser.__dict__.pop("_t2v_unlearn_adapter_hooks", []):
            handle.remove()
        cls.remove_context_hooks(denoiser)

    @classmethod
    def remove_context_hooks(cls, denoiser: nn.Module) -> None:
        """Undo :meth:`install_context_hooks` (nothing by default)."""

    def attach_switch(self, switch: Any) -> None:
        # a plain reference, not a submodule: the adapters belong to the method, and the backbone's
        # state_dict stays exactly the frozen weights
        object.__setattr__(self, "switch", switch)
        self.install_adapter_processors(self.denoiser, switch)

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str], cache: bool = True) -> PromptEmbedding:
        """Text conditioning for ``prompts``; each distinct prompt is encoded once per process (``cache=False``:
        encoded now and not kept, for searches that try thousands of throwaway prompts)."""
        prompts = list(prompts)
        if not prompts:
            raise ValueError("encode_prompts got an empty prompt list")
        if not cache:
            return self._encode(prompts).to(self.device)
        missing = list(dict.fromkeys(p for p in prompts if p not in self._prompt_cache))
        if missing:
            enc = self._encode(missing)
            for i, p in enumerate(missing):
                self._prompt_cache[p] = enc[i : i + 1].to("cpu")
            while len(self._prompt_cache) > self._prompt_cache_size:
                self._prompt_cache.popitem(last=False)
        return PromptEmbedding.cat([self._prompt_cache[p] for p in prompts]).to(self.device)

    # ------------------------------------------------------------------ text at the token-embedding level
    def _no_embedding_level(self, what: str) -> NotImplementedError:
        return NotImplementedError(
            f"{type(self).__name__} does not expose its text encoder at the token-embedding level ({what}); "
            "white-box prompt attacks (UnlearnDiffAtk, textual inversion) need it, black-box ones (Ring-A-Bell) "
            "do not. Fix: implement text_input_ids and encode_input_embeddings for this family (backbones/README.md)."
        )

    def text_input_ids(self, prompts: Sequence[str]) -> tuple[Tensor, Tensor | None]:
        """Token ids ``[B, L]`` (and the attention mask, or None where the family uses none) exactly as
        :meth:`_encode` tokenizes ``prompts``."""
        raise self._no_embedding_level("text_input_ids")

    def text_input_embeddings(self) -> nn.Embedding:
        """The text encoder's token-embedding table (row ``i`` embeds token id ``i``)."""
        get = getattr(self.text_encoder, "get_input_embeddings", None)
        if get is None:
            raise self._no_embedding_level("text_input_embeddings")
        return get()

    def encode_input_embeddings(self, inputs_embeds: Tensor, attention_mask: Tensor | None = None) -> PromptEmbedding:
        """Text conditioning from token embeddings ``[B, L, D]`` instead of ids: differentiable and not cached.
        ``encode_input_embeddings(text_input_embeddings()(ids), mask)`` equals ``encode_prompts`` of the prompts."""
        raise self._no_embedding_level("encode_input_embeddings")

    def text_tokens(self, prompt: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids and character offsets of ``prompt`` exactly as :meth:`_encode` tokenizes it."""
        enc = self.tokenizer(
            prompt,
            max_length=self.max_text_length,
            truncation=True,
            add_special_tokens=True,
            return_offsets_mapping=True,
        )
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]

    #: position of the first text token in the sequence ``_encode`` returns (non-zero when a family crops a
    #: prompt template off the front)
    text_token_offset: ClassVar[int] = 0

    def concept_token_indices(self, prompt: str, phrases: str | Sequence[str]) -> list[int]:
        """Indices (into the encoded text sequence) of the tokens that spell any of ``phrases`` in ``prompt``.

        Matching is case-insensitive on whole words; every occurrence counts. A phrase split into several
        tokens gives all of them. Raises :class:`ConceptNotInPromptError` when nothing matches, or when the
        match was truncated away by the text length limit.
        """
        if isinstance(phrases, str):
            phrases = [phrases]
        spans: list[tuple[int, int]] = []
        for phrase in phrases:
            if not phrase.strip():
                continue
            pattern = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in phrase.split()) + r"(?!\w)"
            spans += [m.span() for m in re.finditer(pattern, prompt, flags=re.IGNORECASE)]
        if not spans:
            raise ConceptNotInPromptError(
                f"none of the concept words {list(phrases)!r} occur in the prompt {prompt!r}; the concept mask "
                "needs them. Fix: give the words that name the concept in this prompt (prompt records' "
                "`concept_words`, or `concept_synonyms` in the data config), or set model.alpha=0 to train "
                "without localization."
            )
        _, offsets = self.text_tokens(prompt)
        idx = [
            i + self.text_token_offset
            for i, (s, e) in enumerate(offsets)
            if e > s and any(s < se and e > ss for ss, se in spans)
        ]
        if not idx:
            raise ConceptNotInPromptError(
                f"the concept words {list(phrases)!r} in {prompt!r} lie beyond the text encoder's "
                f"{self.max_text_length}-token limit; shorten the prompt or move the concept earlier."
            )
        return idx

    def concept_token_mask(self, prompts: Sequence[str], phrases: Sequence[Sequence[str]]) -> Tensor:
        """Bool ``[B, L]`` over the encoded text sequence, True at concept tokens of each prompt."""
        length = self.encode_prompts([prompts[0]]).hidden_states.shape[1]
        mask = torch.zeros(len(prompts), length, dtype=torch.bool)
        for b, (p, ph) in enumerate(zip(prompts, phrases)):
            mask[b, self.concept_token_indices(p, ph)] = True
        return mask

    def new_scheduler(self) -> Any:
        """A fresh scheduler (schedulers keep per-run state, so every sampling run gets its own)."""
        return type(self.scheduler).from_config(self.scheduler.config)

    def initial_noise(self, seeds: Sequence[int], num_frames: int, height: int, width: int) -> Tensor:
        """Per-seed Gaussian noise, generated on the CPU so that a seed gives the same video on any device."""
        shape = self.latent_shape(num_frames, height, width)
        noise = [torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
        return torch.stack(noise).to(self.device, self.dtype)

    def guidance_settings(self) -> dict[str, Any]:
        """Guidance options of the wrapper that change sampling beyond ``guidance_scale`` (e.g. HunyuanVideo's
        embedded guidance, CogVideoX's dynamic CFG); part of pseudo-data cache keys and of results."""
        return {}

    def guidance_scale_at(self, guidance_scale: float, step: int, t: Tensor, num_inference_steps: int) -> float:
        """The classifier-free guidance scale of sampler step ``step`` (timestep ``t``): constant here;
        CogVideoX's dynamic CFG overrides it."""
        return guidance_scale

    def guided_prediction(
        self, latents: Tensor, t: Tensor, cond: PromptEmbedding, uncond: PromptEmbedding, guidance_scale: float
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Unconditional, conditional and classifier-free-guided predictions in one batched call.

        The guided prediction is combined in float32, as diffusers does (``noise_pred = noise_pred.float()``
        before ``noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)``,
        diffusers/pipelines/cogvideo/pipeline_cogvideox.py:739-748, v0.42.1): in bfloat16 the difference of two
        close predictions loses most of its bits. The two predictions keep the model's dtype."""
        b = latents.shape[0]
        ts = t.reshape(-1).expand(b) if t.numel() == 1 else t
        pred = self.predict(torch.cat([latents, latents]), torch.cat([ts, ts]), PromptEmbedding.cat([uncond, cond]))
        pred_uncond, pred_cond = pred.chunk(2)
        uncond32, cond32 = pred_uncond.float(), pred_cond.float()
        return pred_uncond, pred_cond, uncond32 + guidance_scale * (cond32 - uncond32)

    @torch.no_grad()
    def sample(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        *,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        negative_prompt: str | Sequence[str] = "",
        cond: PromptEmbedding | None = None,
        uncond: PromptEmbedding | None = None,
        stop_at_step: int | None = None,
        on_step: Callable[[int, Tensor, Tensor, Tensor, Tensor], None] | None = None,
        cond_for_step: Callable[[int], tuple[PromptEmbedding, PromptEmbedding]] | None = None,
        progress: bool = False,
    ) -> Tensor:
        """Denoise per-seed noise with classifier-free guidance and the backbone's scheduler.

        ``stop_at_step=k`` returns the latent after ``k`` steps (``x_t`` for ``t = timesteps[k]``), which is
        how pseudo data is made. ``on_step(i, t, x_t, pred_uncond, pred_cond)`` sees every step before it is
        taken. ``cond_for_step(i)`` may replace the conditioning per step (SAFREE uses this).

        Raises:
            ValueError: a ``negative_prompt`` with ``guidance_scale`` 1, where ``v_uncond + 1·(v_cond − v_uncond)``
                is the conditional prediction and the negative prompt would have no effect.
        """
        d = self.defaults
        num_frames, height, width = num_frames or d.num_frames, height or d.height, width or d.width
        steps = num_inference_steps or d.num_inference_steps
        g = d.guidance_scale if guidance_scale is None else guidance_scale
        if len(prompts) != len(seeds):
            raise ValueError(f"sample got {len(prompts)} prompts but {len(seeds)} seeds")
        negatives = [negative_prompt] if isinstance(negative_prompt, str) else list(negative_prompt)
        if uncond is None and g == 1.0 and any(n.strip() for n in negatives):
            raise ValueError(
                f"{self.name}: negative_prompt={negatives[0]!r} has no effect at guidance_scale 1.0 (the guided "
                "prediction is then the conditional one). Fix: pass a classifier-free guidance scale > 1"
                + (
                    " (true CFG: this model is guidance-distilled; unlearn.methods.baselines.NegativePrompting "
                    "picks one)"
                    if self.guidance_distilled
                    else ""
                )
                + "."
            )
        if cond is None:
            cond = self.encode_prompts(prompts)
        if uncond is None:
            neg = [negative_prompt] * len(prompts) if isinstance(negative_prompt, str) else list(negative_prompt)
            uncond = self.encode_prompts(neg)
        scheduler = self.new_scheduler()
        scheduler.set_timesteps(steps, device=self.device)
        latents = self.initial_noise(seeds, num_frames, height, width) * getattr(scheduler, "init_noise_sigma", 1.0)
        timesteps = scheduler.timesteps
        iterator = enumerate(timesteps)
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, total=len(timesteps), desc=f"sampling {self.name}", leave=False)
        for i, t in iterator:
            if stop_at_step is not None and i >= stop_at_step:
                break
            c, u = cond_for_step(i) if cond_for_step is not None else (cond, uncond)
            x_in = scheduler.scale_model_input(latents, t) if hasattr(scheduler, "scale_model_input") else latents
            g_i = self.guidance_scale_at(g, i, t, steps)
            pred_uncond, pred_cond, guided = self.guided_prediction(x_in, t.to(self.device), c, u, g_i)
            if on_step is not None:
                on_step(i, t, latents, pred_uncond, pred_cond)
            # the step in float32 from the float32 guided prediction, the latents back in their dtype
            # (diffusers/pipelines/cogvideo/pipeline_cogvideox.py:752-763: `latents.to(prompt_embeds.dtype)`)
            latents = self.scheduler_step(scheduler, guided, t, latents).to(latents.dtype)
        return latents

    def scheduler_step(self, scheduler: Any, model_output: Tensor, t: Tensor, latents: Tensor) -> Tensor:
        return scheduler.step(model_output, t, latents, return_dict=False)[0]

    def noisy_target(self, x0: Tensor, noise: Tensor, timesteps: Tensor) -> tuple[Tensor, Tensor]:
        """``(x_t, target)``: ``x0`` noised to ``timesteps`` ``[B]`` by the backbone's scheduler, and what
        :meth:`predict` should return there (v, ε, or the flow velocity ``noise − x0``). The denoising loss of
        a white-box attack is ``‖predict(x_t, t, c) − target‖²``."""
        t = timesteps.reshape(-1).to(x0.device)
        if self.prediction_type == "flow":
            # flow matching: x_t = (1 − σ) x0 + σ ε with σ = t / T (the timestep the denoiser is given)
            sigma = (t.float() / self.scheduler.config.num_train_timesteps).view(-1, *[1] * (x0.dim() - 1))
            return ((1 - sigma) * x0 + sigma * noise).to(x0.dtype), (noise - x0)
        # from the training schedule itself: a multistep scheduler's add_noise reads the sigmas of its last
        # set_timesteps call and is wrong before one
        a = self.scheduler.alphas_cumprod.to(x0.device, torch.float32)[t.long()].view(-1, *[1] * (x0.dim() - 1))
        x_t = (a.sqrt() * x0.float() + (1 - a).sqrt() * noise.float()).to(x0.dtype)
        if self.prediction_type == "v_prediction":
            return x_t, (a.sqrt() * noise.float() - (1 - a).sqrt() * x0.float()).to(x0.dtype)
        return x_t, noise

    def timesteps_for(self, num_inference_steps: int) -> Tensor:
        scheduler = self.new_scheduler()
        scheduler.set_timesteps(num_inference_steps)
        return scheduler.timesteps.clone()

    def fingerprint(self) -> str:
        """A short id of the exact weights, for cache keys: family, source and a digest of every tensor's
        shape and leading bytes (cheap even for billions of parameters)."""
        h = hashlib.sha256(json.dumps([self.name, self.source, str(self.dtype)]).encode())
        for module in (self.denoiser, self.text_encoder):
            if module is None:
                continue
            for key, tensor in module.state_dict().items():
                flat = tensor.detach().reshape(-1)
                head = flat[:64].float().cpu()
                h.update(key.encode())
                h.update(str(tuple(tensor.shape)).encode())
                h.update(head.numpy().tobytes())
                h.update(f"{flat.float().sum().item():.6e}".encode())
        return h.hexdigest()[:16]


def _module_device(module: nn.Module) -> torch.device | None:
    tensor = next(module.parameters(), None)
    return None if tensor is None else tensor.device


def _safetensors_problem(path: Path) -> str | None:
    """What is wrong with a safetensors file's framing (None: header and size agree)."""
    size = path.stat().st_size
    if size < 8:
        return f"truncated ({size} bytes; a safetensors file starts with an 8-byte header length)"
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n <= 0 or 8 + n > size:
            return f"truncated or not a safetensors file (header of {n} bytes in a {size}-byte file)"
        try:
            header = json.loads(f.read(n))
        except (ValueError, UnicodeDecodeError):
            return "malformed header (not JSON)"
    try:
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (KeyError, TypeError, ValueError, IndexError):
        return "malformed header (tensor entries without data_offsets)"
    if 8 + n + end != size:
        return f"truncated: the header describes {8 + n + end} bytes, the file has {size}"
    return None


def frames_to_uint8(video: Tensor) -> Tensor:
    """``[B, C, F, H, W]`` in [-1, 1] → uint8 ``[B, F, H, W, C]``."""
    video = (video.float().clamp(-1, 1) + 1) * 127.5
    return video.round().to(torch.uint8).permute(0, 2, 3, 4, 1).contiguous()


def _names_local_path(pretrained: str) -> bool:
    """``pretrained`` names a local folder rather than a hub id: it exists, or it is written as a path (diffusers'
    own rule is "an existing folder"; a path that does not exist must fail as one, not be fetched or ignored)."""
    text = str(pretrained)
    return Path(text).expanduser().exists() or text.startswith(("/", ".", "~"))
