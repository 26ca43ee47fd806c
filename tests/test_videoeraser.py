"""VideoEraser (unlearn.methods.baselines.VideoEraser): ARNG as the authors' code computes it, SPEA on the concept
branch, on every registered backbone (tiny models), and its evaluation row."""

from __future__ import annotations

import warnings

import pytest
import torch
from backbone_checks import get_bundle

from unlearn.backbones import available_backbones, build_backbone
from unlearn.evaluation import RowGenerator, RowSpec
from unlearn.methods.baselines import VideoEraser

warnings.filterwarnings("ignore")
CONCEPT = "red ring"
PROMPTS = ["a red ring moves left", "a blue square on the beach"]


def test_arng_follows_the_authors_formula():
    ve = VideoEraser.__new__(VideoEraser)
    ve.concept_guidance_scale, ve.concept_threshold = 5000.0, 1.0
    ve.concept_momentum_scale, ve.concept_mom_beta, ve.concept_warmup_steps = 0.5, 0.7, 0
    u = torch.tensor([0.0, 0.0, 0.0])
    t = torch.tensor([1.0, 2.0, 0.5])
    c = torch.tensor([1.0, 0.5, 0.5 + 2**-13])  # equal; t − c ≥ 1 (no push); a small difference
    guidance, m = ve.arng(u, t, c, None, 0)
    scale = torch.tensor([0.0, 0.0, 5000 / 8192])  # |t − c|·5000 clamped at 1, zero where t − c ≥ 1
    g_c = (c - u) * scale
    torch.testing.assert_close(guidance, (t - u) - g_c)
    torch.testing.assert_close(m, 0.3 * g_c)
    guidance2, m2 = ve.arng(u, t, c, m, 1)
    g_c2 = (c - u) * scale + 0.5 * m
    torch.testing.assert_close(guidance2, (t - u) - g_c2)
    torch.testing.assert_close(m2, 0.7 * m + 0.3 * g_c2)


@pytest.mark.parametrize("name", available_backbones())
def test_videoeraser_on_every_backbone(name):
    bb = get_bundle(name).bb
    state = {k: v.clone() for k, v in bb.denoiser.state_dict().items()}
    sampling = {"num_inference_steps": 3, "guidance_scale": 6.0}
    ve = VideoEraser(bb, [CONCEPT])
    erased = ve.sample(PROMPTS[:1], [0], **sampling)
    neg = bb.sample(PROMPTS[:1], [0], negative_prompt=CONCEPT, **sampling)
    assert torch.isfinite(erased).all() and erased.shape == neg.shape
    # with ARNG off and no SPEA, VideoEraser is negative prompting (three branches in one batch: rounding only)
    plain = VideoEraser(bb, [CONCEPT], concept_guidance_scale=0.0, spea=False).sample(PROMPTS[:1], [0], **sampling)
    torch.testing.assert_close(plain, neg, rtol=1e-3, atol=1e-3)
    assert all(torch.equal(state[k], v) for k, v in bb.denoiser.state_dict().items())  # weights untouched
    assert ve.settings(6.0)["concept_guidance_scale"] == 5000.0


def test_spea_acts_on_the_concept_branch_only():
    toy = build_backbone("toy-cogvideox", tiny=True, torch_dtype="float32")
    ve = VideoEraser(toy, [CONCEPT])
    concept = toy.encode_prompts([CONCEPT])
    adjusted, _ = ve.safree.project_embedding(concept, ["a red ring moves left"])
    det = ve.safree.last_detections[0]
    changed = (adjusted.hidden_states - concept.hidden_states).abs().sum(-1)[0] > 0
    assert set(torch.nonzero(changed).flatten().tolist()) <= set(det.flagged)


def test_spea_uses_the_adjusted_branch_for_the_first_13_steps(monkeypatch):
    toy = build_backbone("toy-cogvideox", tiny=True, torch_dtype="float32")
    ve = VideoEraser(toy, [CONCEPT])
    prompt = "a red ring moves left"
    concept = toy.encode_prompts([CONCEPT]).hidden_states
    adjusted = ve.safree.project_embedding(toy.encode_prompts([CONCEPT]), [prompt])[0].hidden_states
    assert ve.safree.last_detections[0].flagged and not torch.equal(adjusted, concept)
    branches = []
    real = toy.predict

    def spy(x, t, cond):
        branches.append(cond.hidden_states[2:3].clone())  # [negative prompt, prompt, concept branch]
        return real(x, t, cond)

    monkeypatch.setattr(toy, "predict", spy)
    ve.sample([prompt], [0], num_inference_steps=16, guidance_scale=6.0)
    cut = 13  # cogvideox_pipeline.py:851: steps 0..12
    assert len(branches) == 16
    assert all(torch.equal(b, adjusted) for b in branches[:cut])
    assert all(torch.equal(b, concept) for b in branches[cut:])


def test_videoeraser_row():
    toy = build_backbone("toy-cogvideox", tiny=True, torch_dtype="float32")
    specs = [RowSpec("original"), RowSpec("videoeraser", options={"concept_guidance_scale": 100.0})]
    gen = RowGenerator(toy, specs, concept=CONCEPT, sampling={"num_inference_steps": 2})
    videos = gen.generate("videoeraser", PROMPTS, [0, 1])
    assert videos.dtype == torch.uint8 and videos.shape[0] == 2
    settings = gen.describe("videoeraser")["settings"]
    assert settings["concept_guidance_scale"] == 100.0 and settings["negative_prompt"] == CONCEPT
    with pytest.raises(ValueError, match="bad options"):
        RowGenerator(toy, [RowSpec("videoeraser", options={"nope": 1})], concept=CONCEPT)
