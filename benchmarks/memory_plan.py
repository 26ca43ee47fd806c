"""Parameter counts and training-memory estimates of the full-size backbones, without weights or a GPU.

Every model is built on the ``meta`` device from its published configuration (written below from the
``config.json`` files of the diffusers/transformers folders, as published on the model hub — not downloaded here),
so parameter counts are exact for those configs. Activation memory is *measured* on the meta device too: one
adapted forward pass of the real architecture at the default resolution runs through the project's own attention
processors with adapters attached (the only trainable tensors), and every tensor autograd saves for the backward
pass is counted (``torch.autograd.graph.saved_tensors_hooks``). Attention is replaced during the count by a
stand-in that saves what flash/efficient attention saves on a GPU (q, k, v, output and the fp32 log-sum-exp),
since the CPU/meta kernel would otherwise materialise the N×N matrix.

Run:  OMP_NUM_THREADS=1 python benchmarks/memory_plan.py [--json out.json]
The numbers are estimates: see docs/results/memory_plan.md for the model and its assumptions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

GiB = 1024**3
BF16 = 2

# the published configurations live in fullsize_models.py (shared with fullsize_cost / smoke / gpu_step)
from fullsize_models import (  # noqa: E402
    CLIP_L14_TEXT,
    COGVIDEOX_2B,
    COGVIDEOX_5B,
    HUNYUAN,
    LLAVA_LLAMA3_8B,
    OPENCLIP_H14_TEXT,
    SD_VAE,
    T5_XXL,
    UMT5_XXL,
    WAN_1_3B,
    WAN_14B,
    ZEROSCOPE_UNET,
    cuda_attention_on_meta,
)


@dataclass
class Plan:
    name: str
    registry: str
    denoiser: tuple[str, dict]
    text_encoders: list[tuple[str, str, dict]]  # (label, transformers class, config)
    vae: tuple[str, dict]
    sizes: list[tuple[str, int, int, int]]  # (label, frames, height, width): first = the backbone's default
    text_len: int
    preserve_forward: bool  # β > 0 in the paper setting (a second adapted forward per step; its graph is freed first)
    notes: list[str] = field(default_factory=list)


PLANS = [
    Plan(
        "CogVideoX-2B",
        "cogvideox-2b",
        ("CogVideoXTransformer3DModel", COGVIDEOX_2B),
        [("T5-v1.1-XXL encoder", "T5EncoderModel", T5_XXL)],
        ("AutoencoderKLCogVideoX", {}),
        [("default 49×480×720", 49, 480, 720)],
        226,
        False,
    ),
    Plan(
        "CogVideoX-5B",
        "cogvideox-5b",
        ("CogVideoXTransformer3DModel", COGVIDEOX_5B),
        [("T5-v1.1-XXL encoder", "T5EncoderModel", T5_XXL)],
        ("AutoencoderKLCogVideoX", {}),
        [("default 49×480×720", 49, 480, 720)],
        226,
        False,
    ),
    Plan(
        "HunyuanVideo",
        "hunyuanvideo",
        ("HunyuanVideoTransformer3DModel", HUNYUAN),
        [
            ("LLaVA-Llama-3-8B (LlamaModel)", "LlamaModel", LLAVA_LLAMA3_8B),
            ("CLIP ViT-L/14 text", "CLIPTextModel", CLIP_L14_TEXT),
        ],
        ("AutoencoderKLHunyuanVideo", {}),
        [
            ("default 129×720×1280", 129, 720, 1280),
            ("49×720×1280", 49, 720, 1280),
            ("49×544×960", 49, 544, 960),
            ("49×320×512", 49, 320, 512),
        ],
        256,
        True,
    ),
    Plan(
        "ZeroScope v2 576w",
        "zeroscope",
        ("UNet3DConditionModel", ZEROSCOPE_UNET),
        [("OpenCLIP ViT-H/14 text (CLIPTextModel)", "CLIPTextModel", OPENCLIP_H14_TEXT)],
        ("AutoencoderKL", SD_VAE),
        [("default 24×320×576", 24, 320, 576)],
        77,
        True,
    ),
    Plan(
        "Wan2.1-T2V-1.3B",
        "wan2.1-t2v-1.3b",
        ("WanTransformer3DModel", WAN_1_3B),
        [("UMT5-XXL encoder", "UMT5EncoderModel", UMT5_XXL)],
        ("AutoencoderKLWan", {}),
        [("default 81×480×832", 81, 480, 832)],
        512,
        True,
    ),
    Plan(
        "Wan2.1-T2V-14B",
        "wan2.1-t2v-14b",
        ("WanTransformer3DModel", WAN_14B),
        [("UMT5-XXL encoder", "UMT5EncoderModel", UMT5_XXL)],
        ("AutoencoderKLWan", {}),
        [("default 81×720×1280", 81, 720, 1280), ("81×480×832", 81, 480, 832)],
        512,
        True,
    ),
]


# ------------------------------------------------------------------------------------------------ building
def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build_meta(plan: Plan) -> dict[str, Any]:
    import diffusers
    import transformers

    with torch.device("meta"):
        den = getattr(diffusers, plan.denoiser[0])(**plan.denoiser[1]).to(torch.bfloat16)
        encs = []
        for label, cls_name, cfg in plan.text_encoders:
            config_cls = getattr(
                transformers,
                cls_name.replace("EncoderModel", "Config")
                .replace("TextModel", "TextConfig")
                .replace("LlamaModel", "LlamaConfig"),
            )
            encs.append((label, n_params(getattr(transformers, cls_name)(config_cls(**cfg)))))
        vae = getattr(diffusers, plan.vae[0])(**plan.vae[1])
    return {"denoiser": den, "text_encoders": encs, "vae_params": n_params(vae)}


# ------------------------------------------------------------------------------------------------ activation count
@contextlib.contextmanager
def count_saved(params: set[int], block_of: list[str]):
    """Count bytes of tensors autograd saves (excluding parameters and views of them), per current block."""
    seen: set[int] = set()
    per_block: dict[str, int] = {}

    def pack(t: torch.Tensor):
        base = t._base if t._base is not None else t
        key = id(base)
        if key in params or id(t) in params or key in seen:
            return t
        seen.add(key)
        per_block[block_of[0]] = per_block.get(block_of[0], 0) + base.numel() * base.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield per_block


def measure(plan: Plan, meta: dict[str, Any], frames: int, height: int, width: int) -> dict[str, Any]:
    """One adapted forward (batch 1) on meta: saved-activation bytes, per block and in total."""
    from unlearn.backbones import backbone_class
    from unlearn.backbones.base import PromptEmbedding, SamplingSettings
    from unlearn.methods.t2vunlearning.adapters import AdapterSwitch
    from unlearn.methods.t2vunlearning.losses import concept_mask, localization_loss, unlearning_loss

    cls = backbone_class(plan.registry)
    den = meta["denoiser"]
    kwargs: dict[str, Any] = {}
    if plan.registry == "hunyuanvideo":
        from unlearn.backbones.hunyuanvideo import DEFAULT_PROMPT_TEMPLATE

        kwargs.update(prompt_template=DEFAULT_PROMPT_TEMPLATE, text_encoder_2=None, tokenizer_2=None)
    defaults = SamplingSettings(frames, height, width, 50, 6.0)
    bb = cls(den, None, None, None, None, defaults=defaults, source="meta", max_text_length=plan.text_len, **kwargs)
    sites = bb.attention_sites()
    with torch.device("meta"):
        switch = AdapterSwitch([s.video_dim for s in sites], 128, [s.name for s in sites])
    bb.attach_switch(switch)
    shape = bb.latent_shape(frames, height, width)
    text_dim = {
        "CogVideoXTransformer3DModel": "text_embed_dim",
        "HunyuanVideoTransformer3DModel": "text_embed_dim",
        "WanTransformer3DModel": "text_dim",
        "UNet3DConditionModel": "cross_attention_dim",
    }[plan.denoiser[0]]
    with torch.device("meta"):
        x = torch.empty((1, *shape), dtype=torch.bfloat16)
        cond = PromptEmbedding(torch.empty(1, plan.text_len, den.config[text_dim], dtype=torch.bfloat16))
        if plan.registry == "hunyuanvideo":
            cond = PromptEmbedding(
                cond.hidden_states,
                torch.ones(1, plan.text_len, dtype=torch.long),
                torch.empty(1, den.config.pooled_projection_dim, dtype=torch.bfloat16),
            )
        t = torch.full((1,), 500.0)
    # blocks: attribute saved bytes to the top-level repeated block that is running
    block_of = ["outside blocks"]
    hooks = []
    for name, module in den.named_modules():
        parts = name.split(".")
        if (
            len(parts) == 2
            and parts[1].isdigit()
            and parts[0] in ("transformer_blocks", "single_transformer_blocks", "blocks", "down_blocks", "up_blocks")
        ) or name == "mid_block":
            hooks.append(module.register_forward_pre_hook(lambda m, a, n=name: block_of.__setitem__(0, n)))
            hooks.append(module.register_forward_hook(lambda m, a, o: block_of.__setitem__(0, "outside blocks")))
    params = {id(p) for p in den.parameters()} | {id(b) for b in den.buffers()} | {id(p) for p in switch.parameters()}
    concept = torch.zeros(1, plan.text_len, dtype=torch.bool)
    concept[0, 3:7] = True  # four concept tokens (the map's cost scales with their number)
    try:
        # attention as on a CUDA device (flash / memory-efficient kernels: q, k, v, output and log-sum-exp saved)
        with cuda_attention_on_meta(), count_saved(params, block_of) as per_block:
            with switch.capturing(concept):
                out = bb.predict(x, t, cond)
            squares, maps = switch.take()
            block_of[0] = "losses"
            masks = [concept_mask(m)[1] for m in maps]
            loss = unlearning_loss(out, torch.empty_like(out)) + localization_loss(squares, masks)
            del squares
    finally:
        for h in hooks:
            h.remove()
    assert loss.requires_grad and len(maps) == len(sites), "the adapted forward must reach the adapters"
    tokens = video_tokens(plan, den, shape)
    # block inputs kept by gradient checkpointing: hidden states entering every block (+ text stream)
    loss_bytes = per_block.pop("losses", 0)
    blocks = [k for k in per_block if k != "outside blocks"]
    return {
        "latent_shape": list(shape),
        "video_tokens": tokens,
        "saved_bytes": sum(per_block.values()),
        "loss_bytes": loss_bytes,
        "max_block_bytes": max(per_block[k] for k in blocks),
        "outside_blocks_bytes": per_block.get("outside blocks", 0),
        "num_blocks": len(blocks),
        "num_sites": len(sites),
        "adapter_params": n_params(switch),
        "checkpoint_inputs_bytes": checkpoint_inputs(plan, den, shape),
    }


def video_tokens(plan: Plan, den: nn.Module, shape: tuple[int, ...]) -> int:
    if plan.denoiser[0] == "UNet3DConditionModel":
        c, f, h, w = shape
        return f * h * w  # at the first level
    if plan.denoiser[0] == "CogVideoXTransformer3DModel":
        f, c, h, w = shape
        return f * (h // 2) * (w // 2)
    c, f, h, w = shape
    return f * (h // 2) * (w // 2)


def checkpoint_inputs(plan: Plan, den: nn.Module, shape: tuple[int, ...]) -> int:
    """Bytes that gradient checkpointing keeps: the (bf16) hidden states entering each checkpointed block."""
    cfg = den.config
    if plan.denoiser[0] == "UNet3DConditionModel":
        # diffusers checkpoints every resnet/attention/temporal module of the UNet separately: their inputs are
        # the feature maps of each level, about 4 modules per layer; counted per level below
        c, f, h, w = shape
        total, scale = 0, 1
        chans = cfg.block_out_channels
        for ch in chans:
            n = f * (h // scale) * (w // scale)
            total += n * ch * BF16 * (4 * cfg.layers_per_block) * 2  # down + up path
            scale *= 2
        return total
    tokens = video_tokens(plan, den, shape)
    d = cfg.num_attention_heads * cfg.attention_head_dim
    n_blocks = cfg.num_layers + getattr(cfg, "num_single_layers", 0)
    return n_blocks * (tokens + plan.text_len) * d * BF16


# ------------------------------------------------------------------------------------------------ report
def estimate(plan: Plan, meta: dict[str, Any], m: dict[str, Any]) -> dict[str, float]:
    den_params = n_params(meta["denoiser"])
    te_params = sum(n for _, n in meta["text_encoders"])
    weights_all = (den_params + te_params + meta["vae_params"]) * BF16
    weights_denoiser = den_params * BF16
    adapters = m["adapter_params"] * 16  # fp32 weights + grads + two Adam moments
    # β > 0: the preservation forward is differentiated and freed before the unlearning forward starts
    # (T2VUnlearning.compute_losses), so one forward's activations are alive at a time
    forwards = 1
    # the concept map: fp32 logits of the video queries on the concept columns (≤16 tokens) and their exp
    heads = getattr(meta["denoiser"].config, "num_attention_heads", None) or 20
    concept_map_workspace = 2 * heads * m["video_tokens"] * 16 * 4
    overhead = 1.5 * GiB  # CUDA context, cuBLAS/cuDNN workspaces, allocator slack (rough)
    act = m["saved_bytes"] * forwards + m["loss_bytes"]
    # transient working set of the busiest block during backward (grads of its activations): ~1 block's saves
    transient = m["max_block_bytes"]
    act_ckpt = (
        (m["checkpoint_inputs_bytes"] + m["outside_blocks_bytes"]) * forwards
        + m["loss_bytes"]
        + 2 * m["max_block_bytes"]
    )
    out = {}
    for label, weights in (("all", weights_all), ("denoiser_only", weights_denoiser)):
        base = weights + adapters + concept_map_workspace + overhead
        out[f"no_ckpt_{label}"] = (base + act + transient) * 1.1 / GiB  # 10 % fragmentation
        out[f"ckpt_{label}"] = (base + act_ckpt) * 1.1 / GiB
    out["weights_all_gib"] = weights_all / GiB
    out["weights_denoiser_gib"] = weights_denoiser / GiB
    out["activations_per_forward_gib"] = m["saved_bytes"] / GiB
    out["loc_loss_gib"] = m["loss_bytes"] / GiB
    return out


def fits(gib: float) -> str:
    for cap in (24, 48, 80, 141):
        if gib <= cap * 0.95:
            return f"{cap} GB"
    return "none (>141 GB: shard, offload or lower the resolution)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the raw numbers here")
    parser.add_argument("--only", nargs="*", help="plan names to run")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(True)
    results = []
    for plan in PLANS:
        if args.only and plan.name not in args.only:
            continue
        t0 = time.time()
        meta = build_meta(plan)
        den_params = n_params(meta["denoiser"])
        print(
            f"\n## {plan.name}  ({plan.denoiser[0]}: {den_params:,} params; "
            + "; ".join(f"{label}: {n:,}" for label, n in meta["text_encoders"])
            + f"; {plan.vae[0]}: {meta['vae_params']:,})"
        )
        for label, f, h, w in plan.sizes:
            m = measure(plan, meta, f, h, w)
            e = estimate(plan, meta, m)
            results.append(
                {
                    "model": plan.name,
                    "size": label,
                    "denoiser_params": den_params,
                    "text_encoders": meta["text_encoders"],
                    "vae_params": meta["vae_params"],
                    **m,
                    **e,
                }
            )
            print(
                f"  {label}: latent {m['latent_shape']}, {m['video_tokens']:,} video tokens, {m['num_sites']} sites, "
                f"adapters {m['adapter_params']:,} params; activations/forward {e['activations_per_forward_gib']:.1f} "
                f"GiB, L_loc {e['loc_loss_gib']:.1f} GiB; "
                f"peak no-ckpt {e['no_ckpt_all']:.1f} GiB ({fits(e['no_ckpt_all'])}), "
                f"ckpt {e['ckpt_all']:.1f} GiB ({fits(e['ckpt_all'])}); denoiser-only weights: "
                f"{e['no_ckpt_denoiser_only']:.1f} / {e['ckpt_denoiser_only']:.1f} GiB"
            )
        print(f"  ({time.time() - t0:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
