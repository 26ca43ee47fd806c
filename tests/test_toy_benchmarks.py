"""The toy benchmarks, run as programs, report what they claim: benchmarks/toy_localization.py gives zero change
for untrained (zero-initialised) adapters and a change for perturbed ones; benchmarks/toy_shape_concept.py scores
every look of a one-word concept on fixed prompts, once per prompts and adapters. (toy_mask_quality.py is
exercised by tests/test_toyworld_method.py.)"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from unlearn.backbones import build_backbone
from unlearn.methods.t2vunlearning import AdapterSwitch, save_adapters

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "unlearn" / "toyworld" / "weights" / "world.json"
pytestmark = pytest.mark.skipif(not WEIGHTS.exists(), reason="toy world weights not built (unlearn toyworld pretrain)")


def _run(script: str, *args: str, cwd: Path = ROOT) -> None:
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], check=True, capture_output=True, cwd=cwd)


def _adapters(folder: Path, acting: bool) -> None:
    sites = build_backbone("toy-cogvideox").attention_sites()
    switch = AdapterSwitch([s.video_dim for s in sites], 8)
    if acting:
        with torch.no_grad():
            for p in switch.parameters():
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.5)
    save_adapters(switch, "toy-cogvideox", folder)


def test_locality_is_zero_for_zero_adapters_and_grows_when_they_act(tmp_path):
    zero, acting = tmp_path / "zero", tmp_path / "acting"
    _adapters(zero / "adapters", acting=False)
    _adapters(acting / "adapters", acting=True)
    _run("toy_localization.py", str(zero), str(acting), "--prompts", "3", "--json", str(tmp_path / "loc.json"))
    res = json.loads((tmp_path / "loc.json").read_text())
    z, a = res["runs"][str(zero)], res["runs"][str(acting)]
    assert z["outside"] == 0 and z["inside"] == 0, z  # adapters at zero reproduce the original exactly
    assert a["outside"] > 1 and a["inside"] > 1, a


def test_shape_concept_benchmark_prompts_and_config(tmp_path):
    plans = []
    for i in range(2):
        out = tmp_path / f"out{i}"
        _run("toy_shape_concept.py", "--concept", "ring", "--per-colour", "3", "--per-class", "1", "--out", str(out),
             "--plan", str(tmp_path / f"plan{i}.json"))  # fmt: skip
        plans.append(json.loads((tmp_path / f"plan{i}.json").read_text()))
    prompts = plans[0]["prompts"]
    classes = [c for _, c, _ in prompts]
    for colour in ("red", "green", "blue", "yellow", "white"):
        assert classes.count(f"{colour} ring") == 3
    assert len(prompts) == 5 * 3 + 20 and len({s for _, _, s in prompts}) == len(prompts)
    assert plans[1]["prompts"] == prompts  # same prompts and seeds for every variant and run

    cfg = yaml.safe_load(Path(plans[0]["config"]).read_text())
    assert cfg["data"]["init_args"]["concept"] == "ring"
    # the per-class ErasureEvaluation cannot score a one-word concept; only the adapter checkpoint stays
    assert [c["class_path"] for c in cfg["trainer"]["callbacks"]] == ["unlearn.callbacks.AdapterCheckpoint"]


def test_shape_concept_rows_score_saved_adapters_and_are_cached(tmp_path):
    out, run = tmp_path / "out", tmp_path / "out" / "full" / "seed0"
    _adapters(run / "adapters", acting=False)
    args = ["--concept", "ring", "--per-colour", "1", "--per-class", "1", "--name-samples", "1", "--out", str(out)]
    args += ["--only", "full", "--reuse"]  # the adapters in the run folder: nothing is trained
    _run("toy_shape_concept.py", *args)
    res = json.loads((out / "shape_concept.json").read_text())
    rows = res["rows"]
    assert rows["full/seed0"] == rows["original model"]  # zero-initialised adapters: the original's frames exactly
    assert set(rows["full/seed0"]["esr@1_by"]) == {"red", "green", "blue", "yellow", "white"}
    assert rows["full/seed0"]["erased_frames"] == 5 * 4
    assert len(res["kept_classes"]) == 20 and not any(c.endswith("ring") for c in res["kept_classes"])
    assert set(rows["full/seed0"]["per_class_top1"]) == set(res["kept_classes"])
    assert json.loads((run / "shape_eval.json").read_text())["row"] == rows["full/seed0"]  # cached beside the adapters


@pytest.mark.slow
def test_shape_concept_rows_are_scored_again_when_the_adapters_change(tmp_path):
    out, run = tmp_path / "out", tmp_path / "out" / "full" / "seed0"
    _adapters(run / "adapters", acting=False)
    args = ["--concept", "ring", "--per-colour", "1", "--per-class", "1", "--name-samples", "1", "--out", str(out)]
    args += ["--only", "full", "--reuse"]
    _run("toy_shape_concept.py", *args)
    cache = run / "shape_eval.json"
    first = json.loads(cache.read_text())
    acting = tmp_path / "acting"
    _adapters(acting / "adapters", acting=True)
    shutil.copy(acting / "adapters" / "adapters.safetensors", run / "adapters")
    _run("toy_shape_concept.py", *args)
    assert json.loads(cache.read_text())["adapters"] != first["adapters"]  # new weights were scored, not read back
