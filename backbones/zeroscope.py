"""ZeroScope v2 (ModelScope text-to-video lineage): CLIP ViT-H text encoder, ``UNet3DConditionModel``, a 2D
``AutoencoderKL`` applied per frame, ε-prediction DDPM (``TextToVideoSDPipeline``).

Text meets video only in the **cross-attention** (``attn2``) of the spatial transformer blocks of the UNet
(down, mid and up blocks; the temporal transformers are video-only self-attention and are not sites). There the
queries are the video tokens of *one frame* with the frames folded into the batch (``[B·F, H·W, C]``, index
``b·F + f``) and the keys are the 77 CLIP tokens only (no mask). Sites have different widths (320/640/1280 in
the real model) and resolutions, so each :class:`~unlearn.backbones.base.AttentionSite` carries its own ``video_dim``.

The processor unfolds the frames before calling the switch: the adapter sees ``[B, F·H·W, C]`` (frame-major,
the same order as the other families) and the concept map is ``[B, F, H·W]``; the switch's
``concept_tokens`` (``[B, 77]``) is repeated per frame for the cross-attention keys. The number of frames comes
from ``switch.context["frames"]``, which :meth:`predict` sets and which a forward pre-hook on the UNet also
sets (so adapters attached to a stock ``TextToVideoSDPipeline`` get it too).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import HookedAttnProcessor, attention_recording_concept_map
from .base import AttentionSite, PromptEmbedding, SamplingSettings, VideoBackbone, frames_to_uint8
from .common import tiny_clip_text_encoder, tiny_clip_tokenizer
from .loading import Component, scheduler_from_folder
from .registry import register_backbone

#: ``cerspense/zeroscope_v2_576w`` ``scheduler/scheduler_config.json`` (a DDIMScheduler)
SCHEDULER_CONFIG: dict[str, Any] = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    num_train_timesteps=1000,
    prediction_type="epsilon",
    set_alpha_to_one=False,
    steps_offset=1,
)
#: the model card swaps in DPM-Solver++ (``DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)``)
DEFAULT_SCHEDULER_CLASS = "DPMSolverMultistepScheduler"

TINY_UNET_CONFIG: dict[str, Any] = dict(
    block_out_channels=(8, 16),
    layers_per_block=1,
    sample_size=8,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock3D", "CrossAttnDownBlock3D"),
    up_block_types=("CrossAttnUpBlock3D", "CrossAttnUpBlock3D"),
    cross_attention_dim=16,
    attention_head_dim=4,
    norm_num_groups=4,
)

FULL_DEFAULTS = SamplingSettings(num_frames=24, height=320, width=576, num_inference_steps=40, guidance_scale=9.0)
TINY_DEFAULTS = SamplingSettings(num_frames=4, height=64, width=64, num_inference_steps=4, guidance_scale=9.0)
CLIP_MAX_LENGTH = 77
#: frames decoded per VAE call (the VAE is 2D; the pipeline decodes all frames at once)
DECODE_CHUNK = 8

_SITE_PATTERN = re.compile(
    r"^(down_blocks|mid_block|up_blocks)(?:\.(\d+))?\.attentions\.(\d+)\.transformer_blocks\.(\d+)\.attn2$"
)
_BLOCK_ORDER = {"down_blocks": 0, "mid_block": 1, "up_blocks": 2}


class ZeroScopeUnlearnAttnProcessor(HookedAttnProcessor):
    """diffusers' ``AttnProcessor2_0`` for the UNet's cross-attention plus the two hooks: the concept map from the
    real q (video tokens of one frame) and k (CLIP tokens), and the adapter on the attention output, with frames
    unfolded from the batch so the switch sees ``[B, F·H·W, C]`` and ``[B, F, H·W]``."""

    # Copied from diffusers.models.attention_processor.AttnProcessor2_0.__call__ with F.scaled_dot_product_attention->attention
    def __call__(
        self,
        attn: nn.Module,
        hidden_states: Tensor,
        encoder_hidden_states: Tensor | None = None,
        attention_mask: Tensor | None = None,
        temb: Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Tensor:
        # t2v-unlearn: begin imports
        # what diffusers' module imports at its top; here on use, so that `import backbones` stays light
        from diffusers.utils import deprecate
        # t2v-unlearn: end imports

        if len(args) > 0 or kwargs.get("scale", None) is not None:  # noqa: SIM910 (diffusers' line, kept as copied)
            deprecation_message = "The `scale` argument is deprecated and will be ignored. Please remove it, as passing it will raise an error in the future. `scale` should directly be passed while calling the underlying pipeline component i.e., via `cross_attention_kwargs`."
            deprecate("scale", "1.0.0", deprecation_message)

        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)

        input_ndim = hidden_states.ndim

        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)

        batch_size, sequence_length, _ = (
            hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        )

        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
            # scaled_dot_product_attention expects attention_mask shape to be
            # (batch, heads, source_length, target_length)
            attention_mask = attention_mask.view(batch_size, attn.heads, -1, attention_mask.shape[-1])

        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        query = attn.to_q(hidden_states)

        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)

        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)

        inner_dim = key.shape[-1]
        head_dim = inner_dim // attn.heads

        query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)

        key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)

        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        # t2v-unlearn: begin concept-map hook
        # queries are the video tokens of one frame (frames folded into the batch), keys the CLIP tokens only. When
        # the switch wants the map, the attention call below gives it too (the fused kernel's log-sum-exp)
        attention = F.scaled_dot_product_attention
        switch = self.switch
        if switch is not None and switch.wants_concept_map:
            ct = switch.concept_tokens  # [B, L]
            if batch_size % ct.shape[0]:
                raise ValueError(f"concept tokens for {ct.shape[0]} videos do not divide the folded batch {batch_size}")
            frames = batch_size // ct.shape[0]
            attention = attention_recording_concept_map(
                attention,
                ct.repeat_interleave(frames, dim=0),
                lambda probs: switch.record_concept_map(self.site_index, probs.view(ct.shape[0], frames, -1)),
            )
        # t2v-unlearn: end concept-map hook

        # the output of sdp = (batch, num_heads, seq_len, head_dim)
        # TODO: add support for attn.scale when we move to Torch 2.1
        hidden_states = attention(query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False)

        hidden_states = hidden_states.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)
        hidden_states = hidden_states.to(query.dtype)

        # linear proj
        hidden_states = attn.to_out[0](hidden_states)
        # dropout
        hidden_states = attn.to_out[1](hidden_states)

        # t2v-unlearn: begin adapter hook
        # frames unfolded from the batch: the adapter sees [B, F*H*W, C], frame-major as in the other families (the
        # family's one implementation, shared with the output hooks of attach_adapters)
        if self.switch is not None:
            hidden_states = ZeroScopeBackbone.adapt_attention_output(hidden_states, self.switch, self.site_index)
        # t2v-unlearn: end adapter hook

        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)

        if attn.residual_connection:
            hidden_states = hidden_states + residual

        hidden_states = hidden_states / attn.rescale_output_factor

        return hidden_states


def _load_scheduler(pretrained: str, entry: str, torch_dtype: torch.dtype, options: Any):
    """The folder's scheduler config in the ``scheduler_class`` option's class (``None``: the class it names)."""
    return scheduler_from_folder(pretrained, entry, options["scheduler_class"], fallback="DDIMScheduler")


@register_backbone("zeroscope", hub_id="cerspense/zeroscope_v2_576w")
class ZeroScopeBackbone(VideoBackbone):
    """ZeroScope v2 wrapper (ε-prediction). Latents are ``[B, C, F, H, W]`` (no temporal compression).

    Loading options: ``scheduler_class`` (the folder's scheduler config in this diffusers class; default
    DPM-Solver++, as the model card uses; ``None`` keeps the class the folder names) and ``max_text_length``
    (CLIP takes exactly 77 tokens: only 77 or unset).
    """

    prediction_type = "epsilon"
    processor_class = ZeroScopeUnlearnAttnProcessor
    token_layout = "cross: video queries of one frame ([B*F, H*W, C]), keys = 77 CLIP text tokens only"
    pipeline_class = "TextToVideoSDPipeline"
    denoiser_entry = "unet"
    tiny_source = "tiny-zeroscope-seed{seed}"
    components = {
        "model_index.json": Component("pipeline index"),
        "tokenizer": Component("CLIP tokenizer", "transformers.CLIPTokenizer"),
        "text_encoder": Component("CLIPTextModel", "transformers.CLIPTextModel", dtype=True),
        "unet": Component("UNet3DConditionModel", "diffusers.UNet3DConditionModel", dtype=True),
        "vae": Component("AutoencoderKL", "diffusers.AutoencoderKL", dtype=True),
        "scheduler": Component("scheduler config", _load_scheduler),
    }

    def __init__(
        self, *args: Any, vae_scale_factor: int = 8, vae_scaling_factor: float = 0.18215, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.vae_scale_factor = vae_scale_factor
        self.vae_scaling_factor = vae_scaling_factor

    # ------------------------------------------------------------------ construction (what differs)
    @classmethod
    def tiny_components(cls, scheduler_class: str | None = DEFAULT_SCHEDULER_CLASS) -> dict[str, Any]:
        """Random ZeroScope-shaped parts (diffusers' test-sized UNet3D with two cross-attention levels)."""
        import diffusers
        from diffusers import AutoencoderKL, UNet3DConditionModel

        tokenizer = tiny_clip_tokenizer(max_length=CLIP_MAX_LENGTH)
        return {
            "tokenizer": tokenizer,
            "text_encoder": tiny_clip_text_encoder(tokenizer, hidden_size=16, max_length=CLIP_MAX_LENGTH),
            "unet": UNet3DConditionModel(**TINY_UNET_CONFIG),
            "vae": AutoencoderKL(
                in_channels=3,
                out_channels=3,
                down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4,
                block_out_channels=(8, 8, 8, 8),
                latent_channels=4,
                layers_per_block=1,
                norm_num_groups=2,
                sample_size=64,
            ),
            "scheduler": getattr(diffusers, scheduler_class or "DDIMScheduler").from_config(
                diffusers.DDIMScheduler(**SCHEDULER_CONFIG).config
            ),
        }

    @classmethod
    def init_kwargs(cls, parts: Mapping[str, Any], *, max_text_length: int | None = None) -> dict[str, Any]:
        if max_text_length not in (None, CLIP_MAX_LENGTH):
            raise ValueError(
                f"ZeroScope's CLIP text encoder takes exactly {CLIP_MAX_LENGTH} tokens; got max_text_length="
                f"{max_text_length}. Fix: leave max_text_length unset."
            )
        vae = parts["vae"]
        return dict(
            defaults=FULL_DEFAULTS if parts["unet"].config.block_out_channels[0] >= 128 else TINY_DEFAULTS,
            max_text_length=CLIP_MAX_LENGTH,
            vae_scale_factor=2 ** (len(vae.config.block_out_channels) - 1),
            vae_scaling_factor=vae.config.scaling_factor,
        )

    # ------------------------------------------------------------------ contract
    @classmethod
    def attention_sites_of(cls, denoiser: nn.Module) -> list[AttentionSite]:
        """Every spatial cross-attention, in forward order (down blocks, mid block, up blocks)."""
        found = []
        for name, module in denoiser.named_modules():
            m = _SITE_PATTERN.match(name)
            if m:
                key = (_BLOCK_ORDER[m.group(1)], int(m.group(2) or 0), int(m.group(3)), int(m.group(4)))
                found.append((key, AttentionSite(name, module, module.to_out[0].out_features)))
        return [site for _, site in sorted(found, key=lambda kv: kv[0])]

    @classmethod
    def install_context_hooks(cls, denoiser: nn.Module, switch: Any) -> None:
        """A forward pre-hook on the UNet that tells the switch the number of frames of every call (also
        inside a stock pipeline, which knows nothing of the switch)."""
        old = getattr(denoiser, "_t2v_unlearn_frames_hook", None)
        if old is not None:
            old.remove()

        def set_frames(module: nn.Module, args: tuple, kwargs: dict) -> None:
            sample = args[0] if args else kwargs.get("sample")
            if sample is not None and sample.dim() == 5:
                switch.context["frames"] = int(sample.shape[2])

        denoiser._t2v_unlearn_frames_hook = denoiser.register_forward_pre_hook(set_frames, with_kwargs=True)

    @classmethod
    def remove_context_hooks(cls, denoiser: nn.Module) -> None:
        old = denoiser.__dict__.pop("_t2v_unlearn_frames_hook", None)
        if old is not None:
            old.remove()

    @classmethod
    def adapt_attention_output(cls, output: Tensor, switch: Any, site_index: int) -> Tensor:
        """The UNet folds frames into the batch (``[B·F, H·W, C]``): unfold them so the adapter sees
        ``[B, F·H·W, C]`` like every other family's, then fold back."""
        frames = switch.context.get("frames") or 1
        batch_frames, tokens, channels = output.shape
        if batch_frames % frames:
            frames = 1
        unfolded = output.reshape(batch_frames // frames, frames * tokens, channels)
        return switch.adapt(site_index, unfolded).reshape(batch_frames, tokens, channels)

    @classmethod
    def install_adapter_hooks(cls, denoiser: nn.Module, switch: Any) -> list[Any]:
        # the output hook sees the attention's final output: exact only where no residual or rescale follows
        # the projection, as in the UNet's transformer blocks
        for site in cls.attention_sites_of(denoiser):
            if site.module.residual_connection or site.module.rescale_output_factor != 1.0:
                raise NotImplementedError(
                    f"{site.name}: an attention with a residual connection or output rescale "
                    "cannot take the adapters through an output hook"
                )
        return super().install_adapter_hooks(denoiser, switch)

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, ...]:
        s = self.vae_scale_factor
        levels = 2 ** (len(self.denoiser.config.block_out_channels) - 1)
        if height % (s * levels) or width % (s * levels):
            raise ValueError(
                f"height and width must be multiples of {s * levels} for {self.name}; got {height}x{width}"
            )
        return (self.denoiser.config.in_channels, num_frames, height // s, width // s)

    def _encode(self, prompts: list[str]) -> PromptEmbedding:
        enc = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.max_text_length,
            truncation=True,
            return_tensors="pt",
        )
        device = next(self.text_encoder.parameters()).device
        mask = None
        if getattr(self.text_encoder.config, "use_attention_mask", False):
            mask = enc.attention_mask.to(device)
        hidden = self.text_encoder(enc.input_ids.to(device), attention_mask=mask)[0]
        return PromptEmbedding(hidden.to(self.dtype))

    def predict(self, latents: Tensor, timesteps: Tensor, cond: PromptEmbedding) -> Tensor:
        if latents.dim() != 5:
            raise ValueError(f"{self.name} latents must be [B, C, F, H, W]; got {tuple(latents.shape)}")
        b, _, f = latents.shape[:3]
        if self.switch is not None:
            self.switch.context["frames"] = f
        timesteps = timesteps.reshape(-1).expand(b) if timesteps.numel() == 1 else timesteps
        return self.denoiser(
            latents.to(self.dtype),
            timesteps.to(latents.device),
            encoder_hidden_states=cond.hidden_states.to(self.dtype),
            return_dict=False,
        )[0]

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        b, c, f, h, w = latents.shape
        z = latents.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w).to(next(self.vae.parameters()).dtype)
        z = z / self.vae_scaling_factor
        frames = torch.cat([self.vae.decode(z[i : i + DECODE_CHUNK]).sample for i in range(0, b * f, DECODE_CHUNK)])
        video = frames.reshape(b, f, *frames.shape[1:]).permute(0, 2, 1, 3, 4)
        return frames_to_uint8(video)
