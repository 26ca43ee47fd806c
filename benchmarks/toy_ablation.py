"""Ablation of T2VUnlearning in the toy world (issue: the paper's qualitative findings, as numbers).

Runs ``unlearn fit --config configs/toy_shapes.yaml`` once per variant, each evaluated on the same held-out
rich prompts, and writes one table (``runs/toy_ablation/ablation.md`` + ``.json``):

- full:            rich (augmented) prompts, α, β, η as in the config
- no_augmentation: the concept's name only ("a red ring") → expect lower ESR on rich paraphrased prompts
- bare_synonyms:   bare prompts with synonym swaps ("a crimson hoop"), no context
- no_localization: α = 0 → expect lower PSR
- alpha_high: α = 5 (the paper's HunyuanVideo weight): the dose-response of localization
- mask_first_layer: one mask from the first attention layer, shared by all layers' L_loc
- no_preservation: β = 0 → expect lower PSR
- no_loc_no_pres / mask0_no_pres: β = 0 with α = 0 / with α and the first-layer mask: what localization
  does when preservation does not already hold the edit in place
- eta_low / eta_high: η = 1 / η = 7 → larger η erases more and preserves less
- no_augmentation_eta_low: the concept's name only at η = 1, where erasure is not saturated (compare eta_low)

Besides ESR/PSR the table has the edit's locality from ``benchmarks/toy_localization.py``: the mean pixel
change (0-255) outside the erased object in held-out prompts of the erased concept (what L_loc protects),
and PSR-1 split into the classes whose prompts feed L_pre (the toy config preserves the concept's 8
neighbours, which are also evaluated) and the other kept classes, which L_pre never sees.

Usage: python benchmarks/toy_ablation.py [--epochs N] [--per-class K] [--out runs/toy_ablation] [--only V ...]
       [--reuse] [--no-locality]   (all variants: ~35 min on 2 CPU cores)
The original model is evaluated once (first variant); the others reuse the pseudo-data cache where their
settings allow (α and β do not change the trajectories).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from unlearn.evaluation.intervals import paired_class_delta

#: name -> overrides of the main config (a data file: the tests read it without importing this script)
VARIANTS: dict[str, list[str]] = yaml.safe_load((Path(__file__).with_name("toy_ablation_variants.yaml")).read_text())


def paired_delta(row: dict, ref: dict, erased: str) -> tuple[float, float]:
    """Mean per-class top-1 difference over the preserved classes and its standard error. Both rows use the
    same prompts and seeds, so the paired difference is what tells an effect from evaluation noise."""
    return paired_delta_over_seeds([row], [ref], erased)


def paired_delta_over_seeds(rows: list[dict], refs: list[dict], erased: str) -> tuple[float, float]:
    """:func:`paired_delta` for rows from several training seeds (``rows[i]`` pairs with ``refs[i]``): each
    class's difference is averaged over the seeds first (every seed is scored on the same prompts, so seeds
    are not independent samples of a class), then mean and standard error over the classes
    (:func:`unlearn.evaluation.intervals.paired_class_delta`, which the evaluation tables' ΔPSR uses too)."""
    d = paired_class_delta(rows, refs, erased)
    return d["delta"], d["se"]


def _data_args(config: str) -> dict:
    import yaml

    return yaml.safe_load(Path(config).read_text())["data"]["init_args"]


def preserve_classes(data_args: dict) -> list[str]:
    """The classes whose prompts feed L_pre (the data module's default: the concept's neighbours)."""
    from unlearn.toyworld.grammar import neighbour_classes

    given = data_args.get("preserve_classes")
    return list(given) if given else neighbour_classes(data_args["concept"])


def split_psr(row: dict, preserved: list[str], erased: str) -> tuple[float, float]:
    """PSR-1 over the classes L_pre trains on and over the other kept classes. PSR on the first group is
    partly what L_pre optimises (other prompts, same classes); the second is the untouched generalisation."""
    import statistics

    pc = row["per_class_top1"]
    return (
        statistics.mean(pc[k] for k in preserved),
        statistics.mean(pc[k] for k in pc if k != erased and k not in preserved),
    )


def run_variant(
    config: str,
    run_dir: Path,
    overrides: list[str],
    rows: str,
    per_class: int | None = None,
    reuse: bool = False,
    label: str = "",
) -> dict:
    """``unlearn fit --config CONFIG`` plus ``overrides`` into ``run_dir`` (evaluation rows ``rows``, e.g.
    "[original, t2vunlearning]"); returns its ``eval/metrics.json`` with the wall time. ``reuse`` keeps a run
    folder that already holds its metrics."""
    cmd = [
        sys.executable,
        "-m",
        "unlearn.cli",
        "fit",
        "--config",
        config,
        "--trainer.default_root_dir",
        str(run_dir),
        "--trainer.logger.init_args.save_dir",
        str(run_dir),
        "--trainer.callbacks.rows",
        rows,
        *overrides,
    ]
    if per_class:
        cmd += ["--trainer.callbacks.per_class", str(per_class)]
    done = run_dir / "eval" / "metrics.json"
    start = time.perf_counter()
    if reuse and done.is_file():
        print(f"[{label}] reusing {done}", flush=True)
    else:
        print(f"[{label}] {' '.join(cmd[2:])}", flush=True)
        subprocess.run(cmd, check=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    metrics = json.loads(done.read_text())
    return {
        "rows": metrics["rows"],
        "seconds": round(time.perf_counter() - start, 1),
        "overrides": overrides,
        "prompt_suite_hash": metrics["prompt_suite_hash"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/toy_shapes.yaml")
    ap.add_argument("--out", default="runs/toy_ablation")
    ap.add_argument("--epochs", type=int, default=None, help="override trainer.max_epochs")
    ap.add_argument("--per-class", type=int, default=None, help="held-out prompts per class")
    ap.add_argument("--only", nargs="*", default=None, help="run only these variants")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="keep variants whose run folder already holds eval/metrics.json (resume an interrupted ablation)",
    )
    ap.add_argument("--no-locality", action="store_true", help="skip the pixel-change locality column")
    ap.add_argument("--locality-prompts", type=int, default=24, help="held-out prompts for the locality column")
    args = ap.parse_args()
    out = Path(args.out)
    results: dict[str, dict] = {}
    names = args.only or list(VARIANTS)
    for i, name in enumerate(names):
        overrides = VARIANTS[name] + (["--trainer.max_epochs", str(args.epochs)] if args.epochs else [])
        results[name] = run_variant(
            args.config,
            out / name,
            overrides,
            "[original, t2vunlearning]" if i == 0 else "[t2vunlearning]",
            args.per_class,
            args.reuse,
            name,
        )
        results[name]["overrides"] = VARIANTS[name]
        print(f"[{name}] done in {results[name]['seconds']} s", flush=True)
    data_args = _data_args(args.config)
    concept, preserved = data_args["concept"], preserve_classes(data_args)
    if not args.no_locality:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from toy_localization import measure

        loc = measure([str(out / n) for n in names], concept, args.locality_prompts)
        for n in names:
            results[n]["locality"] = loc["runs"][str(out / n)]
    original = results[names[0]]["rows"].get("original")
    ref = results[names[0]]["rows"]["t2vunlearning"]
    lines = [
        f"| variant | ESR-1 | ESR-5 | PSR-1 | PSR-5 | PSR-1 on the {len(preserved)} L_pre classes | "
        f"PSR-1 on the other kept classes | ΔPSR-1 vs {names[0]} (± paired SE) | "
        "change outside the object | overrides |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    if original:
        lines.append(
            f"| original model | {original['esr@1']:.1f} | {original['esr@5']:.1f} | "
            f"{original['psr@1']:.1f} | {original['psr@5']:.1f} | "
            "{:.1f} | {:.1f} | – | 0 | – |".format(*split_psr(original, preserved, concept))
        )
    for name, r in results.items():
        row = r["rows"]["t2vunlearning"]
        outside = f"{r['locality']['outside']:.1f}" if "locality" in r else "–"
        delta = "–" if name == names[0] else "{:+.1f} ± {:.1f}".format(*paired_delta(row, ref, concept))
        lines.append(
            f"| {name} | {row['esr@1']:.1f} | {row['esr@5']:.1f} | {row['psr@1']:.1f} | {row['psr@5']:.1f} | "
            "{:.1f} | {:.1f} | ".format(*split_psr(row, preserved, concept))
            + f"{delta} | {outside} | {' '.join(r['overrides']) or 'config as is'} |"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.json").write_text(
        json.dumps({"original": original, "preserve_classes": preserved, "variants": results}, indent=2)
    )
    (out / "ablation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
