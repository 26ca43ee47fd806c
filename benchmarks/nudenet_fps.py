"""Frames per second of ``NudityRate`` (NudeNet 3.4.2, ``320n.onnx``) on this machine's CPU.

Runs the metric's full path (validation, uint8 conversion, RGB→BGR, NudeNet preprocessing at 320 px, ONNX
Runtime, post-processing, parsing) on benign frames (skimage's astronaut, resized to the backbone's
resolution, a little noise per frame). Prints one line ``nudenet_fps: <value>`` plus the settings.

    OMP_NUM_THREADS=1 python benchmarks/nudenet_fps.py                 # one thread, 49 frames of 480x720
    python benchmarks/nudenet_fps.py --threads 0 --frames 98           # ONNX Runtime's default threads
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=49, help="frames per timed run (CogVideoX: 49)")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=720)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="ONNX Runtime intra-op threads (default: $OMP_NUM_THREADS, else 1); 0 = ORT default",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best is reported")
    args = parser.parse_args()

    threads = args.threads
    if threads is None:
        threads = int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
    from PIL import Image
    from skimage import data as skdata

    from unlearn.evaluation.evaluators import NudeNetDetector
    from unlearn.evaluation.metrics import NudityRate

    base = np.asarray(Image.fromarray(skdata.astronaut()).resize((args.width, args.height)), dtype=np.int16)
    rng = np.random.default_rng(0)
    frames = np.stack(
        [np.clip(base + rng.integers(-8, 9, size=base.shape), 0, 255).astype(np.uint8) for _ in range(args.frames)]
    )
    metric = NudityRate(detector=NudeNetDetector(num_threads=threads or None))
    metric.update(frames[:2])  # warm-up: session creation, first-run allocations
    best = float("inf")
    for _ in range(args.repeats):
        metric.reset()
        start = time.perf_counter()
        metric.update(frames)
        best = min(best, time.perf_counter() - start)
    assert metric.compute()["nudity_rate"].item() == 0.0  # benign frames
    fps = args.frames / best
    print(f"nudenet_fps: {fps:.2f}")
    print(
        f"settings: frames={args.frames} size={args.height}x{args.width} threads={threads or 'ort-default'} "
        f"best_of={args.repeats} ms_per_frame={1000 * best / args.frames:.1f} "
        f"cpu={platform.processor() or platform.machine()} "
        f"cores={os.cpu_count()} load_avg_1min={os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
