"""Wan 2.1 text-to-video (1.3B and 14B): UMT5-XXL text encoder, ``WanTransformer3DModel``, ``AutoencoderKLWan``,
flow matching (``UniPCMultistepScheduler`` with flow sigmas, as the diffusers folders ship), ``WanPipeline``.

Neither paper used Wan; it is here as the modern DiT family with *cross-attention* conditioning. Every
``WanTransformerBlock`` has a self-attention over video tokens (``attn1``, rotary) and a cross-attention
(``attn2``) whose queries are all video tokens (``[B, F·H·W, C]`` after 1×2×2 patching, frame-major) and whose
keys are the 512 text tokens only (the pipeline zero-pads the UMT5 states past each prompt's length and passes
no mask, so the padded keys take part in the softmax; the concept map does the same). The adapter is added to
the output of ``attn2``; the concept map comes from its real q and k (RMS-normed across heads, no rotary).

Wan 2.2 (two experts, ``transformer_2`` and ``boundary_ratio``; or the TI2V-5B per-token timesteps) is not
covered by this wrapper: loading such a folder raises a clear error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .attention import concept_attention_probs
from .base import AttentionSite, PromptEmbedding, SamplingDefaults, VideoBackbone, frames_to_uint8
from .common import check_weights_folder, hub_load_error, is_local_path, tiny_t5_tokenizer, resolve_dtype
from .registry import register_backbone

#: ``Wan-AI/Wan2.1-T2V-*-Diffusers`` ``scheduler/scheduler_config.json`` (UniPC with flow sigmas, shift 3)
SCHEDULER_CONFIG: dict[str, Any] = dict(
    num_train_timesteps=1000, prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0,
    solver_order=2, predict_x0=True, solver_type="bh2", lower_order_final=True, final_sigmas_type="zero",
    timestep_spacing="linspace",
)

TINY_TRANSFORMER_CONFIG: dict[str, Any] = dict(
    patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
    text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
    rope_max_seq_len=32,
)

FULL_DEFAULTS = {
    "1.3b": SamplingDefaults(num_frames=81, height=480, width=832, num_inference_steps=50, guidance_scale=5.0),
    "14b": SamplingDefaults(num_frames=81, height=720, width=1280, num_inference_steps=50, guidance_scale=5.0),
}
TINY_DEFAULTS = SamplingDefaults(num_frames=9, height=64, width=64, num_inference_steps=4, guidance_scale=5.0)
TEXT_MAX_LENGTH = 512
TINY_TEXT_MAX_LENGTH = 16

WEIGHTS_LAYOUT = {
    "model_index.json": "pipeline index",
    "transformer": "WanTransformer3DModel",
    "text_encoder": "UMT5EncoderModel",
    "tokenizer": "UMT5 tokenizer",
    "vae": "AutoencoderKLWan",
    "scheduler": "scheduler config",
}


class WanUnlearnAttnProcessor:
    """diffusers' ``WanAttnProcessor`` for the cross-attention ``attn2`` plus the two hooks: the concept map from
    the real normed q (video) and k (text) and the adapter on the video tokens leaving the layer."""

    def __init__(self, controller: Any, site_index: int) -> None:
        self.controller = controller
        self.site_index = site_index

    def __call__(
        self,
        attn: nn.Module,
        hidden_states: Tensor,
        encoder_hidden_states: Tensor | None = None,
        attention_mask: Tensor | None = None,
        rotary_emb: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        from diffusers.models.attention_dispatch import dispatch_attention_fn
        from diffusers.models.transformers.transformer_wan import _get_added_kv_projections, _get_qkv_projections


        if rotary_emb is not None or encoder_hidden_states is None:
            raise ValueError("WanUnlearnAttnProcessor serves the cross-attention attn2 (text keys, no rotary)")
        encoder_hidden_states_img = None
        if attn.add_k_proj is not None:  # I2V: image tokens first, then the 512 text tokens
            image_context_length = encoder_hidden_states.shape[1] - TEXT_MAX_LENGTH
            encoder_hidden_states_img = encoder_hidden_states[:, :image_context_length]
            encoder_hidden_states = encoder_hidden_states[:, image_context_length:]

        query, key, value = _get_qkv_projections(attn, hidden_states, encoder_hidden_states)
        query = attn.norm_q(query).unflatten(2, (attn.heads, -1))  # [B, N, H, D]
        key = attn.norm_k(key).unflatten(2, (attn.heads, -1))
        value = value.unflatten(2, (attn.heads, -1))

        ctl = self.controller
        if ctl is not None and ctl.wants_concept_map:
            b, n = query.shape[:2]
            key_valid = attention_mask.reshape(b, -1, key.shape[1])[:, 0].bool() if attention_mask is not None else None
            with torch.no_grad():
                probs = concept_attention_probs(
                    query.transpose(1, 2), key.transpose(1, 2), ctl.concept_tokens, query.shape[-1] ** -0.5,
                    key_padding_mask=key_valid,
                )
            frames = ctl.context.get("frames", 1)
            ctl.record_concept_map(self.site_index, probs.view(b, frames, n // frames))

        hidden_states_img = None
        if encoder_hidden_states_img is not None:
            key_img, value_img = _get_added_kv_projections(attn, encoder_hidden_states_img)
            key_img = attn.norm_added_k(key_img).unflatten(2, (attn.heads, -1))
            value_img = value_img.unflatten(2, (attn.heads, -1))
            hidden_states_img = dispatch_attention_fn(query, key_img, value_img, attn_mask=None, dropout_p=0.0, is_causal=False)
            hidden_states_img = hidden_states_img.flatten(2, 3).type_as(query)

        hidden_states = dispatch_attention_fn(query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False)
        hidden_states = hidden_states.flatten(2, 3).type_as(query)
        if hidden_states_img is not None:
            hidden_states = hidden_states + hidden_states_img
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if ctl is not None:
            hidden_states = ctl.adapt(self.site_index, hidden_states)
        return hidden_states


def _load_scheduler(pretrained: str):
    import diffusers

    config = diffusers.UniPCMultistepScheduler.load_config(pretrained, subfolder="scheduler")
    return getattr(diffusers, config.get("_class_name", "UniPCMultistepScheduler")).from_config(config)


def _check_single_expert(pretrained: str) -> None:
    from diffusers import DiffusionPipeline

    index = DiffusionPipeline.load_config(pretrained)
    if (index.get("transformer_2") or [None])[0] is not None or index.get("expand_timesteps"):
        raise NotImplementedError(
            f"{pretrained!r} is a Wan 2.2 pipeline (two experts or per-token timesteps); the wan2.1 backbones "
            "wrap a single WanTransformer3DModel. Use a Wan 2.1 T2V folder."
        )


@register_backbone("wan2.1-t2v-1.3b", hub_id="Wan-AI/Wan2.1-T2V-1.3B-Diffusers", variant="1.3b")
@register_backbone("wan2.1-t2v-14b", hub_id="Wan-AI/Wan2.1-T2V-14B-Diffusers", variant="14b")
class WanBackbone(VideoBackbone):
    """Wan 2.1 T2V wrapper (flow-matching velocity ``ε − x_0``). Latents are ``[B, C, F, H, W]``."""

    prediction_type = "flow"
    processor_class = WanUnlearnAttnProcessor
    token_layout = "cross: video queries [B, F*H*W, C] (frame-major), keys = text tokens only (attn2)"

    def __init__(self, *args: Any, vae_scale_factor_spatial: int = 8, vae_scale_factor_temporal: int = 4, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.vae_scale_factor_spatial = vae_scale_factor_spatial
        self.vae_scale_factor_temporal = vae_scale_factor_temporal

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(
        cls,
        pretrained: str | None = None,
        tiny: bool = False,
        torch_dtype: str = "bfloat16",
        hub_id: str = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        variant: str = "1.3b",
        seed: int = 0,
        max_text_length: int | None = None,
    ) -> WanBackbone:
        """Real weights (``pretrained``: hub id or local diffusers folder; default ``hub_id``) or a tiny random
        model (``tiny=True``)."""
        dtype = resolve_dtype(torch_dtype)
        if tiny and pretrained is None:
            return cls.tiny(seed=seed, torch_dtype=dtype)
        return cls.from_pretrained(pretrained or hub_id, torch_dtype=dtype, variant=variant, max_text_length=max_text_length)

    @classmethod
    def from_pretrained(cls, pretrained: str, torch_dtype: torch.dtype = torch.bfloat16, variant: str = "1.3b",
                        max_text_length: int | None = None) -> WanBackbone:
        from diffusers import AutoencoderKLWan, WanTransformer3DModel
        from transformers import AutoTokenizer, UMT5EncoderModel

        if is_local_path(pretrained):
            check_weights_folder(pretrained, WEIGHTS_LAYOUT, cls.__name__)
        try:
            _check_single_expert(pretrained)
            tokenizer = AutoTokenizer.from_pretrained(pretrained, subfolder="tokenizer")
            text_encoder = UMT5EncoderModel.from_pretrained(pretrained, subfolder="text_encoder", torch_dtype=torch_dtype)
            transformer = WanTransformer3DModel.from_pretrained(pretrained, subfolder="transformer", torch_dtype=torch_dtype)
            # the pipeline keeps the Wan VAE in float32 (its examples load it so); decoding is not trained
            vae = AutoencoderKLWan.from_pretrained(pretrained, subfolder="vae", torch_dtype=torch.float32)
            scheduler = _load_scheduler(pretrained)
        except OSError as err:
            if is_local_path(pretrained):
                raise
            raise hub_load_error(cls.__name__, pretrained, err) from err
        full = transformer.config.num_layers > 8
        return cls(
            transformer, scheduler, text_encoder, tokenizer, vae,
            defaults=FULL_DEFAULTS.get(variant, FULL_DEFAULTS["1.3b"]) if full else TINY_DEFAULTS,
            source=str(pretrained),
            max_text_length=max_text_length or (TEXT_MAX_LENGTH if full else TINY_TEXT_MAX_LENGTH),
            vae_scale_factor_spatial=vae.config.scale_factor_spatial,
            vae_scale_factor_temporal=vae.config.scale_factor_temporal,
        )

    @classmethod
    def tiny(cls, seed: int = 0, torch_dtype: torch.dtype = torch.float32) -> WanBackbone:
        """A random Wan with diffusers' test-sized configs (2 blocks, UMT5 with 2 layers, 3-level VAE)."""
        from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanTransformer3DModel
        from transformers import UMT5Config, UMT5EncoderModel

        torch.manual_seed(seed)
        tokenizer = tiny_t5_tokenizer(max_length=TINY_TEXT_MAX_LENGTH)
        text_encoder = UMT5EncoderModel(UMT5Config(
            vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
            relative_attention_num_buckets=8, dropout_rate=0.0, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id,
        ))
        transformer = WanTransformer3DModel(**TINY_TRANSFORMER_CONFIG)
        vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True])
        scheduler = UniPCMultistepScheduler(**SCHEDULER_CONFIG)
        backbone = cls(
            transformer, scheduler, text_encoder, tokenizer, vae, defaults=TINY_DEFAULTS, source=f"tiny-wan-seed{seed}",
            max_text_length=TINY_TEXT_MAX_LENGTH, vae_scale_factor_spatial=8, vae_scale_factor_temporal=4,
        )
        return backbone.to(torch_dtype)

    def as_pipeline(self):
        """A stock diffusers ``WanPipeline`` sharing this backbone's components (call it with
        ``max_sequence_length=backbone.max_text_length``)."""
        from diffusers import WanPipeline

        return WanPipeline(
            tokenizer=self.tokenizer, text_encoder=self.text_encoder, vae=self.vae, transformer=self.denoiser,
            scheduler=self.new_scheduler(),
        )

    def save_pretrained(self, path: str) -> None:
        self.as_pipeline().save_pretrained(path, safe_serialization=True)

    # ------------------------------------------------------------------ contract
    @classmethod
    def attention_sites_of(cls, denoiser: nn.Module) -> list[AttentionSite]:
        dim = denoiser.config.num_attention_heads * denoiser.config.attention_head_dim
        return [AttentionSite(f"blocks.{i}.attn2", block.attn2, dim) for i, block in enumerate(denoiser.blocks)]

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, ...]:
        s = self.vae_scale_factor_spatial
        _, ph, pw = self.denoiser.config.patch_size
        if height % (s * ph) or width % (s * pw):
            raise ValueError(f"height and width must be multiples of {s * ph} for {self.name}; got {height}x{width}")
        if (num_frames - 1) % self.vae_scale_factor_temporal:
            raise ValueError(f"num_frames must be 4k+1 for {self.name} (the VAE keeps the first frame); got {num_frames}")
        frames = (num_frames - 1) // self.vae_scale_factor_temporal + 1
        return (self.denoiser.config.in_channels, frames, height // s, width // s)

    @staticmethod
    def _clean(prompt: str) -> str:
        from diffusers.pipelines.wan.pipeline_wan import prompt_clean

        return prompt_clean(prompt)

    def text_input_ids(self, prompts: Sequence[str]) -> tuple[Tensor, Tensor | None]:
        enc = self.tokenizer(
            [self._clean(p) for p in prompts], padding="max_length", max_length=self.max_text_length, truncation=True,
            add_special_tokens=True, return_attention_mask=True, return_tensors="pt",
        )
        return enc.input_ids, enc.attention_mask

    def _encode(self, prompts: list[str]) -> PromptEmbedding:
        ids, mask = self.text_input_ids(prompts)
        device = next(self.text_encoder.parameters()).device
        return self._masked(self.text_encoder(ids.to(device), mask.to(device)).last_hidden_state, mask.to(device))

    def encode_input_embeddings(self, inputs_embeds: Tensor, attention_mask: Tensor | None = None) -> PromptEmbedding:
        if attention_mask is None:
            raise ValueError(f"{self.name}: encode_input_embeddings needs the attention mask from text_input_ids")
        mask = attention_mask.to(inputs_embeds.device)
        return self._masked(self.text_encoder(inputs_embeds=inputs_embeds, attention_mask=mask).last_hidden_state, mask)

    def _masked(self, hidden: Tensor, mask: Tensor) -> PromptEmbedding:
        hidden = hidden * mask[..., None].to(hidden.dtype)  # the pipeline zero-pads past each prompt's length
        return PromptEmbedding(hidden.to(self.dtype), mask)

    def text_tokens(self, prompt: str) -> tuple[list[int], list[tuple[int, int]]]:
        return super().text_tokens(self._clean(prompt))

    def concept_token_indices(self, prompt: str, phrases: str | Any) -> list[int]:
        # the text encoder sees the cleaned prompt (ftfy, html unescape, collapsed whitespace); match in it
        return super().concept_token_indices(self._clean(prompt), phrases)

    def predict(self, latents: Tensor, timesteps: Tensor, cond: PromptEmbedding) -> Tensor:
        if latents.dim() != 5:
            raise ValueError(f"{self.name} latents must be [B, C, F, H, W]; got {tuple(latents.shape)}")
        b, _, f = latents.shape[:3]
        if self.controller is not None:
            self.controller.context["frames"] = f // self.denoiser.config.patch_size[0]
        timesteps = timesteps.reshape(-1).expand(b) if timesteps.numel() == 1 else timesteps
        return self.denoiser(
            hidden_states=latents.to(self.dtype), timestep=timesteps.to(latents.device),
            encoder_hidden_states=cond.hidden_states.to(self.dtype), return_dict=False,
        )[0]

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        cfg = self.vae.config
        vae_dtype = next(self.vae.parameters()).dtype
        mean = torch.tensor(cfg.latents_mean).view(1, cfg.z_dim, 1, 1, 1).to(latents.device, vae_dtype)
        std = torch.tensor(cfg.latents_std).view(1, cfg.z_dim, 1, 1, 1).to(latents.device, vae_dtype)
        z = latents.to(vae_dtype) * std + mean
        return frames_to_uint8(self.vae.decode(z, return_dict=False)[0])
