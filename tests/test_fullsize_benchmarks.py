"""The full-size benchmarks count what they claim: the real architectures on meta, the real training step.

Default suite: reduced depth (the real width, 1-2 blocks) on the meta device, seconds. The full-size CPU smoke
run (random bf16 weights, ≈9 GiB, minutes) is marked slow.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COST = ROOT / "benchmarks" / "fullsize_cost.py"


def fullsize_cost(out: Path, *args: str) -> dict:
    """benchmarks/fullsize_cost.py run as a program (one of its part modes); its ``--json`` output."""
    res = subprocess.run(
        [sys.executable, str(COST), *args, "--json", str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(out.read_text())


#: the step variants the first test compares, as ``--count-step`` gives them
STEP_VARIANTS = {
    "with_map": "alpha=1,beta=0,mask_source=adapted",
    "without": "alpha=0,beta=0,mask_source=adapted",
    "with_pre": "alpha=1,beta=1,mask_source=adapted",
    "frozen": "alpha=1,beta=0",  # the config's mask_source: frozen (the default)
}


@pytest.fixture(scope="module")
def one_block_steps(tmp_path_factory) -> dict[str, dict[str, dict]]:
    """Both backbones' steps of every variant in one run of the program: ``{backbone: {variant name: row}}``."""
    args = [f"--count-step={v}" for v in STEP_VARIANTS.values()]
    out = tmp_path_factory.mktemp("cost") / "steps.json"
    steps = fullsize_cost(out, "--only", "cogvideox-2b", "wan2.1-t2v-1.3b", "--num-layers", "1", *args)["steps"]
    names = {v: k for k, v in STEP_VARIANTS.items()}
    return {
        b: {names[s["variant"]]: s for s in steps if s["backbone"] == b} for b in ("cogvideox-2b", "wan2.1-t2v-1.3b")
    }


@pytest.mark.parametrize("name", ["cogvideox-2b", "wan2.1-t2v-1.3b"])
def test_meta_step_counts_real_flops_and_the_map_is_a_sliver(name, one_block_steps):
    """On meta, the real step of a full-width model (1 block) at the full geometry: teraFLOPs are counted, β > 0
    adds a forward (and doubles the FLOPs), and the concept map adds less than 0.1 % to the step."""
    steps = one_block_steps[name]
    with_map, without, with_pre = steps["with_map"], steps["without"], steps["with_pre"]
    assert all(s["num_layers"] == 1 for s in steps.values())
    assert with_map["forwards"] == 1 and with_pre["forwards"] == 2
    assert with_pre["flops"] > 1.9 * with_map["flops"]
    assert 0 < with_map["flops"] - without["flops"] < 1e-3 * with_map["flops"]
    # the default (mask_source "frozen"): the maps come with the pseudo data, the step computes none
    frozen = steps["frozen"]
    assert frozen["mask_source"] == "frozen"
    assert frozen["forwards"] == 1 and frozen["flops"] == without["flops"]
    assert with_map["flops"] > 1e12  # a full-geometry step of one real-width block: teraFLOPs
    assert with_map["width"] in (1920, 1536)  # the real width


def test_meta_step_counts_the_persistent_adversary(tmp_path):
    """The adversarial variant's step (#28) on meta, real width, 1 block: the frozen concept forward, K inner
    steps, the adversarial erase forward and the clean one: K + 3 forwards, and more than K + 1 plain steps of
    FLOPs (each inner step is a forward and a backward to the conditioning)."""
    plain, adv = fullsize_cost(
        tmp_path / "steps.json",
        "--only=cogvideox-2b",
        "--num-layers=1",
        "--count-step=alpha=1,beta=0",
        "--count-step=alpha=1,beta=0,adversary=persistent,adversarial_steps=2",
    )["steps"]
    assert plain["adversarial_steps"] == 0 and (adv["adversary"], adv["adversarial_steps"]) == ("persistent", 2)
    assert plain["forwards"] == 1 and adv["forwards"] == 2 + 3
    assert adv["flops"] > 3 * plain["flops"]
    assert adv["cond_shape"] == [226, 4096]  # the bank's entry: T5's 226 token states of width 4096


def test_fullsize_models_match_the_published_parameter_counts():
    """The configurations build the published model sizes (CogVideoX-2B 1.69 B, Wan 2.1 1.3B 1.42 B)."""
    from unlearn.backbones.fullsize import build_random_backbone

    assert sum(p.numel() for p in build_random_backbone("cogvideox-2b").denoiser.parameters()) == 1_693_783_872
    assert sum(p.numel() for p in build_random_backbone("wan2.1-t2v-1.3b").denoiser.parameters()) == 1_418_996_800


def test_the_whole_run_counts_the_sample_videos_the_config_switches_on(tmp_path):
    """cogx2b_nudity.yaml's SampleVideoCallback renders before training and after its 500th step: 2 renders x 2
    prompts x 50 sampler steps x 2 (CFG) = 400 forwards, 4 decoded videos; at every 100 steps (the config before)
    the hand count of #21: 6 renders, 1,200 forwards; without the callback, none."""
    shipped = yaml.safe_load((ROOT / "configs" / "cogx2b_nudity.yaml").read_text())
    shipped["config"] = str(ROOT / "configs" / shipped["config"])  # the copies include the shipped base config
    for cb in shipped["trainer.callbacks"]:
        if "SampleVideo" in cb["class_path"]:
            cb["init_args"]["every_n_steps"] = 100
    (tmp_path / "every_100.yaml").write_text(yaml.safe_dump(shipped))
    shipped["trainer.callbacks"] = [c for c in shipped["trainer.callbacks"] if "SampleVideo" not in c["class_path"]]
    (tmp_path / "no_samples.yaml").write_text(yaml.safe_dump(shipped))
    configs = ["configs/cogx2b_nudity.yaml", str(tmp_path / "every_100.yaml"), str(tmp_path / "no_samples.yaml")]
    every_500, every_100, none = fullsize_cost(
        tmp_path / "samples.json", "--only=cogvideox-2b", "--set=trainer.max_steps=500", "--sample-videos", *configs
    )["sample_videos"]
    assert set(every_500["callbacks"]) >= {"SampleVideoCallback", "ConceptMaskCallback", "AdapterCheckpoint"}
    assert (every_500["renders"], every_500["forwards"], every_500["videos"]) == (2, 400, 4)
    assert (every_100["renders"], every_100["forwards"], every_100["videos"]) == (6, 1200, 12)
    assert "SampleVideoCallback" not in none["callbacks"]
    assert (none["renders"], none["forwards"], none["videos"]) == (0, 0, 0)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU would run the rows for real")
def test_gpu_step_keeps_every_row_when_one_fails(tmp_path):
    """Each backbone runs in its own process: rows that fail (here: no CUDA device) are recorded with their error,
    the JSON holds every row, a parsable line per row, exit status 1."""
    out = tmp_path / "gpu_step.json"
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_step.py"), "--backbone", "cogvideox-2b", "wan2.1-t2v-1.3b",
         "--no-projection", "--json", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 1, res.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["backbone"] for r in rows] == ["cogvideox-2b", "wan2.1-t2v-1.3b"]
    assert all("no CUDA device" in r["error"] for r in rows)
    lines = res.stdout.strip().splitlines()[-2:]
    assert lines[0].startswith("gpu_step: cogvideox-2b error=") and lines[1].startswith("gpu_step: wan2.1-t2v-1.3b")


@pytest.mark.slow
def test_gpu_step_dry_run_on_cpu(tmp_path):
    """benchmarks/gpu_step.py --dry-run end to end (CPU, one real-width block, toy geometry): step times next to
    their projection, the fused kernel's map within tolerance of the chunked recompute, a trajectory, the final
    parsable line."""
    out = tmp_path / "gpu_step.json"
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_step.py"), "--dry-run", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert res.returncode == 0, res.stderr[-2000:] + res.stdout[-2000:]
    (row,) = json.loads(out.read_text())["rows"]
    assert row["seconds_per_step_with_map"] > 0 and row["seconds_per_trajectory"] > 0
    assert row["map_ok"] and row["map_max_abs"] < 1e-5 and row["attention_backend"] == "flash"
    assert row["projected_s"] > 0 and row["measured_gib"] is None
    last = res.stdout.strip().splitlines()[-1]
    assert re.fullmatch(
        r"gpu_step: cogvideox-2b measured_s/projected_s=[0-9.]+ measured_gib/projected_gib=n/a map_max_abs=\S+", last
    ), last


@pytest.mark.slow
def test_fullsize_smoke_runs_the_shipped_config_through_unlearn_fit(tmp_path):
    """benchmarks/fullsize_smoke.py: configs/cogx2b_nudity.yaml through `unlearn fit` with the real full-size
    CogVideoX-2B (random bf16 weights) at one frame of 480x720, to the first optimizer step and its callbacks
    (sample videos left out: --until-first-step; ~9 min and ~9 GB RSS on a shared 2-core machine)."""
    out = tmp_path / "smoke.json"
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fullsize_smoke.py"), "--until-first-step", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert res.returncode == 0 and res.stdout.strip().endswith("fullsize_smoke: ok"), res.stderr[-3000:]
    smoke = json.loads(out.read_text())
    assert smoke["config"] == "configs/cogx2b_nudity.yaml" and smoke["precision"] == "bf16-mixed"
    assert smoke["geometry"] == [1, 480, 720] and smoke["adapters_moved"] and smoke["trajectory_files"] == 1
