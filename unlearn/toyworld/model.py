"""The toy text-to-video model: a tiny diffusers ``CogVideoXTransformer3DModel`` in pixel space.

Latents are the pixels scaled to [-1, 1], laid out like CogVideoX latents ``[B, F, C=3, H, W]`` (temporal
compression 1: latent frames == video frames; "decoding" is a rescale). The objective is the CogVideoX-2B
contract: v-prediction of a DDPM with ``CogVideoXDDIMScheduler`` (zero-terminal-SNR rescaled scaled-linear
betas, trailing timestep spacing); sampling uses the scheduler's ``step`` with classifier-free guidance
against the empty prompt. Positional embeddings are the 3D sin-cos ones (no rotary), so no
``image_rotary_emb`` is needed.

:func:`load_toy_components` loads everything the pretraining wrote (see ``pretrain.py``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import torch

SCHEDULER_KWARGS = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=True,
    steps_offset=0,
    prediction_type="v_prediction",
    rescale_betas_zero_snr=True,
    timestep_spacing="trailing",
    snr_shift_scale=1.0,
)


@dataclass
class WorldConfig:
    """Settings of the toy world shared by the renderer, the text side and the denoiser (``world.json``)."""

    height: int = 16
    width: int = 16
    frames: int = 4
    max_text_length: int = 24
    text_dim: int = 64
    text_layers: int = 1
    num_layers: int = 4
    num_attention_heads: int = 4
    attention_head_dim: int = 16
    time_embed_dim: int = 64
    patch_size: int = 2
    prediction_type: str = "v_prediction"
    latent_layout: str = "[B, F, C, H, W], pixels scaled to [-1, 1], C = 3 (RGB)"
    empty_prompt: str = ""
    guidance_scale: float = 5.0
    num_inference_steps: int = 30
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json_file(cls, path) -> "WorldConfig":
        d = json.loads(Path(path).read_text())
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def build_transformer(world: WorldConfig):
    """A freshly initialised tiny ``CogVideoXTransformer3DModel`` for ``world``."""
    from diffusers import CogVideoXTransformer3DModel

    return CogVideoXTransformer3DModel(
        num_attention_heads=world.num_attention_heads,
        attention_head_dim=world.attention_head_dim,
        in_channels=3,
        out_channels=3,
        time_embed_dim=world.time_embed_dim,
        text_embed_dim=world.text_dim,
        num_layers=world.num_layers,
        sample_width=world.width,
        sample_height=world.height,
        sample_frames=world.frames,
        patch_size=world.patch_size,
        temporal_compression_ratio=1,
        max_text_seq_length=world.max_text_length,
        spatial_interpolation_scale=1.0,
        temporal_interpolation_scale=1.0,
        use_rotary_positional_embeddings=False,
        use_learned_positional_embeddings=False,
    )


def build_scheduler():
    """``CogVideoXDDIMScheduler`` configured like CogVideoX-2B (v-prediction, zero terminal SNR, trailing)."""
    from diffusers import CogVideoXDDIMScheduler

    return CogVideoXDDIMScheduler(**SCHEDULER_KWARGS)


def encode_prompts(tokenizer, text_encoder, prompts: Sequence[str], device=None) -> torch.Tensor:
    """Prompts -> ``[B, L, D]`` text embeddings (always padded to the full length)."""
    from .text import tokenize

    enc = tokenize(tokenizer, prompts)
    dev = device or next(text_encoder.parameters()).device
    return text_encoder(enc["input_ids"].to(dev), enc["attention_mask"].to(dev))


@torch.no_grad()
def sample(transformer, scheduler, cond: torch.Tensor, uncond: Optional[torch.Tensor], world: WorldConfig,
           num_inference_steps: int = 30, guidance_scale: float = 5.0, generator: Optional[torch.Generator] = None,
           latents: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Denoise from pure noise with classifier-free guidance; returns latents ``[B, F, 3, H, W]`` in ~[-1, 1].

    ``cond``/``uncond``: text embeddings ``[B, L, D]`` (``uncond`` may be ``[1, L, D]``; None = no CFG)."""
    B = cond.shape[0]
    shape = (B, world.frames, 3, world.height, world.width)
    if latents is None:
        latents = torch.randn(shape, generator=generator, dtype=cond.dtype).to(cond.device)
    latents = latents * scheduler.init_noise_sigma
    scheduler.set_timesteps(num_inference_steps, device=cond.device)
    use_cfg = uncond is not None and guidance_scale != 1.0
    if use_cfg:
        ctx = torch.cat([uncond.expand(B, -1, -1), cond])
    else:
        ctx = cond
    for t in scheduler.timesteps:
        x_in = torch.cat([latents, latents]) if use_cfg else latents
        tt = t.expand(x_in.shape[0]).to(cond.device)
        v = transformer(hidden_states=x_in, encoder_hidden_states=ctx, timestep=tt, return_dict=False)[0]
        if use_cfg:
            v_u, v_c = v.chunk(2)
            v = v_u + guidance_scale * (v_c - v_u)
        latents = scheduler.step(v, t, latents, return_dict=False)[0]
    return latents


def load_toy_components(weights_dir, device: str | torch.device = "cpu"):
    """``(tokenizer, text_encoder, transformer, scheduler, world)`` from a folder written by ``pretrain``."""
    from diffusers import CogVideoXDDIMScheduler, CogVideoXTransformer3DModel
    from transformers import PreTrainedTokenizerFast

    from .text import ToyTextEncoder

    d = Path(weights_dir)
    world = WorldConfig.from_json_file(d / "world.json")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(d / "tokenizer"))
    text_encoder = ToyTextEncoder.from_pretrained(d / "text_encoder").to(device).eval()
    transformer = CogVideoXTransformer3DModel.from_pretrained(str(d / "transformer")).to(device).eval()
    scheduler = CogVideoXDDIMScheduler.from_pretrained(str(d / "scheduler"))
    return tokenizer, text_encoder, transformer, scheduler, world
