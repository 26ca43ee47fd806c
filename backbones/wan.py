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

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .attention import HookedAttnProcessor, attention_recording_concept_map
from .base import AttentionSite, PromptEmbedding, SamplingSettings, VideoBackbone, frames_to_uint8
from .common import tiny_t5_encoder, tiny_t5_tokenizer
from .loading import Component, scheduler_from_folder
from .registry import register_backbone

#: ``Wan-AI/Wan2.1-T2V-*-Diffusers`` ``scheduler/scheduler_config.json`` (UniPC with flow sigmas, shift 3)
SCHEDULER_CONFIG: dict[str, Any] = dict(
    num_train_timesteps=1000,
    prediction_type="flow_prediction",
    use_flow_sigmas=True,
    flow_shift=3.0,
    solver_order=2,
    predict_x0=True,
    solver_type="bh2",
    lower_order_final=True,
    final_sigmas_type="zero",
    timestep_spacing="linspace",
)

TINY_TRANSFORMER_CONFIG: dict[str, Any] = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=2,
    attention_head_dim=12,
    in_channels=16,
    out_channels=16,
    text_dim=32,
    freq_dim=256,
    ffn_dim=32,
    num_layers=2,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    rope_max_seq_len=32,
)

FULL_DEFAULTS = {
    "1.3b": SamplingSettings(num_frames=81, height=480, width=832, num_inference_steps=50, guidance_scale=5.0),
    "14b": SamplingSettings(num_frames=81, height=720, width=1280, num_inference_steps=50, guidance_scale=5.0),
}
TINY_DEFAULTS = SamplingSettings(num_frames=9, height=64, width=64, num_inference_steps=4, guidance_scale=5.0)
TEXT_MAX_LENGTH = 512
TINY_TEXT_MAX_LENGTH = 16


class WanUnlearnAttnProcessor(HookedAttnProcessor):
    """diffusers' ``WanAttnProcessor`` for the cross-attention ``attn2`` plus the two hooks: the concept map from
    the real normed q (video) and k (text) and the adapter on the video tokens leaving the layer."""

    _attention_backend = None
    _parallel_config = None

    # Copied from diffusers.models.transformers.transformer_wan.WanAttnProcessor.__call__ with dispatch_attention_fn->attention
    def __call__(
        self,
        attn: nn.Module,
        hidden_states: Tensor,
        encoder_hidden_states: Tensor | None = None,
        attention_mask: Tensor | None = None,
        rotary_emb: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        # t2v-unlearn: begin imports
        # what diffusers' module imports at its top; here on use, so that `import backbones` stays light
        from diffusers.models.attention_dispatch import dispatch_attention_fn
        from diffusers.models.transformers.transformer_wan import _get_added_kv_projections, _get_qkv_projections
        # t2v-unlearn: end imports

        # t2v-unlearn: begin cross-attention guard
        if rotary_emb is not None or encoder_hidden_states is None:
            raise ValueError("WanUnlearnAttnProcessor serves the cross-attention attn2 (text keys, no rotary)")
        # t2v-unlearn: end cross-attention guard

        encoder_hidden_states_img = None
        if attn.add_k_proj is not None:
            # 512 is the context length of the text encoder, hardcoded for now
            image_context_length = encoder_hidden_states.shape[1] - 512
            encoder_hidden_states_img = encoder_hidden_states[:, :image_context_length]
            encoder_hidden_states = encoder_hidden_states[:, image_context_length:]

        query, key, value = _get_qkv_projections(attn, hidden_states, encoder_hidden_states)

        query = attn.norm_q(query)
        key = attn.norm_k(key)

        query = query.unflatten(2, (attn.heads, -1))
        key = key.unflatten(2, (attn.heads, -1))
        value = value.unflatten(2, (attn.heads, -1))

        if rotary_emb is not None:

            def apply_rotary_emb(
                hidden_states: torch.Tensor,
                freqs_cos: torch.Tensor,
                freqs_sin: torch.Tensor,
            ):
                x1, x2 = hidden_states.unflatten(-1, (-1, 2)).unbind(-1)
                cos = freqs_cos[..., 0::2]
                sin = freqs_sin[..., 1::2]
                out = torch.empty_like(hidden_states)
                out[..., 0::2] = x1 * cos - x2 * sin
                out[..., 1::2] = x1 * sin + x2 * cos
                return out.type_as(hidden_states)

            query = apply_rotary_emb(query, *rotary_emb)
            key = apply_rotary_emb(key, *rotary_emb)

        # t2v-unlearn: begin concept-map hook
        # video queries [B, N, H, D] on the text keys only (I2V's image keys are left alone); padded keys masked if
        # the layer masks them. When the switch wants the map, the attention call over the text keys gives it
        # too (the fused kernel's log-sum-exp)
        attention = dispatch_attention_fn
        switch = self.switch
        if switch is not None and switch.wants_concept_map:
            b, n = query.shape[:2]
            frames = switch.context.get("frames", 1)
            attention = attention_recording_concept_map(
                attention,
                switch.concept_tokens,
                lambda probs: switch.record_concept_map(self.site_index, probs.view(b, frames, n // frames)),
                heads_first=False,
            )
        # t2v-unlearn: end concept-map hook

        # I2V task
        hidden_states_img = None
        if encoder_hidden_states_img is not None:
            key_img, value_img = _get_added_kv_projections(attn, encoder_hidden_states_img)
            key_img = attn.norm_added_k(key_img)

            key_img = key_img.unflatten(2, (attn.heads, -1))
            value_img = value_img.unflatten(2, (attn.heads, -1))

            hidden_states_img = attention(
                query,
                key_img,
                value_img,
                attn_mask=None,
                dropout_p=0.0,
                is_causal=False,
                backend=self._attention_backend,
                # Reference: https://github.com/huggingface/diffusers/pull/12909
                parallel_config=None,
            )
            hidden_states_img = hidden_states_img.flatten(2, 3)
            hidden_states_img = hidden_states_img.type_as(query)

        hidden_states = attention(
            query,
            key,
            value,
            attn_mask=attention_mask,
            dropout_p=0.0,
            is_causal=False,
            backend=self._attention_backend,
            # Reference: https://github.com/huggingface/diffusers/pull/12909
            parallel_config=(self._parallel_config if encoder_hidden_states is None else None),
        )
        hidden_states = hidden_states.flatten(2, 3)
        hidden_states = hidden_states.type_as(query)

        if hidden_states_img is not None:
            hidden_states = hidden_states + hidden_states_img

        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        # t2v-unlearn: begin adapter hook
        if self.switch is not None:
            hidden_states = self.switch.adapt(self.site_index, hidden_states)
        # t2v-unlearn: end adapter hook
        return hidden_states


def _refuse_two_experts(pretrained: str, entry: str, torch_dtype: torch.dtype, options: Any) -> dict[str, Any]:
    """The pipeline index, loaded first: Wan 2.2 folders (two experts or per-token timesteps) are refused."""
    from diffusers import DiffusionPipeline

    index = DiffusionPipeline.load_config(pretrained)
    if (index.get("transformer_2") or [None])[0] is not None or index.get("expand_timesteps"):
        raise NotImplementedError(
            f"{pretrained!r} is a Wan 2.2 pipeline (two experts or per-token timesteps); the wan2.1 backbones "
            "wrap a single WanTransformer3DModel. Use a Wan 2.1 T2V folder."
        )
    return index


def _load_scheduler(pretrained: str, entry: str, torch_dtype: torch.dtype, options: Any):
    return scheduler_from_folder(pretrained, entry, None, fallback="UniPCMultistepScheduler")


@register_backbone("wan2.1-t2v-1.3b", hub_id="Wan-AI/Wan2.1-T2V-1.3B-Diffusers", variant="1.3b")
@register_backbone("wan2.1-t2v-14b", hub_id="Wan-AI/Wan2.1-T2V-14B-Diffusers", variant="14b")
class WanBackbone(VideoBackbone):
    """Wan 2.1 T2V wrapper (flow-matching velocity ``ε − x_0``). Latents are ``[B, C, F, H, W]``.

    Loading options: ``variant`` (``"1.3b"``/``"14b"``: the native sampling size of real weights) and
    ``max_text_length`` (UMT5 tokens; default 512, 16 for tiny models).
    """

    prediction_type = "flow"
    processor_class = WanUnlearnAttnProcessor
    token_layout = "cross: video queries [B, F*H*W, C] (frame-major), keys = text tokens only (attn2)"
    pipeline_class = "WanPipeline"
    tiny_source = "tiny-wan-seed{seed}"
    components = {
        "model_index.json": Component("pipeline index", _refuse_two_experts),
        "tokenizer": Component("UMT5 tokenizer", "transformers.AutoTokenizer"),
        "text_encoder": Component("UMT5EncoderModel", "transformers.UMT5EncoderModel", dtype=True),
        "transformer": Component("WanTransformer3DModel", "diffusers.WanTransformer3DModel", dtype=True),
        # the pipeline keeps the Wan VAE in float32 (its examples load it so); decoding is not trained
        "vae": Component("AutoencoderKLWan", "diffusers.AutoencoderKLWan", dtype=torch.float32),
        "scheduler": Component("scheduler config", _load_scheduler),
    }

    def __init__(
        self, *args: Any, vae_scale_factor_spatial: int = 8, vae_scale_factor_temporal: int = 4, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.vae_scale_factor_spatial = vae_scale_factor_spatial
        self.vae_scale_factor_temporal = vae_scale_factor_temporal

    # ------------------------------------------------------------------ construction (what differs)
    @classmethod
    def tiny_components(cls) -> dict[str, Any]:
        """Random parts with diffusers' test-sized configs (2 blocks, UMT5 with 2 layers, 3-level VAE)."""
        from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanTransformer3DModel

        tokenizer = tiny_t5_tokenizer(max_length=TINY_TEXT_MAX_LENGTH)
        return {
            "tokenizer": tokenizer,
            "text_encoder": tiny_t5_encoder(tokenizer, "UMT5EncoderModel"),
            "transformer": WanTransformer3DModel(**TINY_TRANSFORMER_CONFIG),
            "vae": AutoencoderKLWan(
                base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
            ),
            "scheduler": UniPCMultistepScheduler(**SCHEDULER_CONFIG),
        }

    @classmethod
    def init_kwargs(
        cls, parts: Mapping[str, Any], *, variant: str = "1.3b", max_text_length: int | None = None
    ) -> dict[str, Any]:
        full = parts["transformer"].config.num_layers > 8
        vae = parts["vae"]
        return dict(
            defaults=FULL_DEFAULTS.get(variant, FULL_DEFAULTS["1.3b"]) if full else TINY_DEFAULTS,
            max_text_length=max_text_length or (TEXT_MAX_LENGTH if full else TINY_TEXT_MAX_LENGTH),
            vae_scale_factor_spatial=vae.config.scale_factor_spatial,
            vae_scale_factor_temporal=vae.config.scale_factor_temporal,
        )

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
            raise ValueError(
                f"num_frames must be 4k+1 for {self.name} (the VAE keeps the first frame); got {num_frames}"
            )
        frames = (num_frames - 1) // self.vae_scale_factor_temporal + 1
        return (self.denoiser.config.in_channels, frames, height // s, width // s)

    @staticmethod
    def _clean(prompt: str) -> str:
        from diffusers.pipelines.wan.pipeline_wan import prompt_clean

        return prompt_clean(prompt)

    def text_input_ids(self, prompts: Sequence[str]) -> tuple[Tensor, Tensor | None]:
        enc = self.tokenizer(
            [self._clean(p) for p in prompts],
            padding="max_length",
            max_length=self.max_text_length,
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
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
        if self.switch is not None:
            self.switch.context["frames"] = f // self.denoiser.config.patch_size[0]
        timesteps = timesteps.reshape(-1).expand(b) if timesteps.numel() == 1 else timesteps
        return self.denoiser(
            hidden_states=latents.to(self.dtype),
            timestep=timesteps.to(latents.device),
            encoder_hidden_states=cond.hidden_states.to(self.dtype),
            return_dict=False,
        )[0]

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        cfg = self.vae.config
        vae_dtype = next(self.vae.parameters()).dtype
        mean = torch.tensor(cfg.latents_mean).view(1, cfg.z_dim, 1, 1, 1).to(latents.device, vae_dtype)
        std = torch.tensor(cfg.latents_std).view(1, cfg.z_dim, 1, 1, 1).to(latents.device, vae_dtype)
        z = latents.to(vae_dtype) * std + mean
        return frames_to_uint8(self.vae.decode(z, return_dict=False)[0])
