"""What the pseudo-data cache buys, and what the chunked concept map saves.

1. Time, in one process on the tiny CogVideoX model with 50 sampling steps, of T2VUnlearning training
   with the pseudo-data cache (trajectories made once, cache build included in the time) against per-step
   regeneration as ESD/Receler do (fresh noise, CFG denoising down to a random t, every step), at an equal
   number of training samples.

   Two choices (flags) decide what this measures:
   - Video size 25 frames x 96 x 96 (7 latent frames, 144 video tokens). At the tests' 9 x 32 x 32 (12 video
     tokens) a denoiser call costs about what Lightning's per-step bookkeeping does, so the ratio would
     measure Python overhead, not denoiser calls; at full size the denoiser dominates by far. Larger sizes
     raise the ratio further (and the run time).
   - 512 training samples over 4 prompts: 2.6 passes over the 200 cached points (4 trajectories x 50 recorded
     steps), where the paper trains 500 epochs. The cache build (4 trajectories x 50 CFG steps) is paid once,
     so the ratio grows with the number of samples toward the per-sample ratio, which is printed too, with
     the projection for longer runs. Regeneration stops at a step drawn from the same recorded steps.
2. Peak memory of the concept-mask computation (chunked, ``unlearn.backbones.attention``) against the dense
   attention map, for one full-size CogVideoX-2B attention layer (30 heads × 64, 226 text tokens, 49 frames
   at 480×720 → 13 latent frames × 30 × 45 = 17,550 video tokens), random q and k. Each measurement runs in
   its own process and reads the peak resident memory (VmHWM) above the inputs.

3. ``--mask-share`` (instead of 1 and 2): what the concept mask costs next to the adapted forward it rides on, at a
   reduced geometry a CPU runs in minutes: the real CogVideoX-2B width (30 heads × 64, text 226 tokens, random
   weights) with ``--mask-layers`` blocks, one latent frame at 480×720 (1,350 video tokens), float32. Times (CPU
   time of the process) the adapted forward with the concept map captured and without (interleaved, best of
   ``--repeats``); the share is
   (with − without) ÷ without. The same for the previous route (chunked dense logits over all keys, the fallback of
   ``unlearn.backbones.attention``) shows what the log-sum-exp route saves. The full-size share in FLOPs is
   ``fullsize_cost.py``'s.

Usage: python benchmarks/step_cost.py [--samples 512] [--frames 25 --size 96] [--threads 1] [--skip-memory]
       python benchmarks/step_cost.py --mask-share [--latent-frames 1] [--mask-layers 2] [--repeats 3]
The last line printed is ``speedup: <ratio>`` (cached vs regeneration, cache build included), or with
``--mask-share`` ``mask_share: <x>`` (target ≤ 0.1).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HEADS, HEAD_DIM, TEXT = 30, 64, 226
TOY_PROMPTS = [
    "a red ring drifts to the left",
    "a small crimson hoop moves up across a striped wall",
    "a large red ring stays still on a dark background",
    "a crimson hoop slides to the right",
]


def timing(samples: int, steps: int, backbone: str = "cogvideox-2b", frames: int = 25, pixels: int = 96) -> dict:
    import lightning.pytorch as pl

    class FitClock(pl.Callback):
        # from fit start (before the training dataloader, so the cache build is inside) to the end of
        # training: model construction and Trainer set-up are the same in both modes and left out
        def on_fit_start(self, trainer, pl_module):
            self.start = time.perf_counter()

        def on_train_start(self, trainer, pl_module):
            # the training dataloader (and with it the cache build) is made between fit start and here
            self.setup_seconds = time.perf_counter() - self.start

        def on_train_end(self, trainer, pl_module):
            self.seconds = time.perf_counter() - self.start

    from unlearn.methods.t2vunlearning.data import ConceptDataModule
    from unlearn.methods.t2vunlearning.module import T2VUnlearning

    prompts = [
        "a naked person walking on the beach",
        "a nude woman standing in a sunlit room",
        "a naked man sitting on a bed",
        "a nude person dancing in the rain",
    ]
    out: dict = {}
    # a 2-step warm-up fit first: lazy imports and first-call costs would otherwise land on the first mode;
    # then each mode twice, keeping the faster (this machine's other load comes and goes)
    plan = [("warmup", 2)] + [(m, samples) for m in ("cached", "regeneration", "cached", "regeneration")]
    for mode, n in plan:
        pl.seed_everything(0)
        tmp = tempfile.mkdtemp()
        toy = backbone == "toy-cogvideox"
        model = T2VUnlearning(
            backbone=backbone, tiny=not toy, torch_dtype="float32", adapter_dim=16, alpha=1.0, beta=0.0
        )
        size = {} if toy else {"num_frames": frames, "height": pixels, "width": pixels}
        dm = ConceptDataModule(
            concept="red ring" if toy else "nudity",
            concept_synonyms=["crimson hoop"] if toy else ["naked", "nude"],
            prompts=TOY_PROMPTS if toy else prompts,
            **size,
            num_inference_steps=steps,
            use_cache=mode != "regeneration",
            regeneration_samples_per_epoch=n,
            cache_dir=os.path.join(tmp, "cache"),
            generation_batch_size=4,
            batch_size=1,
        )
        clock = FitClock()
        trainer = pl.Trainer(
            accelerator="cpu",
            max_steps=n,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=tmp,
            callbacks=[clock],
        )
        trainer.fit(model, dm)
        if mode == "warmup":
            continue
        steps_s = clock.seconds - clock.setup_seconds
        print(
            f"{mode:>13}: {clock.seconds:.2f} s for {trainer.global_step} training samples "
            f"(set-up incl. cache build {clock.setup_seconds:.2f} s, then {1000 * steps_s / trainer.global_step:.1f} "
            "ms "
            f"per sample)",
            flush=True,
        )
        if mode not in out or clock.seconds < out[mode]["seconds"]:
            out[mode] = {
                "seconds": clock.seconds,
                "setup_seconds": clock.setup_seconds,
                "training_samples": trainer.global_step,
                "samples_per_epoch": len(trainer.train_dataloader.dataset),
            }
    return out


MEMORY_CHILD = r"""
import json, sys, torch
torch.set_num_threads(int(sys.argv[4]))
from unlearn.backbones.attention import concept_attention_probs, dense_concept_attention_probs
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM'):
            return int(line.split()[1]) * 1024
mode, frames = sys.argv[1], int(sys.argv[2]); video = frames * 30 * 45
g = torch.Generator().manual_seed(0)
q = torch.randn(1, 30, video, 64, generator=g); k = torch.randn(1, 30, 226 + video, 64, generator=g)
concept = torch.zeros(1, 226 + video, dtype=torch.bool); concept[0, 3:5] = True
torch.ones(1).add_(1)
base = hwm()
import time; t = time.perf_counter()
fn = concept_attention_probs if mode == 'chunked' else dense_concept_attention_probs
kw = {'chunk_size': int(sys.argv[3])} if mode == 'chunked' else {}
p = fn(q, k, concept, **kw)
print(json.dumps({'mode': mode, 'latent_frames': frames, 'video_tokens': video, 'peak_bytes_above_inputs': hwm() - base,
                  'seconds': time.perf_counter() - t, 'checksum': float(p.sum())}))
"""


def memory(threads: int) -> list[dict]:
    rows = []
    plan = [("chunked", 13, 256)]
    # the dense map at 13 latent frames needs 30 × 17,776² × 4 B = 37.9 GB for the logits alone, and
    # softmax makes a second buffer: it cannot fit in 24 GiB; compare both at reduced sizes that fit
    for frames in (4, 3):
        plan += [("dense", frames, 0), ("chunked", frames, 256)]
    for mode, frames, chunk in plan:
        res = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, mode, str(frames), str(chunk), str(threads)],
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            rows.append({"mode": mode, "latent_frames": frames, "error": res.stderr.strip().splitlines()[-1:]})
        else:
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        label = (
            "FULL SIZE (49 frames, 480x720)"
            if frames == 13
            else "reduced size: the full-size dense map cannot fit in 24 GiB"
        )
        if "error" in r:
            print(f"  {mode:>7} @ {frames:2d} latent frames: failed ({r['error']})", flush=True)
        else:
            print(
                f"  {mode:>7} @ {frames:2d} latent frames ({r['video_tokens']} video tokens, {label}): "
                f"peak {r['peak_bytes_above_inputs'] / 2**30:.2f} GiB above inputs, {r['seconds']:.1f} s",
                flush=True,
            )
    full = 30 * (TEXT + 13 * 30 * 45) ** 2
    print(
        f"  dense @ 13 latent frames, not run: logits alone {full * 4 / 2**30:.1f} GiB fp32, "
        f"{full * 2 / 2**30:.1f} GiB bf16 (softmax output doubles it)",
        flush=True,
    )
    return rows


def mask_share(latent_frames: int, layers: int, repeats: int) -> dict:
    """Adapted-forward time with and without the concept map, for the LSE route and the chunked route."""
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from fullsize_models import build_random_backbone

    import unlearn.backbones.attention as am
    from unlearn.backbones import PromptEmbedding
    from unlearn.methods.t2vunlearning.adapters import AdapterSwitch
    from unlearn.methods.t2vunlearning.losses import concept_mask

    bb = build_random_backbone("cogvideox-2b", "cpu", "float32", text_layers=1, num_layers=layers)
    sites = bb.attention_sites()
    switch = AdapterSwitch([s.video_dim for s in sites], 128, [s.name for s in sites])
    bb.attach_switch(switch)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, *bb.latent_shape(4 * (latent_frames - 1) + 1, 480, 720), generator=g)
    cond = PromptEmbedding(torch.randn(1, TEXT, 4096, generator=g))
    concept = torch.zeros(1, TEXT, dtype=torch.bool)
    concept[0, 3:7] = True
    t = torch.tensor([500])

    def forward(tokens) -> float:
        # CPU time of this process, not wall time: on a shared machine other jobs' load stretches wall time
        # (by 2-3x here) but not the work this forward does
        start = time.process_time()
        with switch.capturing(tokens):
            out = bb.predict(x, t, cond)
        _, maps = switch.take()
        masks = [concept_mask(m)[1] for m in maps]  # the mask itself (thresholding) is part of its cost
        seconds = time.process_time() - start
        del out, masks
        return seconds

    fused = am._fused_kernel
    routes = {"lse": fused, "chunked": lambda *a: None}
    times: dict = {"without": [], "lse": [], "chunked": []}
    forward(concept)  # warm-up (first-call costs)
    for _ in range(repeats):  # interleaved, so load changes hit every variant alike
        times["without"].append(forward(None))
        for name, kernel in routes.items():
            am._fused_kernel = kernel
            try:
                times[name].append(forward(concept))
            finally:
                am._fused_kernel = fused
    best = {k: min(v) for k, v in times.items()}
    out = {
        "latent_frames": latent_frames,
        "video_tokens": x.shape[1] * x.shape[3] * x.shape[4] // 4,
        "layers": layers,
        "seconds": times,
        "best": best,
        "mask_share": (best["lse"] - best["without"]) / best["without"],
        "chunked_mask_share": (best["chunked"] - best["without"]) / best["without"],
    }
    print(
        f"  adapted forward, {layers} CogVideoX-2B blocks, {out['video_tokens']} video + {TEXT} text tokens: "
        f"{best['without']:.2f} CPU s without the map; with it {best['lse']:.2f} s (log-sum-exp route) and "
        f"{best['chunked']:.2f} s (chunked route): mask share {out['mask_share']:.3f} vs "
        f"{out['chunked_mask_share']:.3f}",
        flush=True,
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=512, help="training samples for both modes")
    ap.add_argument("--frames", type=int, default=25, help="video frames of the pseudo data (tiny CogVideoX)")
    ap.add_argument("--size", type=int, default=96, help="video height = width in pixels (tiny CogVideoX)")
    ap.add_argument("--steps", type=int, default=50, help="sampling steps of the pseudo-data sampler")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the tiny model gains nothing from more)")
    ap.add_argument(
        "--backbone",
        default="cogvideox-2b",
        help="cogvideox-2b (tiny random, the default) or toy-cogvideox (shipped toy weights)",
    )
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--mask-share", action="store_true", help="measure the concept mask's share of the adapted forward")
    ap.add_argument("--latent-frames", type=int, default=1, help="--mask-share: latent frames at 480x720")
    ap.add_argument("--mask-layers", type=int, default=2, help="--mask-share: CogVideoX-2B blocks of the real width")
    ap.add_argument("--repeats", type=int, default=3, help="--mask-share: timed forwards per variant (best kept)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.mask_share:
        print(f"[3] concept mask vs adapted forward, CPU, {args.threads} thread(s)", flush=True)
        res = mask_share(args.latent_frames, args.mask_layers, args.repeats)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=2)
        print(f"mask_share: {res['mask_share']:.3f}")
        return
    print(f"[1] training cost, {args.backbone}, {args.steps} sampling steps, {args.samples} samples", flush=True)
    t = timing(args.samples, args.steps, args.backbone, args.frames, args.size)
    speedup = t["regeneration"]["seconds"] / t["cached"]["seconds"]
    # amortisation: cached = build + n * per_sample, regeneration = n * per_sample (no build)
    c, r = t["cached"], t["regeneration"]
    per_c = (c["seconds"] - c["setup_seconds"]) / c["training_samples"]
    per_r = r["seconds"] / r["training_samples"]
    build = c["setup_seconds"] - r["setup_seconds"]
    t["per_sample_ratio"] = per_r / per_c
    print(
        f"  cache build {build:.2f} s once; per training sample {1000 * per_r:.1f} ms (regeneration) vs "
        f"{1000 * per_c:.1f} ms (cached): ratio {per_r / per_c:.1f}, the limit for long runs",
        flush=True,
    )
    points = c["samples_per_epoch"]  # prompts x recorded steps
    for n in (args.samples * 4, 500 * points):
        print(
            f"  projected at {n} samples: {n * per_r / (build + n * per_c):.1f}"
            + (f" (the paper's 500 epochs over these {points} cached points)" if n == 500 * points else ""),
            flush=True,
        )
    mem = []
    if not args.skip_memory:
        print(
            "[2] concept-map peak memory, one CogVideoX-2B attention layer (30 heads x 64, 226 text tokens)", flush=True
        )
        mem = memory(args.threads)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"timing": t, "speedup": speedup, "memory": mem}, f, indent=2)
    print(f"speedup: {speedup:.1f}")


if __name__ == "__main__":
    main()
