"""`unlearn evaluate` scaled out: `shard="i/n"` jobs fill one folder (each resumable), a run without a shard scores
every video into one table equal to a single run's; `shard="auto"` reads a SLURM job array or torchrun's ranks
(the launcher logic behind the README's SLURM example)."""

import json

import pytest
from conftest import runner

from unlearn.cli import main as unlearn_main
from unlearn.evaluation.runner import resolve_shard


def _rows(doc):
    return json.loads(json.dumps(doc["rows"]))


def test_two_shards_then_a_merge_equal_one_run(tmp_path, suite_file, bb, clf, adapters):
    methods = ["original", f"t2vunlearning={adapters}"]
    single = runner(tmp_path / "single", suite_file, bb, clf, methods).run()

    out = tmp_path / "sharded"
    first = runner(out, suite_file, bb, clf, methods, shard="0/2").run()
    assert first["shard"] == [0, 2] and first["rows"]["original"]["generated"] == 2  # prompts 0 and 2 of 3
    # the fit callback's names, <row>_<prompt index>_<label>.mp4
    assert sorted(p.name for p in (out / "videos").glob("original_*.mp4")) == [
        "original_0_red_ring.mp4",
        "original_2_blue_square.mp4",
    ]
    assert not (out / "metrics.json").exists()  # a shard does not score
    again = runner(out, suite_file, bb, clf, methods, shard="0/2").run()  # a restarted job: nothing to redo
    assert again["rows"]["original"]["generated"] == 0 and again["rows"]["original"]["reused"] == 2
    second = runner(out, suite_file, bb, clf, methods, shard="1/2").run()
    assert second["rows"]["t2vunlearning"]["generated"] == 1
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["0-of-2.json", "1-of-2.json"]

    merged = runner(out, suite_file, bb, clf, methods).run()
    assert [r["generated"] for r in merged["videos"].values()] == [0, 0]  # every video came from the shards
    assert _rows(merged) == _rows(single)  # one table, the numbers of one run
    # the header states the values used, the backbone's defaults included (not "default")
    md = (out / "metrics.md").read_text()
    assert "num_frames=4, height=16, width=16, num_inference_steps=2" in md and "=default" not in md
    manifest = json.loads((out / "videos" / "original_1_red_ring.json").read_text())
    assert manifest["sampling"] == {k: merged["sampling"][k] for k in manifest["sampling"]}


@pytest.mark.parametrize(
    "value, environ, expected",
    [
        (None, {}, None),
        ("1/4", {}, (1, 4)),
        (" 3 / 4 ", {}, (3, 4)),
        # a SLURM job array `#SBATCH --array=0-7`: task 5 of 8
        ("auto", {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "8", "SLURM_ARRAY_TASK_MIN": "0"}, (5, 8)),
        # `--array=1-4` numbers from 1
        ("auto", {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"}, (0, 4)),
        # torchrun --nnodes 2 --nproc-per-node 4: global rank 6 of 8
        ("auto", {"RANK": "6", "WORLD_SIZE": "8", "LOCAL_RANK": "2"}, (6, 8)),
        ("auto", {}, None),  # one job: everything
    ],
)
def test_shard_values_and_the_launchers(value, environ, expected):
    assert resolve_shard(value, environ) == expected


@pytest.mark.parametrize("bad", ["2/2", "1-4", "-1/3", "a/b", "0/0"])
def test_bad_shards_are_refused_naming_the_form(bad, tmp_path, capsys):
    with pytest.raises(ValueError, match="is not 'i/n' with 0 <= i < n"):
        resolve_shard(bad, {})
    code = unlearn_main(
        ["evaluate", "--out", str(tmp_path), "--suite", "toyworld", "--methods", "original", f"--shard={bad}"]
    )
    assert code == 2 and "is not 'i/n'" in capsys.readouterr().err
