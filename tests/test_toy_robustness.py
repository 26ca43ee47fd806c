"""benchmarks/toy_robustness.py: its commands are the product's commands, and its tables are built right from
(synthetic) step results: ASR pooled over seeds, #28's targets marked met / not met, the paired ΔPSR-1, the
original row taken from the run that scored the same suite, tables with missing steps left out.

The script is run as a subprocess (``--only`` with no step: nothing runs, the tables are built from the folders),
so the tests depend on the package and the script's command line only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from unlearn.attacks import wilson_interval
from unlearn.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "toy_robustness.py"
ATTACKS = ["none", "ring_a_bell", "unlearndiffatk", "textual_inversion", "embedding"]
THREE = ["red ring", "blue square", "green cross"]
KEPT = {"blue ring": 100.0, "green bar": 100.0, "white dot": 80.0, "yellow square": 90.0}
MULTI_KEPT = {"red bar": 100.0, "white dot": 80.0, "yellow square": 90.0, "green bar": 60.0}
#: the kept classes when "blue square" is erased (its own suite: red ring is one of them)
SQUARE_KEPT = {"red ring": 100.0, "green bar": 100.0, "white dot": 80.0, "yellow square": 90.0}


def _script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def _write(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def _attack(successes: dict[str, dict[str, int]]) -> dict:
    return {
        "attacks": {a: {"budget": {"steps": 1}, "prepare_seconds": 1.0} for a in ATTACKS},
        "targets": {"num_prompts": 4},
        "judge": {"min_frame_share": 0.5},
        "results": {
            row: {a: {"successes": k, "n": 4, "asr": 25.0 * k, "seconds": 2.0} for a, k in by.items()}
            for row, by in successes.items()
        },
        "seconds": 30.0,
    }


def _row(esr: float, per_class: dict[str, float], erased: dict[str, float] | None = None) -> dict:
    out = {"esr@1": esr, "psr@1": sum(per_class.values()) / len(per_class), "per_class_top1": dict(per_class)}
    if erased is not None:
        out["erased"] = {c: {"esr@1": v} for c, v in erased.items()}
    return out


def _fit(suite: str, rows: dict) -> dict:
    return {"prompt_suite_hash": suite, "rows": rows}


def _results(root: Path, seeds=(0, 1), skip: tuple[str, ...] = ()) -> None:
    """Two seeds of every default step. Seed-dependent numbers so pooling is visible: the plain row's textual
    inversion recovers 2 of 4 targets at seed 0 and 1 of 4 at seed 1."""
    none = dict.fromkeys(ATTACKS, 0)
    for s in seeds:
        d = root / f"seed{s}"
        first = s == seeds[0]
        steps = {
            "plain/eval/metrics.json": _fit(
                "single",
                {
                    **({"original": _row(0.0, KEPT)} if first else {}),
                    "t2vunlearning": _row(100.0, {**KEPT, "green bar": 50.0 if s == 0 else 30.0}),
                },
            ),
            "persistent/eval/metrics.json": _fit("single", {"t2vunlearning": _row(100.0, {**KEPT, "white dot": 76.0})}),
            "preserve/eval/metrics.json": _fit("single", {"t2vunlearning": _row(99.0, {**KEPT, "blue ring": 90.0})}),
            "preserve_top16/eval/metrics.json": _fit(
                "single", {"t2vunlearning": _row(100.0, {**KEPT, "blue ring": 70.0})}
            ),
            "plain_blue_square/eval/metrics.json": _fit(
                "square",
                {
                    **({"original": _row(2.0, SQUARE_KEPT)} if first else {}),
                    "t2vunlearning": _row(100.0, {**SQUARE_KEPT, "red ring": 60.0}),
                },
            ),
            # ESR-1 98.5 over the seeds: misses point 4's ESR-1 >= 99 although its delta (-2.5) would pass
            "preserve_blue_square/eval/metrics.json": _fit(
                "square", {"t2vunlearning": _row(98.0 if s == 0 else 99.0, {**SQUARE_KEPT, "red ring": 90.0})}
            ),
            "multi_refusal/eval/metrics.json": _fit(
                "multi", {"refusal_vector": _row(0, dict.fromkeys(MULTI_KEPT, 30.0), {c: 100.0 for c in THREE})}
            ),
            "multi_refusal_whitened/eval/metrics.json": _fit(
                "multi",
                {
                    **(
                        {"original": _row(0.0, MULTI_KEPT, {"red ring": 0.0, "blue square": 0.0, "green cross": 40})}
                        if first
                        else {}
                    ),
                    "refusal_vector": _row(
                        0, {**MULTI_KEPT, "red bar": 94.0}, {"red ring": 92.0, "blue square": 100, "green cross": 95}
                    ),
                },
            ),
            "attack_baselines/results.json": _attack(
                {"original": dict.fromkeys(ATTACKS, 4), "negprompt": {**none, "none": 2}, "safree": none}
            ),
            "attack_plain/results.json": _attack(
                {"t2vunlearning": {**none, "textual_inversion": 2 if s == 0 else 1, "embedding": 2}}
            ),
            "attack_persistent/results.json": _attack({"t2vunlearning_persistent": none}),
            # the preservation set's adapters under attack: the embedding attack recovers 3 of 4 in every seed
            "attack_preserve/results.json": _attack({"t2vunlearning_preserve": {**none, "embedding": 3}}),
        }
        for rel, doc in steps.items():
            if rel.split("/")[0] not in skip:
                _write(d / rel, doc)


def _tables(root: Path, seeds=("0", "1")) -> tuple[str, dict]:
    done = _script("--seeds", *seeds, "--out", str(root), "--only", "--reuse")
    assert done.returncode == 0, done.stderr[-3000:]
    return (root / "robustness.md").read_text(), json.loads((root / "robustness.json").read_text())


def test_tables_pool_seeds_and_mark_the_targets(tmp_path):
    _results(tmp_path)
    md, doc = _tables(tmp_path)
    # pooled over seeds: 2/4 + 1/4 = 3/8, with the Wilson interval of 3/8
    ti = doc["attacks"]["grid"]["t2vunlearning"]["textual_inversion"]
    lo, hi = wilson_interval(3, 8)
    assert ti == {
        "asr": 37.5,
        "successes": 3,
        "n": 8,
        "asr_ci95": pytest.approx([100 * lo, 100 * hi]),
        "per_seed": [50.0, 25.0],
    }
    assert "| t2vunlearning | " in md and "37.5 (3/8, " in md and "[50 / 25]" in md
    assert list(doc["attacks"]["grid"]) == [
        "original",
        "negprompt",
        "safree",
        "t2vunlearning",
        "t2vunlearning_persistent",
        "t2vunlearning_preserve",
    ]
    # #28's targets: the plain row misses all three (embedding 50 %, TI 37.5 %, ΔPSR-1: green bar (50 + 30) / 2 -
    # 100 = -60 over 4 classes = -15); the persistent one meets all three (white dot -4 over 4 classes = -1)
    adv = doc["adversarial"]
    assert adv["plain"]["asr"]["embedding"] == 50.0
    assert adv["plain"]["delta_psr@1"]["delta"] == pytest.approx(-15.0)
    assert adv["plain"]["targets_met"] == {"embedding": False, "textual_inversion": False, "delta_psr": False}
    assert adv["persistent"]["delta_psr@1"]["delta"] == pytest.approx(-1.0)
    assert adv["persistent"]["targets_met"] == {"embedding": True, "textual_inversion": True, "delta_psr": True}
    assert "embedding not met, textual_inversion not met, delta_psr not met" in md
    assert "embedding met, textual_inversion met, delta_psr met" in md
    # the preservation set's row is in the same table, scored by its own attack step (6 of 8 -> 75 %)
    assert adv["preserve"]["row"] == "t2vunlearning_preserve" and adv["preserve"]["asr"]["embedding"] == 75.0
    assert adv["preserve"]["targets_met"] == {"embedding": False, "textual_inversion": True, "delta_psr": True}
    assert [k for k in adv if k != "original"] == ["plain", "persistent", "preserve"]
    # preservation: blue ring -10 in every seed -> -2.5 over the 4 classes, the class that lost most named
    pre = doc["preservation"]["preserve"]["delta_psr@1"]
    assert pre["delta"] == pytest.approx(-2.5) and pre["lost_most"] == [["blue ring", -10.0]]
    assert pre["low"] < -2.5 < pre["high"]
    assert doc["preservation"]["preserve_top16"]["delta_psr@1"]["delta"] == pytest.approx(-7.5)
    # the second concept is scored against the original row of its own suite, with "red ring" a kept class
    square = doc["preservation"]["preserve_blue_square"]
    assert square["concept"] == "blue square" and square["delta_psr@1"]["delta"] == pytest.approx(-2.5)
    assert square["delta_psr@1"]["lost_most"] == [["red ring", -10.0]]
    assert doc["preservation"]["plain_blue_square"]["delta_psr@1"]["delta"] == pytest.approx(-10.0)
    assert list(doc["preservation"]) == [
        "plain",
        "preserve_top16",
        "preserve",
        "plain_blue_square",
        "preserve_blue_square",
    ]
    assert "| **blue square**: original model | 2.0 | 92.5 | – | – |" in md
    # only each concept's chosen setting is judged: red ring meets it, blue square misses ESR-1 (98.5 < 99)
    assert "(the chosen setting): met for red ring (preserve); not met for blue square (preserve_blue_square)." in md
    # several concepts: the original row is the one scored on the multi suite (not plain's), the stacked edit
    # fails the preservation target, the whitened one meets both
    multi = doc["multi"]
    assert multi["original"]["psr@1"] == pytest.approx(82.5)
    assert multi["multi_refusal"]["targets_met"] == {"esr": True, "delta_psr": False}
    assert multi["multi_refusal"]["delta_psr@1"]["delta"] == pytest.approx(30.0 - 82.5)
    assert multi["multi_refusal_whitened"]["targets_met"] == {"esr": True, "delta_psr": True}
    assert multi["multi_refusal_whitened"]["delta_psr@1"]["delta"] == pytest.approx(-1.5)
    assert "Not in this table (no results for every seed): multi." in md
    # per-class ΔPSR-1, mean over seeds of each seed's delta against the original row: every kept class of every
    # single-concept step, worst class first (green bar: plain (50 + 30) / 2 - 100 = -60; blue ring: preserve -10;
    # white dot: persistent -4; yellow square unchanged)
    cd = doc["class_delta"]
    assert list(cd["delta"]) == ["plain", "preserve", "persistent"]
    assert cd["classes"] == ["green bar", "blue ring", "white dot", "yellow square"]
    assert cd["delta"]["plain"] == pytest.approx(
        {"green bar": -60.0, "blue ring": 0, "white dot": 0, "yellow square": 0}
    )
    assert cd["delta"]["preserve"]["blue ring"] == pytest.approx(-10.0)
    assert cd["delta"]["persistent"] == pytest.approx(
        {"green bar": 0, "blue ring": 0, "white dot": -4.0, "yellow square": 0}
    )
    table = md.split("### Per-class ΔPSR-1 (mean over seeds [0, 1]")[1].split("\n\n")[1].splitlines()
    assert table == [
        "| class | plain (t2vunlearning) | preserve (t2vunlearning) | persistent (t2vunlearning) |",
        "|---|---|---|---|",
        "| green bar | -60.0 | +0.0 | +0.0 |",
        "| blue ring | +0.0 | -10.0 | +0.0 |",
        "| white dot | +0.0 | +0.0 | -4.0 |",
        "| yellow square | +0.0 | +0.0 | +0.0 |",
    ]
    # ... and as bars beside robustness.md, linked from it
    from PIL import Image

    assert "](class_delta.png)" in md
    with Image.open(tmp_path / "class_delta.png") as im:
        assert im.format == "PNG" and im.size == (1200, 540)


def test_missing_steps_leave_their_table_out(tmp_path):
    _results(tmp_path, skip=("preserve", "attack_persistent", "plain_blue_square"))
    (tmp_path / "seed1" / "multi_refusal_whitened" / "eval" / "metrics.json").unlink()
    md, doc = _tables(tmp_path)
    # red ring without its chosen setting: the other rows stay, the target is not judged; blue square without its
    # default run: left out
    assert list(doc["preservation"]) == ["plain", "preserve_top16"]
    assert "not judged for red ring (preserve has no results for every seed)." in md
    assert "blue square" not in md.split("### Preservation set")[1].split("###")[0]
    assert "persistent" not in doc["adversarial"] and "The persistent adversary is not in this table" in md
    assert "multi_refusal_whitened" not in doc["multi"]
    # the per-class table keeps the steps with results for every seed
    assert list(doc["class_delta"]["delta"]) == ["plain", "persistent"]
    assert "Not in this table (no results for every seed): preserve." in md
    # the original row of the multi suite still comes from seed 0's whitened run
    assert doc["multi"]["original"]["psr@1"] == pytest.approx(82.5)
    (tmp_path / "seed0" / "multi_refusal_whitened" / "eval" / "metrics.json").unlink()
    md, doc = _tables(tmp_path)
    assert "multi" not in doc and "Not built: needs a several-concepts fit step" in md
    for step in ("plain", "persistent"):
        (tmp_path / "seed1" / step / "eval" / "metrics.json").unlink()
    (tmp_path / "class_delta.png").unlink()
    md, doc = _tables(tmp_path)
    assert "class_delta" not in doc and "### Per-class ΔPSR-1\n\nNot built" in md
    assert not (tmp_path / "class_delta.png").exists()


def _commands(tmp_path) -> dict[str, list[str]]:
    done = _script("--seeds", "3", "4", "--out", str(tmp_path), "--print-commands")
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_attack_steps_attack_their_own_rows(tmp_path):
    cmds = _commands(tmp_path)
    rows = {k: c[c.index("--rows") + 1] for k, c in cmds.items() if "attack" in c[:4]}
    assert rows["seed3/attack_baselines"] == "[original, negprompt, safree]"
    assert rows["seed4/attack_plain"] == f"[t2vunlearning={tmp_path}/seed4/plain/adapters]"
    assert rows["seed3/attack_refusal"] == f"[refusal_vector={tmp_path}/seed3/refusal/refusal]"
    # the original model is scored on the first seed only, by the steps whose tables need it
    fit_rows = {k: c[c.index("--trainer.callbacks.rows") + 1] for k, c in cmds.items() if "fit" in c[:4]}
    assert fit_rows["seed3/plain"] == "[original, t2vunlearning]" and fit_rows["seed4/plain"] == "[t2vunlearning]"
    assert fit_rows["seed3/multi_refusal_whitened"] == "[original, refusal_vector]"
    # the second concept's suite needs its own original row
    assert fit_rows["seed3/plain_blue_square"] == "[original, t2vunlearning]"
    assert fit_rows["seed4/preserve_blue_square"] == "[t2vunlearning]"


def test_benchmark_overrides_reach_the_model_and_data(tmp_path, capsys):
    """Every `unlearn fit` step of the benchmark parses, and its overrides are the keys it means."""
    cmds = _commands(tmp_path)
    printed = {}
    for key, cmd in cmds.items():
        if not key.startswith("seed3/") or "fit" not in cmd[:4]:
            continue
        capsys.readouterr()
        with pytest.raises(SystemExit) as done:
            main([*cmd[3:], "--print_config"])
        assert done.value.code in (0, None), key
        printed[key.split("/")[1]] = yaml.safe_load(capsys.readouterr().out)
    assert printed["adversarial"]["model"]["init_args"]["adversarial_steps"] == 2
    pre = printed["preserve"]
    assert pre["data"]["init_args"]["preserve_rule"] == "conditioning"
    assert (pre["data"]["init_args"]["preserve_top_k"], pre["model"]["init_args"]["beta"]) == (24, 20.0)
    assert pre["trainer"]["max_epochs"] == 12 and pre["data"]["init_args"]["concept"] == "red ring"
    assert printed["preserve_top16"]["data"]["init_args"]["preserve_top_k"] == 16
    square = printed["preserve_blue_square"]
    assert square["data"]["init_args"]["concept"] == "blue square"
    assert {k: square["data"]["init_args"][k] for k in ("preserve_rule", "preserve_top_k")} == {
        "preserve_rule": "conditioning",
        "preserve_top_k": 24,
    }
    assert printed["plain_blue_square"]["data"]["init_args"]["concept"] == "blue square"
    assert printed["plain_blue_square"]["data"]["init_args"]["preserve_rule"] == "neighbours"
    assert printed["multi"]["data"]["init_args"]["concept"] == THREE
    w = printed["multi_refusal_whitened"]
    assert w["model"]["init_args"]["combine"] == "kept_whitened"
    assert (w["model"]["init_args"]["kept_ridge"], w["model"]["init_args"]["strength"]) == (0.1, 3.0)
    assert w["data"]["init_args"]["kept_per_class"] == 2 and w["data"]["init_args"]["concept"] == THREE
    assert printed["multi_refusal"]["model"]["init_args"]["combine"] == "stack"
