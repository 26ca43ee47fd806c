"""The evaluation inside Lightning's test loop (unlearn.evaluation.EvaluationModule + VideoEvalDataModule) on the
tiny random CogVideoX with a tiny random frame classifier, through a real ``pl.Trainer(...).test`` and through
``unlearn test --config``."""

import json
import types
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import yaml
from conftest import classification_reference

from unlearn.evaluation import EvaluationModule, VideoEvalDataModule
from unlearn.evaluation.evaluators import ModuleClassifier
from unlearn.evaluation.scoring import compare_rows
from unlearn.methods.t2vunlearning.adapters import AdapterSwitch
from unlearn.methods.t2vunlearning.export import save_adapters
from unlearn.prompts import PromptSuite
from unlearn.toyworld.classifier import ShapeColourClassifier

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ["golf ball", "church", "parachute"]
PROMPTS = [
    {"prompt": "a golf ball rolls across the green", "concept": "golf ball", "seed": 5},
    {"prompt": "a golf ball drops into the cup", "concept": "golf ball", "seed": 6},
    {"prompt": "a stone church under snow", "concept": "church", "seed": 7},
    {"prompt": "a parachute opens over the sea", "concept": "parachute", "seed": 8},
]


@pytest.fixture(scope="module")
def clf():
    torch.manual_seed(0)
    net = ShapeColourClassifier(CLASSES, width_mult=4)
    return ModuleClassifier(net, CLASSES, name="tiny-random")


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    from unlearn.backbones import build_backbone

    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    torch.manual_seed(1)
    sites = bb.attention_sites()
    switch = AdapterSwitch([s.video_dim for s in sites], 8, [s.name for s in sites])
    for a in switch.adapters:
        torch.nn.init.normal_(a.up.weight, std=0.5)
    return str(save_adapters(switch, bb.name, tmp_path_factory.mktemp("ad") / "adapters"))


def trainer(tmp_path, **kw):
    args = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    args.update(kw)
    return pl.Trainer(**args)


def test_trainer_test_logs_the_runner_numbers(tmp_path, clf, adapters):
    suite = str(PromptSuite(PROMPTS).save(tmp_path / "suite.jsonl"))
    dm = VideoEvalDataModule(suite=suite, batch_size=3)
    module = EvaluationModule(
        backbone="cogvideox-2b",
        tiny=True,
        torch_dtype="float32",
        rows=["original", "negprompt", "t2vunlearning"],
        adapters=adapters,
        concept="golf ball",
        classifier=clf,
        num_inference_steps=2,
        output_dir=str(tmp_path / "eval"),
        save_videos=True,
    )
    trainer(tmp_path).test(module, datamodule=dm)
    logged = module.trainer.callback_metrics
    dm.setup()
    # the same videos (same batches of 3), scored by the metrics directly
    refs = {
        row: classification_reference(
            lambda p, s, row=row: module.generator.generate(row, p, s), dm.suite, clf, "golf ball", batch_size=3
        )
        for row in ("original", "negprompt", "t2vunlearning")
    }
    compare_rows(refs, "golf ball")
    for row, ref in refs.items():
        assert module.results["rows"][row]["classification"]["golf ball"] == ref
        for k in ("esr@1", "esr@5", "psr@1", "psr@5"):
            assert logged[f"{row}/{k}"].item() == pytest.approx(ref[k]), (row, k)
        assert ref["erased_frames"] == 2 * 9
    assert set(logged) >= {"original/esr@1", "t2vunlearning/psr@5"}
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert set(metrics["rows"]) == {"original", "negprompt", "t2vunlearning"}
    assert metrics["prompt_suite_hash"] == dm.suite.sha256() and metrics["seeds"] == [5, 6, 7, 8]
    assert metrics["rows"]["original"]["esr@1"] == pytest.approx(logged["original/esr@1"].item())
    assert metrics["settings"]["classification"]["esr"]["evaluator"]["name"] == "tiny-random"
    assert sorted(p.name for p in (tmp_path / "eval").glob("*.*")) == ["metrics.json", "metrics.md"]  # one pair
    assert len(list((tmp_path / "eval" / "videos").glob("t2vunlearning_*_*.mp4"))) == 4
    # the metric states were reset: a second test epoch gives the same numbers, not doubled counts
    trainer(tmp_path).test(module, datamodule=dm)
    assert module.results["rows"]["original"]["classification"]["golf ball"]["erased_frames"] == 18


def test_datamodule_shards_the_suite_without_duplicates():
    dm = VideoEvalDataModule(suite="toyworld", per_class=1, batch_size=4)
    seen = []
    for rank in range(3):
        dm.trainer = types.SimpleNamespace(world_size=3, global_rank=rank)
        seen += [int(i) for batch in dm.test_dataloader() for i in batch["index"]]
    assert sorted(seen) == list(range(25))  # every prompt once: no padding duplicates to skew the metrics
    dm.trainer = None
    batch = next(iter(dm.test_dataloader()))
    assert set(batch) == {"index", "prompt", "seed", "label", "split"} and batch["label"][0] == "red ring"


def test_unlearn_test_print_config(capsys):
    from unlearn.cli import main

    with pytest.raises(SystemExit) as e:
        main(["test", "--config", str(ROOT / "configs/eval_tiny_cogvideox.yaml"), "--print_config"])
    assert e.value.code in (0, None)
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["model"]["class_path"] == "unlearn.evaluation.EvaluationModule"
    assert cfg["model"]["init_args"]["classifier"]["class_path"] == "unlearn.evaluation.evaluators.ModuleClassifier"
    assert cfg["data"]["class_path"] == "unlearn.evaluation.VideoEvalDataModule"


def test_unlearn_test_runs_the_tiny_config(tmp_path):
    from unlearn.cli import main

    out = tmp_path / "eval"
    assert (
        main(
            [
                "test",
                "--config",
                str(ROOT / "configs/eval_tiny_cogvideox.yaml"),
                "--trainer.default_root_dir",
                str(tmp_path),
                "--model.output_dir",
                str(out),
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["rows"]) == {"original", "negprompt", "safree"}
    assert metrics["erased_class"] == "golf ball" and metrics["num_prompts"] == 3
    assert not list(tmp_path.rglob("metrics.csv"))  # the config logs to no logger
    assert all(0 <= metrics["rows"][r][k] <= 100 for r in metrics["rows"] for k in ("esr@1", "psr@1"))


@pytest.mark.slow
def test_two_ranks_give_the_single_process_numbers(tmp_path, clf):
    """DDP on two CPU processes (gloo): each prompt generated once, metrics synced across ranks."""
    suite = str(PromptSuite(PROMPTS).save(tmp_path / "suite.jsonl"))
    kw = dict(
        backbone="cogvideox-2b",
        tiny=True,
        torch_dtype="float32",
        rows=["original"],
        concept="golf ball",
        classifier=clf,
        num_inference_steps=2,
    )
    single = EvaluationModule(**kw, output_dir=str(tmp_path / "one"))
    trainer(tmp_path).test(single, datamodule=VideoEvalDataModule(suite=suite, batch_size=1))
    ddp = EvaluationModule(**kw, output_dir=str(tmp_path / "two"))
    trainer(tmp_path, devices=2, strategy="ddp_spawn").test(
        ddp, datamodule=VideoEvalDataModule(suite=suite, batch_size=1)
    )
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())["rows"]["original"]
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())["rows"]["original"]
    assert two == one and two["erased_frames"] == 18 and two["preserved_frames"] == 18


def test_eval_toy_config_runs_on_the_random_toy_model(tmp_path, monkeypatch):
    """configs/eval_toy.yaml as shipped, with the toy world's weights and classifier swapped for random ones
    (they are still being trained) and fewer prompts/steps."""
    import unlearn.evaluation.evaluators.registry as registry
    from unlearn.cli import main
    from unlearn.toyworld.render import class_names

    torch.manual_seed(0)
    net = ShapeColourClassifier(class_names(), width_mult=4)
    monkeypatch.setattr(
        registry, "toyworld_classifier", lambda *a, **k: ModuleClassifier(net, net.classes, name="random-toy")
    )
    assert (
        main(
            [
                "test",
                "--config",
                str(ROOT / "configs/eval_toy.yaml"),
                "--model.tiny",
                "true",
                "--model.rows",
                "[original, negprompt, safree]",
                "--model.num_inference_steps",
                "2",
                "--data.per_class",
                "1",
                "--data.concept",
                "red ring",
                "--data.per_group",
                "{}",  # one prompt per class
                "--data.out_of_grammar",
                '{"erased": 2}',  # + 2 out-of-grammar prompts
                "--trainer.accelerator",
                "cpu",
                "--trainer.enable_progress_bar",
                "false",
                "--trainer.default_root_dir",
                str(tmp_path),
                "--model.output_dir",
                str(tmp_path / "eval"),
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert set(metrics["rows"]) == {"original", "negprompt", "safree"}
    assert metrics["erased_class"] == "red ring" and metrics["num_prompts"] == 27
    assert metrics["prompts_per_split"] == {"in_grammar": 25, "out_of_grammar": 2}
    assert metrics["rows"]["safree"]["erased_frames"] == 4 and metrics["rows"]["safree"]["preserved_frames"] == 96
    assert metrics["rows"]["safree"]["splits"]["out_of_grammar"]["erased_frames"] == 8
    assert metrics["rows"]["safree"]["vs_reference"]["psr@1"]["n"] == 24
    assert "### Out-of-grammar prompts" in (tmp_path / "eval" / "metrics.md").read_text()
    assert "scarlet donut" in metrics["methods"]["safree"]["keywords"]


def test_unlearn_test_logs_every_number_with_its_interval(tmp_path):
    """An eval config with a logger (the real configs' WandbLogger; here a CSVLogger): the numbers and intervals."""
    import csv

    from unlearn.cli import main

    out = tmp_path / "eval"
    args = ["--trainer.default_root_dir", str(tmp_path), "--model.output_dir", str(out)]
    logger = ["--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", str(tmp_path)]
    assert main(["test", "--config", str(ROOT / "configs/eval_tiny_cogvideox.yaml"), *args, *logger]) == 0
    results = json.loads((out / "metrics.json").read_text())
    with open(next(tmp_path.rglob("metrics.csv"))) as f:
        logged = {k: float(v) for r in csv.DictReader(f) for k, v in r.items() if v and k.startswith("eval/")}
    assert results["erased_class"] == "golf ball"
    row = results["rows"]["negprompt"]  # one erased class: its ESR/PSR fields in the row itself
    key = "eval/negprompt/classification/golf ball/esr@1"
    assert logged[key] == pytest.approx(row["esr@1"])
    assert logged[key + "/low"] == pytest.approx(row["intervals"]["esr@1"]["low"])
    assert logged[key + "/high"] == pytest.approx(row["intervals"]["esr@1"]["high"])
