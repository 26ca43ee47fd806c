"""Progress with an ETA wherever work takes minutes at full size: the pseudo-data build (per trajectory, and the
sampler's steps inside), sample videos, the evaluation (per video), the refusal vector's activation capture."""

import re

import lightning.pytorch as pl
import torch

from unlearn.backbones import SamplingSettings, build_backbone
from unlearn.callbacks import SampleVideoCallback
from unlearn.evaluation import EvaluationRunner, RowGenerator, RowSpec
from unlearn.evaluation.evaluators import ModuleClassifier
from unlearn.evaluation.runner import score_in_memory
from unlearn.evaluation.scoring import Evaluators, MetricConfig, RowMetrics
from unlearn.methods.refusal.edit import RefusalVectorConfig, collect_token_activations, resolve_layers
from unlearn.methods.t2vunlearning import ConceptDataModule, T2VUnlearning
from unlearn.methods.t2vunlearning.pseudo_data import PseudoDataSettings, PseudoTrajectoryCache, TrajectoryRequest
from unlearn.prompts import PromptSuite
from unlearn.toyworld.classifier import ShapeColourClassifier

#: tqdm's "done/total [elapsed<remaining" (the ETA)
ETA = r"{done}/{total} \[\d\d:\d\d<\d\d:\d\d"


def finished_bar(err: str, desc: str, total: int, unit: str) -> bool:
    pattern = re.escape(desc) + r"[^\n\r]*100%[^\n\r]*" + ETA.format(done=total, total=total) + r"[^\n\r]*" + unit
    return re.search(pattern, err) is not None


def test_pseudo_data_build_counts_trajectories_with_eta_and_shows_the_sampler(tmp_path, capsys):
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    requests = [
        TrajectoryRequest("unlearn", f"a naked person {w}", i, f"a naked person {w}")
        for i, w in enumerate(["walking", "standing", "running"])
    ]
    settings = PseudoDataSettings(
        SamplingSettings(num_frames=9, height=32, width=32, num_inference_steps=3, guidance_scale=6.0)
    )
    PseudoTrajectoryCache(tmp_path).build(bb, requests, settings, 7.0, batch_size=2, progress=True)
    err = capsys.readouterr().err
    assert finished_bar(err, "pseudo data (cogvideox-2b, rank 0)", 3, "traj"), err[-2000:]
    assert "sampling cogvideox-2b" in err  # the steps inside each batch of trajectories


def test_sample_videos_show_the_sampler_progress(tmp_path, capsys):
    model = T2VUnlearning(backbone="cogvideox-2b", tiny=True, torch_dtype="float32", adapter_dim=4, alpha=0.0)
    data = ConceptDataModule(
        concept="nudity",
        prompts=["a naked person"],
        concept_synonyms=["naked"],
        num_frames=9,
        height=32,
        width=32,
        num_inference_steps=2,
        cache_dir=str(tmp_path / "cache"),
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=str(tmp_path),
        callbacks=[SampleVideoCallback(["a naked person on a beach"], num_inference_steps=3)],
    )
    capsys.readouterr()
    trainer.fit(model, datamodule=data)
    err = capsys.readouterr().err
    # once for the original model at the start, once after the epoch
    assert finished_bar(err, "sample videos original (1 prompts)", 3, "step"), err[-2000:]
    assert finished_bar(err, "sample videos epoch=0 (1 prompts)", 3, "step"), err[-2000:]


def test_evaluation_counts_videos_with_eta(tmp_path, capsys):
    bb = build_backbone("toy-cogvideox", tiny=True, seed=0)
    classes = ["red ring", "blue square"]
    torch.manual_seed(0)
    clf = ModuleClassifier(ShapeColourClassifier(classes, width_mult=4), classes, name="tiny-random", version="t")
    prompts = [{"prompt": f"a {c} moves left", "concept": c, "seed": i} for i, c in enumerate(classes * 2)]
    suite_file = str(PromptSuite(prompts).save(tmp_path / "suite.jsonl"))
    runner = EvaluationRunner(
        tmp_path / "out",
        suite_file,
        ["original", "negprompt"],
        backbone=bb,
        concept="red ring",
        metrics=["classification"],
        classifier=clf,
        num_inference_steps=2,
        batch_size=3,
        eval_batch_size=3,
        device="cpu",
        progress=True,
        plots=False,
    )
    runner.run()
    err = capsys.readouterr().err
    for row in ("original", "negprompt"):
        assert finished_bar(err, f"generate {row}", 4, "video"), err[-2000:]
        assert finished_bar(err, f"evaluate {row}", 4, "video"), err[-2000:]

    # the in-memory path of the evaluation callback: one bar over every video of every row
    suite = runner.suite
    evaluators = Evaluators(
        MetricConfig(metrics=["classification"], classifier=clf, erased_classes=["red ring"]), suite.labels, "red ring"
    )
    generator = RowGenerator(
        bb, [RowSpec(kind="original", concept="red ring")], concept="red ring", sampling={"num_inference_steps": 2}
    )
    score_in_memory(generator, suite, {"original": RowMetrics(evaluators)}, batch_size=3, progress=True)
    assert finished_bar(capsys.readouterr().err, "evaluation videos", 4, "video")


def test_refusal_activation_capture_counts_prompts_with_eta(capsys):
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    layers = resolve_layers(bb)
    prompts = ["a naked person", "a clothed person", "a nude woman", "a dressed woman", "a naked man"]
    acts = collect_token_activations(bb, prompts, layers, RefusalVectorConfig(batch_size=2), progress=True)
    assert all(a.shape[0] == 5 for a in acts.values())
    err = capsys.readouterr().err
    assert finished_bar(err, f"refusal activations ({len(layers)} layers)", 5, "prompt"), err[-2000:]
