"""CogVideoX (2B and 5B): T5 text encoder, ``CogVideoXTransformer3DModel``, ``AutoencoderKLCogVideoX``,
``CogVideoXDDIMScheduler`` with v-prediction.

Text and video meet in the joint attention of every ``CogVideoXBlock``: text tokens come first, rotary
embeddings (5B) apply to the video part only, one softmax over all keys. The adapter is added to the video
tokens leaving that attention; the concept map is computed from the real (normed, rotated) q and k.

**Dynamic CFG.** ``use_dynamic_cfg=True`` (a loading option) makes the guidance scale of each step the stock
pipeline's ``1 + g·(1 − cos(π·((n − t)/n)^5))/2`` (``CogVideoXPipeline(use_dynamic_cfg=True)``, ``n`` the number
of inference steps, ``t`` the timestep value), as THUDM's CogVideoX-5B demo samples; it applies to pseudo data
and to generation alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import HookedAttnProcessor, attention_recording_concept_map
from .base import AttentionSite, PromptEmbedding, SamplingSettings, VideoBackbone, frames_to_uint8
from .common import tiny_t5_encoder, tiny_t5_tokenizer
from .loading import Component
from .registry import register_backbone

#: CogVideoX-2B/5B scheduler settings (their `scheduler/scheduler_config.json`)
SCHEDULER_CONFIG: dict[str, dict[str, Any]] = {
    "2b": dict(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        num_train_timesteps=1000,
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        set_alpha_to_one=True,
        snr_shift_scale=3.0,
        steps_offset=0,
        timestep_spacing="trailing",
    ),
}
SCHEDULER_CONFIG["5b"] = {**SCHEDULER_CONFIG["2b"], "snr_shift_scale": 1.0}  # the one key the 5B file changes

#: tiny random transformers for tests: the 2B flavour uses sincos positions, the 5B flavour rotary ones
TINY_TRANSFORMER_CONFIG: dict[str, dict[str, Any]] = {
    "2b": dict(
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=4,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=32,
        num_layers=2,
        sample_width=4,
        sample_height=4,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=16,
    ),
}
# rotary embeddings split the head dim in 3 even parts: 16 is the smallest that works
TINY_TRANSFORMER_CONFIG["5b"] = {
    **TINY_TRANSFORMER_CONFIG["2b"],
    "attention_head_dim": 16,
    "use_rotary_positional_embeddings": True,
}

FULL_DEFAULTS = SamplingSettings(num_frames=49, height=480, width=720, num_inference_steps=50, guidance_scale=6.0)
TINY_DEFAULTS = SamplingSettings(num_frames=9, height=32, width=32, num_inference_steps=4, guidance_scale=6.0)


class CogVideoXUnlearnAttnProcessor(HookedAttnProcessor):
    """diffusers' ``CogVideoXAttnProcessor2_0`` plus two hooks: the concept map (from the normed, rotated
    q and k, chunked) and the adapter on the video tokens that leave the layer."""

    # Copied from diffusers.models.attention_processor.CogVideoXAttnProcessor2_0.__call__ with F.scaled_dot_product_attention->attention
    def __call__(
        self,
        attn: nn.Module,
        hidden_states: Tensor,
        encoder_hidden_states: Tensor,
        attention_mask: Tensor | None = None,
        image_rotary_emb: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        text_seq_length = encoder_hidden_states.size(1)

        hidden_states = torch.cat([encoder_hidden_states, hidden_states], dim=1)

        batch_size, sequence_length, _ = hidden_states.shape

        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
            attention_mask = attention_mask.view(batch_size, attn.heads, -1, attention_mask.shape[-1])

        query = attn.to_q(hidden_states)
        key = attn.to_k(hidden_states)
        value = attn.to_v(hidden_states)

        inner_dim = key.shape[-1]
        head_dim = inner_dim // attn.heads

        query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)

        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        # Apply RoPE if needed
        if image_rotary_emb is not None:
            from diffusers.models.embeddings import apply_rotary_emb

            query[:, :, text_seq_length:] = apply_rotary_emb(query[:, :, text_seq_length:], image_rotary_emb)
            if not attn.is_cross_attention:
                key[:, :, text_seq_length:] = apply_rotary_emb(key[:, :, text_seq_length:], image_rotary_emb)

        # t2v-unlearn: begin concept-map hook
        # [text | video] keys, one softmax over all of them; the map is over the video queries. When the switch
        # wants it, the attention call below gives it too: the fused kernel's per-row log-sum-exp and the logits of
        # the concept columns (backbones/attention.py), no second attention pass
        attention = F.scaled_dot_product_attention
        switch = self.switch
        if switch is not None and switch.wants_concept_map:
            num_video = sequence_length - text_seq_length
            frames = switch.context.get("frames", 1)
            attention = attention_recording_concept_map(
                attention,
                switch.concept_key_mask(text_first=True, num_video=num_video),
                lambda probs: switch.record_concept_map(
                    self.site_index, probs.view(batch_size, frames, num_video // frames)
                ),
                query_rows=slice(text_seq_length, None),
            )
        # t2v-unlearn: end concept-map hook

        hidden_states = attention(query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False)

        hidden_states = hidden_states.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)

        # linear proj
        hidden_states = attn.to_out[0](hidden_states)
        # dropout
        hidden_states = attn.to_out[1](hidden_states)

        encoder_hidden_states, hidden_states = hidden_states.split(
            [text_seq_length, hidden_states.size(1) - text_seq_length], dim=1
        )
        # t2v-unlearn: begin adapter hook
        if self.switch is not None:
            hidden_states = self.switch.adapt(self.site_index, hidden_states)
        # t2v-unlearn: end adapter hook
        return hidden_states, encoder_hidden_states


@register_backbone("cogvideox-2b", hub_id="THUDM/CogVideoX-2b", variant="2b")
@register_backbone("cogvideox-5b", hub_id="THUDM/CogVideoX-5b", variant="5b")
class CogVideoXBackbone(VideoBackbone):
    """CogVideoX wrapper (v-prediction). Build with ``build_backbone("cogvideox-2b", ...)`` or :meth:`load`.

    Loading options (``build_backbone`` / ``load`` keywords): ``variant`` (``"2b"``/``"5b"``: the tiny model's
    flavour, sincos or rotary positions), ``max_text_length`` (default: the transformer's
    ``max_text_seq_length``, 226 for the real models) and ``use_dynamic_cfg`` (module docstring; default off, as
    ``CogVideoXPipeline``).
    """

    prediction_type = "v_prediction"
    processor_class = CogVideoXUnlearnAttnProcessor
    token_layout = "joint: [text | video], text first"
    pipeline_class = "CogVideoXPipeline"
    tiny_source = "tiny-{variant}-seed{seed}"
    components = {
        "model_index.json": Component("pipeline index"),
        "tokenizer": Component("T5 tokenizer", "transformers.AutoTokenizer"),
        "text_encoder": Component("T5EncoderModel", "transformers.T5EncoderModel", dtype=True),
        "transformer": Component("CogVideoXTransformer3DModel", "diffusers.CogVideoXTransformer3DModel", dtype=True),
        "vae": Component("AutoencoderKLCogVideoX", "diffusers.AutoencoderKLCogVideoX", dtype=True),
        "scheduler": Component("scheduler config", "diffusers.CogVideoXDDIMScheduler"),
    }

    def __init__(
        self,
        *args: Any,
        vae_scale_factor_spatial: int = 8,
        vae_scale_factor_temporal: int = 4,
        vae_scaling_factor: float = 1.15258426,
        use_dynamic_cfg: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.use_dynamic_cfg = bool(use_dynamic_cfg)
        self.vae_scale_factor_spatial = vae_scale_factor_spatial
        self.vae_scale_factor_temporal = vae_scale_factor_temporal
        self.vae_scaling_factor = vae_scaling_factor
        self._rotary_cache: dict[tuple, tuple[Tensor, Tensor]] = {}

    # ------------------------------------------------------------------ construction (what differs)
    @classmethod
    def tiny_components(cls, variant: str = "2b") -> dict[str, Any]:
        """Random parts with diffusers' test-sized configs (runs on CPU in milliseconds)."""
        from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXTransformer3DModel

        tokenizer = tiny_t5_tokenizer(max_length=16)
        return {
            "tokenizer": tokenizer,
            "text_encoder": tiny_t5_encoder(tokenizer),
            "transformer": CogVideoXTransformer3DModel(**TINY_TRANSFORMER_CONFIG[variant]),
            "vae": AutoencoderKLCogVideoX(
                in_channels=3,
                out_channels=3,
                down_block_types=("CogVideoXDownBlock3D",) * 4,
                up_block_types=("CogVideoXUpBlock3D",) * 4,
                block_out_channels=(8, 8, 8, 8),
                latent_channels=4,
                layers_per_block=1,
                norm_num_groups=2,
                temporal_compression_ratio=4,
            ),
            "scheduler": CogVideoXDDIMScheduler(**SCHEDULER_CONFIG[variant]),
        }

    @classmethod
    def init_kwargs(
        cls, parts: Mapping[str, Any], *, max_text_length: int | None = None, use_dynamic_cfg: bool = False
    ) -> dict[str, Any]:
        transformer, vae = parts["transformer"], parts["vae"]
        return dict(
            use_dynamic_cfg=use_dynamic_cfg,
            defaults=FULL_DEFAULTS if transformer.config.num_layers > 8 else TINY_DEFAULTS,
            max_text_length=max_text_length or transformer.config.max_text_seq_length,
            vae_scale_factor_spatial=2 ** (len(vae.config.block_out_channels) - 1),
            vae_scale_factor_temporal=vae.config.temporal_compression_ratio,
            vae_scaling_factor=vae.config.scaling_factor,
        )

    # ------------------------------------------------------------------ contract
    @classmethod
    def attention_sites_of(cls, denoiser: nn.Module) -> list[AttentionSite]:
        dim = denoiser.config.num_attention_heads * denoiser.config.attention_head_dim
        return [
            AttentionSite(f"transformer_blocks.{i}.attn1", block.attn1, dim)
            for i, block in enumerate(denoiser.transformer_blocks)
        ]

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, ...]:
        frames = (num_frames - 1) // self.vae_scale_factor_temporal + 1
        channels = self.denoiser.config.in_channels
        s = self.vae_scale_factor_spatial
        if height % (s * self.denoiser.config.patch_size) or width % (s * self.denoiser.config.patch_size):
            raise ValueError(
                f"height and width must be multiples of {s * self.denoiser.config.patch_size} for {self.name}; "
                f"got {height}x{width}"
            )
        return (frames, channels, height // s, width // s)

    def check_video_size(
        self, num_frames: int, height: int, width: int, keys: Sequence[str] = ("num_frames", "height", "width")
    ) -> None:
        """CogVideoX's VAE keeps the first frame and compresses the rest by ``vae_scale_factor_temporal``:
        ``num_frames`` must be ``k·t + 1`` (4k+1: 9, 13, ..., 49); sizes are multiples of 16 px."""
        super().check_video_size(num_frames, height, width, keys)
        t = self.vae_scale_factor_temporal
        if (num_frames - 1) % t:
            near = [n for n in ((num_frames - 1) // t * t + 1, (num_frames - 1) // t * t + 1 + t) if n >= 1]
            raise ValueError(
                f"{keys[0]} must be {t}k+1 for {self.name} (the VAE keeps the first frame and compresses "
                f"the others {t}x); got {num_frames}. Fix: use {' or '.join(map(str, near))}"
            )

    def text_input_ids(self, prompts: Sequence[str]) -> tuple[Tensor, Tensor | None]:
        ids = self.tokenizer(
            list(prompts),
            padding="max_length",
            max_length=self.max_text_length,
            truncation=True,
            add_special_tokens=True,
            return_tensors="pt",
        ).input_ids
        return ids, None  # the pipeline passes no attention mask to T5

    def _encode(self, prompts: list[str]) -> PromptEmbedding:
        ids, _ = self.text_input_ids(prompts)
        device = next(self.text_encoder.parameters()).device
        hidden = self.text_encoder(ids.to(device))[0]
        return PromptEmbedding(hidden.to(self.dtype))

    def encode_input_embeddings(self, inputs_embeds: Tensor, attention_mask: Tensor | None = None) -> PromptEmbedding:
        hidden = self.text_encoder(inputs_embeds=inputs_embeds, attention_mask=attention_mask)[0]
        return PromptEmbedding(hidden.to(self.dtype))

    def _rotary(self, grid_h: int, grid_w: int, frames: int) -> tuple[Tensor, Tensor]:
        from diffusers.models.embeddings import get_3d_rotary_pos_embed
        from diffusers.pipelines.cogvideo.pipeline_cogvideox import get_resize_crop_region_for_grid

        key = (grid_h, grid_w, frames, str(self.device))
        if key not in self._rotary_cache:
            cfg = self.denoiser.config
            p, p_t = cfg.patch_size, cfg.patch_size_t
            base_w, base_h = cfg.sample_width // p, cfg.sample_height // p
            if p_t is None:
                crops = get_resize_crop_region_for_grid((grid_h, grid_w), base_w, base_h)
                cos, sin = get_3d_rotary_pos_embed(
                    embed_dim=cfg.attention_head_dim,
                    crops_coords=crops,
                    grid_size=(grid_h, grid_w),
                    temporal_size=frames,
                    device=self.device,
                )
            else:
                cos, sin = get_3d_rotary_pos_embed(
                    embed_dim=cfg.attention_head_dim,
                    crops_coords=None,
                    grid_size=(grid_h, grid_w),
                    temporal_size=(frames + p_t - 1) // p_t,
                    grid_type="slice",
                    max_size=(base_h, base_w),
                    device=self.device,
                )
            self._rotary_cache[key] = (cos, sin)
        return self._rotary_cache[key]

    def guidance_settings(self) -> dict[str, Any]:
        return {"use_dynamic_cfg": self.use_dynamic_cfg}

    def initial_noise(self, seeds: Sequence[int], num_frames: int, height: int, width: int) -> Tensor:
        """Per-seed noise as the base class draws it; each seed's generator is kept for the stochastic
        ``CogVideoXDPMScheduler`` steps of the same sampling run (the stock pipeline draws the initial latents
        and every DPM step's noise from one generator)."""
        shape = self.latent_shape(num_frames, height, width)
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        noise = torch.stack([torch.randn(shape, generator=g) for g in gens])
        self._step_generators = gens
        return noise.to(self.device, self.dtype)

    def scheduler_step(self, scheduler: Any, model_output: Tensor, t: Tensor, latents: Tensor) -> Tensor:
        """``CogVideoXDPMScheduler`` steps need the previous step's x0 prediction and timestep (as the stock
        pipeline's loop passes them) and draw noise: from each seed's generator, as the stock pipeline with
        ``generator=torch.Generator().manual_seed(seed)`` does, so a seed gives the same video. Other schedulers
        step as usual."""
        from diffusers import CogVideoXDPMScheduler

        if not isinstance(scheduler, CogVideoXDPMScheduler):
            return super().scheduler_step(scheduler, model_output, t, latents)
        gens = getattr(self, "_step_generators", None)
        if gens is None or len(gens) != latents.shape[0]:
            raise RuntimeError("CogVideoXDPMScheduler steps need the seeds' generators: sample through .sample()")
        old, prev_t = getattr(scheduler, "_unlearn_state", (None, None))
        # a list of generators: one draw per batch row from its own generator (diffusers' randn_tensor)
        out, pred_x0 = scheduler.step(model_output, old, t, prev_t, latents, generator=list(gens), return_dict=False)
        scheduler._unlearn_state = (pred_x0, t)
        return out

    def guidance_scale_at(self, guidance_scale: float, step: int, t: Tensor, num_inference_steps: int) -> float:
        """The stock ``CogVideoXPipeline`` formula when ``use_dynamic_cfg`` (timestep value ``t``, as there)."""
        if not self.use_dynamic_cfg:
            return guidance_scale
        n = num_inference_steps
        return 1 + guidance_scale * ((1 - math.cos(math.pi * ((n - float(t)) / n) ** 5.0)) / 2)

    def predict(self, latents: Tensor, timesteps: Tensor, cond: PromptEmbedding) -> Tensor:
        if latents.dim() != 5:
            raise ValueError(f"{self.name} latents must be [B, F, C, H, W]; got {tuple(latents.shape)}")
        b, f, _, h, w = latents.shape
        cfg = self.denoiser.config
        p_t = cfg.patch_size_t or 1
        if self.switch is not None:
            self.switch.context["frames"] = (f + p_t - 1) // p_t
        rotary = (
            self._rotary(h // cfg.patch_size, w // cfg.patch_size, f) if cfg.use_rotary_positional_embeddings else None
        )
        timesteps = timesteps.reshape(-1).expand(b) if timesteps.numel() == 1 else timesteps
        return self.denoiser(
            hidden_states=latents.to(self.dtype),
            encoder_hidden_states=cond.hidden_states.to(self.dtype),
            timestep=timesteps.to(latents.device),
            image_rotary_emb=rotary,
            return_dict=False,
        )[0]

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        z = latents.permute(0, 2, 1, 3, 4).to(next(self.vae.parameters()).dtype) / self.vae_scaling_factor
        video = self.vae.decode(z).sample
        return frames_to_uint8(video)
