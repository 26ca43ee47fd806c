"""The method works in the toy world (not just runs): the concept map finds the object, and a short
unlearning run lowers the erased class's accuracy while the other classes stay."""

import json
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest

WEIGHTS = Path(__file__).resolve().parent.parent / "unlearn" / "toyworld" / "weights" / "world.json"
pytestmark = pytest.mark.skipif(not WEIGHTS.exists(), reason="toy world weights not built (unlearn toyworld pretrain)")


def test_first_layer_concept_map_covers_the_object(tmp_path):
    # the measurement is benchmarks/toy_mask_quality.py's, run as a program, so the test and the benchmark cannot
    # drift apart
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "toy_mask_quality.py"
    cmd = [sys.executable, str(script), "--concept", "red ring", "--prompts", "8", "--timesteps", "300"]
    subprocess.run([*cmd, "--seed", "3", "--json", str(tmp_path / "r.json")], check=True, capture_output=True)
    ratios = json.loads((tmp_path / "r.json").read_text())["median_obj_bg_ratio_per_layer"]["300"]
    assert len(ratios) == 4 and all(r > 0 for r in ratios)
    # object tokens attend to the concept words more than background tokens do in layer 0 (measured median
    # ≈ 1.6); the last layer of this small model does not localise (ratio ≈ 0.7), see research/log.md
    assert ratios[0] > 1.2 > ratios[3], ratios


def test_short_unlearning_erases_red_ring_and_keeps_other_classes(tmp_path):
    from conftest import classification_reference

    from unlearn.evaluation import EvalVideo
    from unlearn.evaluation.evaluators import toyworld_classifier
    from unlearn.methods.t2vunlearning import T2VUnlearning, ToyWorldDataModule
    from unlearn.toyworld.grammar import prompts_for_concept

    pl.seed_everything(0)
    # α = 0.25 in the paper's L_loc units is the α = 1 of the earlier per-entry mean in the toy world (about 4x:
    # masked-out adapter entries / prediction elements); this short run needs the weaker localization
    model = T2VUnlearning(
        backbone="toy-cogvideox",
        torch_dtype="float32",
        adapter_dim=32,
        eta=3.0,
        alpha=0.25,
        beta=5.0,
        learning_rate=2e-3,
    )
    dm = ToyWorldDataModule(
        concept="red ring",
        num_prompts=16,
        preserve_prompts_per_class=1,
        record_steps=[2, 8, 14, 20, 26],
        cache_dir=str(tmp_path / "cache"),
        batch_size=8,
    )
    # 100 steps of 8 samples (10 shuffled passes over the 80 cached ones): at 50 steps ESR-1 on these 16 frames sat
    # on the bound (75.0) and ranged from 25 to 87.5 over sampling orders and grammar seeds; at 100 steps it was
    # 93.75-100 (PSR-1 87.5-95) over seeds 0-2 (research/notes/13.md)
    pl.Trainer(
        accelerator="cpu",
        max_steps=100,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    ).fit(model, dm)
    suite = []
    for k, cls in enumerate(
        ["red ring", "red ring", "green ring", "red square", "blue cross", "yellow bar", "white dot"]
    ):
        for j, r in enumerate(prompts_for_concept(cls, 2, split="heldout", seed=100 + k)):
            suite.append(EvalVideo(len(suite), r.text, 1000 * k + j, cls))
    clf = toyworld_classifier()
    before = classification_reference(
        lambda p, s: model.generate(p, s, adapters=False, num_inference_steps=20),
        suite,
        clf,
        "red ring",
        batch_size=len(suite),
    )
    after = classification_reference(
        lambda p, s: model.generate(p, s, adapters=True, num_inference_steps=20),
        suite,
        clf,
        "red ring",
        batch_size=len(suite),
    )
    assert before["esr@1"] <= 25, before  # the original model draws red rings
    assert after["esr@1"] >= 75, after  # the unlearned one does not
    assert after["psr@1"] >= before["psr@1"] - 15, (before, after)  # the other classes stay


def test_one_word_concept_never_preserves_a_class_that_contains_it():
    from unlearn.toyworld.grammar import neighbour_classes

    # a class concept keeps its 8 neighbours (same shape or same colour), whatever synonyms name it
    assert (
        neighbour_classes("crimson hoop")
        == neighbour_classes("red ring")
        == ["red square", "red cross", "red bar", "red dot", "green ring", "blue ring", "yellow ring", "white ring"]
    )
    # "ring" covers every ring: L_pre must not hold any of them in place
    rings = neighbour_classes("hoop")
    assert len(rings) == 20 and not any(c.endswith(" ring") for c in rings)
    reds = neighbour_classes("scarlet")
    assert len(reds) == 20 and not any(c.startswith("red ") for c in reds)


def test_concept_prompt_style_is_the_name_alone_for_class_and_shape_concepts():
    from unlearn.methods.t2vunlearning import ToyWorldDataModule

    shape = ToyWorldDataModule(concept="hoop", num_prompts=3, prompt_style="concept")._training_prompts()
    assert [p.prompt for p in shape] == ["a ring"] * 3
    assert [p.concept_words for p in shape] == [["ring"]] * 3 and len({p.seed for p in shape}) == 3
    cls = ToyWorldDataModule(concept="crimson hoop", num_prompts=2, prompt_style="concept")._training_prompts()
    assert [(p.prompt, p.concept_words) for p in cls] == [("a red ring", ["red", "ring"])] * 2
