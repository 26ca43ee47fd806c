"""benchmarks/toy_localization.py reports what it claims: zero change for untrained (zero-initialised)
adapters, a change for perturbed ones. (toy_mask_quality.py is exercised by tests/test_toyworld_method.py.)"""

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "unlearn" / "toyworld" / "weights" / "world.json"
pytestmark = pytest.mark.skipif(not WEIGHTS.exists(), reason="toy world weights not built (unlearn toyworld pretrain)")
sys.path.insert(0, str(ROOT / "benchmarks"))


def _switch():
    from unlearn.backbones import build_backbone
    from unlearn.methods.t2vunlearning.adapters import AdapterSwitch

    sites = build_backbone("toy-cogvideox").attention_sites()
    return AdapterSwitch([s.video_dim for s in sites], 8)


def test_locality_is_zero_for_zero_adapters_and_grows_when_they_act(tmp_path):
    from toy_localization import measure

    from unlearn.methods.t2vunlearning.export import save_adapters

    zero = _switch()
    save_adapters(zero, "toy-cogvideox", tmp_path / "zero" / "adapters")
    acting = _switch()
    with torch.no_grad():
        for p in acting.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.5)
    save_adapters(acting, "toy-cogvideox", tmp_path / "acting" / "adapters")
    res = measure([str(tmp_path / "zero"), str(tmp_path / "acting")], "red ring", 3)
    z, a = res["runs"][str(tmp_path / "zero")], res["runs"][str(tmp_path / "acting")]
    assert z["outside"] == 0 and z["inside"] == 0, z  # adapters at zero reproduce the original exactly
    assert a["outside"] > 1 and a["inside"] > 1, a


def test_shape_concept_benchmark_prompts_and_config(tmp_path):
    import yaml
    from toy_shape_concept import concept_config, eval_prompts

    prompts = eval_prompts("ring", per_colour=3, per_class=1)
    classes = [c for _, c, _ in prompts]
    for colour in ("red", "green", "blue", "yellow", "white"):
        assert classes.count(f"{colour} ring") == 3
    assert len(prompts) == 5 * 3 + 20 and len({s for _, _, s in prompts}) == len(prompts)
    assert eval_prompts("ring", 3, 1) == prompts  # same prompts and seeds for every variant and run

    cfg = yaml.safe_load(concept_config(str(ROOT / "configs" / "toy_shapes.yaml"), "ring", tmp_path).read_text())
    assert cfg["data"]["init_args"]["concept"] == "ring"
    # the per-class ErasureEvaluation cannot score a one-word concept; only the adapter checkpoint stays
    assert [c["class_path"] for c in cfg["trainer"]["callbacks"]] == ["unlearn.callbacks.AdapterCheckpoint"]


def test_shape_concept_rows_are_scored_once_per_prompts_and_adapters(tmp_path):
    import json
    import shutil

    from toy_shape_concept import eval_prompts, evaluate

    from unlearn.methods.t2vunlearning.export import save_adapters

    prompts = [p for p in eval_prompts("ring", 1, 1) if p[1] in ("red ring", "blue ring", "red square", "green bar")]
    save_adapters(_switch(), "toy-cogvideox", tmp_path / "run" / "adapters")
    res = evaluate({"run": tmp_path / "run"}, "ring", prompts, name_samples=1)
    rows = res["rows"]
    assert rows["run"] == rows["original model"]  # zero-initialised adapters: the original's frames exactly
    assert set(rows["run"]["esr@1_by"]) == {"red", "blue"} and rows["run"]["erased_frames"] == 8
    assert len(res["kept_classes"]) == 20 and not any(c.endswith("ring") for c in res["kept_classes"])
    assert set(rows["run"]["per_class_top1"]) == {"red square", "green bar"}
    cache = tmp_path / "run" / "shape_eval.json"
    first = json.loads(cache.read_text())
    assert first["row"] == rows["run"]

    acting = _switch()
    with torch.no_grad():
        for p in acting.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.5)
    save_adapters(acting, "toy-cogvideox", tmp_path / "acting" / "adapters")
    shutil.copy(tmp_path / "acting" / "adapters" / "adapters.safetensors", tmp_path / "run" / "adapters")
    evaluate({"run": tmp_path / "run"}, "ring", prompts, name_samples=1)
    assert json.loads(cache.read_text())["adapters"] != first["adapters"]  # new weights were scored, not read back
