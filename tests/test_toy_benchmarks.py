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

