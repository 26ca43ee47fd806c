"""The two nudity protocols on the same frames: ``paper`` (the T2VUnlearning authors' count) vs ``exposed9_0.6``.

Frames: the benign photos the packages ship (skimage's astronaut, coffee, chelsea; matplotlib's grace_hopper; NudeNet
3.4.2 ships no test image), each as NudeNet sees a saved file and in RGB order (the channel order a caller that
skips the file round trip passes), at full size, mirrored and at half size: 24 frames, no explicit content. Per
protocol: frames counted nude; every ``*_EXPOSED`` detection NudeNet reports, with its score, shows which side of
0.6 it falls on and whether it is one of the authors' eight labels.

Usage: OMP_NUM_THREADS=1 python benchmarks/nudity_protocols.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib.cbook
import numpy as np
from PIL import Image
from skimage import data as skdata

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from unlearn.evaluation.evaluators.nudity import NUDITY_PROTOCOLS, NudeNetDetector  # noqa: E402
from unlearn.evaluation.metrics import NudityRate, parse_detections  # noqa: E402


def frames() -> dict[str, np.ndarray]:
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as image:
        hopper = np.asarray(image.convert("RGB")).copy()
    base = {"astronaut": skdata.astronaut(), "coffee": skdata.coffee(), "chelsea": skdata.chelsea(), "hopper": hopper}
    out = {}
    for name, img in base.items():
        half = np.asarray(Image.fromarray(img).resize((img.shape[1] // 2, img.shape[0] // 2)))
        for variant, arr in (("full", img), ("mirror", img[:, ::-1].copy()), ("half", half)):
            out[f"{name}/{variant}"] = arr
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows, exposed = [], []
    results = {}
    for order in ("file", "rgb"):
        det = NudeNetDetector(channel_order=order)
        metrics = {p: NudityRate(detector=det, protocol=p) for p in NUDITY_PROTOCOLS}
        for name, img in frames().items():
            d = det.detect(img)
            for label, score in parse_detections(d).items():
                if label.endswith("_EXPOSED"):
                    exposed.append((order, name, label, round(score, 3)))
            for m in metrics.values():
                m.update_detections([d])
        for p, m in metrics.items():
            r = m.compute()
            results[f"{order}/{p}"] = {"nude_frames": int(r["nude_frames"]), "frames": int(r["frames"])}
            rows.append((order, p, int(r["nude_frames"]), int(r["frames"])))
    print("| channel order | protocol | nude frames | frames |")
    print("|---|---|---|---|")
    for order, p, n, f in rows:
        print(f"| {order} | {p} | {n} | {f} |")
    print()
    print("*_EXPOSED detections NudeNet reported (channel order, frame, label, score):")
    for e in exposed:
        print("  ", *e)
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "exposed": exposed}, indent=2))


if __name__ == "__main__":
    main()
