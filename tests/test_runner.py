"""The resumable generation + evaluation runner (unlearn.evaluation) on the tiny random toy backbone with a tiny
random frame classifier: files, numbers, resuming after a kill, half-written videos, and one clear error (and
no result file) per bad input."""

import hashlib
import json

import numpy as np
import pytest
import torch
from conftest import PROMPTS, STEPS, classification_reference, runner

from unlearn.cli import main
from unlearn.evaluation import (
    EmptySuiteError,
    EvaluationRunner,
    RowGenerator,
    RowSpec,
    VideoFileError,
    load_suite,
    parse_rows,
)
from unlearn.evaluation.runner import LEGACY_RESULT_FILES, RESULT_FILES
from unlearn.evaluation.scoring import compare_rows
from unlearn.evaluation.store import VideoStore, video_stem
from unlearn.evaluation.tables import markdown_table, read_metrics
from unlearn.methods.t2vunlearning.export import save_adapters
from unlearn.prompts import PromptFileError, PromptSuite


def no_results(out):
    files = (*RESULT_FILES, *LEGACY_RESULT_FILES)
    return not any((out / name).exists() for name in files) and not (out / "plots").exists()


def vid(out, row, i, ext="mp4"):
    """The runner's file of prompt i: ``videos/<row>_<i>_<label>.<ext>``, the fit callback's names."""
    return out / "videos" / f"{video_stem(row, i, PROMPTS[i]['concept'])}.{ext}"


def stored_videos(out, suite_file, **kw):
    """The run's videos, read back (the store names files by the suite's labels)."""
    return VideoStore(out, labels={it.index: it.label for it in load_suite(suite_file)}, **kw)


# the top-level fields of the ErasureEvaluation callback's metrics.json (unlearn fit) other than its training
# state (epoch, global_step, hyperparameters): `unlearn evaluate` writes the same file names with these fields
FIT_FIELDS = {
    "rows",
    "concept",
    "erased_class",
    "backbone",
    "backbone_source",
    "prompt_suite",
    "prompt_suite_hash",
    "num_prompts",
    "prompts_per_split",
    "seeds",
    "evaluator",
    "seconds_per_row",
    "units",
    "methods",
    "metrics_md_sha256",
}


def test_run_writes_videos_manifests_results_and_paper_tables(tmp_path, suite_file, bb, clf, adapters):
    out = tmp_path / "out"
    res = runner(out, suite_file, bb, clf, ["original", f"t2vunlearning={adapters}"]).run()
    # one folder of videos named like the fit callback's samples: <row>_<prompt index>_<label>.mp4
    assert sorted(p.name for p in (out / "videos").glob("*.mp4")) == sorted(
        f"{m}_{i}_{PROMPTS[i]['concept'].replace(' ', '_')}.mp4"
        for m in ("original", "t2vunlearning")
        for i in range(3)
    )
    for method in ("original", "t2vunlearning"):
        for i in range(3):
            assert vid(out, method, i).stat().st_size > 0
            man = json.loads(vid(out, method, i, "json").read_text())
            assert (man["frames"], man["height"], man["width"]) == (4, 16, 16)
            assert man["prompt"] == PROMPTS[i]["prompt"] and man["seed"] == PROMPTS[i]["seed"]
    # one result pair, the fit callback's file names: metrics.json + metrics.md, nothing else
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["metrics.json", "metrics.md"]
    doc, md = read_metrics(out)  # the pair checks (metrics.json records metrics.md's sha256)
    assert doc == res
    # the callback's schema: its fields, with its types (backbone: the name, ESR/PSR rows at the top of each row)
    assert set(doc) >= FIT_FIELDS and doc["units"] == "percent" and doc["concept"] == "red ring"
    assert set(doc["seconds_per_row"]) == {"original", "t2vunlearning"}
    # provenance: backbone, suite hash (same as the callback's suite_hash), seeds, sampling, evaluator, files
    assert doc["backbone"] == "toy-cogvideox" and len(doc["backbone_info"]["fingerprint"]) == 16
    assert doc["prompt_suite_hash"] == doc["suite"]["sha256"] and doc["seeds"] == [1, 2, 3]
    assert doc["evaluator"] == doc["settings"]["classification"]["esr"]
    assert doc["suite"]["sha256"] == load_suite(suite_file).sha256()
    assert doc["suite"]["seeds"] == [1, 2, 3]
    assert doc["sampling"]["num_inference_steps"] == STEPS
    assert doc["evaluators"]["classifier"]["name"] == "tiny-random"
    assert doc["settings"]["classification"]["esr"]["top_k"] == [1, 5]
    assert len(doc["methods"]["t2vunlearning"]["adapters_sha256"]) == 64
    assert doc["videos"]["original"] == {**doc["videos"]["original"], "generated": 3, "reused": 0}
    # numbers: the runner's rows equal the metrics run on the stored videos
    store = stored_videos(out, suite_file)
    refs = {}
    for method in ("original", "t2vunlearning"):
        stored = {p["prompt"]: torch.from_numpy(store.read(method, i)) for i, p in enumerate(PROMPTS)}
        refs[method] = classification_reference(
            lambda prompts, seeds, stored=stored: torch.stack([stored[p] for p in prompts]),
            load_suite(suite_file),
            clf,
            "red ring",
        )
    compare_rows(refs, "red ring")  # the paired difference against the original row
    for method, ref in refs.items():
        row = doc["rows"][method]  # the callback's row: the ESR/PSR fields themselves
        assert row == ref
        assert row["erased_frames"] == 8 and row["preserved_frames"] == 4
        assert all(0 <= row[k] <= 100 for k in ("esr@1", "esr@5", "psr@1", "psr@5"))
    # the adapters change the videos
    assert not np.array_equal(store.read("original", 0), store.read("t2vunlearning", 0))
    assert set(doc["rows"]) == {"original", "t2vunlearning"} and doc["erased_class"] == "red ring"
    assert set(doc["rows"]["original"]) >= {"esr@1", "esr@5", "psr@1", "psr@5"}
    # metrics.md: the header with the values used, then the callback's ESR/PSR tables of these rows
    assert md.startswith("# Evaluation: red ring on `toy-cogvideox`") and f"num_inference_steps={STEPS}" in md
    assert markdown_table(doc["rows"], doc) in md and "| t2vunlearning |" in md
    assert (out / "plots" / "classification.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # every kept class against the original row: in metrics.json, metrics.md and plots/class_delta.png
    per = doc["rows"]["t2vunlearning"]["vs_reference"]["per_class"]
    assert set(per) == set(doc["rows"]["original"]["per_class_top1"]) - {"red ring"} and per
    assert "### Per-class top-1 against the original row" in md
    assert all(f"| {c} | " in md.split("### Per-class top-1")[1] for c in per)
    from PIL import Image

    with Image.open(out / "plots" / "class_delta.png") as im:
        assert im.format == "PNG" and im.size == (1200, 540)
    assert (out / "plots" / "frames.png").is_file()


def test_video_names_are_the_fit_callbacks():
    """``unlearn evaluate`` and the ErasureEvaluation callback of ``unlearn fit`` name videos the same way."""
    assert video_stem("t2vunlearning", 0, "red ring") == "t2vunlearning_0_red_ring"  # the callback's naming
    assert video_stem("original", 12, "AC/DC: live") == "original_12_AC_DC_live"  # no folder, no odd characters
    assert video_stem("negprompt", 3, None) == video_stem("negprompt", 3, "") == "negprompt_3"  # unlabelled prompt


def test_killed_run_resumes_and_generates_only_what_is_missing(tmp_path, suite_file, bb, clf, monkeypatch):
    out = tmp_path / "out"
    real = RowGenerator.generate
    calls = []

    def dies_on_second_batch(self, method, prompts, seeds):
        calls.append(len(prompts))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the job is killed mid-run
        return real(self, method, prompts, seeds)

    monkeypatch.setattr(RowGenerator, "generate", dies_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        runner(out, suite_file, bb, clf).run()
    done = sorted(p.name for p in (out / "videos").iterdir())
    # the first batch is complete, nothing else
    assert done == sorted(vid(out, "original", i, ext).name for i in (0, 1) for ext in ("json", "mp4"))
    assert no_results(out)
    first = vid(out, "original", 0).stat().st_mtime_ns

    monkeypatch.setattr(RowGenerator, "generate", real)
    res = runner(out, suite_file, bb, clf).run()
    assert res["videos"]["original"]["generated"] == 1 and res["videos"]["original"]["reused"] == 2
    assert vid(out, "original", 0).stat().st_mtime_ns == first
    # a third run generates nothing and gives the same numbers
    again = runner(out, suite_file, bb, clf).run()
    assert again["videos"]["original"]["generated"] == 0
    assert again["rows"] == res["rows"]
    # the resumed run's table is the table of a run that was never interrupted
    whole = runner(tmp_path / "whole", suite_file, bb, clf).run()
    assert res["rows"] == whole["rows"]
    assert markdown_table(res["rows"], res) == markdown_table(whole["rows"], whole)
    assert markdown_table(res["rows"], res) in (out / "metrics.md").read_text()


def test_a_folder_of_the_earlier_layout_resumes_without_regenerating(tmp_path, suite_file, bb, clf):
    """Earlier versions wrote videos/<row>/<index>.mp4 (+ .json) and results.json/md: a rerun moves the videos
    to their names here, reuses them (the manifests' keys still decide) and writes only metrics.json/md."""
    out = tmp_path / "out"
    first = runner(out, suite_file, bb, clf).run()
    old = out / "videos" / "original"
    old.mkdir()
    for i in range(3):
        for ext in ("mp4", "json"):
            vid(out, "original", i, ext).rename(old / f"{i}.{ext}")
    (out / "results.json").write_text("{}")
    (out / "results.md").write_text("old")
    again = runner(out, suite_file, bb, clf).run()
    assert again["videos"]["original"]["generated"] == 0 and again["videos"]["original"]["reused"] == 3
    assert again["rows"] == first["rows"]
    assert not old.exists() and vid(out, "original", 2).is_file()
    assert json.loads(vid(out, "original", 2, "json").read_text())["mp4"] == vid(out, "original", 2).name
    assert not (out / "results.json").exists() and not (out / "results.md").exists()


def test_half_written_videos_are_regenerated_never_evaluated(tmp_path, suite_file, bb, clf):
    out = tmp_path / "out"
    runner(out, suite_file, bb, clf).run()
    vid(out, "original", 0, "json").unlink()  # killed between the mp4 and its manifest
    one = vid(out, "original", 1)
    one.write_bytes(one.read_bytes()[:100])  # truncated after the manifest was written
    (out / "videos" / ".original_2_blue_square.abc123.mp4").write_bytes(
        b"partial"
    )  # a temporary file of a killed write
    with pytest.raises(VideoFileError, match="never finished"):
        stored_videos(out, suite_file).read("original", 0)
    r = runner(out, suite_file, bb, clf)
    r.prepare()
    with pytest.raises(VideoFileError, match="original_0_red_ring.mp4: missing, unfinished"):
        r.evaluate()  # scoring without generating first never reads the unfinished videos
    res = runner(out, suite_file, bb, clf).run()
    assert res["videos"]["original"]["generated"] == 2  # 0 and 1; 2 is complete and kept
    assert stored_videos(out, suite_file).read("original", 1).shape == (4, 16, 16, 3)
    # the store decodes exactly what unlearn.video.read_video decodes (then undoes write_mp4's enlargement)
    from unlearn.video import read_video

    big = read_video(vid(out, "original", 2)).astype(np.float32)
    small = big.reshape(4, 16, big.shape[1] // 16, 16, big.shape[2] // 16, 3).mean((2, 4))
    assert np.array_equal(stored_videos(out, suite_file).read("original", 2), np.rint(small).astype(np.uint8))


def test_changed_adapters_regenerate_only_their_row(tmp_path, suite_file, bb, clf, adapters):
    import shutil

    from unlearn.methods.t2vunlearning.export import load_adapters

    out = tmp_path / "out"
    mine = tmp_path / "adapters"
    shutil.copytree(adapters, mine)
    runner(out, suite_file, bb, clf, ["original", "t2vunlearning"], adapters=str(mine)).run()
    switch, cfg = load_adapters(mine)
    torch.nn.init.normal_(switch.adapters[0].up.weight)
    save_adapters(switch, cfg["backbone"], mine)
    res = runner(out, suite_file, bb, clf, ["original", "t2vunlearning"], adapters=str(mine)).run()
    assert res["videos"]["original"]["generated"] == 0 and res["videos"]["t2vunlearning"]["generated"] == 3


def test_lossless_frames_give_the_in_memory_numbers(tmp_path, suite_file, bb, clf, adapters):
    """With store_frames the runner scores the exact frames: the numbers equal the metrics run on freshly
    generated videos (the ErasureEvaluation callback's way)."""
    out = tmp_path / "out"
    methods = ["original", "negprompt", "safree", f"t2vunlearning={adapters}"]
    res = runner(out, suite_file, bb, clf, methods, store_frames=True).run()
    assert vid(out, "safree", 0, "npz").is_file()
    specs = parse_rows(methods)
    gen = RowGenerator(bb, specs, concept="red ring", sampling={"num_inference_steps": STEPS})
    refs = {
        spec.name: classification_reference(
            lambda p, s, name=spec.name: gen.generate(name, p, s), load_suite(suite_file), clf, "red ring", batch_size=2
        )
        for spec in specs
    }
    compare_rows(refs, "red ring")
    for name, ref in refs.items():
        assert res["rows"][name] == ref
    assert set(json.loads((out / "metrics.json").read_text())["rows"]) == {
        "original",
        "negprompt",
        "safree",
        "t2vunlearning",
    }


class FakeNudeNet:
    """Stands in for NudeNet: 'exposed' where the frame's red channel is brighter than its mean."""

    def detect(self, frame):
        f = np.asarray(frame).astype(float)
        out = [{"class": "FACE_FEMALE", "score": 0.9, "box": [0, 0, 1, 1]}]
        if f[..., 0].mean() > f.mean():
            out.append({"class": "FEMALE_BREAST_EXPOSED", "score": 0.8, "box": [0, 0, 2, 2]})
        if f[..., 2].mean() > f.mean():
            out.append({"class": "BUTTOCKS_EXPOSED", "score": 0.7, "box": [0, 0, 2, 2]})
        return out


class MeanColourFaces:
    """A face embedder stand-in: the unit mean colour of the frame; no face in dark frames."""

    def embed(self, frame):
        v = np.asarray(frame, dtype=np.float32).reshape(-1, 3).mean(0)
        return None if v.sum() < 3 else v / np.linalg.norm(v)


def test_nudity_identity_and_benign_metrics(tmp_path, suite_file, bb):
    from unlearn.evaluation.evaluators import OpenCLIPModel
    from unlearn.evaluation.metrics import CLIPScore

    torch.manual_seed(0)
    tiny_clip = OpenCLIPModel(
        "ViT-B-32",
        pretrained=None,
        model_kwargs=dict(
            embed_dim=16,
            vision_cfg=dict(image_size=32, layers=1, width=32, patch_size=8, head_width=16),
            text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1),
        ),
    )
    out = tmp_path / "out"
    refs = {"red ring": np.array([1.0, 0.2, 0.2]), "blue square": np.array([0.2, 0.2, 1.0])}
    res = EvaluationRunner(
        out,
        suite_file,
        ["original", "negprompt"],
        backbone=bb,
        concept="red ring",
        num_inference_steps=STEPS,
        metrics=["nudity", "identity", "clip", "consistency"],
        detector=FakeNudeNet(),
        nudity_threshold=0.6,
        embedder=MeanColourFaces(),
        reference_embeddings=refs,
        consistency_extractor=lambda f: f.flatten(1),
        clip=tiny_clip,
        device="cpu",
    ).run()
    store = stored_videos(out, suite_file)
    frames = [store.read("original", i) for i in range(3)]
    det = FakeNudeNet()
    breast = sum(any(d["class"] == "FEMALE_BREAST_EXPOSED" for d in det.detect(f)) for v in frames for f in v)
    nude = sum(len(det.detect(f)) > 1 for v in frames for f in v)
    row = res["rows"]["original"]
    assert row["nudity"]["label_frames"]["FEMALE_BREAST_EXPOSED"] == breast
    assert row["nudity"]["nudity_rate"] == pytest.approx(100 * nude / 12)
    assert row["nudity"]["frames"] == 12 and row["nudity"]["videos"] == 3
    assert (
        res["settings"]["nudity"]["threshold"] == 0.6 and "FEMALE_BREAST_EXPOSED" in res["settings"]["nudity"]["labels"]
    )
    ident = row["identity"]
    assert ident["erased_identity"] == "red ring" and set(ident["id_per_identity"]) == {"red ring", "blue square"}
    assert ident["id_erased"] == ident["id_per_identity"]["red ring"]
    assert ident["id_preserved"] == ident["id_per_identity"]["blue square"]
    assert 0 < row["consistency"]["subject_consistency"] <= 1 and row["consistency"]["pairs"] == 9
    clip = CLIPScore(clip=tiny_clip)
    for i, v in enumerate(frames):
        clip.update(v, [PROMPTS[i]["prompt"]])
    assert row["clip"]["clip_score"] == pytest.approx(clip.compute()["clip_score"].item(), rel=1e-5)
    md = (out / "metrics.md").read_text()
    assert "## Nudity rate (%) (Table 1)" in md and "| FEMALE_BREAST_EXPOSED |" in md
    assert (
        "| erased identity | method | ID sim. erased ↓ |" in md
        and "| method | CLIPScore ↑ | Subject consistency ↑ |" in md
    )
    assert (out / "plots" / "nudity_labels.png").is_file()


def test_real_nudenet_is_pinned_and_recorded(tmp_path, bb):
    out = tmp_path / "out"
    res = EvaluationRunner(
        out,
        ["a person on a beach"],
        ["original"],
        backbone=bb,
        num_inference_steps=STEPS,
        metrics=["nudity"],
        device="cpu",
        plots=False,
    ).run()
    det = res["evaluators"]["detector"]
    assert det["version"] == "3.4.2" and "c15d8273" in json.dumps(det)
    assert res["settings"]["nudity"]["threshold"] == 0.0 and res["settings"]["nudity"]["protocol"] == "paper"
    assert res["rows"]["original"]["nudity"]["frames"] == 4


def test_refusal_vector_row_edits_then_restores_the_weights(tmp_path, suite_file, bb, clf):
    from unlearn.methods.refusal import RefusalEdit

    layer = next(n for n, m in bb.denoiser.named_modules() if isinstance(m, torch.nn.Linear) and "to_v" in n)
    d_out = bb.denoiser.get_submodule(layer).weight.shape[0]
    u = torch.linalg.qr(torch.randn(d_out, 2, dtype=torch.float64))[0]
    folder = tmp_path / "refusal"
    folder.mkdir()
    RefusalEdit(bases={layer: u}, backbone=bb.name).save_delta(folder / "refusal_delta.safetensors")
    before = {k: v.clone() for k, v in bb.denoiser.state_dict().items()}
    out = tmp_path / "out"
    res = runner(
        out, suite_file, bb, clf, ["original", f"refusal_vector={folder}", "original2:original"], store_frames=True
    ).run()
    assert all(torch.equal(before[k], v) for k, v in bb.denoiser.state_dict().items())
    store = stored_videos(out, suite_file, store_frames=True)
    assert not np.array_equal(store.read("original", 0), store.read("refusal_vector", 0))
    assert np.array_equal(store.read("original", 0), store.read("original2", 0))  # restored bit-exactly
    assert len(res["methods"]["refusal_vector"]["refusal_delta_sha256"]) == 64


def test_method_specs_parse_and_fail_early(tmp_path):
    specs = parse_rows(["original", "t2vunlearning=/a", "mine:negprompt", "u2:unlearned"], adapters="/b")
    assert [(s.name, s.kind) for s in specs] == [
        ("original", "original"),
        ("t2vunlearning", "t2vunlearning"),
        ("mine", "negprompt"),
        ("u2", "t2vunlearning"),
    ]
    assert (specs[1].adapters, specs[3].adapters) == ("/a", "/b")
    with pytest.raises(ValueError, match="appear twice"):
        parse_rows(["original", "original"])
    with pytest.raises(ValueError, match="unknown method"):
        parse_rows(["dreambooth"])
    with pytest.raises(ValueError, match="needs an adapters folder"):
        RowSpec.parse("t2vunlearning").check("x")
    with pytest.raises(FileNotFoundError, match="not an adapter folder"):
        RowSpec.parse(f"t2vunlearning={tmp_path}").check("x")
    with pytest.raises(ValueError, match="needs the concept"):
        RowSpec.parse("negprompt").check(None)
    with pytest.raises(ValueError, match=r"only t2vunlearning\(_official\), refusal_vector, uce and esd_x take a path"):
        RowSpec.parse("original=/x")


# ------------------------------------------------------------------------------------------------ bad input
def _bad_prompt_file(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"prompt": "a red ring"}\n{"prompt": "a blue\n')
    return str(p), {}


def _empty_suite(tmp_path):
    return str(PromptSuite(PROMPTS).save(tmp_path / "s.jsonl")), {"suite_options": {"labels": ["white dot"]}}


def _missing_weights(tmp_path):
    return str(PromptSuite(PROMPTS).save(tmp_path / "s.jsonl")), {
        "classifier": str("resnet50:" + str(tmp_path / "nope.pth"))
    }


@pytest.mark.parametrize(
    "make, error, match",
    [
        (_bad_prompt_file, PromptFileError, r"bad\.jsonl, line 2"),
        (_empty_suite, EmptySuiteError, "is empty after filtering"),
        (_missing_weights, FileNotFoundError, "nope.pth"),
    ],
)
def test_bad_input_one_clear_error_and_no_result_file(tmp_path, bb, clf, make, error, match):
    suite, kw = make(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(error, match=match):
        runner(out, suite, bb, clf, **kw).run()
    assert no_results(out) and not (out / "videos").exists()


def test_zero_frame_video_from_the_generator_is_an_error(tmp_path, suite_file, bb, clf, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(
        RowGenerator, "generate", lambda self, m, p, s: torch.zeros(len(p), 0, 16, 16, 3, dtype=torch.uint8)
    )
    with pytest.raises(VideoFileError, match="zero frames"):
        runner(out, suite_file, bb, clf).run()
    assert no_results(out)


def test_zero_frame_video_on_disk_is_an_error_and_earlier_results_are_gone(tmp_path, suite_file, bb, clf):
    out = tmp_path / "out"
    runner(out, suite_file, bb, clf).run()
    assert (out / "metrics.json").is_file()
    man = json.loads(vid(out, "original", 1, "json").read_text())
    vid(out, "original", 1).write_bytes(b"")  # a zero-frame (empty) video whose manifest was rewritten to match
    man.update(mp4_bytes=0, mp4_sha256=hashlib.sha256(b"").hexdigest())
    vid(out, "original", 1, "json").write_text(json.dumps(man))
    with pytest.raises(VideoFileError, match="original_1_red_ring.mp4"):
        runner(out, suite_file, bb, clf).run()
    assert no_results(out)


def test_cli_exit_codes(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("text\nhello\n")
    assert (
        main(
            [
                "evaluate",
                "--out",
                str(tmp_path / "o"),
                "--suite",
                str(bad),
                "--backbone",
                "toy-cogvideox",
                "--tiny",
                "--methods",
                "original",
            ]
        )
        == 2
    )
    assert "no 'prompt' column" in capsys.readouterr().err.replace('"', "'")
    assert not (tmp_path / "o").exists()


def test_suites_toyworld_hash_and_filters():
    s = load_suite("toyworld", per_class=1, seed=7)
    # the hash the committed toy tables were made with (prompts, classes and seeds unchanged)
    assert s.sha256() == "52e01af330e74c0cb8a08bfc0b5662e455a1a591b3e93ab614c2b0a59f534c6f" and len(s) == 25
    golf = load_suite("builtin:imagenet10", labels=["golf ball", "church"], per_label=2)
    assert sorted(it.label for it in golf) == ["church", "church", "golf ball", "golf ball"]
    assert [it.index for it in golf] == [0, 1, 2, 3]
    assert load_suite(["a", "b"], seed=10).items[1].seed == 11


def test_the_hub_card_reads_the_runners_metrics_json_like_the_callbacks(tmp_path, suite_file, bb, clf, adapters):
    """`unlearn push --metrics DIR/metrics.json` after `unlearn evaluate`: model-index from the adapters' row with
    its intervals (as for fit's eval/metrics.json) and the runner's page in the card."""
    from unlearn.hub import _evaluation_section, eval_results

    out = tmp_path / "eval"
    res = runner(out, suite_file, bb, clf, ["original", f"t2vunlearning={adapters}"]).run()
    found = {r.metric_type: r for r in eval_results(json.loads((out / "metrics.json").read_text()))}
    row = res["rows"]["t2vunlearning"]
    assert {"esr@1", "esr@5", "psr@1", "psr@5"} <= set(found)
    assert found["esr@1"].metric_value == round(row["esr@1"], 4)
    assert found["esr@1"].metric_args["ci95_low"] == row["intervals"]["esr@1"]["low"]
    assert found["esr@1"].dataset_revision == res["prompt_suite_hash"]
    section = _evaluation_section(res, str(out / "metrics.json"))
    assert "### Erasure of red ring (ESR/PSR, %)" in section and "| t2vunlearning |" in section
