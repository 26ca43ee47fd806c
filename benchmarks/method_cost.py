"""What UCE, ESD-x and VideoEraser add at full size: FLOPs counted on the real architectures (``meta`` device, as
``fullsize_cost.py``), projected to an H100 at 40 % of its dense bf16 rate; no weights, no GPU.

Per backbone of ``fullsize_models.FULLSIZE`` at its config's geometry:

- **UCE** (closed form, once): the edited layers (the ``auto`` preset, found on the family's tiny model and read at
  full size by name: text input projections on joint attention, ``attn2.to_k/to_v`` on cross attention), their
  parameter count (the file's size in bf16), and the solve's FLOPs (``2/3·D_in³`` for the factorisation +
  ``2·D_in²·D_out`` per layer). Sampling afterwards costs nothing extra.
- **ESD-x** (training): FLOPs of one training step (forward + backward with the attention projections trainable,
  counted) next to T2VUnlearning's step without its regularizers (α = β = 0, adapters trainable, counted); the
  trainable parameters and the Adam state they add (two moments in the parameters' bf16 + bf16 gradients); the
  authors' 200 steps. Pseudo data: as T2VUnlearning's (shared cache), not counted again.
- **VideoEraser** (inference): denoiser sample-forwards per sampler step (counted on the family's tiny model: 3
  against classifier-free guidance's 2), so ``× 1.5`` the sampling FLOPs of a video, plus SPEA's text-encoder
  passes (one per real prompt token, once per prompt).

Usage: OMP_NUM_THREADS=1 python benchmarks/method_cost.py [--only cogvideox-2b ...] [--mfu 0.4] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from fullsize_cost import H100_BF16_DENSE, count_forward, count_step, meta_model  # noqa: E402
from fullsize_models import FULLSIZE, cuda_attention_on_meta, training_batch  # noqa: E402

from unlearn.backbones import PromptEmbedding, build_backbone  # noqa: E402
from unlearn.methods.baselines import VideoEraser  # noqa: E402
from unlearn.methods.esd import esd_layers  # noqa: E402
from unlearn.methods.weight_edits import get_linear, resolve_layers  # noqa: E402

warnings.filterwarnings("ignore")
ESD_STEPS = 200  # esd_sd.py:60


def uce_layers_full(name: str, full) -> list[str]:
    """The ``auto`` layers of the tiny model of the family, mapped onto the full-size denoiser by name (the tiny
    models keep the module names, with fewer blocks: a per-block name stands for every block)."""
    tiny = build_backbone(name, tiny=True, torch_dtype="float32")
    found = resolve_layers(tiny, "auto")
    full_names = [n for n, m in full.denoiser.named_modules() if isinstance(m, torch.nn.Linear)]
    out = []
    for n in found:
        parts = n.split(".")
        pattern = [p if not p.isdigit() else None for p in parts]
        for f in full_names:
            fp = f.split(".")
            same = len(fp) == len(parts) and all(
                (q is None and x.isdigit()) or q == x for q, x in zip(pattern, fp, strict=True)
            )
            if same and f not in out:
                out.append(f)
    return out


def esd_step(name: str) -> tuple[float, int]:
    """FLOPs of one ESD-x training step (the real loss on a full-size batch, backward into the attention
    projections) and the number of trainable parameters."""
    model = meta_model(name, 0.0, 0.0, False)
    bb = model.backbone
    layers = esd_layers(bb)
    params = [p for n in layers for p in get_linear(n, bb.denoiser, None).parameters()]
    for p in params:
        p.requires_grad_(True)
    batch = training_batch(bb, name)
    cond = PromptEmbedding.from_dict({k[5:]: v for k, v in batch.items() if k.startswith("cond.")})
    with model.switch.disabled(), cuda_attention_on_meta(), FlopCounterMode(display=False) as fc:
        pred = bb.predict(batch["x_t"], batch["timesteps"], cond)
        torch.mean((pred.float() - batch["target"].float()) ** 2).backward()
    assert all(p.grad is not None for p in params)
    return fc.get_total_flops(), sum(p.numel() for p in params)


def videoeraser_forwards(name: str) -> tuple[float, float]:
    """Denoiser sample-forwards per sampler step for one video: VideoEraser's and plain CFG's (tiny model)."""
    bb = build_backbone(name, tiny=True, torch_dtype="float32")
    seen: list[int] = []
    bb.denoiser.register_forward_pre_hook(lambda m, a, kw: seen.append(kw["hidden_states"].shape[0]), with_kwargs=True)
    steps = 3
    VideoEraser(bb, ["a golf ball"]).sample(
        ["a golf ball on grass"], [0], num_inference_steps=steps, guidance_scale=6.0
    )
    ve = sum(seen) / steps
    seen.clear()
    bb.sample(["a golf ball on grass"], [0], num_inference_steps=steps, guidance_scale=6.0)
    return ve, sum(seen) / steps


def row(name: str, mfu: float) -> dict:
    rate = H100_BF16_DENSE * mfu
    full = meta_model(name, 0.0, 0.0, False).backbone
    layers = uce_layers_full(name, full)
    shapes = [tuple(get_linear(n, full.denoiser, None).weight.shape) for n in layers]
    uce_params = sum(o * i for o, i in shapes)
    uce_flops = sum(2 / 3 * i**3 + 2 * i * i * o for o, i in shapes)
    esd_flops, esd_params = esd_step(name)
    t2v = count_step(name, 0.0, 0.0, False)["flops"]
    fwd = count_forward(name, adapters=False)
    ve, cfg = videoeraser_forwards(name)
    steps = FULLSIZE[name].sampling[0]
    return {
        "backbone": name,
        "uce_layers": len(layers),
        "uce_layer_shapes": sorted(set(shapes)),
        "uce_params_m": uce_params / 1e6,
        "uce_file_mib_bf16": uce_params * 2 / 2**20,
        "uce_solve_s_h100": uce_flops / rate,
        "esd_trainable_m": esd_params / 1e6,
        "esd_extra_gib": esd_params * 2 * 3 / 2**30,  # bf16 gradient + two bf16 Adam moments
        "esd_step_tflop": esd_flops / 1e12,
        "t2v_step_tflop": t2v / 1e12,
        "esd_step_s_h100": esd_flops / rate,
        "esd_train_min_h100": ESD_STEPS * esd_flops / rate / 60,
        "fwd_tflop": fwd / 1e12,
        "ve_forwards_per_step": ve,
        "cfg_forwards_per_step": cfg,
        "ve_video_extra_s_h100": (ve - cfg) * steps * fwd / rate,
        "video_s_h100": cfg * steps * fwd / rate,
    }


def markdown(rows: list[dict], mfu: float) -> str:
    head = (
        f"| backbone | UCE: layers (shapes), params, file | UCE solve (H100 @{mfu:.0%}) | ESD-x: trainable params, "
        "+memory (grad + Adam, bf16) | ESD-x step vs T2VUnlearning step (α=β=0) | ESD-x 200 steps | VideoEraser: "
        "forwards per step vs CFG | VideoEraser: + s per video |\n|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['backbone']} | {r['uce_layers']} ({', '.join(f'{o}×{i}' for o, i in r['uce_layer_shapes'])}), "
            f"{r['uce_params_m']:.1f} M, {r['uce_file_mib_bf16']:.0f} MiB | {r['uce_solve_s_h100'] * 1e3:.2f} ms | "
            f"{r['esd_trainable_m']:.0f} M, +{r['esd_extra_gib']:.1f} GiB | {r['esd_step_tflop']:.0f} vs "
            f"{r['t2v_step_tflop']:.0f} TFLOP ({r['esd_step_s_h100']:.2f} s) | {r['esd_train_min_h100']:.1f} min | "
            f"{r['ve_forwards_per_step']:.0f} vs {r['cfg_forwards_per_step']:.0f} | "
            f"+{r['ve_video_extra_s_h100']:.0f} s (of {r['video_s_h100']:.0f} s) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--mfu", type=float, default=0.4)
    p.add_argument("--markdown", default=None)
    a = p.parse_args(argv)
    torch.manual_seed(0)
    rows = [row(n, a.mfu) for n in (a.only or list(FULLSIZE))]
    text = markdown(rows, a.mfu)
    print(text)
    if a.markdown:
        Path(a.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
