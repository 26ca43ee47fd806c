"""The training step and one pseudo-data trajectory at full size on a GPU, with random weights (no download).

For each backbone (default CogVideoX-2B) the real full-size denoiser is built from its published configuration
with random bf16 weights on the GPU (``fullsize_models.py``: text encoder of the real width with 2 layers, no VAE)
inside the real ``T2VUnlearning`` module, with α, β and gradient checkpointing from its config. Measured:

- seconds per training step (``compute_losses`` + backward + Adam step, CUDA-synchronised, after a warm-up),
  with the concept map (α as configured) and without it (α = 0): the map's share of the step;
- the map against the chunked reference route on the same batch (max |difference|): the fused kernel's
  log-sum-exp route is exact on this GPU too;
- peak GPU memory of the step (``torch.cuda.max_memory_allocated``; the text encoder parked on the CPU as
  after a cache build);
- seconds per pseudo-data trajectory (``make_trajectories`` with the config's sampler settings: every CFG step
  up to the last recorded one, batch = ``generation_batch_size``);
- next to each, ``fullsize_cost.py``'s projection (FLOPs at 40 % of an H100's dense bf16 peak).

Usage: python benchmarks/gpu_step.py [--backbone cogvideox-2b ...] [--steps 3] [--json gpu_step.json]
       (CogVideoX-2B: about 2–4 min on one H100; the 8-minute budget is the issue's bound.)
A CPU dry run of the same code at a toy size (for CI, numbers meaningless):
       python benchmarks/gpu_step.py --device cpu --num-layers 1 --geometry 1 64 96 --sampler-steps 2 --steps 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from fullsize_cost import H100_BF16_DENSE, load_config  # noqa: E402
from fullsize_models import FULLSIZE, PROMPT, training_batch  # noqa: E402

import unlearn.backbones.attention as am  # noqa: E402
from unlearn.methods.t2vunlearning import T2VUnlearning, batch_embedding  # noqa: E402
from unlearn.methods.t2vunlearning.pseudo_data import SamplerSettings, TrajectoryRequest, make_trajectories  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn) -> tuple[float, Any]:
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


def measure(
    name: str,
    device: torch.device,
    steps: int,
    geometry: tuple[int, int, int] | None,
    num_layers: int | None,
    sampler_steps: int | None,
) -> dict[str, Any]:
    spec = FULLSIZE[name]
    cfg = load_config(spec.config or FULLSIZE["cogvideox-2b"].config, [])
    hp, data = cfg["model"], cfg["data"]
    alpha, beta = float(hp.get("alpha", 1.0)), float(hp.get("beta", 0.0))
    ckpt = bool(hp.get("gradient_checkpointing", False))
    t_build, model = timed(
        device,
        lambda: T2VUnlearning(
            backbone=f"random-{name}",
            backbone_kwargs={"device": str(device), "num_layers": num_layers},
            torch_dtype="bfloat16",
            alpha=alpha,
            beta=beta,
            gradient_checkpointing=ckpt,
        ),
    )
    model.controller.to(device)
    bb = model.backbone
    geometry = geometry or spec.geometry
    batch = training_batch(bb, name, geometry, preserve=beta > 0)
    bb.park_side_modules()  # as after the pseudo-data cache build: the training step needs the denoiser only
    opt = torch.optim.AdamW(model.controller.parameters(), lr=1e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)  # the configs' precision: bf16-mixed

    def step(with_map: bool) -> float:
        model.hparams.alpha = alpha if with_map else 0.0
        opt.zero_grad(set_to_none=True)
        with autocast:
            losses = model.compute_losses(batch)
        losses["total"].backward()
        opt.step()
        return float(losses["total"].detach())

    out: dict[str, Any] = {
        "backbone": name,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "geometry": "x".join(map(str, geometry)),
        "alpha": alpha,
        "beta": beta,
        "gradient_checkpointing": ckpt,
        "build_seconds": t_build,
    }
    for with_map in (True, False):
        step(with_map)  # warm-up: kernels chosen, allocator primed
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = [timed(device, lambda with_map=with_map: step(with_map))[0] for _ in range(steps)]
        key = "with_map" if with_map else "without_map"
        out[f"seconds_per_step_{key}"] = min(times)
        if device.type == "cuda":
            out[f"peak_gib_{key}"] = torch.cuda.max_memory_allocated(device) / 2**30
    out["mask_share_of_step"] = (out["seconds_per_step_with_map"] - out["seconds_per_step_without_map"]) / out[
        "seconds_per_step_without_map"
    ]

    # the map of the fused (log-sum-exp) route against the chunked route on this device
    maps = {}
    for route, kernel in (("lse", am._fused_kernel), ("chunked", lambda *a: None)):
        real = am._fused_kernel
        am._fused_kernel = kernel
        try:
            with torch.no_grad(), autocast, model.controller.capturing(batch["concept_tokens"]):
                bb.predict(batch["x_t"], batch["timesteps"], batch_embedding(batch, "cond."))
            maps[route] = model.controller.take()[1]
        finally:
            am._fused_kernel = real
    out["map_max_abs_difference"] = max(float((a - b).abs().max()) for a, b in zip(maps["lse"], maps["chunked"]))

    # one pseudo-data trajectory with the config's sampler settings
    n = int(data.get("generation_batch_size", 1))
    guidance = float(data["guidance_scale"]) if data.get("guidance_scale") is not None else spec.sampling[1]
    if sampler_steps:  # a shortened sampler (dry runs): record its last step
        settings = SamplerSettings(*geometry, sampler_steps, guidance, record_steps=(sampler_steps - 1,))
    else:
        record = data.get("record_steps")
        settings = SamplerSettings(
            *geometry,
            int(data.get("num_inference_steps") or spec.sampling[0]),
            guidance,
            record_steps=tuple(record) if record else None,
        )
    requests = [TrajectoryRequest("unlearn", PROMPT, i, PROMPT) for i in range(n)]
    with bb.side_modules_on_device(), model.controller.disabled():
        make_trajectories(bb, requests, SamplerSettings(*geometry, 2, settings.guidance_scale, record_steps=(1,)), 7.0)
        seconds, _ = timed(device, lambda: make_trajectories(bb, requests, settings, 7.0))
    out["seconds_per_trajectory"] = seconds / n
    out["sampler_steps"] = settings.num_inference_steps
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", nargs="*", default=["cogvideox-2b"], choices=list(FULLSIZE))
    ap.add_argument("--steps", type=int, default=3, help="timed training steps per variant (best kept)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument(
        "--geometry",
        type=int,
        nargs=3,
        default=None,
        metavar=("FRAMES", "HEIGHT", "WIDTH"),
        help="video size (default: the backbone's training size)",
    )
    ap.add_argument("--num-layers", type=int, default=None, help="transformer blocks (default: all; dry runs: 1)")
    ap.add_argument("--sampler-steps", type=int, default=None, help="pseudo-data sampler steps (default: the config's)")
    ap.add_argument("--projection", default=None, help="fullsize_cost.py --json output to print beside the measurement")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_step: no CUDA device here; nothing measured (use --device cpu for a dry run)", file=sys.stderr)
        return 2
    projected = {}
    if args.projection:
        projected = {r["backbone"]: r for r in json.loads(Path(args.projection).read_text())["rows"]}
    results = []
    for name in args.backbone:
        r = measure(
            name,
            device,
            args.steps,
            tuple(args.geometry) if args.geometry else None,
            args.num_layers,
            args.sampler_steps,
        )
        p = projected.get(name)
        if p:
            r["projected_seconds_per_step"] = p["seconds_per_step"]
            r["projected_seconds_per_trajectory"] = p["seconds_per_trajectory"]
            r["projected_peak_gib"] = p["peak_gib_ckpt" if r["gradient_checkpointing"] else "peak_gib_no_ckpt"]
        results.append(r)
        print(json.dumps(r), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"peak_flops_assumed": H100_BF16_DENSE, "rows": results}, indent=2))
    for r in results:
        print(
            f"{r['backbone']}: {r['seconds_per_step_with_map']:.2f} s/step (map share {r['mask_share_of_step']:.3f}), "
            f"{r.get('peak_gib_with_map', float('nan')):.1f} GiB peak, {r['seconds_per_trajectory']:.1f} s/trajectory, "
            f"map |lse - chunked| {r['map_max_abs_difference']:.1e}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
