"""The full-size backbones without weights: their published configurations, built in code with random weights
(or on the ``meta`` device, where no memory is allocated and no kernel runs). Not imported by the package itself:
``register_random_backbones()`` registers the ``random-<name>`` backbones (``benchmarks/fullsize_models.py``
re-exports this module for the scripts and registers them).

Used by ``memory_plan.py`` and ``fullsize_cost.py`` (meta device), ``fullsize_smoke.py`` (CPU, random bf16
weights) and ``gpu_step.py`` (GPU, random weights). The configurations are written from the ``config.json``
files of the diffusers/transformers folders as published on the model hub (not downloaded here; the parameter
counts in ``docs/results/memory_plan.md`` agree with the published model sizes, which checks them).

A full-size model with random weights is registered as backbone ``random-<name>`` (e.g. ``random-cogvideox-2b``)
so that the real ``T2VUnlearning`` module builds it from its config keys:
``T2VUnlearning(backbone="random-cogvideox-2b", backbone_kwargs={"device": "meta"})``. Its text encoder has the
real width and ``text_layers`` layers (the training step reads cached embeddings; only pseudo-data generation
runs the encoder); it has no VAE (nothing here decodes).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.utils import logging as diffusers_logging

import unlearn.compat as compat

from .base import PromptEmbedding, SamplingSettings
from .cogvideox import SCHEDULER_CONFIG as COGVIDEOX_SCHEDULERS
from .cogvideox import CogVideoXBackbone
from .common import tiny_clip_tokenizer, tiny_llama_tokenizer, tiny_t5_tokenizer
from .hunyuanvideo import SCHEDULER_CONFIG as HUNYUAN_SCHEDULER
from .hunyuanvideo import TINY_PROMPT_TEMPLATE, HunyuanVideoBackbone
from .registry import available_backbones, register_backbone
from .wan import SCHEDULER_CONFIG as WAN_SCHEDULER
from .wan import WanBackbone

# building from configs and casting with .to(dtype) is intended here (no weights to load): keep the console clean
diffusers_logging.set_verbosity_error()

# ------------------------------------------------------------------------------------------------ published configs
#: transformer/unet configs (diffusers), as published
COGVIDEOX_2B = dict(
    num_attention_heads=30,
    attention_head_dim=64,
    in_channels=16,
    out_channels=16,
    flip_sin_to_cos=True,
    freq_shift=0,
    time_embed_dim=512,
    text_embed_dim=4096,
    num_layers=30,
    dropout=0.0,
    attention_bias=True,
    sample_width=90,
    sample_height=60,
    sample_frames=49,
    patch_size=2,
    temporal_compression_ratio=4,
    max_text_seq_length=226,
    activation_fn="gelu-approximate",
    timestep_activation_fn="silu",
    norm_elementwise_affine=True,
    norm_eps=1e-5,
    spatial_interpolation_scale=1.875,
    temporal_interpolation_scale=1.0,
    use_rotary_positional_embeddings=False,
)
COGVIDEOX_5B = {**COGVIDEOX_2B, "num_attention_heads": 48, "num_layers": 42, "use_rotary_positional_embeddings": True}
HUNYUAN = dict(
    in_channels=16,
    out_channels=16,
    num_attention_heads=24,
    attention_head_dim=128,
    num_layers=20,
    num_single_layers=40,
    num_refiner_layers=2,
    mlp_ratio=4.0,
    patch_size=2,
    patch_size_t=1,
    qk_norm="rms_norm",
    guidance_embeds=True,
    text_embed_dim=4096,
    pooled_projection_dim=768,
    rope_theta=256.0,
    rope_axes_dim=(16, 56, 56),
)
ZEROSCOPE_UNET = dict(
    sample_size=32,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"),
    up_block_types=("UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"),
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    downsample_padding=1,
    mid_block_scale_factor=1,
    act_fn="silu",
    norm_num_groups=32,
    norm_eps=1e-5,
    cross_attention_dim=1024,
    attention_head_dim=64,
)
WAN_1_3B = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=12,
    attention_head_dim=128,
    in_channels=16,
    out_channels=16,
    text_dim=4096,
    freq_dim=256,
    ffn_dim=8960,
    num_layers=30,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    eps=1e-6,
    image_dim=None,
    added_kv_proj_dim=None,
    rope_max_seq_len=1024,
)
WAN_14B = {**WAN_1_3B, "num_attention_heads": 40, "ffn_dim": 13824, "num_layers": 40}

#: text encoders (transformers)
T5_XXL = dict(
    vocab_size=32128,
    d_model=4096,
    d_kv=64,
    d_ff=10240,
    num_layers=24,
    num_heads=64,
    relative_attention_num_buckets=32,
    feed_forward_proj="gated-gelu",
    dropout_rate=0.0,
)
UMT5_XXL = {**T5_XXL, "vocab_size": 256384}
LLAVA_LLAMA3_8B = dict(
    vocab_size=128320,
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    max_position_embeddings=8192,
    rope_theta=500000.0,
)
CLIP_L14_TEXT = dict(
    vocab_size=49408,
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    projection_dim=768,
    hidden_act="quick_gelu",
)
OPENCLIP_H14_TEXT = dict(
    vocab_size=49408,
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=23,
    num_attention_heads=16,
    max_position_embeddings=77,
    projection_dim=1024,
    hidden_act="gelu",
)

#: VAEs: the diffusers classes' defaults are the published configs, except SD's 2D VAE written out here
SD_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    latent_channels=4,
    norm_num_groups=32,
    sample_size=768,
)


@dataclasses.dataclass(frozen=True)
class FullSize:
    """One full-size backbone: its family, published configs and the geometry it is trained at here."""

    family: type
    denoiser: tuple[str, dict]
    text_encoder: tuple[str, str, dict]  # (transformers model class, config class, config)
    geometry: tuple[int, int, int]  # frames, height, width of the training videos (the config's)
    text_len: int
    sampling: tuple[int, float]  # sampler steps, CFG scale (the config's)
    config: str | None  # configs/<name>.yaml whose run is projected (None: no shipped config)
    family_kwargs: dict = dataclasses.field(default_factory=dict)


#: the four rows of ``fullsize_cost.py`` (HunyuanVideo at the size its configs train at: the native
#: 129×720×1280 does not fit one GPU for training, see docs/results/memory_plan.md)
_COGVIDEOX_2B = FullSize(
    CogVideoXBackbone,
    ("CogVideoXTransformer3DModel", COGVIDEOX_2B),
    ("T5EncoderModel", "T5Config", T5_XXL),
    (49, 480, 720),
    226,
    (50, 6.0),
    "configs/cogx2b_nudity.yaml",
    {"variant": "2b"},
)
FULLSIZE: dict[str, FullSize] = {
    "cogvideox-2b": _COGVIDEOX_2B,
    # CogVideoX-5B trains like the 2B (same text encoder, geometry, text length and sampling); its transformer differs
    "cogvideox-5b": dataclasses.replace(
        _COGVIDEOX_2B,
        denoiser=("CogVideoXTransformer3DModel", COGVIDEOX_5B),
        config="configs/cogx5b_nudity.yaml",
        family_kwargs={"variant": "5b"},
    ),
    "hunyuanvideo": FullSize(
        HunyuanVideoBackbone,
        ("HunyuanVideoTransformer3DModel", HUNYUAN),
        ("LlamaModel", "LlamaConfig", LLAVA_LLAMA3_8B),
        (49, 320, 512),
        256,
        (50, 1.0),
        "configs/hunyuan_nudity.yaml",
    ),
    "wan2.1-t2v-1.3b": FullSize(
        WanBackbone,
        ("WanTransformer3DModel", WAN_1_3B),
        ("UMT5EncoderModel", "UMT5Config", UMT5_XXL),
        (81, 480, 832),
        512,
        (50, 5.0),
        None,
    ),
}


# ------------------------------------------------------------------------------------------------ building
@contextlib.contextmanager
def _created_in(dtype: torch.dtype, device: str | torch.device) -> Iterator[None]:
    """Parameters created inside are made in ``dtype`` on ``device`` (a 5B model initialised in float32 first would
    need 2x the memory)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def _denoiser(spec: FullSize, device: str | torch.device, dtype: torch.dtype, **overrides: Any) -> torch.nn.Module:
    import diffusers

    cls_name, cfg = spec.denoiser
    with _created_in(dtype, device):
        model = getattr(diffusers, cls_name)(**{**cfg, **overrides})
    model = model.to(dtype)
    # as from_pretrained(torch_dtype=...) does: the modules the class declares precision-critical stay float32
    keep = getattr(model, "_keep_in_fp32_modules", None) or []
    for pname, param in model.named_parameters():
        if any(k in pname.split(".") for k in keep):
            param.data = param.data.float()
    return model.requires_grad_(False).eval()


def _text_encoder(spec: FullSize, layers: int, vocab: int, device: str | torch.device, dtype: torch.dtype):
    import transformers

    model_cls, config_cls, cfg = spec.text_encoder
    cfg = dict(cfg, vocab_size=vocab)
    cfg["num_hidden_layers" if "hidden_size" in cfg else "num_layers"] = layers
    with _created_in(dtype, device):
        model = getattr(transformers, model_cls)(getattr(transformers, config_cls)(**cfg))
    return model.to(dtype).requires_grad_(False).eval()


def build_random_backbone(
    name: str,
    device: str | torch.device = "meta",
    torch_dtype: str = "bfloat16",
    text_layers: int = 2,
    seed: int = 0,
    num_layers: int | None = None,
    vae: bool = False,
):
    """The full-size denoiser ``name`` (a key of :data:`FULLSIZE`) with random weights on ``device``, a text
    encoder of the real width with ``text_layers`` layers (none on ``meta``), the real scheduler, no VAE
    (``vae=True``, CogVideoX only: the published VAE configuration, diffusers' ``AutoencoderKLCogVideoX``
    defaults, with random weights, for runs whose callbacks decode videos).
    ``num_layers`` keeps only that many transformer blocks (of the real width), for CPU-sized ratios."""
    spec = FULLSIZE[name]
    dtype = getattr(torch, torch_dtype) if isinstance(torch_dtype, str) else torch_dtype
    torch.manual_seed(seed)
    den = _denoiser(spec, device, dtype, **({} if num_layers is None else {"num_layers": num_layers}))
    frames, height, width = spec.geometry
    steps, guidance = spec.sampling
    defaults = SamplingSettings(frames, height, width, steps, guidance)
    meta = torch.device(device).type == "meta"
    common = dict(defaults=defaults, source=f"random-{name}-seed{seed}", max_text_length=spec.text_len)
    if spec.family is CogVideoXBackbone:
        from diffusers import CogVideoXDDIMScheduler

        tok = tiny_t5_tokenizer(max_length=spec.text_len)
        enc = None if meta else _text_encoder(spec, text_layers, len(tok), device, dtype)
        decoder = None
        if vae:
            from diffusers import AutoencoderKLCogVideoX

            with torch.device(device):
                decoder = AutoencoderKLCogVideoX().to(dtype).requires_grad_(False).eval()
        return CogVideoXBackbone(
            den,
            CogVideoXDDIMScheduler(**COGVIDEOX_SCHEDULERS[spec.family_kwargs["variant"]]),
            enc,
            tok,
            decoder,
            **common,
        )
    if spec.family is HunyuanVideoBackbone:
        from diffusers import FlowMatchEulerDiscreteScheduler
        from transformers import CLIPTextConfig, CLIPTextModel

        tok, tok2 = tiny_llama_tokenizer(max_length=512), tiny_clip_tokenizer(max_length=77)
        enc = enc2 = None
        if not meta:
            enc = _text_encoder(spec, text_layers, len(tok), device, dtype)
            clip = {
                **CLIP_L14_TEXT,
                "vocab_size": len(tok2),
                "num_hidden_layers": text_layers,
                "bos_token_id": tok2.bos_token_id,
                "eos_token_id": tok2.eos_token_id,
                "pad_token_id": tok2.pad_token_id,
            }
            with torch.device(device):
                enc2 = CLIPTextModel(CLIPTextConfig(**clip)).to(dtype).requires_grad_(False).eval()
        return HunyuanVideoBackbone(
            den,
            FlowMatchEulerDiscreteScheduler(**HUNYUAN_SCHEDULER),
            enc,
            tok,
            None,
            text_encoder_2=enc2,
            tokenizer_2=tok2,
            prompt_template=TINY_PROMPT_TEMPLATE,
            **common,
        )
    from diffusers import UniPCMultistepScheduler

    tok = tiny_t5_tokenizer(max_length=spec.text_len)
    enc = None if meta else _text_encoder(spec, text_layers, len(tok), device, dtype)
    return WanBackbone(den, UniPCMultistepScheduler(**WAN_SCHEDULER), enc, tok, None, **common)


def register_random_backbones() -> None:
    """Register ``random-<name>`` for every row of :data:`FULLSIZE` (idempotent). Not done on import: the package's
    own listings (``available_backbones()``) stay the real families."""
    if f"random-{next(iter(FULLSIZE))}" in available_backbones():
        return
    for name, spec in FULLSIZE.items():

        def load(
            cls,
            pretrained: str | None = None,
            tiny: bool = False,
            torch_dtype: str = "bfloat16",
            device: str = "meta",
            text_layers: int = 2,
            seed: int = 0,
            num_layers: int | None = None,
            vae: bool = False,
            _name: str = name,
            **_: Any,
        ):
            return build_random_backbone(_name, device, torch_dtype, text_layers, seed, num_layers, vae)

        cls = type(f"Random{spec.family.__name__}", (spec.family,), {"load": classmethod(load)})
        register_backbone(f"random-{name}")(cls)


# ------------------------------------------------------------------------------------------------ attention on meta
def _cuda_like_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    """``scaled_dot_product_attention`` on ``meta`` tensors as a CUDA device runs it: the flash kernel without a
    mask, the memory-efficient kernel with one (their meta implementations allocate nothing, FlopCounterMode
    counts them and autograd saves what they save: q, k, v, output, log-sum-exp). The meta device's own choice
    would be the math path, which materialises the N×N matrix."""
    if query.device.type != "meta":
        return _REAL_SDPA(
            query,
            key,
            value,
            attn_mask=attn_mask,
            dropout_p=dropout_p,
            is_causal=is_causal,
            scale=scale,
            enable_gqa=enable_gqa,
        )
    if attn_mask is None and query.dtype in (torch.float16, torch.bfloat16):
        return compat.flash_attention(query, key, value, scale, is_causal)[0]
    b, h, nq, _ = query.shape
    bias = None
    if attn_mask is not None:
        bias = torch.empty(attn_mask.shape, dtype=query.dtype, device="meta").expand(b, h, nq, key.shape[2])
    # as scaled_dot_product_attention does: the log-sum-exp only when a backward will need it
    needs_lse = query.requires_grad or key.requires_grad or value.requires_grad
    return compat.efficient_attention(query, key, value, bias, needs_lse, scale)[0]


_REAL_SDPA = F.scaled_dot_product_attention


@contextlib.contextmanager
def cuda_attention_on_meta() -> Iterator[None]:
    """Route every ``scaled_dot_product_attention`` on meta tensors to the kernels a CUDA device uses (the
    processors' concept-map route chooses them on meta by itself, see ``unlearn.backbones.attention``)."""
    F.scaled_dot_product_attention = _cuda_like_sdpa
    try:
        yield
    finally:
        F.scaled_dot_product_attention = _REAL_SDPA


# ------------------------------------------------------------------------------------------------ a training batch
#: the prompts of the full-size batches (the concept "nudity" is named by these words)
PROMPT = "a naked woman walks along a beach at sunset, waves rolling in"
PRESERVE_PROMPT = "a person walks along a beach at sunset, waves rolling in"
CONCEPT_WORDS = ["naked", "nude", "nudity"]
#: concept tokens in the meta batches (the map's cost scales with their number)
META_CONCEPT_TOKENS = 4


def training_batch(
    backbone, name: str, geometry: tuple[int, int, int] | None = None, preserve: bool = False, seed: int = 0
) -> dict[str, Any]:
    """One training sample (batch size 1) at ``geometry`` (default the row's), as the data module batches it:
    ``x_t``, ``timesteps``, ``target``, ``cond.*``, ``concept_tokens`` and, with ``preserve``, the ``pre_*`` pair.

    On ``meta`` the tensors are empty (shapes only) and the concept tokens a fixed CPU mask; elsewhere latents
    and targets are seeded Gaussian noise and the conditioning comes from the backbone's own text encoder."""

    spec = FULLSIZE[name]
    shape = backbone.latent_shape(*(geometry or spec.geometry))
    device, dtype = backbone.device, backbone.dtype
    if device.type == "meta":
        den = backbone.denoiser.config
        width = den.get("text_embed_dim") or den.get("text_dim")

        def emb(_: str) -> PromptEmbedding:
            e = PromptEmbedding(torch.empty(1, spec.text_len, width, dtype=dtype, device=device))
            if spec.family is HunyuanVideoBackbone:
                e = PromptEmbedding(
                    e.hidden_states,
                    torch.ones(1, spec.text_len, dtype=torch.long, device=device),
                    torch.empty(1, den.pooled_projection_dim, dtype=dtype, device=device),
                )
            return e

        def noise(_: int) -> torch.Tensor:
            return torch.empty(1, *shape, dtype=dtype, device=device)

        concept = torch.zeros(1, spec.text_len, dtype=torch.bool)
        concept[0, 3 : 3 + META_CONCEPT_TOKENS] = True
    else:
        g = torch.Generator().manual_seed(seed)

        def emb(prompt: str) -> PromptEmbedding:
            return backbone.encode_prompts([prompt])

        def noise(k: int) -> torch.Tensor:
            return torch.randn(1, *shape, generator=g).to(device, dtype)

        concept = backbone.concept_token_mask([PROMPT], [CONCEPT_WORDS])
    batch: dict[str, Any] = {
        "x_t": noise(0),
        "timesteps": torch.full((1,), 500, device=device),
        "target": noise(1),
        "concept_tokens": concept,
        **{f"cond.{k}": v for k, v in emb(PROMPT).to_dict().items()},
    }
    switch = getattr(backbone, "switch", None)
    if switch is not None:
        # the frozen model's concept maps, as the pseudo data records them (T2VUnlearning's mask_source "frozen")
        cond = PromptEmbedding.from_dict({k[5:]: v for k, v in batch.items() if k.startswith("cond.")})
        meta = device.type == "meta"
        on_meta = cuda_attention_on_meta() if meta else contextlib.nullcontext()
        with torch.no_grad(), switch.disabled(), switch.capturing(concept), on_meta:
            backbone.predict(batch["x_t"], batch["timesteps"], cond)
        batch.update({f"concept_maps.{i}": m for i, m in enumerate(switch.take()[1])})
    if preserve:
        batch.update(
            {
                "pre_x_t": noise(2),
                "pre_timesteps": torch.full((1,), 300, device=device),
                "pre_target": noise(3),
                **{f"pre_cond.{k}": v for k, v in emb(PRESERVE_PROMPT).to_dict().items()},
            }
        )
    return batch
