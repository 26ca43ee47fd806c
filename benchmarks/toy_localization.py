"""How local is the edit? Pixel change outside the erased object, per trained adapter set (toy world).

PSR measures whether *other classes* survive; localization (L_loc) is about the rest of the *same* video
(the paper: "precise" unlearning). For held-out rich prompts of the erased concept, generate with the adapters
off (original) and on (unlearned) from the same seeds, and report

- ``outside``: mean absolute pixel change (0-255) where the original video does not show the erased object
  (pixels not within 60 of the object's colour in every channel): background, motion trail, other objects,
- ``inside``: the same on the erased object's pixels (the edit erasure needs),
- ``outside_share``: outside / (outside + inside); lower is a more local edit.

Usage: python benchmarks/toy_localization.py RUN_DIR [RUN_DIR ...] [--concept "red ring"] [--prompts 24]
(RUN_DIR holds ``adapters/`` as written by ``unlearn fit``; e.g. the folders of benchmarks/toy_ablation.py)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def measure(run_dirs: list[str], concept: str, n_prompts: int, seed: int = 77, weights: str | None = None) -> dict:
    from unlearn.backbones import build_backbone
    from unlearn.methods.t2vunlearning.export import load_adapters
    from unlearn.toyworld.grammar import prompts_for_concept
    from unlearn.toyworld.render import COLOUR_RGB

    bb = build_backbone("toy-cogvideox", pretrained=weights)
    recs = prompts_for_concept(concept, n_prompts, split="heldout", seed=seed)
    prompts, seeds = [r.text for r in recs], [5000 + i for i in range(len(recs))]
    out: dict = {"concept": concept, "prompts": len(recs), "runs": {}}
    original = None
    for run in run_dirs:
        switch, _ = load_adapters(Path(run) / "adapters")
        bb.attach_switch(switch)
        with torch.no_grad():
            if original is None:
                with switch.disabled():
                    original = bb.decode(bb.sample(prompts, seeds)).float()  # [B, F, H, W, 3]
            edited = bb.decode(bb.sample(prompts, seeds)).float()
        obj_rgb = torch.tensor([COLOUR_RGB[r.scene.colour] for r in recs], dtype=torch.float32)
        on_obj = (original - obj_rgb[:, None, None, None]).abs().amax(-1) < 60  # [B, F, H, W]
        diff = (edited - original).abs().mean(-1)
        outside = float(diff[~on_obj].mean())
        inside = float(diff[on_obj].mean()) if on_obj.any() else float("nan")
        out["runs"][str(run)] = {
            "outside": round(outside, 2),
            "inside": round(inside, 2),
            "outside_share": round(outside / (outside + inside), 3) if outside + inside > 0 else 0.0,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--concept", default="red ring")
    ap.add_argument("--prompts", type=int, default=24)
    ap.add_argument("--weights", default=None, help="toy weights folder (default: the shipped weights)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    res = measure(args.runs, args.concept, args.prompts, weights=args.weights)
    print(f"{res['prompts']} held-out '{args.concept}' prompts, mean absolute pixel change (0-255) vs the original")
    print("| run | outside the object | on the object | outside share |")
    print("|---|---|---|---|")
    for run, r in res["runs"].items():
        print(f"| {run} | {r['outside']:.2f} | {r['inside']:.2f} | {r['outside_share']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
