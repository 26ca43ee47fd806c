"""The full-size benchmarks count what they claim: the real architectures on meta, the real training step.

Default suite: reduced depth (the real width, 1-2 blocks) on the meta device, seconds. The full-size CPU smoke
run (random bf16 weights, ≈9 GiB, minutes) is marked slow.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))


@pytest.mark.parametrize("name", ["cogvideox-2b", "wan2.1-t2v-1.3b"])
def test_meta_step_counts_real_flops_and_the_map_is_a_sliver(name):
    """On meta, the real step of a full-width model (1 block) at the full geometry: teraFLOPs are counted, β > 0
    adds a forward (and doubles the FLOPs), and the concept map adds less than 0.1 % to the step."""
    from fullsize_cost import count_step, meta_model

    with_map, without, with_pre = (
        count_step(name, a, b, False, num_layers=1, mask_source="adapted") for a, b in ((1, 0), (0, 0), (1, 1))
    )
    assert with_map["forwards"] == 1 and with_pre["forwards"] == 2
    assert with_pre["flops"] > 1.9 * with_map["flops"]
    assert 0 < with_map["flops"] - without["flops"] < 1e-3 * with_map["flops"]
    # the default (mask_source "frozen"): the maps come with the pseudo data, the step computes none
    frozen = count_step(name, 1, 0, False, num_layers=1)
    assert frozen["forwards"] == 1 and frozen["flops"] == without["flops"]
    assert with_map["flops"] > 1e12  # a full-geometry step of one real-width block: teraFLOPs
    cfg = meta_model(name, 1.0, 0.0, False, num_layers=1).backbone.denoiser.config
    assert cfg.num_attention_heads * cfg.attention_head_dim in (1920, 1536)  # the real width


def test_fullsize_models_match_the_published_parameter_counts():
    """The configurations build the published model sizes (CogVideoX-2B 1.69 B, Wan 2.1 1.3B 1.42 B)."""
    from fullsize_models import build_random_backbone

    assert sum(p.numel() for p in build_random_backbone("cogvideox-2b").denoiser.parameters()) == 1_693_783_872
    assert sum(p.numel() for p in build_random_backbone("wan2.1-t2v-1.3b").denoiser.parameters()) == 1_418_996_800


def test_gpu_step_dry_run_on_cpu(tmp_path):
    """benchmarks/gpu_step.py runs end to end (CPU, one real-width block, toy geometry): step times, the map of the
    fused route equal to the chunked route's, a trajectory."""
    out = tmp_path / "gpu_step.json"
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_step.py"),
            "--device",
            "cpu",
            "--num-layers",
            "1",
            "--geometry",
            "1",
            "32",
            "48",
            "--sampler-steps",
            "2",
            "--steps",
            "1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    (row,) = json.loads(out.read_text())["rows"]
    assert row["seconds_per_step_with_map"] > 0 and row["seconds_per_trajectory"] > 0
    assert row["map_max_abs_difference"] < 1e-5


@pytest.mark.slow
def test_fullsize_smoke_cogvideox_2b(tmp_path):
    """The real full-size CogVideoX-2B (random bf16 weights): one pseudo-data step and one training step at one
    latent frame of 480×720, only adapters get gradients, and the 49-frame patch embedding (≈9 GiB, minutes)."""
    out = tmp_path / "smoke.json"
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "fullsize_smoke.py"),
            "--backbone",
            "cogvideox-2b",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert res.returncode == 0 and res.stdout.strip().endswith("fullsize_smoke: ok"), res.stderr[-3000:]
    smoke = json.loads(out.read_text())
    assert smoke["params"] == 1_693_783_872 and smoke["latent_shape"] == [1, 16, 60, 90]
    assert smoke["full_frames_patch_embed"] == [1, 226 + 13 * 30 * 45, 1920]
