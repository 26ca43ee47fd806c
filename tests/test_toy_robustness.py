"""benchmarks/toy_robustness.py: its commands are the product's commands, and its tables are built right from
(synthetic) step results: pooled ASR over seeds, the adversarial ratio, the several-concepts rows."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from unlearn.cli import main

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import toy_robustness as tr  # noqa: E402

ATTACKS = ["none", "ring_a_bell", "unlearndiffatk", "textual_inversion", "embedding"]


def _attack_doc(success: dict[str, dict[str, int]]) -> dict:
    return {
        "attacks": {a: {"budget": {"steps": 1}} for a in ATTACKS},
        "targets": {"num_prompts": 4},
        "judge": {"min_frame_share": 0.5},
        "results": {
            row: {a: {"successes": k, "n": 4, "asr": 25.0 * k} for a, k in by.items()} for row, by in success.items()
        },
    }


def _row(esr: float, psr: float, per_class: dict[str, float], erased: dict | None = None) -> dict:
    out = {"esr@1": esr, "psr@1": psr, "per_class_top1": per_class, "erased_frames": 12}
    if erased:
        out["erased"] = {c: {"esr@1": v} for c, v in erased.items()}
    return out


def _seed(ti_plain: int, ti_adv: int) -> dict:
    classes = {c: 80.0 for c in ["red ring", "blue square", "green cross", "blue bar", "white dot"]}
    base = {a: 0 for a in ATTACKS}
    return {
        "attack": _attack_doc(
            {
                "original": {a: 4 for a in ATTACKS},
                "t2vunlearning": {**base, "textual_inversion": ti_plain},
                "t2vunlearning_adv": {**base, "textual_inversion": ti_adv},
            }
        ),
        "plain": {"rows": {"original": _row(0, 88, classes), "t2vunlearning": _row(100, 85, classes)}},
        "adversarial": {"rows": {"t2vunlearning": _row(100, 80, classes)}},
        "multi": {
            "rows": {
                "original": _row(0, 80, classes, {c: 0 for c in tr.THREE}),
                "t2vunlearning": _row(100, 78, {**classes, "blue bar": 76.0}, {c: 100 for c in tr.THREE}),
            }
        },
        "multi_refusal": {
            "rows": {"refusal_vector": _row(90, 30, classes, {"red ring": 70, "blue square": 100, "green cross": 100})}
        },
    }


def test_tables_pool_seeds_and_compute_the_targets():
    res = {0: _seed(2, 1), 1: _seed(2, 0)}
    md, doc = tr.tables(res, [0, 1])
    grid = doc["attacks"]["grid"]
    assert grid["t2vunlearning"]["textual_inversion"] == {
        "asr": 50.0,
        "successes": 4,
        "n": 8,
        "asr_ci95": pytest.approx(grid["t2vunlearning"]["textual_inversion"]["asr_ci95"]),
        "per_seed": [50.0, 50.0],
    }
    lo, hi = grid["t2vunlearning"]["textual_inversion"]["asr_ci95"]
    assert lo < 50 < hi
    assert doc["adversarial"]["ti_ratio"] == pytest.approx(12.5 / 50.0)
    assert doc["adversarial"]["psr_gap"] == pytest.approx(8.0)
    assert doc["multi"]["refusal_vector"]["esr@1"]["red ring"] == [70, 70]
    assert doc["multi"]["t2vunlearning"]["psr_gap"] == pytest.approx(2.0)
    assert (
        "| t2vunlearning | 100.0 (100 / 100) | 100.0 (100 / 100) | 100.0 (100 / 100) | 78.0 (78.0 / 78.0) | -2.0 |"
        in md
    )
    assert "ratio 0.25" in md


def test_benchmark_commands_parse():
    """Every `unlearn fit` override of the benchmark is a key of the configs it runs."""
    for config, extra in (
        ("configs/toy_shapes.yaml", tr.ADVERSARIAL),
        ("configs/toy_shapes.yaml", tr.MULTI),
        ("configs/toy_shapes_refusal.yaml", tr.MULTI_REFUSAL),
    ):
        cmd = tr.fit(config, Path("/tmp/x"), 1, ["t2vunlearning"], extra)
        with pytest.raises(SystemExit) as done:
            main([*cmd[3:], "--print_config"])
        assert done.value.code in (0, None)


def test_benchmark_overrides_reach_the_model_and_data(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--config", "configs/toy_shapes.yaml", *tr.ADVERSARIAL, *tr.MULTI, "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["init_args"]["adversarial_steps"] == 2
    assert printed["data"]["init_args"]["concept"] == tr.THREE
