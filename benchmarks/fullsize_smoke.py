"""The full-size path on a CPU: the real full-size denoiser with random bf16 weights, one pseudo-data step and
one training step (α > 0) at one latent frame of the real resolution.

Builds ``random-<backbone>`` (``fullsize_models.py``: the published transformer configuration, every block, random
bf16 weights; a text encoder of the real width with 2 layers) inside the real ``T2VUnlearning`` module, then

1. makes one pseudo-data trajectory step with the real sampler (``make_trajectories``: classifier-free guidance,
   the negatively guided target) at one latent frame of the backbone's resolution;
2. runs one training step on it (``compute_losses`` with the concept map and L_loc, backward);
3. checks shapes, that everything is finite, that the concept map found the concept tokens, and that only
   the adapters received gradients;
4. for CogVideoX, runs the patch embedding at the full 49 frames (13 latent frames), the positional-embedding
   path the one-frame step does not reach.

Measured (CogVideoX-2B, 2 threads on a shared 2-core machine): 8 min 41 s, peak RSS 9.2 GB (build 53 s, pseudo-data
step 199 s, training step 239 s). CogVideoX-5B needs about 14 GB (11 GB of bf16 weights) and HunyuanVideo more than
26 GB (12.8 B parameters): the first only on a machine to itself, the second not on 24 GiB.

Usage: OMP_NUM_THREADS=2 python benchmarks/fullsize_smoke.py --backbone cogvideox-2b [--threads 2] [--json out.json]
Exit status 0 and ``fullsize_smoke: ok`` on the last line when every check holds; minutes, not hours.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from fullsize_models import FULLSIZE, PROMPT, training_batch  # noqa: E402

from unlearn.methods.t2vunlearning import T2VUnlearning  # noqa: E402
from unlearn.methods.t2vunlearning.pseudo_data import SamplerSettings, TrajectoryRequest, make_trajectories  # noqa: E402


def one_frame(name: str) -> tuple[int, int, int]:
    """Video frames giving one latent frame (CogVideoX and the 4k+1 families: 1 frame) at the real resolution."""
    _, height, width = FULLSIZE[name].geometry
    return 1, height, width


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def smoke(name: str) -> dict:
    timings: dict[str, float] = {}
    t = time.perf_counter()
    model = T2VUnlearning(
        backbone=f"random-{name}", backbone_kwargs={"device": "cpu"}, torch_dtype="bfloat16", alpha=1.0, beta=0.0
    )
    bb = model.backbone
    timings["build"] = time.perf_counter() - t
    frames, height, width = one_frame(name)
    shape = bb.latent_shape(frames, height, width)

    # 1. one pseudo-data step: CFG prediction and the negatively guided target at sampler step 0
    t = time.perf_counter()
    settings = SamplerSettings(
        frames, height, width, num_inference_steps=50, guidance_scale=bb.defaults.guidance_scale, record_steps=(0,)
    )
    with model.controller.disabled():
        (traj,) = make_trajectories(bb, [TrajectoryRequest("unlearn", PROMPT, 0, PROMPT)], settings, eta=7.0)
    timings["pseudo_data_step"] = time.perf_counter() - t
    assert tuple(traj["x_t"].shape) == (1, *shape) and tuple(traj["target"].shape) == (1, *shape), traj["x_t"].shape
    assert torch.isfinite(traj["x_t"]).all() and torch.isfinite(traj["target"].float()).all(), "non-finite pseudo data"

    # 2. one training step on it (α > 0: concept map and L_loc in every layer)
    t = time.perf_counter()
    batch = training_batch(bb, name, (frames, height, width))
    batch.update(x_t=traj["x_t"], target=traj["target"], timesteps=traj["timesteps"].to(torch.long))
    for a in model.controller.adapters:  # zero-initialised Up gives L_loc = 0; a small Up gives it a gradient
        torch.nn.init.normal_(a.up.weight, std=1e-3, generator=torch.Generator().manual_seed(0))
    losses = model.compute_losses(batch)
    losses["total"].backward()
    timings["training_step"] = time.perf_counter() - t

    # 3. checks
    assert all(torch.isfinite(v).all() for v in losses.values()), {k: float(v) for k, v in losses.items()}
    assert float(losses["loc"]) > 0 and 0 < float(losses["mask_coverage"]) < 1, losses
    grads = [p.grad for p in model.controller.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads), "every adapter needs a finite gradient"
    assert any(float(g.abs().max()) > 0 for g in grads)
    leaked = [n for n, p in bb.named_parameters() if p.grad is not None or p.requires_grad]
    assert not leaked, f"backbone parameters with gradients: {leaked[:5]}"
    out = {
        "backbone": name,
        "latent_shape": list(shape),
        "params": sum(p.numel() for p in bb.denoiser.parameters()),
        "losses": {k: float(v.detach()) for k, v in losses.items()},
        "seconds": timings,
    }

    # 4. CogVideoX: the positional embedding at the full 49 frames (13 latent frames)
    if hasattr(bb.denoiser, "patch_embed"):
        full = bb.latent_shape(*FULLSIZE[name].geometry)
        with torch.no_grad():
            emb = bb.denoiser.patch_embed(batch["cond.hidden_states"], torch.randn(1, *full).to(bb.dtype))
        p = bb.denoiser.config.patch_size
        tokens = FULLSIZE[name].text_len + full[0] * (full[2] // p) * (full[3] // p)
        assert tuple(emb.shape) == (
            1,
            tokens,
            bb.denoiser.config.num_attention_heads * bb.denoiser.config.attention_head_dim,
        )
        assert torch.isfinite(emb.float()).all()
        out["full_frames_patch_embed"] = list(emb.shape)
    out["peak_rss_gib"] = peak_rss_gib()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="cogvideox-2b", choices=list(FULLSIZE))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    res = smoke(args.backbone)
    print(json.dumps(res, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    print("fullsize_smoke: ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
