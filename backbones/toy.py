"""The toy world's text-to-video model: a real ``CogVideoXTransformer3DModel`` in pixel space.

It shares everything with :mod:`backbones.cogvideox` — joint attention with text first, the same attention
processor (adapters + concept maps), v-prediction with ``CogVideoXDDIMScheduler`` — and differs only in its
parts: the project's own word-level tokenizer and small text encoder (``unlearn.toyworld.text``), and no VAE
(latents are RGB pixels scaled to [-1, 1], laid out ``[B, F, 3, H, W]``). The weights ship with the package
(``unlearn/toyworld/weights``, made by ``unlearn toyworld pretrain``), so erasure is measurable on a CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .base import PromptEmbedding, SamplingDefaults
from .cogvideox import CogVideoXBackbone
from .common import check_weights_folder, resolve_dtype
from .registry import register_backbone

SHIPPED_WEIGHTS = Path(__file__).resolve().parent.parent / "unlearn" / "toyworld" / "weights"

WEIGHTS_LAYOUT = {
    "world.json": "world settings",
    "transformer": "CogVideoXTransformer3DModel",
    "text_encoder": "ToyTextEncoder",
    "tokenizer": "word-level tokenizer",
    "scheduler": "CogVideoXDDIMScheduler config",
}


@register_backbone("toy-cogvideox")
class ToyCogVideoXBackbone(CogVideoXBackbone):
    """CogVideoX architecture, toy world weights. ``pretrained`` defaults to the shipped weights."""

    prediction_type = "v_prediction"

    @classmethod
    def load(cls, pretrained: str | None = None, tiny: bool = False, torch_dtype: str = "float32", seed: int = 0,
             **_: Any) -> ToyCogVideoXBackbone:
        """``pretrained``: a folder written by ``unlearn toyworld pretrain`` (default: the shipped weights);
        ``tiny=True``: the toy architecture with random weights (no files needed)."""
        dtype = resolve_dtype(torch_dtype)
        if tiny and pretrained is None:
            return cls.tiny(seed=seed).to(dtype)
        folder = check_weights_folder(pretrained or SHIPPED_WEIGHTS, WEIGHTS_LAYOUT, cls.__name__)
        from unlearn.toyworld.model import load_toy_components

        tokenizer, text_encoder, transformer, scheduler, world = load_toy_components(folder)
        return cls._assemble(tokenizer, text_encoder, transformer, scheduler, world, str(folder)).to(dtype)

    @classmethod
    def tiny(cls, seed: int = 0, variant: str = "toy", torch_dtype: torch.dtype = torch.float32) -> ToyCogVideoXBackbone:
        from unlearn.toyworld.model import WorldConfig, build_scheduler, build_transformer
        from unlearn.toyworld.text import ToyTextEncoder, build_tokenizer

        torch.manual_seed(seed)
        world = WorldConfig()
        tokenizer = build_tokenizer(max_length=world.max_text_length)
        text_encoder = ToyTextEncoder(len(tokenizer), dim=world.text_dim, max_length=world.max_text_length,
                                      num_layers=world.text_layers)
        backbone = cls._assemble(tokenizer, text_encoder, build_transformer(world), build_scheduler(), world,
                                 f"toy-random-seed{seed}")
        return backbone.to(torch_dtype)

    @classmethod
    def _assemble(cls, tokenizer, text_encoder, transformer, scheduler, world, source: str) -> ToyCogVideoXBackbone:
        defaults = SamplingDefaults(num_frames=world.frames, height=world.height, width=world.width,
                                    num_inference_steps=world.num_inference_steps, guidance_scale=world.guidance_scale)
        backbone = cls(transformer, scheduler, text_encoder, tokenizer, None, defaults=defaults, source=source,
                       max_text_length=world.max_text_length, vae_scale_factor_spatial=1,
                       vae_scale_factor_temporal=1, vae_scaling_factor=1.0)
        backbone.world = world
        return backbone

    def _encode(self, prompts: list[str]) -> PromptEmbedding:
        from unlearn.toyworld.text import tokenize

        enc = tokenize(self.tokenizer, prompts, self.max_text_length)
        device = next(self.text_encoder.parameters()).device
        hidden = self.text_encoder(enc["input_ids"].to(device), enc["attention_mask"].to(device))
        return PromptEmbedding(hidden.to(self.dtype))

    def text_tokens(self, prompt: str) -> tuple[list[int], list[tuple[int, int]]]:
        enc = self.tokenizer(prompt, max_length=self.max_text_length, truncation=True, add_special_tokens=False,
                             return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        from unlearn.toyworld.render import latents_to_frames

        return latents_to_frames(latents)

    def as_pipeline(self):
        raise NotImplementedError("the toy backbone has its own text encoder; no stock diffusers pipeline holds it")

    def save_pretrained(self, path: str) -> None:
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        self.denoiser.save_pretrained(str(out / "transformer"), safe_serialization=True)
        self.text_encoder.save_pretrained(out / "text_encoder")
        self.tokenizer.save_pretrained(str(out / "tokenizer"))
        self.scheduler.save_pretrained(str(out / "scheduler"))
        (out / "world.json").write_text(self.world.to_json())
