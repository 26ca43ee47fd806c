"""benchmarks/paper_tables.py, run as a program: one command per paper table, on the tiny random toy backbone with
a tiny random toy classifier (``--classifier toyworld:<folder>``) standing in for the shipped one (real NudeNet and
SFace: they ship offline)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unlearn.backbones import build_backbone
from unlearn.io import file_sha256
from unlearn.methods.t2vunlearning.adapters import AdapterSwitch
from unlearn.methods.t2vunlearning.export import save_adapters
from unlearn.prompts import PromptSuite
from unlearn.toyworld.classifier import ShapeColourClassifier
from unlearn.toyworld.render import class_names

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--tiny", "--steps", "2", "--batch-size", "25"]


def run_tables(*argv: str) -> subprocess.CompletedProcess:
    """``python benchmarks/paper_tables.py ARGV``: its exit status, stdout and stderr."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "paper_tables.py"), *argv]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def toy_adapters(tmp_path_factory):
    bb = build_backbone("toy-cogvideox", tiny=True)
    folder = tmp_path_factory.mktemp("ad")
    out = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        sites = bb.attention_sites()
        switch = AdapterSwitch([s.video_dim for s in sites], 8, [s.name for s in sites])
        for a in switch.adapters:
            torch.nn.init.normal_(a.up.weight, std=0.5)
        out.append(str(save_adapters(switch, bb.name, folder / f"adapters{seed}")))
    return out


@pytest.fixture(scope="module")
def toy_classifier(tmp_path_factory):
    """A tiny random classifier over the toy world's 25 classes, saved where ``toyworld:<folder>`` finds it."""
    torch.manual_seed(0)
    net = ShapeColourClassifier(class_names(), width_mult=4)
    folder = tmp_path_factory.mktemp("classifier")
    net.save_pretrained(folder)
    return f"toyworld:{folder}"


def test_toy_table_writes_metrics_json_with_the_callback_rows(tmp_path, toy_adapters, toy_classifier):
    out = tmp_path / "toy"
    proc = run_tables(
        "toy",
        *FAST,
        "--per-class",
        "1",
        "--per-group",
        '{"erased": 2}',
        "--out-of-grammar",
        '{"erased": 1}',
        "--adapters",
        toy_adapters[0],
        "--classifier",
        toy_classifier,
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["rows"]) == {"original", "negprompt", "safree", "t2vunlearning"}  # write_metrics sorts keys
    for row in metrics["rows"].values():
        assert all(0 <= row[k] <= 100 for k in ("esr@1", "esr@5", "psr@1", "psr@5"))
        assert row["erased_frames"] == 8 and row["preserved_frames"] == 24 * 4
        assert row["intervals"]["esr@1"]["n"] == 8 and row["splits"]["out_of_grammar"]["erased_frames"] == 4
    assert metrics["erased_class"] == "red ring" and metrics["num_prompts"] == 27 and metrics["units"] == "percent"
    assert metrics["prompts_per_split"] == {"in_grammar": 26, "out_of_grammar": 1}
    weights = Path(toy_classifier.split(":", 1)[1]) / ShapeColourClassifier.weights_name
    assert metrics["evaluator"]["evaluator"]["version"] == "sha256:" + file_sha256(weights)[:16]  # the tiny one
    results = metrics  # one result pair: the runner's own fields beside the callback's
    assert not (out / "results.json").exists() and not (out / "results.md").exists()
    assert results["store_frames"] is True and results["suite"]["name"] == "toyworld"
    # SAFREE gets the concept and its synonyms, as the ErasureEvaluation callback gives it
    assert (
        results["methods"]["safree"]["keywords"][0] == "red ring"
        and "crimson hoop" in results["methods"]["safree"]["keywords"]
    )
    assert "keywords" not in results["methods"]["negprompt"]  # the negative prompt is the concept itself
    assert "| t2vunlearning |" in proc.stdout


def test_objects_table_one_adapters_folder_per_class(tmp_path, toy_adapters, toy_classifier):
    suite = PromptSuite(
        [
            {"prompt": "a red ring moves left", "concept": "red ring", "seed": 1},
            {"prompt": "a blue square moves up", "concept": "blue square", "seed": 2},
            {"prompt": "a green cross spins", "concept": "green cross", "seed": 3},
        ]
    ).save(tmp_path / "s.jsonl")
    out = tmp_path / "objects"
    proc = run_tables(
        "objects",
        *FAST,
        "--backbone",
        "toy-cogvideox",
        "--suite",
        str(suite),
        "--classifier",
        toy_classifier,
        "--out",
        str(out),
        "--adapters",
        f"red ring={toy_adapters[0]}",
        "--adapters",
        f"blue square={toy_adapters[1]}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = json.loads((out / "table.json").read_text())["rows"]
    assert set(table) == {"red ring", "blue square"}
    assert set(table["red ring"]) == {"original", "negprompt", "safree", "t2vunlearning"}
    results = json.loads((out / "metrics.json").read_text())
    assert results["erased_class"] is None and results["erased_classes"] == ["red ring", "blue square"]
    # the original videos are generated once and scored for both erased classes
    assert results["videos"]["original"]["generated"] == 3
    assert set(results["rows"]["original"]["classification"]) == {"red ring", "blue square"}
    assert set(results["rows"]["t2vunlearning-blue_square"]["classification"]) == {"blue square"}
    assert (
        table["blue square"]["t2vunlearning"]
        == results["rows"]["t2vunlearning-blue_square"]["classification"]["blue square"]
    )
    md = (out / "table.md").read_text()
    assert "| blue square | t2vunlearning |" in md and "| red ring | original |" in md
    # every kept class against the original row, per erased class (metrics.md and plots/class_delta.png)
    page = (out / "metrics.md").read_text()
    for cls, kept in (("red ring", "blue square"), ("blue square", "red ring")):
        part = page.split(f"### {cls} erased: per-class top-1 against the original row")[1].split("###")[0]
        assert f"| {kept} | " in part and f"| {cls} | " not in part and "green cross" in part
    assert (out / "plots" / "class_delta.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nudity_table_columns_per_prompt_set_and_figure5(tmp_path, toy_adapters):
    a = PromptSuite(["a person on a beach", "a person in a room"]).save(tmp_path / "a.jsonl")
    b = tmp_path / "b.txt"
    b.write_text("a statue in a park\n")  # a plain one-prompt-a-line file
    out = tmp_path / "nudity"
    proc = run_tables(
        "nudity",
        *FAST,
        "--backbone",
        "toy-cogvideox",
        "--adapters",
        toy_adapters[0],
        "--out",
        str(out),
        "--suites",
        f"gen={a}",
        f"safesora={b}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / "table.json").read_text())
    assert set(doc["nudity_rate"]) == {"gen", "safesora"}
    assert (
        doc["nudity_rate"]["gen"]["original"]["frames"] == 8
        and doc["nudity_rate"]["safesora"]["t2vunlearning"]["videos"] == 1
    )
    assert doc["settings"]["gen"]["evaluator"]["version"] == "3.4.2"
    assert doc["settings"]["gen"]["threshold"] == 0.0 and doc["settings"]["gen"]["protocol"] == "paper"
    md = (out / "table.md").read_text()
    assert "| method | gen ↓ | safesora ↓ |" in md and "Figure 5" in md
    assert (out / "figure5.png").read_bytes()[:4] == b"\x89PNG"
    # unlabelled prompts: videos/<row>_<index>.mp4
    assert (out / "gen" / "metrics.json").is_file() and (out / "safesora" / "videos" / "negprompt_0.mp4").is_file()


def test_faces_table_with_real_sface(tmp_path):
    skimage = pytest.importorskip("skimage.data")
    import matplotlib.cbook
    from PIL import Image

    refs = tmp_path / "refs"
    (refs / "ada").mkdir(parents=True)
    (refs / "grace").mkdir()
    Image.fromarray(skimage.astronaut()).save(refs / "ada" / "1.png")
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        Image.open(f).convert("RGB").save(refs / "grace" / "1.png")
    suite = PromptSuite(
        [
            {"prompt": "a portrait of Ada", "concept": "Ada", "seed": 1},
            {"prompt": "a portrait of Grace", "concept": "Grace", "seed": 2},
        ]
    ).save(tmp_path / "f.jsonl")
    out = tmp_path / "faces"
    proc = run_tables(
        "faces",
        *FAST,
        "--backbone",
        "toy-cogvideox",
        "--suite",
        str(suite),
        "--references",
        str(refs),
        "--classes",
        "Ada",
        "--rows",
        "original",
        "negprompt",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / "table.json").read_text())
    assert set(doc["rows"]["Ada"]) == {"original", "negprompt"}
    # random 16 px videos hold no face: counted, never scored as 0
    assert doc["rows"]["Ada"]["original"]["face_rate"] == 0 and doc["rows"]["Ada"]["original"]["id_erased"] is None
    assert doc["settings"]["identity"]["identities"] == {"Ada": {"references": 1}, "Grace": {"references": 1}}


def test_table_errors_exit_2_and_write_nothing(tmp_path, toy_adapters):
    out = tmp_path / "benign"
    proc = run_tables(
        "benign",
        *FAST,
        "--backbone",
        "toy-cogvideox",
        "--rows",
        "original",
        "--suite",
        "builtin:imagenet10",
        "--clip-pretrained",
        str(tmp_path / "missing_clip.bin"),
        "--out",
        str(out),
    )
    assert proc.returncode == 2 and "missing_clip.bin" in proc.stderr
    assert not (out / "table.md").exists() and not (out / "metrics.json").exists() and not (out / "videos").exists()
    bad = tmp_path / "s.jsonl"
    PromptSuite([{"prompt": "a red ring", "concept": "red ring"}]).save(bad)
    proc = run_tables(
        "objects", *FAST, "--suite", str(bad), "--out", str(tmp_path / "o"), "--adapters", f"red ring={toy_adapters[0]}"
    )  # toy adapters, cogvideox-2b backbone
    assert proc.returncode == 2 and "trained on 'toy-cogvideox', not on 'cogvideox-2b'" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_a_table_without_its_inputs_names_the_missing_option():
    for table, message in (("nudity", "needs --suites"), ("objects", "CLASS=FOLDER")):
        proc = run_tables(table, *FAST)
        assert proc.returncode == 1 and message in proc.stderr, proc.stderr[-2000:]
