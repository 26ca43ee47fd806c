"""The paper's qualitative findings, checked in the toy world: one table from the two ablation benchmarks.

Reads the JSON written by ``benchmarks/toy_ablation.py`` (class concept "red ring": one look per class) and by
``benchmarks/toy_shape_concept.py`` (shape concept "ring": five colours, over training seeds) and writes one
row per comparison with the numbers and whether they go the paper's way. The rules are fixed here, not judged
per row:

- ESR comparisons (augmentation, η): the paper's direction, in every training seed where there are several;
  equal counts as not reproduced.
- η: the smallest against the largest η (the values between are shown).
- PSR comparisons (localization, preservation, η): the paired difference over the kept classes (same prompts
  and sampling seeds; per class averaged over training seeds) must be below zero by more than two standard
  errors.

Usage: python benchmarks/toy_findings.py [--ablation benchmarks/results/toy_ablation.json]
       [--shape benchmarks/results/toy_shape_concept.json] [--out docs/results/toy_findings.md] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toy_ablation import paired_delta_over_seeds  # noqa: E402

# the class concept toy_ablation.json was run with (configs/toy_shapes.yaml); its rows score it among the classes
CLASS_CONCEPT = "red ring"


def _class_rows(ablation: dict, name: str) -> list[dict]:
    return [ablation["variants"][name]["rows"]["t2vunlearning"]]


def _shape_rows(shape: dict, name: str) -> list[dict]:
    return [shape["rows"][f"{name}/seed{s}"] for s in shape["seeds"]]


def paired_psr(rows: list[dict], refs: list[dict], erased: str = CLASS_CONCEPT) -> tuple[float, float]:
    """Paired per-class PSR-1 difference ``rows - refs`` (mean, SE over the kept classes; seeds averaged)."""
    return paired_delta_over_seeds(rows, refs, erased)


def _esr(rows: list[dict]) -> str:
    mean = statistics.mean(r["esr@1"] for r in rows)
    per_seed = " / ".join(f"{r['esr@1']:.1f}" for r in rows)
    return f"{mean:.1f}" + (f" ({per_seed})" if len(rows) > 1 else "")


def psr_verdict(d: float, se: float) -> str:
    if d < -2 * se:
        return "yes"
    return f"no (Δ < 0 but within 2 SE: {d / se:.1f} SE)" if d < 0 else "no"


def esr_less(rows: list[dict], refs: list[dict]) -> bool:
    """``rows`` erase less than ``refs`` in every seed."""
    return all(r["esr@1"] < f["esr@1"] for r, f in zip(rows, refs))


def findings(ablation: dict, shape: dict | None) -> list[tuple[str, str, str, str]]:
    """``(finding, comparison, numbers, reproduced)`` rows."""
    out = []
    # (label, source, its rows per variant, its variant names)
    sources = [(CLASS_CONCEPT, ablation, _class_rows, set(ablation["variants"]))]
    if shape is not None:
        sources.append((f"{shape['concept']} (every colour)", shape, _shape_rows, set(shape["overrides"])))

    def seeds(src: dict, per_seed: bool = False) -> str:
        if src is ablation:
            return ""
        return f", mean of seeds {shape['seeds']}" + (" (per seed)" if per_seed else "")

    def mean_psr(rows: list[dict]) -> float:
        return statistics.mean(r["psr@1"] for r in rows)

    finding = "no prompt augmentation erases less on rich prompts"
    for concept, src, rows, _ in sources:
        for full, bare, eta in (("full", "no_augmentation", "η=3"), ("eta_low", "no_augmentation_eta_low", "η=1")):
            a, b = rows(src, full), rows(src, bare)
            out.append(
                (
                    finding,
                    f"{concept}, {eta}: augmented vs name only{seeds(src, True)}",
                    f"ESR-1 {_esr(a)} vs {_esr(b)}",
                    "yes" if esr_less(b, a) else "no",
                )
            )

    for finding, variant, label in (
        ("no localization lowers PSR", "no_localization", "α=1 vs α=0"),
        ("no preservation lowers PSR", "no_preservation", "β=5 vs β=0"),
    ):
        for concept, src, rows, variants in sources:
            if variant not in variants:
                continue
            a, b = rows(src, "full"), rows(src, variant)
            d, se = paired_psr(b, a)
            out.append(
                (
                    finding,
                    f"{concept}: {label}{seeds(src)}",
                    f"PSR-1 {mean_psr(a):.1f} vs {mean_psr(b):.1f}, paired Δ {d:+.1f} ± {se:.1f}",
                    psr_verdict(d, se),
                )
            )

    finding = "larger η erases more and preserves less"
    for concept, src, rows, variants in sources:
        names = [n for n in ("eta_low", "full", "eta_high") if n in variants]
        etas = {"eta_low": "1", "full": "3", "eta_high": "7"}
        lo, hi = rows(src, names[0]), rows(src, names[-1])  # the trend between the smallest and largest η
        d, se = paired_psr(hi, lo)
        more, less = esr_less(lo, hi), psr_verdict(d, se)
        esr = " / ".join(_esr(rows(src, n)) for n in names)
        psr = " / ".join(f"{mean_psr(rows(src, n)):.1f}" for n in names)
        out.append(
            (
                finding,
                f"{concept}: η {'/'.join(etas[n] for n in names)}{seeds(src, True)}",
                f"ESR-1 {esr}; PSR-1 {psr}, paired Δ {d:+.1f} ± {se:.1f}",
                "yes" if more and less == "yes" else f"erases more: {'yes' if more else 'no'}; preserves less: {less}",
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ablation", default="benchmarks/results/toy_ablation.json")
    ap.add_argument("--shape", default="benchmarks/results/toy_shape_concept.json")
    ap.add_argument("--out", default="docs/results/toy_findings.md")
    ap.add_argument("--json", help="also write the rows as JSON (finding, comparison, numbers, reproduced)")
    args = ap.parse_args()
    ablation = json.loads(Path(args.ablation).read_text())
    shape = json.loads(Path(args.shape).read_text()) if Path(args.shape).is_file() else None
    lines = ["| paper's finding | toy-world comparison | numbers | reproduced |", "|---|---|---|---|"]
    lines += [f"| {f} | {c} | {n} | {r} |" for f, c, n, r in findings(ablation, shape)]
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    if args.json:
        keys = ("finding", "comparison", "numbers", "reproduced")
        rows = [dict(zip(keys, r, strict=True)) for r in findings(ablation, shape)]
        Path(args.json).write_text(json.dumps(rows, indent=1, ensure_ascii=False))
    print(text, end="")


if __name__ == "__main__":
    main()
