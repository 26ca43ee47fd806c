"""The toy-world measurement scripts in benchmarks/ report what they claim: zero change for untrained
(zero-initialised) adapters, a change for perturbed ones, and per-layer concept-map ratios of the right shape."""

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "unlearn" / "toyworld" / "weights" / "world.json"
pytestmark = pytest.mark.skipif(not WEIGHTS.exists(), reason="toy world weights not built (unlearn toyworld pretrain)")
sys.path.insert(0, str(ROOT / "benchmarks"))


def _controller():
    from backbones import build_backbone
    from unlearn.adapters import AdapterController

    sites = build_backbone("toy-cogvideox").attention_sites()
    return AdapterController([s.video_dim for s in sites], 8)


def test_locality_is_zero_for_zero_adapters_and_grows_when_they_act(tmp_path):
    from toy_localization import measure
    from unlearn.export import save_adapters

    zero = _controller()
    save_adapters(zero, "toy-cogvideox", tmp_path / "zero" / "adapters")
    acting = _controller()
    with torch.no_grad():
        for p in acting.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.5)
    save_adapters(acting, "toy-cogvideox", tmp_path / "acting" / "adapters")
    res = measure([str(tmp_path / "zero"), str(tmp_path / "acting")], "red ring", 3)
    z, a = res["runs"][str(tmp_path / "zero")], res["runs"][str(tmp_path / "acting")]
    assert z["outside"] == 0 and z["inside"] == 0, z  # adapters at zero reproduce the original exactly
    assert a["outside"] > 1 and a["inside"] > 1, a


def test_mask_quality_reports_one_ratio_per_layer_and_the_first_layer_localises():
    from toy_mask_quality import layer_ratios

    res = layer_ratios(None, "red ring", 4, [300])
    ratios = res["median_obj_bg_ratio_per_layer"][300]
    assert len(ratios) == 4 and all(r > 0 for r in ratios)
    assert ratios[0] > 1.2 > ratios[3], ratios  # shipped model: layer 0 localises, the last layer does not
