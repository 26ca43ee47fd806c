"""Several concepts erased by one run (data modules, joint PSR, the evaluation callback) and T2VUnlearning's
adversarial-training option, on tiny models."""

from __future__ import annotations

import json

import lightning.pytorch as pl
import pytest
import torch
from toy_training import quiet_trainer, tiny_toy_data, tiny_toy_model

from unlearn.callbacks import ErasureEvaluation
from unlearn.evaluation import Evaluators, MetricConfig, RowMetrics, joint_classification_row
from unlearn.evaluation.tables import markdown_table
from unlearn.methods.t2vunlearning import ConceptDataModule, T2VUnlearning, ToyWorldDataModule
from unlearn.toyworld.render import SceneSpec, class_names, render_video

THREE = ["red ring", "blue square", "green cross"]


# ---------------------------------------------------------------------------------------------- data
def test_toy_data_module_takes_a_list_of_classes():
    dm = ToyWorldDataModule(concept=THREE, num_prompts=3)
    assert dm.concepts == THREE and dm.concept == "red ring, blue square, green cross"
    assert [p.concept for p in dm.training_prompts] == [c for c in THREE for _ in range(3)]
    for p in dm.training_prompts:  # each prompt's mask words are its own concept's words, found in the prompt
        assert len(p.concept_words) == 2 and all(w in p.prompt.split() for w in p.concept_words)
    assert len({p.seed for p in dm.training_prompts}) == 9
    # the preserved classes: every concept's neighbours, never an erased class
    assert not set(dm.preserve_classes) & set(THREE) and "red square" in dm.preserve_classes
    assert "blue ring" in dm.preserve_classes and "green square" in dm.preserve_classes
    # one concept keeps the single-concept prompts and seeds (cached pseudo data stays valid)
    one, first = (
        ToyWorldDataModule(concept="red ring", num_prompts=3),
        ToyWorldDataModule(concept=["red ring"], num_prompts=3),
    )
    assert (
        [(p.prompt, p.seed, p.concept) for p in one.training_prompts]
        == [(p.prompt, p.seed, "") for p in dm.training_prompts[:3]]
        == [(p.prompt, p.seed, p.concept) for p in first.training_prompts]
    )
    assert (
        ToyWorldDataModule(concept=THREE, prompt_style="concept", num_prompts=1).training_prompts[1].prompt
        == "a blue square"
    )


def test_concept_data_module_assigns_each_prompt_its_concept():
    dm = ConceptDataModule(
        concept=["nudity", "golf ball"],
        concept_synonyms={"nudity": ["naked", "nude"]},
        prompts=["a naked man on a beach", "a golf ball on the grass"],
        loss_condition="concept",
    )
    assert [(p.concept, p.concept_words) for p in dm.training_prompts] == [
        ("nudity", ["nudity", "naked", "nude"]),
        ("golf ball", ["golf ball"]),
    ]
    assert [dm.loss_prompt(p) for p in dm.training_prompts] == ["nudity", "golf ball"]
    assert dm.synonyms == ["naked", "nude"]
    with pytest.raises(ValueError, match="names none of the concepts"):
        ConceptDataModule(concept=["nudity", "golf ball"], prompts=["a cat"])
    with pytest.raises(ValueError, match="per concept"):
        ConceptDataModule(concept=["nudity", "golf ball"], concept_synonyms=["naked"], prompts=["a nudity"])
    with pytest.raises(ValueError, match="twice"):
        ConceptDataModule(concept=["nudity", "Nudity"], prompts=["a nudity"])
    with pytest.raises(ValueError, match="empty"):
        ConceptDataModule(concept=[], prompts=["x"])
    with pytest.raises(ValueError, match="not in data.concept"):
        ConceptDataModule(concept=["nudity", "golf ball"], concept_synonyms={"dog": ["puppy"]}, prompts=["a nudity"])


# ---------------------------------------------------------------------------------------------- joint PSR
def _video(cls: str, seed: int = 0) -> torch.Tensor:
    colour, shape = cls.split()
    return torch.as_tensor(render_video(SceneSpec(shape, colour, seed=seed)))[None]


def test_erased_together_psr_leaves_out_every_erased_class():
    labels = class_names()
    ev = Evaluators(MetricConfig(classifier="toyworld", erased_classes=THREE[:2]), labels, None)
    joint, apart = RowMetrics(ev, erased_together=True), RowMetrics(ev)
    # a model that erased both: their videos show something else (a white dot); the rest is drawn right
    for m in (joint, apart):
        for cls in labels:
            video = _video("white dot") if cls in THREE[:2] else _video(cls)
            m.update(video, [cls], ["p"])
    j, a = joint.compute()["classification"], apart.compute()["classification"]
    assert j["red ring"]["esr@1"] == j["blue square"]["esr@1"] == 100.0
    assert j["red ring"]["psr@1"] == j["blue square"]["psr@1"] == pytest.approx(100.0 * 23 / 23)
    # counted apart, each class's PSR still holds the other erased class (drawn as a white dot: 0 %)
    assert a["red ring"]["psr@1"] == pytest.approx(100.0 * 23 / 24)
    row = joint_classification_row(j)
    assert row["esr@1"] == 100.0 and set(row["erased"]) == set(THREE[:2]) and row["psr@1"] == j["red ring"]["psr@1"]
    assert joint_classification_row({"red ring": a["red ring"]}) == a["red ring"]
    md = markdown_table({"t2vunlearning": row}, {"concept": "red ring, blue square"})
    assert "| t2vunlearning | all | blue square | 100.0 [" in md and "none of them names" in md


# ---------------------------------------------------------------------------------------------- training
def test_adversarial_training_step_adds_the_worst_case_term(tmp_path):
    pl.seed_everything(0)
    model = tiny_toy_model(adversarial_steps=2, adversarial_epsilon=0.5)
    dm = tiny_toy_data(tmp_path, num_prompts=2)
    seen = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses = pl_module.compute_losses(batch)
            seen.append({k: float(v) for k, v in losses.items()})

    quiet_trainer(tmp_path, [Record()], max_steps=3).fit(model, dm)
    assert seen and all("adv_unlearn" in s for s in seen)
    # the worst case near the batch's conditioning is at least as bad for the adapters as the clean one
    assert all(s["adv_unlearn"] >= s["unlearn"] - 1e-6 for s in seen)
    assert all(s["total"] == pytest.approx(s["unlearn"] + s["adv_unlearn"] + s["pre"], rel=0.2) for s in seen)
    with pytest.raises(ValueError, match="adversarial_epsilon"):
        T2VUnlearning(
            backbone="toy-cogvideox", tiny=True, torch_dtype="float32", adversarial_steps=1, adversarial_epsilon=0.0
        )


def test_several_concepts_train_and_the_callback_reports_each(tmp_path):
    pl.seed_everything(0)
    model = tiny_toy_model(alpha=1.0)
    dm = tiny_toy_data(tmp_path, concept=THREE, num_prompts=1, num_inference_steps=2, record_steps=[1])
    cb = ErasureEvaluation(
        rows=["original", "t2vunlearning", "negprompt"],
        per_class=1,
        per_group={"erased": 2},
        out_of_grammar={"erased": 1},
        num_inference_steps=2,
        sample_videos=0,
        dirpath=str(tmp_path / "eval"),
    )
    quiet_trainer(tmp_path, [cb], max_steps=1).fit(model, dm)
    doc = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    for row in ("original", "t2vunlearning", "negprompt"):
        r = doc["rows"][row]
        assert set(r["erased"]) == set(THREE)
        assert r["esr@1"] == pytest.approx(sum(e["esr@1"] for e in r["erased"].values()) / 3)
        kept = [c for c in r["per_class_top1"] if c not in THREE]
        assert len(kept) == 22 and r["psr@1"] == pytest.approx(sum(r["per_class_top1"][c] for c in kept) / 22)
        assert set(r["splits"]["out_of_grammar"]["erased"]) == set(THREE)  # each split: each concept's ESR
        assert all(e["erased_frames"] == 2 * 4 for e in r["erased"].values())  # 2 in-grammar prompts x 4 frames
    assert doc["erased_class"] == "red ring, blue square, green cross"
    assert "vs_reference" in doc["rows"]["t2vunlearning"]  # ΔPSR-1 against the original, over the 22 classes
    assert doc["rows"]["t2vunlearning"]["vs_reference"]["psr@1"]["n"] == 22
    # every kept class against the original, none of the three erased ones (in the file and the plot's data)
    assert set(doc["rows"]["t2vunlearning"]["vs_reference"]["per_class"]) == set(kept)
    assert (tmp_path / "eval" / "plots" / "class_delta.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
