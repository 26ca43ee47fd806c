"""The training step and one pseudo-data trajectory at full size on a GPU, with random weights (no download),
each measurement next to its projection (``fullsize_cost.py`` / ``memory_plan.py``), like with like.

Run this when a GPU is available (CogVideoX-2B, the default row: about 3 minutes on one H100, bounded by 8):

    python benchmarks/gpu_step.py --json gpu_step.json

Each backbone runs in its own process (``--backbone cogvideox-2b cogvideox-5b ...``): a row that fails (out of
memory, a kernel error) is recorded with its error and the others still run; the JSON file is rewritten after
every row. Per row, for the real full-size denoiser (``fullsize_models.py``: published configuration, random bf16
weights; a text encoder of the real width with 2 layers, no VAE) inside the real ``T2VUnlearning`` module with α,
β and gradient checkpointing from its config, under the configs' precision (bf16-mixed autocast):

- ``measured_s``: seconds per training step (``compute_losses`` + backward + AdamW step, CUDA-synchronised, best of
  ``--steps`` after a warm-up) with the concept map, and without it (α = 0): the map's share;
  ``projected_s``: the same step's FLOPs counted on meta (``fullsize_cost.count_step``) at ``--mfu`` of the H100's
  dense bf16 peak;
- ``measured_gib``: ``torch.cuda.max_memory_allocated`` of the step (side modules parked on the CPU as after the
  cache build); ``projected_gib``: the same quantity projected (``memory_plan.py``'s denoiser-only estimate without
  its CUDA-context allowance and fragmentation factor, plus autocast's float32 LayerNorm inputs);
- ``map_max_abs``: the first mapped layer's concept map from the fused kernel against the chunked recompute of the
  same call (``unlearn.backbones.attention.checking_concept_map``), within ``MAP_CHECK_ATOL``; the attention kernel
  it ran (``attention_backend``: flash / efficient / cudnn) and the torch/cuDNN versions are recorded;
- seconds per pseudo-data trajectory (``make_trajectories`` with the config's sampler settings).

Last line, per backbone (parsable): ``gpu_step: <backbone> measured_s/projected_s=<x> measured_gib/projected_gib=<y>
map_max_abs=<z>``. Exit status 0 when every row ran and every map is within tolerance.

``--dry-run``: the same code on the CPU at a toy size (one real-width block, 1×32×48, 2 sampler steps, 1 step;
numbers meaningless, ``measured_gib`` n/a), for CI: ``python benchmarks/gpu_step.py --dry-run``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

GiB = 2**30
DRY_RUN = [
    "--device",
    "cpu",
    "--num-layers",
    "1",
    "--geometry",
    "1",
    "32",
    "48",
    "--sampler-steps",
    "2",
    "--steps",
    "1",
]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn) -> tuple[float, Any]:  # noqa: ANN001
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


def projection(
    name: str, geometry: tuple[int, int, int], num_layers: int | None, alpha: float, beta: float, ckpt: bool, mfu: float
) -> dict[str, float]:
    """The step's projected seconds (FLOPs on meta at this geometry and depth) and, at full depth, its projected
    ``max_memory_allocated`` (memory_plan's estimate less its context allowance and 10 % fragmentation, plus
    autocast's float32 LayerNorm inputs)."""
    import memory_plan as mp
    from fullsize_cost import H100_BF16_DENSE, layernorm_input_elements, meta_model
    from fullsize_models import cuda_attention_on_meta, training_batch
    from torch.utils.flop_counter import FlopCounterMode

    model = meta_model(name, alpha, beta, ckpt, num_layers)
    batch = training_batch(model.backbone, name, geometry, preserve=beta > 0)
    with cuda_attention_on_meta(), FlopCounterMode(display=False) as fc:
        model.compute_losses(batch)["total"].backward()
    out = {
        "projected_s": fc.get_total_flops() / (mfu * H100_BF16_DENSE),
        "projected_tflop": fc.get_total_flops() / 1e12,
    }
    if num_layers is None:
        plan = next(p for p in mp.PLANS if p.registry == name)
        meta = mp.build_meta(plan)
        m = mp.measure(plan, meta, *geometry)
        est = mp.estimate(plan, meta, m)
        key = "ckpt_denoiser_only" if ckpt else "no_ckpt_denoiser_only"
        allocated = est[key] / 1.1 - 1.5  # GiB: what the allocator holds (no context, no fragmentation)
        ln, blocks = layernorm_input_elements(name)
        extra = 2 * ln * ((2 / blocks) if ckpt else 1)
        out["projected_gib"] = allocated + extra / GiB
    return out


def measure(
    name: str,
    device: torch.device,
    steps: int,
    geometry: tuple[int, int, int] | None,
    num_layers: int | None,
    sampler_steps: int | None,
    mfu: float,
    project: bool,
) -> dict[str, Any]:
    from fullsize_cost import load_config
    from fullsize_models import FULLSIZE, PROMPT, training_batch

    from unlearn.backbones import SamplingSettings
    from unlearn.backbones.attention import MAP_CHECK_ATOL, checking_concept_map
    from unlearn.methods.t2vunlearning import T2VUnlearning, batch_embedding
    from unlearn.methods.t2vunlearning.pseudo_data import PseudoDataSettings, TrajectoryRequest, make_trajectories

    spec = FULLSIZE[name]
    cfg = load_config(spec.config or FULLSIZE["cogvideox-2b"].config, [])
    hp, data = cfg["model"], cfg["data"]
    alpha, beta = float(hp.get("alpha", 1.0)), float(hp.get("beta", 0.0))
    ckpt = bool(hp.get("gradient_checkpointing", False))
    geometry = geometry or spec.geometry
    out: dict[str, Any] = {
        "backbone": name,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "geometry": "x".join(map(str, geometry)),
        "num_layers": num_layers or "all",
        "alpha": alpha,
        "beta": beta,
        "gradient_checkpointing": ckpt,
        "precision": "bf16-mixed",
    }
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
    out["build_seconds"] = t_build
    model.switch.to(device)
    bb = model.backbone
    batch = training_batch(bb, name, geometry, preserve=beta > 0)
    bb.park_side_modules()  # as after the pseudo-data cache build: the training step needs the denoiser only
    opt = torch.optim.AdamW(model.switch.parameters(), lr=1e-4)

    def autocast():  # the configs' precision: bf16-mixed
        return torch.autocast(device.type, dtype=torch.bfloat16)

    def step(with_map: bool) -> float:
        model.hparams.alpha = alpha if with_map else 0.0
        opt.zero_grad(set_to_none=True)
        with autocast():
            losses = model.compute_losses(batch)
        losses["total"].backward()
        opt.step()
        return float(losses["total"].detach())

    # the map of the first mapped layer as the run makes it (the frozen forward of the pseudo data, no grad, under
    # autocast): the fused kernel's map against the chunked recompute of the same call
    with torch.no_grad(), autocast(), checking_concept_map(layers=1) as check:
        with model.switch.disabled(), model.switch.capturing(batch["concept_tokens"]):
            bb.predict(batch["x_t"], batch["timesteps"], batch_embedding(batch, "cond."))
        model.switch.take()
    first = check.results[0] if check.results else {"kernel": "chunked", "max_abs": 0.0}
    out["attention_backend"] = first["kernel"]
    out["map_max_abs"] = first["max_abs"]
    out["map_tolerance"] = MAP_CHECK_ATOL
    out["map_ok"] = first["max_abs"] <= MAP_CHECK_ATOL

    for with_map in (True, False):
        step(with_map)  # warm-up: kernels chosen, allocator primed
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = [timed(device, lambda with_map=with_map: step(with_map))[0] for _ in range(steps)]
        key = "with_map" if with_map else "without_map"
        out[f"seconds_per_step_{key}"] = min(times)
        if device.type == "cuda":
            out[f"max_allocated_gib_{key}"] = torch.cuda.max_memory_allocated(device) / GiB
    out["mask_share_of_step"] = (out["seconds_per_step_with_map"] - out["seconds_per_step_without_map"]) / out[
        "seconds_per_step_without_map"
    ]
    out["measured_s"] = out["seconds_per_step_with_map"]
    out["measured_gib"] = out.get("max_allocated_gib_with_map")

    # one pseudo-data trajectory with the config's sampler settings
    n = int(data.get("generation_batch_size", 1))
    guidance = float(data["guidance_scale"]) if data.get("guidance_scale") is not None else spec.sampling[1]
    if sampler_steps:  # a shortened sampler (dry runs): record its last step
        settings = PseudoDataSettings(
            SamplingSettings(*geometry, sampler_steps, guidance), record_steps=(sampler_steps - 1,)
        )
    else:
        record = data.get("record_steps")
        settings = PseudoDataSettings(
            SamplingSettings(*geometry, int(data.get("num_inference_steps") or spec.sampling[0]), guidance),
            record_steps=tuple(record) if record else None,
        )
    requests = [TrajectoryRequest("unlearn", PROMPT, i, PROMPT) for i in range(n)]
    with model.switch.disabled(), bb.prompts_encoded_then_parked([PROMPT, settings.negative_prompt]), autocast():
        make_trajectories(
            bb, requests, PseudoDataSettings(SamplingSettings(*geometry, 2, guidance), record_steps=(1,)), 7.0
        )
        seconds, _ = timed(device, lambda: make_trajectories(bb, requests, settings, 7.0))
    out["seconds_per_trajectory"] = seconds / n
    out["sampler_steps"] = settings.sampling.num_inference_steps
    model = bb = batch = opt = None  # free the GPU before the projection (meta) runs
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if project:
        out.update(projection(name, geometry, num_layers, alpha, beta, ckpt, mfu))
    return out


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or not b or (isinstance(a, float) and math.isnan(a)):
        return "n/a"
    return f"{a / b:.2f}"


def summary(r: dict[str, Any]) -> str:
    """The parsable last line of a row."""
    if "error" in r:
        return f"gpu_step: {r['backbone']} error={r['error'].splitlines()[-1][:200] if r['error'] else 'failed'}"
    return (
        f"gpu_step: {r['backbone']} measured_s/projected_s={ratio(r['measured_s'], r.get('projected_s'))} "
        f"measured_gib/projected_gib={ratio(r.get('measured_gib'), r.get('projected_gib'))} "
        f"map_max_abs={r['map_max_abs']:.2e}"
    )


def write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, path)


def child(args: argparse.Namespace) -> int:
    """One backbone in this process (``--one``): its row to ``--row-json``."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_step: no CUDA device here; nothing measured (--dry-run runs the CPU version)", file=sys.stderr)
        return 2
    if device.type == "cpu":
        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    r = measure(
        args.one,
        device,
        args.steps,
        tuple(args.geometry) if args.geometry else None,
        args.num_layers,
        args.sampler_steps,
        args.mfu,
        not args.no_projection,
    )
    Path(args.row_json).write_text(json.dumps(r))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", nargs="*", default=["cogvideox-2b"])
    ap.add_argument("--steps", type=int, default=3, help="timed training steps per variant (best kept)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--geometry", type=int, nargs=3, default=None, metavar=("FRAMES", "HEIGHT", "WIDTH"))
    ap.add_argument("--num-layers", type=int, default=None, help="transformer blocks (default: all; dry runs: 1)")
    ap.add_argument("--sampler-steps", type=int, default=None, help="pseudo-data sampler steps (default: the config's)")
    ap.add_argument("--mfu", type=float, default=0.4, help="MFU of the projection (fullsize_cost.py's assumption)")
    ap.add_argument("--no-projection", action="store_true", help="measure only")
    ap.add_argument("--row-timeout", type=int, default=420, help="seconds per backbone before its row is given up")
    ap.add_argument("--dry-run", action="store_true", help="CPU, toy size: " + " ".join(DRY_RUN))
    ap.add_argument("--json", default=None)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--row-json", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.dry_run:
        return main([a for a in (argv if argv is not None else sys.argv[1:]) if a != "--dry-run"] + DRY_RUN)
    if args.one:
        return child(args)
    known = ("cogvideox-2b", "cogvideox-5b", "hunyuanvideo", "wan2.1-t2v-1.3b")  # fullsize_models.FULLSIZE
    unknown = [b for b in args.backbone if b not in known]
    if unknown:
        ap.error(f"unknown backbone(s) {unknown}; choose from {list(known)}")
    passthrough = ["--steps", str(args.steps), "--device", args.device, "--mfu", str(args.mfu)]
    if args.geometry:
        passthrough += ["--geometry", *map(str, args.geometry)]
    if args.num_layers:
        passthrough += ["--num-layers", str(args.num_layers)]
    if args.sampler_steps:
        passthrough += ["--sampler-steps", str(args.sampler_steps)]
    if args.no_projection:
        passthrough.append("--no-projection")
    rows: list[dict[str, Any]] = []
    doc = {"command": " ".join(sys.argv), "mfu": args.mfu, "rows": rows}
    ok = True
    for name in args.backbone:
        with tempfile.TemporaryDirectory() as tmp:
            row_json = Path(tmp) / "row.json"
            cmd = [sys.executable, __file__, "--one", name, "--row-json", str(row_json), *passthrough]
            start = time.perf_counter()
            try:
                res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.row_timeout)
                err = None if res.returncode == 0 and row_json.exists() else (res.stderr or "")[-3000:]
            except subprocess.TimeoutExpired:
                err = f"timed out after {args.row_timeout} s"
            r = json.loads(row_json.read_text()) if err is None else {"backbone": name, "error": err or "failed"}
        r["row_seconds"] = round(time.perf_counter() - start, 1)
        ok = ok and "error" not in r and bool(r.get("map_ok"))
        rows.append(r)
        print(json.dumps(r), flush=True)
        if args.json:
            write_json(Path(args.json), doc)  # after every row: a later failure loses nothing
    for r in rows:
        print(summary(r), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
