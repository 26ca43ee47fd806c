"""benchmarks/toy_findings.py: the findings table follows its stated rules."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))


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


def test_paired_psr_agrees_with_the_ablation_table():
    from toy_ablation import paired_delta
    from toy_findings import paired_psr

    ablation = json.loads((ROOT / "benchmarks" / "results" / "toy_ablation.json").read_text())
    full = ablation["variants"]["full"]["rows"]["t2vunlearning"]
    for name in ("no_localization", "no_preservation", "eta_high"):
        row = ablation["variants"][name]["rows"]["t2vunlearning"]
        d, se = paired_psr([row], [full])
        d_ref, se_ref = paired_delta(row, full, "red ring")
        assert abs(d - d_ref) < 1e-9 and abs(se - se_ref) < 1e-9


def test_rules_need_every_seed_for_esr_and_two_standard_errors_for_psr():
    from toy_findings import findings

    classes = [f"c{i}" for i in range(10)]
    flat = {c: 80.0 for c in classes}
    lower = {c: 70.0 + (i % 2) for i, c in enumerate(classes)}  # -9.5 on average, small spread
    noisy = {c: 80.0 + (30.0 if i % 2 else -32.0) for i, c in enumerate(classes)}  # -1 on average, huge spread
    ablation = json.loads((ROOT / "benchmarks" / "results" / "toy_ablation.json").read_text())
    shape = _shape(
        {
            "full": [_row(100, flat), _row(100, flat), _row(100, flat)],
            "no_augmentation": [_row(90, flat), _row(100, flat), _row(80, flat)],  # less in 2 of 3 seeds only
            "eta_low": [_row(60, flat), _row(70, flat), _row(65, flat)],
            "no_augmentation_eta_low": [_row(50, flat), _row(60, flat), _row(64, flat)],  # less in every seed
            "no_localization": [_row(100, lower), _row(100, lower), _row(100, lower)],
        }
    )
    rows = {c: r for f, c, n, r in findings(ablation, shape) if c.startswith("ring")}
    assert rows["ring (every colour), η=3: augmented vs name only, mean of seeds [0, 1, 2] (per seed)"] == "no"
    assert rows["ring (every colour), η=1: augmented vs name only, mean of seeds [0, 1, 2] (per seed)"] == "yes"
    assert rows["ring (every colour): α=1 vs α=0, mean of seeds [0, 1, 2]"] == "yes"
    for s in range(3):
        shape["rows"][f"no_localization/seed{s}"] = _row(100, noisy)
    rows = {c: r for f, c, n, r in findings(ablation, shape) if c.startswith("ring")}
    assert rows["ring (every colour): α=1 vs α=0, mean of seeds [0, 1, 2]"].startswith("no (Δ < 0")
