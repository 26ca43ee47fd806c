"""HunyuanVideo: Llama (LLaVA-Llama-3) + CLIP text encoders, ``HunyuanVideoTransformer3DModel``,
``AutoencoderKLHunyuanVideo``, ``FlowMatchEulerDiscreteScheduler`` (shift 7), flow-matching velocity.

Text and video meet in the joint attention of the 20 dual-stream blocks (``transformer_blocks.*.attn``: video
and text have their own projections, then one softmax over ``[video | text]``) and of the 40 single-stream
blocks (``single_transformer_blocks.*.attn``: one projection over the concatenated ``[video | text]``). In both,
video tokens come first and text tokens LAST; rotary embeddings apply to the video part only; padded text keys
are masked out. The adapter is added to the video tokens leaving every one of these attentions; the concept map
is computed from the real (RMS-normed, rotated) q and k with the same key mask.

**Prompt template.** Like the stock pipeline, prompts are wrapped in a Llama chat template, encoded, and the
template's first ``crop_start`` tokens are cropped off (95 for the real tokenizer); ``text_tokens`` maps the
cropped sequence back to the prompt's characters, so ``concept_token_indices`` points into the sequence the
transformer sees. The CLIP text encoder gives only the pooled embedding (``PromptEmbedding.pooled``).

**Guidance.** HunyuanVideo is guidance-distilled: the stock pipeline generates with an *embedded* guidance value
(``guidance=6.0``, fed to the transformer as a conditioning input) and no true classifier-free guidance. Here the
embedded value is a fixed property of the wrapper (``embedded_guidance_scale``, used by every ``predict``), and
``guidance_scale`` in :class:`~unlearn.backbones.base.SamplingSettings`/``sample`` is the *true* CFG scale on top
(default 1.0 = the stock pipeline's behaviour, ``true_cfg_scale``). :meth:`guided_prediction` always evaluates
the empty-prompt prediction too, because the negatively guided target needs ``v(x_t, ∅, t)``: with the
embedded guidance held at the same value in both terms, ``v_neg = v(∅) − η·(v(c) − v(∅))`` is the distilled
model's own conditional direction, scaled by ``η``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .attention import HookedAttnProcessor, attention_recording_concept_map
from .base import AttentionSite, PromptEmbedding, SamplingSettings, VideoBackbone, frames_to_uint8
from .common import tiny_clip_text_encoder, tiny_clip_tokenizer, tiny_llama_tokenizer
from .loading import Component
from .registry import register_backbone

#: the stock pipeline's template (diffusers ``pipeline_hunyuan_video.DEFAULT_PROMPT_TEMPLATE``)
DEFAULT_PROMPT_TEMPLATE = {
    "template": (
        "<|start_header_id|>system<|end_header_id|>\n\nDescribe the video by detailing the following aspects: "
        "1. The main content and theme of the video."
        "2. The color, shape, size, texture, quantity, text, and spatial relationships of the objects."
        "3. Actions, events, behaviors temporal relationships, physical movement changes of the objects."
        "4. background environment, light, style and atmosphere."
        "5. camera angles, movements, and transitions used in the video:<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>"
    ),
    "crop_start": 95,
}
#: a short template of the same shape for tiny models (the real one would be spelled in characters)
TINY_PROMPT_TEMPLATE = {
    "template": "<|start_header_id|>system<|end_header_id|>\n\nDescribe the video.<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>",
    "crop_start": None,  # computed from the tokenizer
}

#: ``hunyuanvideo-community/HunyuanVideo`` ``scheduler/scheduler_config.json``
SCHEDULER_CONFIG: dict[str, Any] = dict(num_train_timesteps=1000, shift=7.0)

#: diffusers' test-sized transformer (one more block of each kind, so both block types are exercised twice)
TINY_TRANSFORMER_CONFIG: dict[str, Any] = dict(
    in_channels=4,
    out_channels=4,
    num_attention_heads=2,
    attention_head_dim=10,
    num_layers=2,
    num_single_layers=2,
    num_refiner_layers=1,
    patch_size=1,
    patch_size_t=1,
    guidance_embeds=True,
    text_embed_dim=16,
    pooled_projection_dim=8,
    rope_axes_dim=(2, 4, 4),
)

FULL_DEFAULTS = SamplingSettings(num_frames=129, height=720, width=1280, num_inference_steps=50, guidance_scale=1.0)
TINY_DEFAULTS = SamplingSettings(num_frames=9, height=32, width=32, num_inference_steps=4, guidance_scale=1.0)
#: the stock pipeline's ``guidance_scale`` (embedded, distilled guidance)
DEFAULT_EMBEDDED_GUIDANCE = 6.0
#: the stock pipeline takes the Llama hidden state 3 from the end (``num_hidden_layers_to_skip=2``)
LLAMA_LAYERS_TO_SKIP = 2
CLIP_MAX_LENGTH = 77


def _pipeline_flow_scheduler_class():
    from diffusers import FlowMatchEulerDiscreteScheduler

    class HunyuanPipelineFlowMatchScheduler(FlowMatchEulerDiscreteScheduler):
        """``set_timesteps(n)`` exactly as ``HunyuanVideoPipeline`` calls it: ``sigmas = linspace(1, 0, n + 1)[:-1]``,
        then the scheduler's shift (plain ``set_timesteps(n)`` of the stock class gives a different schedule)."""

        def set_timesteps(self, num_inference_steps=None, device=None, sigmas=None, mu=None, timesteps=None):
            if sigmas is None and timesteps is None and num_inference_steps is not None:
                sigmas = np.linspace(1.0, 0.0, num_inference_steps + 1)[:-1]
                num_inference_steps = None
            return super().set_timesteps(num_inference_steps, device=device, sigmas=sigmas, mu=mu, timesteps=timesteps)

    return HunyuanPipelineFlowMatchScheduler


class HunyuanVideoUnlearnAttnProcessor(HookedAttnProcessor):
    """diffusers' ``HunyuanVideoAttnProcessor2_0`` plus the two hooks: the concept map (real normed, rotated q
    and k, text keys LAST, padded text keys masked as in the layer) and the adapter on the video tokens leaving
    the attention. Serves the dual-stream (``add_q_proj`` set) and single-stream blocks alike."""

    _attention_backend = None
    _parallel_config = None

    # Copied from diffusers.models.transformers.transformer_hunyuan_video.HunyuanVideoAttnProcessor2_0.__call__ with dispatch_attention_fn->attention
    def __call__(
        self,
        attn: nn.Module,
        hidden_states: Tensor,
        encoder_hidden_states: Tensor | None = None,
        attention_mask: Tensor | None = None,
        image_rotary_emb: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        # t2v-unlearn: begin imports
        # what diffusers' module imports at its top; here on use, so that `import backbones` stays light
        from diffusers.models.attention_dispatch import dispatch_attention_fn
        # t2v-unlearn: end imports

        if attn.add_q_proj is None and encoder_hidden_states is not None:
            hidden_states = torch.cat([hidden_states, encoder_hidden_states], dim=1)

        # 1. QKV projections
        query = attn.to_q(hidden_states)
        key = attn.to_k(hidden_states)
        value = attn.to_v(hidden_states)

        query = query.unflatten(2, (attn.heads, -1))
        key = key.unflatten(2, (attn.heads, -1))
        value = value.unflatten(2, (attn.heads, -1))

        # 2. QK normalization
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        # 3. Rotational positional embeddings applied to latent stream
        if image_rotary_emb is not None:
            from diffusers.models.embeddings import apply_rotary_emb

            if attn.add_q_proj is None and encoder_hidden_states is not None:
                query = torch.cat(
                    [
                        apply_rotary_emb(
                            query[:, : -encoder_hidden_states.shape[1]],
                            image_rotary_emb,
                            sequence_dim=1,
                        ),
                        query[:, -encoder_hidden_states.shape[1] :],
                    ],
                    dim=1,
                )
                key = torch.cat(
                    [
                        apply_rotary_emb(
                            key[:, : -encoder_hidden_states.shape[1]],
                            image_rotary_emb,
                            sequence_dim=1,
                        ),
                        key[:, -encoder_hidden_states.shape[1] :],
                    ],
                    dim=1,
                )
            else:
                query = apply_rotary_emb(query, image_rotary_emb, sequence_dim=1)
                key = apply_rotary_emb(key, image_rotary_emb, sequence_dim=1)

        # 4. Encoder condition QKV projection and normalization
        if attn.add_q_proj is not None and encoder_hidden_states is not None:
            encoder_query = attn.add_q_proj(encoder_hidden_states)
            encoder_key = attn.add_k_proj(encoder_hidden_states)
            encoder_value = attn.add_v_proj(encoder_hidden_states)

            encoder_query = encoder_query.unflatten(2, (attn.heads, -1))
            encoder_key = encoder_key.unflatten(2, (attn.heads, -1))
            encoder_value = encoder_value.unflatten(2, (attn.heads, -1))

            if attn.norm_added_q is not None:
                encoder_query = attn.norm_added_q(encoder_query)
            if attn.norm_added_k is not None:
                encoder_key = attn.norm_added_k(encoder_key)

            query = torch.cat([query, encoder_query], dim=1)
            key = torch.cat([key, encoder_key], dim=1)
            value = torch.cat([value, encoder_value], dim=1)

        # t2v-unlearn: begin concept-map hook
        # [video | text] keys (text LAST), padded text keys masked as the layer masks them ([B, 1, 1, N]). When the
        # switch wants the map, the attention call below gives it too (the fused kernel's log-sum-exp)
        attention = dispatch_attention_fn
        switch = self.switch
        if switch is not None and switch.wants_concept_map:
            batch_size, seq_len = query.shape[:2]
            num_video = seq_len - encoder_hidden_states.shape[1]
            frames = switch.context.get("frames", 1)
            attention = attention_recording_concept_map(
                attention,
                switch.concept_key_mask(text_first=False, num_video=num_video),
                lambda probs: switch.record_concept_map(
                    self.site_index, probs.view(batch_size, frames, num_video // frames)
                ),
                query_rows=slice(0, num_video),
                heads_first=False,
            )
        # t2v-unlearn: end concept-map hook

        # 5. Attention
        hidden_states = attention(
            query,
            key,
            value,
            attn_mask=attention_mask,
            dropout_p=0.0,
            is_causal=False,
            backend=self._attention_backend,
            parallel_config=self._parallel_config,
        )
        hidden_states = hidden_states.flatten(2, 3)
        hidden_states = hidden_states.to(query.dtype)

        # 6. Output projection
        if encoder_hidden_states is not None:
            hidden_states, encoder_hidden_states = (
                hidden_states[:, : -encoder_hidden_states.shape[1]],
                hidden_states[:, -encoder_hidden_states.shape[1] :],
            )

            if getattr(attn, "to_out", None) is not None:
                hidden_states = attn.to_out[0](hidden_states)
                hidden_states = attn.to_out[1](hidden_states)

            if getattr(attn, "to_add_out", None) is not None:
                encoder_hidden_states = attn.to_add_out(encoder_hidden_states)

        # t2v-unlearn: begin adapter hook
        if self.switch is not None:
            hidden_states = self.switch.adapt(self.site_index, hidden_states)
        # t2v-unlearn: end adapter hook
        return hidden_states, encoder_hidden_states


@register_backbone("hunyuanvideo", hub_id="hunyuanvideo-community/HunyuanVideo")
class HunyuanVideoBackbone(VideoBackbone):
    """HunyuanVideo wrapper (flow-matching velocity ``ε − x_0``). Latents are ``[B, C, F, H, W]``.

    Loading options: ``embedded_guidance_scale`` (the distilled guidance value every prediction uses, default
    6.0 as the stock pipeline) and ``max_text_length`` (Llama tokens after the template crop; default 256, 20 for
    tiny models).
    """

    prediction_type = "flow"
    processor_class = HunyuanVideoUnlearnAttnProcessor
    # the authors' map capture hooks single_transformer_blocks only (TobisawaMisakii/T2VUnlearning
    # receler/concept_reg_hunyuan.py:134), where their erasers sit too (receler/erasers/hunyuan_erasers.py:61-68)
    concept_map_sites = "single_transformer_blocks."
    token_layout = "joint: [video | text], text last (dual-stream and single-stream blocks)"
    guidance_distilled = True
    pipeline_class = "HunyuanVideoPipeline"
    tiny_source = "tiny-hunyuanvideo-seed{seed}"
    components = {
        "model_index.json": Component("pipeline index"),
        "tokenizer": Component("Llama tokenizer", "transformers.AutoTokenizer"),
        "text_encoder": Component("LlamaModel", "transformers.LlamaModel", dtype=True),
        "tokenizer_2": Component("CLIP tokenizer", "transformers.CLIPTokenizer"),
        "text_encoder_2": Component("CLIPTextModel", "transformers.CLIPTextModel", dtype=True),
        "transformer": Component(
            "HunyuanVideoTransformer3DModel", "diffusers.HunyuanVideoTransformer3DModel", dtype=True
        ),
        "vae": Component("AutoencoderKLHunyuanVideo", "diffusers.AutoencoderKLHunyuanVideo", dtype=True),
        "scheduler": Component("FlowMatchEulerDiscreteScheduler config", "diffusers.FlowMatchEulerDiscreteScheduler"),
    }

    def __init__(
        self,
        *args: Any,
        text_encoder_2: nn.Module | None = None,
        tokenizer_2: Any = None,
        prompt_template: dict[str, Any] | None = None,
        embedded_guidance_scale: float = DEFAULT_EMBEDDED_GUIDANCE,
        vae_scale_factor_spatial: int = 8,
        vae_scale_factor_temporal: int = 4,
        vae_scaling_factor: float = 0.476986,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.text_encoder_2 = text_encoder_2
        if text_encoder_2 is not None:
            text_encoder_2.requires_grad_(False).eval()
        self.tokenizer_2 = tokenizer_2
        template = dict(prompt_template or DEFAULT_PROMPT_TEMPLATE)
        if "{}" not in template["template"]:
            raise ValueError("HunyuanVideo prompt_template['template'] must contain '{}' where the prompt goes")
        if template.get("crop_start") is None:
            # the tokens before the prompt (with BOS): what the pipeline would crop
            prefix = template["template"].split("{}")[0]
            template["crop_start"] = len(self.tokenizer(prefix, add_special_tokens=True)["input_ids"])
        self.prompt_template = template
        self.embedded_guidance_scale = float(embedded_guidance_scale)
        self.vae_scale_factor_spatial = vae_scale_factor_spatial
        self.vae_scale_factor_temporal = vae_scale_factor_temporal
        self.vae_scaling_factor = vae_scaling_factor

    # ------------------------------------------------------------------ construction (what differs)
    @classmethod
    def tiny_components(cls) -> dict[str, Any]:
        """Random parts with diffusers' test-sized configs (2 dual- and 2 single-stream blocks)."""
        from diffusers import AutoencoderKLHunyuanVideo, FlowMatchEulerDiscreteScheduler, HunyuanVideoTransformer3DModel
        from transformers import LlamaConfig, LlamaModel

        tokenizer = tiny_llama_tokenizer(max_length=64)
        tokenizer_2 = tiny_clip_tokenizer(max_length=CLIP_MAX_LENGTH)
        return {
            "tokenizer": tokenizer,
            "tokenizer_2": tokenizer_2,
            "text_encoder": LlamaModel(
                LlamaConfig(
                    vocab_size=len(tokenizer),
                    hidden_size=16,
                    intermediate_size=37,
                    num_attention_heads=4,
                    num_key_value_heads=4,
                    num_hidden_layers=3,
                    max_position_embeddings=128,
                    hidden_act="gelu",
                    bos_token_id=tokenizer.bos_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                    pad_token_id=tokenizer.pad_token_id,
                )
            ),
            "text_encoder_2": tiny_clip_text_encoder(tokenizer_2, hidden_size=8, max_length=CLIP_MAX_LENGTH),
            "transformer": HunyuanVideoTransformer3DModel(**TINY_TRANSFORMER_CONFIG),
            "vae": AutoencoderKLHunyuanVideo(
                in_channels=3,
                out_channels=3,
                latent_channels=4,
                down_block_types=("HunyuanVideoDownBlock3D",) * 4,
                up_block_types=("HunyuanVideoUpBlock3D",) * 4,
                block_out_channels=(8, 8, 8, 8),
                layers_per_block=1,
                act_fn="silu",
                norm_num_groups=4,
                scaling_factor=0.476986,
                spatial_compression_ratio=8,
                temporal_compression_ratio=4,
                mid_block_add_attention=True,
            ),
            "scheduler": FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG),
        }

    @classmethod
    def init_kwargs(
        cls,
        parts: Mapping[str, Any],
        *,
        max_text_length: int | None = None,
        embedded_guidance_scale: float = DEFAULT_EMBEDDED_GUIDANCE,
    ) -> dict[str, Any]:
        full = parts["transformer"].config.num_layers > 8
        vae = parts["vae"]
        return dict(
            text_encoder_2=parts["text_encoder_2"],
            tokenizer_2=parts["tokenizer_2"],
            prompt_template=DEFAULT_PROMPT_TEMPLATE if full else TINY_PROMPT_TEMPLATE,
            defaults=FULL_DEFAULTS if full else TINY_DEFAULTS,
            max_text_length=max_text_length or (256 if full else 20),
            embedded_guidance_scale=embedded_guidance_scale,
            vae_scale_factor_spatial=vae.config.spatial_compression_ratio,
            vae_scale_factor_temporal=vae.config.temporal_compression_ratio,
            vae_scaling_factor=vae.config.scaling_factor,
        )

    # ------------------------------------------------------------------ contract
    @classmethod
    def attention_sites_of(cls, denoiser: nn.Module) -> list[AttentionSite]:
        dim = denoiser.config.num_attention_heads * denoiser.config.attention_head_dim
        sites = [
            AttentionSite(f"transformer_blocks.{i}.attn", b.attn, dim)
            for i, b in enumerate(denoiser.transformer_blocks)
        ]
        sites += [
            AttentionSite(f"single_transformer_blocks.{i}.attn", b.attn, dim)
            for i, b in enumerate(denoiser.single_transformer_blocks)
        ]
        return sites

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, ...]:
        s, p = self.vae_scale_factor_spatial, self.denoiser.config.patch_size
        if height % (s * p) or width % (s * p):
            raise ValueError(f"height and width must be multiples of {s * p} for {self.name}; got {height}x{width}")
        if (num_frames - 1) % self.vae_scale_factor_temporal:
            raise ValueError(
                f"num_frames must be 4k+1 for {self.name} (the VAE keeps the first frame); got {num_frames}"
            )
        frames = (num_frames - 1) // self.vae_scale_factor_temporal + 1
        return (self.denoiser.config.in_channels, frames, height // s, width // s)

    @property
    def crop_start(self) -> int:
        return int(self.prompt_template["crop_start"])

    def _encode(self, prompts: list[str]) -> PromptEmbedding:
        crop = self.crop_start
        enc = self.tokenizer(
            [self.prompt_template["template"].format(p) for p in prompts],
            max_length=self.max_text_length + crop,
            padding="max_length",
            truncation=True,
            return_tensors="pt",
            return_attention_mask=True,
        )
        device = next(self.text_encoder.parameters()).device
        hidden = self.text_encoder(
            input_ids=enc.input_ids.to(device),
            attention_mask=enc.attention_mask.to(device),
            output_hidden_states=True,
        ).hidden_states[-(LLAMA_LAYERS_TO_SKIP + 1)]
        hidden, mask = hidden[:, crop:], enc.attention_mask[:, crop:]
        clip_ids = self.tokenizer_2(
            prompts,
            padding="max_length",
            max_length=CLIP_MAX_LENGTH,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        device_2 = next(self.text_encoder_2.parameters()).device
        pooled = self.text_encoder_2(clip_ids.to(device_2), output_hidden_states=False).pooler_output
        return PromptEmbedding(hidden.to(self.dtype), mask.to(hidden.device), pooled.to(hidden.device, self.dtype))

    def text_tokens(self, prompt: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids of the cropped Llama sequence (index 0 = first token after the template's ``crop_start``)
        and their character offsets *in the prompt*; template tokens get ``(0, 0)``."""
        template = self.prompt_template["template"]
        start = template.index("{}")
        end = start + len(prompt)
        crop = self.crop_start
        enc = self.tokenizer(
            template.format(prompt),
            max_length=self.max_text_length + crop,
            truncation=True,
            add_special_tokens=True,
            return_offsets_mapping=True,
        )
        ids = list(enc["input_ids"])[crop:]
        offsets = []
        for s, e in list(enc["offset_mapping"])[crop:]:
            s, e = max(s, start), min(e, end)
            offsets.append((s - start, e - start) if e > s else (0, 0))
        return ids, offsets

    def predict(self, latents: Tensor, timesteps: Tensor, cond: PromptEmbedding) -> Tensor:
        if latents.dim() != 5:
            raise ValueError(f"{self.name} latents must be [B, C, F, H, W]; got {tuple(latents.shape)}")
        if cond.attention_mask is None or cond.pooled is None:
            raise ValueError(f"{self.name} needs PromptEmbedding.attention_mask and .pooled (from encode_prompts)")
        b, _, f = latents.shape[:3]
        if self.switch is not None:
            self.switch.context["frames"] = f // self.denoiser.config.patch_size_t
        timesteps = timesteps.reshape(-1).expand(b) if timesteps.numel() == 1 else timesteps
        guidance = None
        if self.denoiser.config.guidance_embeds:
            guidance = torch.full((b,), self.embedded_guidance_scale * 1000.0, device=latents.device, dtype=self.dtype)
        return self.denoiser(
            hidden_states=latents.to(self.dtype),
            timestep=timesteps.to(latents.device, torch.float32),
            encoder_hidden_states=cond.hidden_states.to(self.dtype),
            encoder_attention_mask=cond.attention_mask.to(self.dtype),
            pooled_projections=cond.pooled.to(self.dtype),
            guidance=guidance,
            return_dict=False,
        )[0]

    def guidance_settings(self) -> dict[str, Any]:
        return {"embedded_guidance_scale": self.embedded_guidance_scale}

    def guided_prediction(
        self, latents: Tensor, t: Tensor, cond: PromptEmbedding, uncond: PromptEmbedding, guidance_scale: float
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Empty-prompt (or negative-prompt), conditional and guided predictions, all with the embedded
        guidance fixed at ``embedded_guidance_scale``. ``guidance_scale`` is the *true* CFG scale on top, as the
        stock pipeline's ``true_cfg_scale``: ``v_neg + s·(v_cond − v_neg)``; 1.0 (the default, the stock
        pipeline's behaviour) returns the conditional prediction as the guided one, so a negative prompt acts
        only with a scale above 1. The unconditional prediction is always computed: pseudo data and the
        negatively guided target need ``v(x_t, ∅, t)``."""
        pred_uncond, pred_cond, guided = super().guided_prediction(latents, t, cond, uncond, guidance_scale)
        if guidance_scale == 1.0:
            guided = pred_cond
        return pred_uncond, pred_cond, guided

    def new_scheduler(self) -> Any:
        """The scheduler with the stock pipeline's sigma schedule (``linspace(1, 0, n + 1)[:-1]``, then shift)."""
        return _pipeline_flow_scheduler_class().from_config(self.scheduler.config)

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        z = latents.to(next(self.vae.parameters()).dtype) / self.vae_scaling_factor
        return frames_to_uint8(self.vae.decode(z, return_dict=False)[0])

    def fingerprint(self) -> str:
        import hashlib

        h = hashlib.sha256(super().fingerprint().encode())
        if self.text_encoder_2 is not None:
            for key, tensor in self.text_encoder_2.state_dict().items():
                h.update(key.encode())
                h.update(tensor.detach().reshape(-1)[:64].float().cpu().numpy().tobytes())
        h.update(repr(self.prompt_template).encode())
        h.update(f"{self.embedded_guidance_scale}".encode())
        return h.hexdigest()[:16]
