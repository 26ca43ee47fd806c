"""benchmarks/toy_findings.py, run as a program: the findings table follows its stated rules, and its paired PSR
difference is the one the evaluation tables report (``unlearn.evaluation.intervals.paired_class_delta``).

The class-concept rows come from the committed ``benchmarks/results/toy_ablation.json`` (the rule is checked on
them, not their prose); the shape-concept rows from a synthetic file."""

import json
import subprocess
import sys
from pathlib import Path

from unlearn.evaluation.intervals import paired_class_delta

ROOT = Path(__file__).resolve().parent.parent
ABLATION = ROOT / "benchmarks" / "results" / "toy_ablation.json"


def _findings(tmp_path: Path, shape: dict | None = None) -> dict[str, dict]:
    """``{comparison: row}`` as ``toy_findings.py --json`` writes them."""
    shape_file = tmp_path / "shape.json"
    if shape is not None:
        shape_file.write_text(json.dumps(shape))
    cmd = [sys.executable, str(ROOT / "benchmarks" / "toy_findings.py"), "--ablation", str(ABLATION)]
    cmd += ["--shape", str(shape_file), "--out", str(tmp_path / "findings.md"), "--json", str(tmp_path / "f.json")]
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=tmp_path)
    return {r["comparison"]: r for r in json.loads((tmp_path / "f.json").read_text())}


def _row(esr: float, per_class: dict[str, float]) -> dict:
    return {"esr@1": esr, "psr@1": sum(per_class.values()) / len(per_class), "per_class_top1": per_class}


def _shape(variants: dict[str, list[dict]]) -> dict:
    seeds = list(range(len(next(iter(variants.values())))))
    return {
        "concept": "ring",
        "seeds": seeds,
        "overrides": {n: [] for n in variants},
        "rows": {f"{n}/seed{s}": r for n, rs in variants.items() for s, r in enumerate(rs)},
    }


def test_paired_psr_is_the_evaluation_tables_paired_delta_and_the_verdict_its_rule(tmp_path):
    ablation = json.loads(ABLATION.read_text())
    found = _findings(tmp_path)
    full = ablation["variants"]["full"]["rows"]["t2vunlearning"]
    for variant, label in (("no_localization", "α=1 vs α=0"), ("no_preservation", "β=5 vs β=0")):
        d = paired_class_delta([ablation["variants"][variant]["rows"]["t2vunlearning"]], [full], "red ring")
        row = found[f"red ring: {label}"]
        assert row["numbers"].endswith(f"paired Δ {d['delta']:+.1f} ± {d['se']:.1f}"), row
        assert (row["reproduced"] == "yes") == (d["delta"] < -2 * d["se"]), row  # two standard errors below zero


def test_rules_need_every_seed_for_esr_and_two_standard_errors_for_psr(tmp_path):
    classes = [f"c{i}" for i in range(10)]
    flat = {c: 80.0 for c in classes}
    lower = {c: 70.0 + (i % 2) for i, c in enumerate(classes)}  # -9.5 on average, small spread
    noisy = {c: 80.0 + (30.0 if i % 2 else -32.0) for i, c in enumerate(classes)}  # -1 on average, huge spread
    shape = _shape(
        {
            "full": [_row(100, flat), _row(100, flat), _row(100, flat)],
            "no_augmentation": [_row(90, flat), _row(100, flat), _row(80, flat)],  # less in 2 of 3 seeds only
            "eta_low": [_row(60, flat), _row(70, flat), _row(65, flat)],
            "no_augmentation_eta_low": [_row(50, flat), _row(60, flat), _row(64, flat)],  # less in every seed
            "no_localization": [_row(100, lower), _row(100, lower), _row(100, lower)],
        }
    )
    rows = {c: r["reproduced"] for c, r in _findings(tmp_path, shape).items() if c.startswith("ring")}
    assert rows["ring (every colour), η=3: augmented vs name only, mean of seeds [0, 1, 2] (per seed)"] == "no"
    assert rows["ring (every colour), η=1: augmented vs name only, mean of seeds [0, 1, 2] (per seed)"] == "yes"
    assert rows["ring (every colour): α=1 vs α=0, mean of seeds [0, 1, 2]"] == "yes"
    for s in range(3):
        shape["rows"][f"no_localization/seed{s}"] = _row(100, noisy)
    rows = {c: r["reproduced"] for c, r in _findings(tmp_path, shape).items() if c.startswith("ring")}
    assert rows["ring (every colour): α=1 vs α=0, mean of seeds [0, 1, 2]"].startswith("no (Δ < 0")
