import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    # pseudo-data cache and wandb runs never leak between tests or into the user's home
    monkeypatch.setenv("T2V_UNLEARN_CACHE", str(tmp_path / "pseudo_cache"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))


def classification_reference(generate, items, classifier, erased_class, batch_size=32):
    """ESR/PSR of the videos ``generate(prompts, seeds)`` makes for ``items`` (``EvalVideo`` items), scored by the
    torchmetrics metrics directly, batch by batch: the reference the drivers' numbers are checked against."""
    from unlearn.evaluation.metrics import ErasureSuccessRate, PreservationSuccessRate
    from unlearn.evaluation.scoring import classification_summary

    esr = ErasureSuccessRate(erased_class, classifier=classifier, top_k=(1, 5))
    psr = PreservationSuccessRate(erased_class=erased_class, classifier=classifier, top_k=(1, 5))
    items = list(items)
    for i in range(0, len(items), batch_size):
        chunk = items[i : i + batch_size]
        videos = generate([it.prompt for it in chunk], [it.seed for it in chunk])
        esr.update(videos, [it.label for it in chunk])
        psr.update(videos, [it.label for it in chunk])
    return classification_summary(esr, psr)


# ---------------------------------------------------------------------------------------------------------------------
# the evaluation runner's test setting (test_runner, test_eval_shards, test_eval_logging): the tiny random toy
# backbone, a tiny random frame classifier over three classes, random adapters, a three-prompt suite file
CLASSES = ["red ring", "blue square", "green cross"]
PROMPTS = [
    {"prompt": "a red ring moves left", "concept": "red ring", "seed": 1},
    {"prompt": "a red ring drifts down", "concept": "red ring", "seed": 2},
    {"prompt": "a blue square moves up", "concept": "blue square", "seed": 3},
]
STEPS = 2


@pytest.fixture(scope="module")
def bb():
    from unlearn.backbones import build_backbone

    return build_backbone("toy-cogvideox", tiny=True, seed=0)


@pytest.fixture(scope="module")
def clf():
    from unlearn.evaluation.evaluators import ModuleClassifier
    from unlearn.toyworld.classifier import ShapeColourClassifier

    torch.manual_seed(0)
    net = ShapeColourClassifier(CLASSES, width_mult=4)
    return ModuleClassifier(net, CLASSES, name="tiny-random", version="test")


@pytest.fixture(scope="module")
def adapters(bb, tmp_path_factory):
    from unlearn.methods.t2vunlearning import AdapterSwitch, save_adapters

    torch.manual_seed(1)
    sites = bb.attention_sites()
    switch = AdapterSwitch([s.video_dim for s in sites], 8, [s.name for s in sites])
    for a in switch.adapters:
        torch.nn.init.normal_(a.up.weight, std=0.5)
    return str(save_adapters(switch, bb.name, tmp_path_factory.mktemp("ad") / "adapters"))


@pytest.fixture
def suite_file(tmp_path):
    from unlearn.prompts import PromptSuite

    return str(PromptSuite(PROMPTS).save(tmp_path / "suite.jsonl"))


def runner(out, suite, bb, clf, methods=("original",), **kw):
    """An :class:`~unlearn.evaluation.EvaluationRunner` of ``methods`` over ``suite`` with the fixtures' model and
    classifier (the runner tests' setting)."""
    from unlearn.evaluation import EvaluationRunner

    args = dict(
        backbone=bb,
        concept="red ring",
        metrics=["classification"],
        classifier=clf,
        num_inference_steps=STEPS,
        batch_size=2,
        device="cpu",
    )
    args.update(kw)
    return EvaluationRunner(out, suite, list(methods), **args)
