"""The shipped ``configs/cogx2b_nudity.yaml`` through ``unlearn fit`` (the code path of a user's run) with the
real full-size CogVideoX-2B (random bf16 weights, no download) at a reduced number of frames, on the CPU.

What is the user's: the CLI (``unlearn.cli.main``), the config file with its includes, every callback it
configures (Lightning's ModelCheckpoint, AdapterCheckpoint, ConceptMaskCallback, SampleVideoCallback), its
precision (bf16-mixed), its wandb logger (offline), the ConceptDataModule and its pseudo-data cache, the
T2VUnlearning module with the first-step concept-map check. What is changed, all of it size:

- ``model.backbone: random-cogvideox-2b`` (``fullsize_models.py``: the published transformer configuration, all
  30 blocks, 1.69 B random bf16 parameters; a T5 of the real width with 2 layers; the published VAE
  configuration with random weights), ``model.pretrained: null``;
- 1 frame (one latent frame) of the real 480×720, 1 augmented prompt, 2 sampler steps (record step 0), 1
  optimizer step, sample videos at 1 sampler step, callback periods of 1 (so that each acts within the run);
- ``trainer.accelerator: cpu``, a temporary run folder.

Checks: exit status 0, and the run's artefacts: pseudo-data trajectory, adapters, last.ckpt, mask maps, sample
videos (original and after step 1), the offline wandb run. ``--until-first-step`` stops after the first
optimizer step has been taken and logged (a ``max_steps`` of 1 does that anyway; the flag skips the sample
videos, the slowest part on a CPU).

Usage: OMP_NUM_THREADS=2 python benchmarks/fullsize_smoke.py [--threads 2] [--until-first-step] [--json out.json]
Last line ``fullsize_smoke: ok`` when every check holds. On a shared 2-core machine: tens of minutes, ~10 GB RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import fullsize_models  # noqa: E402,F401  (registers random-<name>)

from unlearn.cli import main as unlearn  # noqa: E402

CONFIG = ROOT / "configs" / "cogx2b_nudity.yaml"
SIZE = [
    "--trainer.accelerator", "cpu",
    "--trainer.max_steps", "1",
    "--model.init_args.backbone", "random-cogvideox-2b",
    "--model.init_args.pretrained", "null",
    "--model.init_args.backbone_kwargs", "{device: cpu, vae: true}",
    "--data.init_args.num_frames", "1",
    "--data.init_args.augment_source", "template",  # the configs' LLM server is not reachable here
    "--data.init_args.augment", "1",
    "--data.init_args.num_inference_steps", "2",
    "--data.init_args.record_steps", "[0]",
    "--data.init_args.generation_batch_size", "1",
]  # fmt: skip


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def shipped_config(root: Path, until_first_step: bool) -> dict:
    """The shipped config as the CLI parses it, with the size overrides above."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            unlearn(["fit", "--config", str(CONFIG), *SIZE, "--trainer.default_root_dir", str(root), "--print_config"])
        except SystemExit as done:
            if done.code not in (0, None):
                raise
    cfg = yaml.safe_load(out.getvalue())
    callbacks = []
    for cb in cfg["trainer"]["callbacks"]:
        args = cb.setdefault("init_args", {})
        for key in ("every_n_steps", "every_n_train_steps"):
            if isinstance(args.get(key), int) and args[key] > 1:
                args[key] = 1
        if cb["class_path"].endswith("SampleVideoCallback"):
            if until_first_step:
                continue
            args["num_inference_steps"] = 1
        callbacks.append(cb)
    cfg["trainer"]["callbacks"] = callbacks
    return cfg


def smoke(root: Path, until_first_step: bool) -> dict:
    cfg = shipped_config(root, until_first_step)
    path = root / "cogx2b_nudity.smoke.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    t = time.perf_counter()
    code = unlearn(["fit", "--config", str(path)])
    seconds = time.perf_counter() - t
    assert code == 0, f"unlearn fit --config {CONFIG.name} (full size, reduced frames) exited {code}"
    out = {
        "config": str(CONFIG.relative_to(ROOT)),
        "backbone": "random-cogvideox-2b",
        "precision": cfg["trainer"]["precision"],
        "geometry": [1, cfg["data"]["init_args"]["height"], cfg["data"]["init_args"]["width"]],
        "fit_seconds": round(seconds, 1),
        "peak_rss_gib": round(peak_rss_gib(), 2),
    }
    trajectories = list(Path(os.environ["T2V_UNLEARN_CACHE"]).rglob("*.safetensors"))
    assert trajectories, "no pseudo-data trajectory was cached"
    assert (root / "adapters" / "adapters.safetensors").is_file(), "no adapters written"
    assert (root / "checkpoints" / "last.ckpt").is_file(), "no last.ckpt"
    assert list((root / "masks").glob("masks_step=1.safetensors")), "no concept maps after step 1"
    assert list((root / "wandb").glob("offline-run-*/run-*.wandb")), "no offline wandb run"
    if not until_first_step:
        videos = sorted(p.name for p in (root / "samples").glob("*.mp4"))
        assert "original_0.mp4" in videos and "step=1_0.mp4" in videos, videos
        out["videos"] = videos
    from safetensors.torch import load_file

    adapters = load_file(str(root / "adapters" / "adapters.safetensors"))
    out["adapter_tensors"] = len(adapters)
    out["adapters_moved"] = any(float(v.float().abs().max()) > 0 for k, v in adapters.items() if "up" in k)
    out["trajectory_files"] = len(trajectories)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--until-first-step", action="store_true", help="leave out the sample videos (slowest part)")
    ap.add_argument("--dir", default=None, help="run folder (default: a temporary one)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("WANDB_MODE", "offline")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.dir or tmp)
        root.mkdir(parents=True, exist_ok=True)
        os.environ["T2V_UNLEARN_CACHE"] = str(root / "cache")
        res = smoke(root, args.until_first_step)
    print(json.dumps(res, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    print("fullsize_smoke: ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
