"""The trajectory budget, measured in the toy world: ESR/PSR against the number of pseudo-data trajectories.

At full size making pseudo data costs more than training (``fullsize_cost.py``: CogVideoX-2B, 100 trajectories ×
46 CFG steps ≈ 47 min on an H100 against ≈ 7 min for 500 training steps), so how many trajectories a run of fixed
length needs is what decides its time. Here the toy config (``configs/toy_shapes.yaml``: 240 optimizer steps of 8
random draws, 10 recorded steps per trajectory) is run with 4, 8, 16 and 32 (the config's) augmented training
prompts, one trajectory each, everything else equal, and evaluated on the same held-out prompts. The other lever
keeps every prompt and shortens the trajectories: the pseudo-data sampler at 15 and 10 steps instead of the
toy model's 30 (10 recorded points spread over them; the evaluation still samples at 30). One more row runs the
paper's length instead of the toy's own schedule: 500 steps of one draw (batch size 1), to measure whether the
toy needs its own schedule.

Writes ``<out>/budget.md`` + ``budget.json`` (the table and its reading: ``docs/results/toy_budget.md``). ΔPSR-1 is the
paired
difference to the config's row over the 24 kept classes (± its standard error), as in ``toy_ablation.py``.

Usage: python benchmarks/toy_budget.py [--out runs/toy_budget] [--reuse] [--only NAME ...]   (~25 min on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from toy_ablation import paired_delta, run_variant  # noqa: E402

#: name → (overrides of configs/toy_shapes.yaml, training prompts, optimizer steps, draws per step)
BUDGETS: dict[str, tuple[list[str], int, int, int]] = {
    "prompts_32": ([], 32, 240, 8),
    "prompts_16": (["--data.init_args.num_prompts", "16"], 16, 240, 8),
    "prompts_8": (["--data.init_args.num_prompts", "8"], 8, 240, 8),
    "prompts_4": (["--data.init_args.num_prompts", "4"], 4, 240, 8),
    "paper_length": (
        ["--trainer.max_steps", "500", "--trainer.max_epochs", "-1", "--data.init_args.batch_size", "1"],
        32,
        500,
        1,
    ),
    # the other lever: every prompt, shorter trajectories (the sampler's steps; 10 recorded points spread over them)
    "sampler_15": (
        [
            "--data.init_args.num_inference_steps",
            "15",
            "--data.init_args.record_steps",
            "[1, 2, 4, 5, 7, 8, 10, 11, 13, 14]",
        ],
        32,
        240,
        8,
    ),
    "sampler_10": (
        [
            "--data.init_args.num_inference_steps",
            "10",
            "--data.init_args.record_steps",
            "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]",
        ],
        32,
        240,
        8,
    ),
}
REFERENCE = "prompts_32"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/toy_shapes.yaml")
    ap.add_argument("--out", default="runs/toy_budget")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--reuse", action="store_true", help="keep runs whose folder already holds eval/metrics.json")
    args = ap.parse_args()
    out = Path(args.out)
    names = args.only or list(BUDGETS)
    results = {}
    for i, name in enumerate(names):
        overrides, prompts, steps, draws = BUDGETS[name]
        results[name] = run_variant(
            args.config,
            out / name,
            overrides,
            "[original, t2vunlearning]" if i == 0 else "[t2vunlearning]",
            reuse=args.reuse,
            label=name,
        )
        results[name].update(prompts=prompts, steps=steps, draws=steps * draws)
        print(f"[{name}] done in {results[name]['seconds']} s", flush=True)
    original = results[names[0]]["rows"].get("original")
    ref = results[REFERENCE]["rows"]["t2vunlearning"] if REFERENCE in results else None
    lines = [
        "| variant | trajectories | steps × draws | draws per cached sample | ESR-1 | ESR-5 | PSR-1 | PSR-5 | "
        f"ΔPSR-1 vs {REFERENCE} (± paired SE) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    if original:
        lines.append(
            f"| original model | – | – | – | {original['esr@1']:.1f} | {original['esr@5']:.1f} | "
            f"{original['psr@1']:.1f} | {original['psr@5']:.1f} | – |"
        )
    for name, r in results.items():
        row = r["rows"]["t2vunlearning"]
        delta = (
            "–" if ref is None or name == REFERENCE else "{:+.1f} ± {:.1f}".format(*paired_delta(row, ref, "red ring"))
        )
        lines.append(
            f"| {name} | {r['prompts']} | {r['steps']} × {r['draws'] // r['steps']} | "
            f"{r['draws'] / (r['prompts'] * 10):.1f} | {row['esr@1']:.1f} | {row['esr@5']:.1f} | "
            f"{row['psr@1']:.1f} | {row['psr@5']:.1f} | {delta} |"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "budget.json").write_text(json.dumps({"original": original, "variants": results}, indent=2))
    (out / "budget.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
