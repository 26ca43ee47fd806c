"""The model card `unlearn push` publishes: licence, base model, library and tags, a gallery of the run's sample
videos, `model-index` with the erasure/preservation results and their 95% intervals, a loading snippet that runs;
every string from a file escaped. Offline: huggingface_hub's ModelCard parses what the card renders."""

import ast
import json
import re

import torch
import yaml
from backbone_checks import random_adapters
from hub_run import trained_run
from huggingface_hub import ModelCard

from unlearn.backbones import build_backbone
from unlearn.cli import main
from unlearn.hub import card_contents, model_card
from unlearn.methods.t2vunlearning.export import backbone_provenance, save_adapters
from unlearn.video import write_mp4


def _with_intervals(tmp_path):
    """The trained run of test_hub with intervals on its rows (as ErasureEvaluation writes them)."""
    path = tmp_path / "run" / "eval" / "metrics.json"
    doc = json.loads(path.read_text())
    doc["rows"]["t2vunlearning"]["intervals"] = {
        "esr@1": {"low": 88.1, "high": 96.6, "n": 640, "unit": "frames", "method": "wilson"},
        "psr@1": {"low": 71.0, "high": 83.2, "n": 45, "unit": "videos", "method": "bootstrap over videos"},
    }
    doc["rows"]["original"]["intervals"] = {"esr@1": {"low": 9.0, "high": 16.1, "n": 640}}
    path.write_text(json.dumps(doc))
    return path


def _samples(run, prompts):
    """Sample videos as SampleVideoCallback leaves them: mp4 files and samples.json."""
    folder = run / "samples"
    videos = []
    for i, prompt in enumerate(prompts):
        for tag, adapters, step in (("original", False, 0), ("step=100", True, 100), ("step=300", True, 300)):
            write_mp4(torch.zeros(4, 16, 16, 3, dtype=torch.uint8), folder / f"{tag}_{i}.mp4", fps=8)
            videos.append(
                {"file": f"{tag}_{i}.mp4", "tag": tag, "prompt": prompt, "adapters": adapters, "global_step": step}
            )
    (folder / "samples.json").write_text(json.dumps({"fps": 8, "videos": videos}))


def test_metadata_model_index_and_gallery(tmp_path):
    trained_run(tmp_path)
    metrics = _with_intervals(tmp_path)
    _samples(tmp_path / "run", ["a golf ball on the grass", "a dog on the grass"])
    text, files = card_contents(tmp_path / "run" / "adapters", "alice/cogx2b-no-golf-ball", metrics)
    card = ModelCard(text)
    data = card.data
    assert data.license == "apache-2.0"  # CogVideoX-2b's licence
    assert data.base_model == "THUDM/CogVideoX-2b" and data.to_dict()["base_model_relation"] == "adapter"
    assert data.library_name == "t2v-unlearn" and data.pipeline_tag == "text-to-video"
    assert {"diffusers", "concept-erasure", "cogvideox-2b"} <= set(data.tags)
    # model-index: these adapters' row, each number with its interval
    results = {r.metric_type: r for r in data.eval_results}
    assert set(results) == {"esr@1", "psr@1"}  # the numbers that carry an interval
    assert results["esr@1"].metric_value == 93.8 and results["psr@1"].metric_value == 77.5
    assert results["esr@1"].metric_args["ci95_low"] == 88.1 and results["esr@1"].metric_args["ci95_high"] == 96.6
    assert results["psr@1"].metric_args["method"] == "bootstrap over videos"
    assert results["esr@1"].dataset_name == "builtin:imagenet10_video"
    assert results["esr@1"].dataset_revision == "ab" * 32
    # the gallery: the latest adapted video per prompt in the widget, both videos uploaded with the card
    widget = data.to_dict()["widget"]
    assert widget == [
        {"text": "a golf ball on the grass", "output": {"url": "samples/step=300_0.mp4"}},
        {"text": "a dog on the grass", "output": {"url": "samples/step=300_1.mp4"}},
    ]
    assert sorted(files) == sorted(f"samples/{t}_{i}.mp4" for t in ("original", "step=300") for i in (0, 1))
    assert all(p.is_file() for p in files.values())
    assert "<Gallery />" in card.text
    assert "| a golf ball on the grass | [video](samples/original_0.mp4) | [video](samples/step=300_0.mp4)" in card.text


def test_push_uploads_the_gallery(tmp_path, capsys):
    trained_run(tmp_path)
    _samples(tmp_path / "run", ["a golf ball on the grass"])
    assert main(["push", str(tmp_path / "run" / "adapters"), "--repo", "alice/x", "--dry-run"]) == 0
    assert "output:\n    url: samples/step=300_0.mp4" in capsys.readouterr().out


def test_licence_follows_the_base_model_and_can_be_set(tmp_path):
    bb = build_backbone("cogvideox-5b", tiny=True, torch_dtype="float32")
    extra = backbone_provenance("cogvideox-5b", "THUDM/CogVideoX-5b")
    save_adapters(random_adapters(bb), "cogvideox-5b", tmp_path / "a", extra=extra)
    data = ModelCard(model_card(tmp_path / "a", "alice/x")).data
    assert (data.license, data.license_name) == ("other", "cogvideox-license")
    assert data.license_link.startswith("https://huggingface.co/THUDM/CogVideoX-5b/")
    assert ModelCard(model_card(tmp_path / "a", "alice/x", license="mit")).data.license == "mit"
    # a base model of unknown terms says so
    save_adapters(random_adapters(bb), "cogvideox-5b", tmp_path / "b", extra=backbone_provenance("x", str(tmp_path)))
    data = ModelCard(model_card(tmp_path / "b", "alice/x")).data
    assert (data.license, data.license_name) == ("other", "unknown")


HOSTILE = {
    "concept": "nudity | <script>alert(1)</script> [x](javascript:alert(1)) `rm` **b**\n# heading",
    "backbone_source": '/data/x")\nimport os; os.system("rm -rf ~")  # ```\n---\nlicense: stolen',
    "prompt": "a cat </video> <img src=x onerror=alert(1)> | c\n---\nlicense: stolen",
}


def test_text_from_files_is_escaped_everywhere(tmp_path):
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    extra = {"concept": HOSTILE["concept"], **backbone_provenance("cogvideox-2b", HOSTILE["backbone_source"])}
    save_adapters(random_adapters(bb), "cogvideox-2b", tmp_path / "run" / "adapters", extra=extra)
    _samples(tmp_path / "run", [HOSTILE["prompt"]])
    text = model_card(tmp_path / "run" / "adapters", "alice/x")
    front, body = text.split("\n---\n", 1)
    meta = yaml.safe_load(front.removeprefix("---\n"))
    assert meta["license"] == "other" and meta["widget"][0]["text"] == HOSTILE["prompt"]  # YAML kept it intact
    assert "stolen" not in yaml.safe_dump(meta["license"])
    assert "<script" not in body and "<img" not in body and "</video>" not in body
    assert "](javascript" not in body.replace("\\]", "")
    assert not re.search(r"^#+ heading", body, re.M) and not re.search(r"^---$", body, re.M)
    # every table row keeps its two cells (no | got through)
    table = [line for line in body.splitlines() if line.startswith("| ") and "|---" not in line]
    rows = [line for line in table if not line.startswith("| prompt")]
    assert all(len(re.split(r"(?<!\\)\|", line)) == 4 for line in rows[:13]), rows[:13]
    # the snippet is valid Python whose only statements are the loading ones
    code = re.search(r"^(`{3,})python\n(.*?)^\1$", body, re.M | re.S)[2]
    calls = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call)]
    names = {ast.unparse(c.func) for c in calls}
    assert "os.system" not in names and names <= {
        "DiffusionPipeline.from_pretrained",
        "attach_adapters",
        "pipe",
        "switch.scaled",
        "build_backbone",
        "backbone.sample",
        "backbone.decode",
    }, names


def test_the_toy_card_loads_through_t2v_unlearn_and_its_snippet_runs(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from unlearn.toyworld.backbone import SHIPPED_WEIGHTS

    bb = build_backbone("toy-cogvideox")
    extra = {"concept": "red ring", **backbone_provenance("toy-cogvideox", str(SHIPPED_WEIGHTS))}
    save_adapters(random_adapters(bb), "toy-cogvideox", tmp_path / "adapters", extra=extra)
    text = model_card(tmp_path / "adapters", "alice/toy-no-red-ring")
    card = ModelCard(text)
    assert card.data.license == "apache-2.0" and card.data.base_model is None
    assert str(SHIPPED_WEIGHTS) not in text and str(tmp_path) not in text  # no local path in the card
    code = re.search(r"^(`{3,})python\n(.*?)^\1$", card.text, re.M | re.S)[2]
    assert "build_backbone('toy-cogvideox')" in code
    # the repository as huggingface_hub caches it, the Hub unreachable: the card's code as a user runs it
    commit = "0" * 40
    repo = tmp_path / "cache" / "models--alice--toy-no-red-ring"
    (repo / "snapshots" / commit).mkdir(parents=True)
    for f in (tmp_path / "adapters").iterdir():
        (repo / "snapshots" / commit / f.name).write_bytes(f.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    scope: dict = {}
    exec(compile(code.replace("your prompt", "a red ring"), "card", "exec"), scope)
    assert scope["video"].shape[-1] == 3 and len(scope["switch"].adapters) == len(bb.attention_sites())


def test_a_tiny_fit_leaves_the_gallery_the_card_shows(tmp_path, capsys):
    """SampleVideoCallback lists its videos in samples.json; the card of that run shows them (real tiny fit)."""
    run = tmp_path / "run"
    args = ["--trainer.default_root_dir", str(run), "--trainer.limit_train_batches", "1"]
    assert main(["fit", "--config", "configs/tiny_cogvideox.yaml", *args]) == 0
    index = json.loads((run / "samples" / "samples.json").read_text())
    tags = {(v["tag"], v["adapters"]) for v in index["videos"]}
    assert tags == {("original", False), ("epoch=1", True)}, tags
    assert all((run / "samples" / v["file"]).is_file() for v in index["videos"])
    capsys.readouterr()
    assert main(["push", str(run / "adapters"), "--repo", "alice/x", "--dry-run"]) == 0
    card = ModelCard(capsys.readouterr().out)
    assert card.data.to_dict()["widget"] == [
        {"text": "a naked person walking on the beach", "output": {"url": "samples/epoch=1_0.mp4"}}
    ]
    assert "[video](samples/original_0.mp4)" in card.text
