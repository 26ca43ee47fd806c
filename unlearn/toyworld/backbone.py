"""The toy world's text-to-video model family, ``toy-cogvideox``: a real ``CogVideoXTransformer3DModel`` in
pixel space, with the world's own word-level tokenizer and small text encoder.

It shares everything with :mod:`unlearn.backbones.cogvideox` — joint attention with text first, the same attention
processor (adapters + concept maps), v-prediction with ``CogVideoXDDIMScheduler`` (zero-terminal-SNR rescaled
scaled-linear betas, trailing timestep spacing, configured like CogVideoX-2B) — and differs only in its parts:

* :func:`build_tokenizer`: a word-level tokenizer built offline with ``tokenizers`` (lower-casing, whitespace
  pre-tokenizer, ``<pad>``/``<unk>``, fixed length) wrapped in ``PreTrainedTokenizerFast``. It adds no special
  tokens: token ``i`` of a grammar prompt is word ``i``.
* :class:`ToyTextEncoder`: word embeddings + learned positions + pre-norm transformer encoder layers +
  LayerNorm, ``[B, L] -> [B, L, dim]``; safetensors + JSON on disk.
* no VAE: latents are the RGB pixels scaled to [-1, 1], laid out like CogVideoX latents ``[B, F, 3, H, W]``
  (temporal compression 1); positional embeddings are 3D sin-cos (no rotary).

The world registers this family with the backbone registry through the ``t2v_unlearn.backbones`` entry point
(``pyproject.toml``), the way a backbone living in another package would: :mod:`backbones` never imports the
toy world. The weights ship with the package (``unlearn/toyworld/weights``, made by
``unlearn toyworld pretrain``), so erasure is measurable on a CPU.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from unlearn.backbones import Component, PromptEmbedding, SamplingSettings, register_backbone
from unlearn.backbones.cogvideox import CogVideoXBackbone

from . import SHIPPED_WEIGHTS_DIR as SHIPPED_WEIGHTS
from .grammar import vocabulary
from .render import latents_to_frames

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
    def from_json_file(cls, path) -> WorldConfig:
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


PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
DEFAULT_MAX_LENGTH = 24


def build_tokenizer(words: Sequence[str] | None = None, max_length: int = DEFAULT_MAX_LENGTH):
    """A ``PreTrainedTokenizerFast`` over ``words`` (default: the grammar's vocabulary).

    Ids: 0 = ``<pad>``, 1 = ``<unk>``, then the words in sorted order. Calls default to padding and truncating
    to ``max_length`` (``model_max_length``)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    if words is None:
        words = vocabulary()
    vocab = {PAD_TOKEN: 0, UNK_TOKEN: 1}
    for w in sorted(set(w.lower() for w in words)):
        if w not in vocab:
            vocab[w] = len(vocab)
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        model_max_length=max_length,
        padding_side="right",
        truncation_side="right",
    )
    return fast


#: set to 1 to make every toy-world prompt the text encoder does not fully understand an error (see ``tokenize``)
STRICT_PROMPTS_ENV = "UNLEARN_STRICT_PROMPTS"


class PromptNotUnderstoodWarning(UserWarning):
    """A prompt holds words outside the toy tokenizer's vocabulary, or is longer than the text encoder reads."""


def prompt_problems(tokenizer, prompt: str, max_length: int) -> tuple[list[str], list[str]]:
    """``(unknown words, words cut off)`` of ``prompt``: the words the word-level tokenizer maps to ``<unk>``,
    and those past ``max_length`` tokens, which truncation drops."""
    enc = tokenizer(
        prompt, add_special_tokens=False, truncation=False, padding=False, return_offsets_mapping=True, verbose=False
    )
    spans = [prompt[a:b] for a, b in enc["offset_mapping"]]
    unknown = [w for w, i in zip(spans, enc["input_ids"]) if i == tokenizer.unk_token_id]
    return unknown, spans[max_length:]


def check_prompts(tokenizer, prompts: Sequence[str], max_length: int, strict: bool | None = None) -> list[str]:
    """Say which prompts the toy text encoder does not fully understand: one :class:`PromptNotUnderstoodWarning`
    per prompt naming its unknown words (read as ``<unk>``) and the words truncation cuts off; under ``strict``
    (default: the environment variable ``UNLEARN_STRICT_PROMPTS=1``) one ``ValueError`` naming all of them.
    Returns the messages."""
    if strict is None:
        strict = os.environ.get(STRICT_PROMPTS_ENV, "").strip().lower() in ("1", "true", "yes")
    messages = []
    for prompt in dict.fromkeys(prompts):
        unknown, cut = prompt_problems(tokenizer, prompt, max_length)
        said = []
        if unknown:
            said.append(f"unknown words {unknown} (outside the toy vocabulary: the text encoder reads <unk>)")
        if cut:
            said.append(
                f"{max_length + len(cut)} tokens, over the {max_length} the text encoder reads: {cut} are cut off"
            )
        if said:
            messages.append(f"prompt {prompt!r}: " + "; ".join(said))
    if messages and strict:
        raise ValueError(
            "the toy text encoder does not understand every prompt:\n  "
            + "\n  ".join(messages)
            + "\nFix: use the world's words (unlearn.toyworld.grammar.vocabulary()) and at most "
            f"{max_length} tokens, or turn strict checking off (strict_prompts / {STRICT_PROMPTS_ENV}) "
            "to go on with a warning"
        )
    for m in messages:
        warnings.warn(m, PromptNotUnderstoodWarning, stacklevel=3)
    return messages


def tokenize(
    tokenizer,
    prompts: Sequence[str],
    max_length: int | None = None,
    strict: bool | None = None,
    placeholder_ok: bool = False,
) -> dict[str, torch.Tensor]:
    """``{"input_ids": [B, L], "attention_mask": [B, L]}``, always padded to the full ``max_length``.

    Unknown words and truncation are reported (:func:`check_prompts`: a warning naming the words, an error under
    ``strict``); every path that feeds the toy text encoder (generation, evaluation, training, pretraining)
    comes through here. ``placeholder_ok``: the unknown token written out (``<unk>``, a textual-inversion
    placeholder) is meant and not reported."""
    L = max_length or tokenizer.model_max_length
    checked = [p.replace(tokenizer.unk_token, "") for p in prompts] if placeholder_ok else prompts
    check_prompts(tokenizer, checked, L, strict)
    enc = tokenizer(list(prompts), padding="max_length", truncation=True, max_length=L, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


class ToyTextEncoder(nn.Module):
    """Word embeddings + learned positions + one transformer encoder layer -> ``[B, L, dim]``."""

    config_name = "config.json"
    weights_name = "model.safetensors"

    def __init__(
        self,
        vocab_size: int,
        dim: int = 64,
        max_length: int = DEFAULT_MAX_LENGTH,
        num_layers: int = 1,
        num_heads: int = 4,
        ff_mult: int = 2,
        pad_token_id: int = 0,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.config = dict(
            vocab_size=vocab_size,
            dim=dim,
            max_length=max_length,
            num_layers=num_layers,
            num_heads=num_heads,
            ff_mult=ff_mult,
            pad_token_id=pad_token_id,
            dropout=dropout,
        )
        self.pad_token_id = pad_token_id
        self.tok = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.zeros(1, max_length, dim))
        nn.init.normal_(self.tok.weight, std=0.5)
        nn.init.normal_(self.pos, std=0.1)
        self.layers = nn.ModuleList(
            [
                nn.TransformerEncoderLayer(
                    dim,
                    num_heads,
                    dim_feedforward=ff_mult * dim,
                    dropout=dropout,
                    activation="gelu",
                    batch_first=True,
                    norm_first=True,
                )
                for _ in range(num_layers)
            ]
        )
        self.norm = nn.LayerNorm(dim)

    @property
    def dim(self) -> int:
        return self.config["dim"]

    @property
    def max_length(self) -> int:
        return self.config["max_length"]

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``input_ids`` ``[B, L]``, or ``inputs_embeds`` ``[B, L, dim]`` (rows of ``tok``; then give the mask)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        L = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        if self.max_length < L:
            raise ValueError(f"sequence length {L} > max_length {self.max_length}")
        h = (self.tok(input_ids) if input_ids is not None else inputs_embeds) + self.pos[:, :L]
        if attention_mask is None:
            if input_ids is None:
                raise ValueError("inputs_embeds needs its attention_mask (padding cannot be read from embeddings)")
            attention_mask = (input_ids != self.pad_token_id).long()
        key_pad = attention_mask == 0
        key_pad = key_pad & key_pad.logical_not().any(dim=1, keepdim=True)  # an all-pad row masks nothing
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=key_pad)
        return self.norm(h)

    # ------------------------------------------------------------------ serialisation (safetensors + JSON)
    def save_pretrained(self, path: str | os.PathLike) -> None:
        from safetensors.torch import save_file

        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        (p / self.config_name).write_text(json.dumps({"class": "ToyTextEncoder", **self.config}, indent=2))
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, str(p / self.weights_name))

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> ToyTextEncoder:
        from safetensors.torch import load_file

        p = Path(path)
        cfg = json.loads((p / cls.config_name).read_text())
        cfg.pop("class", None)
        model = cls(**cfg)
        model.load_state_dict(load_file(str(p / cls.weights_name), device=str(map_location)))
        return model.eval()


def _load_world(folder: str, entry: str, torch_dtype: torch.dtype, options: Any) -> WorldConfig:
    return WorldConfig.from_json_file(Path(folder) / entry)


def _load_text_encoder(folder: str, entry: str, torch_dtype: torch.dtype, options: Any) -> ToyTextEncoder:
    return ToyTextEncoder.from_pretrained(Path(folder) / entry).to(torch_dtype)


@register_backbone("toy-cogvideox")
class ToyCogVideoXBackbone(CogVideoXBackbone):
    """CogVideoX architecture, toy world weights. ``pretrained`` defaults to the shipped weights."""

    prediction_type = "v_prediction"
    pipeline_class = None  # its own text encoder: no stock diffusers pipeline holds it
    hub = False
    tiny_source = "toy-random-seed{seed}"
    components = {
        "world.json": Component("world settings", _load_world),
        "tokenizer": Component("word-level tokenizer", "transformers.PreTrainedTokenizerFast"),
        "text_encoder": Component("ToyTextEncoder", _load_text_encoder),
        "transformer": Component("CogVideoXTransformer3DModel", "diffusers.CogVideoXTransformer3DModel", dtype=True),
        "scheduler": Component("CogVideoXDDIMScheduler config", "diffusers.CogVideoXDDIMScheduler"),
    }

    def __init__(self, *args: Any, world: WorldConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.world = world

    #: raise instead of warning when a prompt has unknown words or is cut off (``tokenize``); ``None``: the
    #: environment variable ``UNLEARN_STRICT_PROMPTS``
    strict_prompts: bool | None = None

    @classmethod
    def load(
        cls,
        pretrained: str | None = None,
        tiny: bool = False,
        torch_dtype: str | torch.dtype = "float32",
        **kwargs: Any,
    ) -> ToyCogVideoXBackbone:
        """``pretrained``: a folder written by ``unlearn toyworld pretrain`` (default: the shipped weights);
        ``tiny=True``: the toy architecture with random weights (no files needed)."""
        default = None if tiny else str(SHIPPED_WEIGHTS)
        return super().load(pretrained or default, tiny=tiny, torch_dtype=torch_dtype, **kwargs)

    @classmethod
    def tiny_components(cls, world: WorldConfig | None = None, tokenizer: Any = None) -> dict[str, Any]:
        """The toy architecture with random weights (the default world, or ``world``; pretraining starts here)."""
        world = world or WorldConfig()
        tokenizer = tokenizer or build_tokenizer(max_length=world.max_text_length)
        text_encoder = ToyTextEncoder(
            len(tokenizer),
            dim=world.text_dim,
            max_length=world.max_text_length,
            num_layers=world.text_layers,
            pad_token_id=tokenizer.pad_token_id,
        )
        return {
            "world.json": world,
            "tokenizer": tokenizer,
            "text_encoder": text_encoder,
            "transformer": build_transformer(world),
            "scheduler": build_scheduler(),
        }

    @classmethod
    def init_kwargs(cls, parts: Mapping[str, Any]) -> dict[str, Any]:
        world = parts["world.json"]
        defaults = SamplingSettings(
            num_frames=world.frames,
            height=world.height,
            width=world.width,
            num_inference_steps=world.num_inference_steps,
            guidance_scale=world.guidance_scale,
        )
        return dict(
            world=world,
            defaults=defaults,
            max_text_length=world.max_text_length,
            vae_scale_factor_spatial=1,
            vae_scale_factor_temporal=1,
            vae_scaling_factor=1.0,
        )

    def text_input_ids(self, prompts: Sequence[str]) -> tuple[Tensor, Tensor | None]:
        # the unknown token written out is an attack's placeholder on purpose: not reported as an unknown word
        enc = tokenize(self.tokenizer, prompts, self.max_text_length, strict=self.strict_prompts, placeholder_ok=True)
        return enc["input_ids"], enc["attention_mask"]

    def _encode(self, prompts: list[str]) -> PromptEmbedding:
        enc = tokenize(self.tokenizer, prompts, self.max_text_length, strict=self.strict_prompts)
        ids, mask = enc["input_ids"], enc["attention_mask"]
        device = next(self.text_encoder.parameters()).device
        hidden = self.text_encoder(ids.to(device), mask.to(device))
        return PromptEmbedding(hidden.to(self.dtype))

    def text_input_embeddings(self) -> nn.Embedding:
        return self.text_encoder.tok

    def encode_input_embeddings(self, inputs_embeds: Tensor, attention_mask: Tensor | None = None) -> PromptEmbedding:
        if attention_mask is None:
            raise ValueError(f"{self.name}: encode_input_embeddings needs the attention mask from text_input_ids")
        hidden = self.text_encoder(attention_mask=attention_mask.to(inputs_embeds.device), inputs_embeds=inputs_embeds)
        return PromptEmbedding(hidden.to(self.dtype))

    def text_tokens(self, prompt: str) -> tuple[list[int], list[tuple[int, int]]]:
        enc = self.tokenizer(
            prompt,
            max_length=self.max_text_length,
            truncation=True,
            add_special_tokens=False,
            return_offsets_mapping=True,
        )
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        return latents_to_frames(latents)

    def save_pretrained(self, path: str) -> None:
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        self.denoiser.save_pretrained(str(out / "transformer"), safe_serialization=True)
        self.text_encoder.save_pretrained(out / "text_encoder")
        self.tokenizer.save_pretrained(str(out / "tokenizer"))
        self.scheduler.save_pretrained(str(out / "scheduler"))
        (out / "world.json").write_text(self.world.to_json())
