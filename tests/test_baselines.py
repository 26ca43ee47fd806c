"""The inference-time baselines: negative prompting acts on every registered backbone (true CFG on the
guidance-distilled HunyuanVideo), and SAFREE as its authors run it, part by part, on tiny and toy models."""

import math

import pytest
import torch
from backbone_checks import get_bundle

from unlearn.backbones import available_backbones, build_backbone
from unlearn.methods.baselines import (
    DISTILLED_TRUE_CFG_SCALE,
    SAFREE,
    LatentReattention,
    NegativePrompting,
    negative_guidance_scale,
)
from unlearn.methods.baselines.safree import orthonormal_basis, project

PROMPT = "a golf ball rolls across the grass"


def _sample(fn, bb, **kw):
    with torch.no_grad():
        return fn([PROMPT], [0], num_inference_steps=2, **kw)


# --------------------------------------------------------------------------------------------------- negative prompting
@pytest.mark.parametrize("name", available_backbones())
def test_negative_prompt_changes_the_latents_on_every_backbone(name):
    bb = get_bundle(name).bb
    neg = NegativePrompting(bb, ["golf ball"])
    scale = neg.scale()
    assert scale > 1.0
    with_neg = _sample(neg.sample, bb)
    # the same guidance scale with the empty prompt as the unconditional branch: only the negative prompt differs
    without = _sample(bb.sample, bb, guidance_scale=scale)
    delta = (with_neg - without).abs().max().item()
    assert delta > 1e-4 * max(1.0, without.abs().max().item()), f"{name}: the negative prompt changed nothing"
    if bb.guidance_distilled:
        assert scale == DISTILLED_TRUE_CFG_SCALE and bb.defaults.guidance_scale == 1.0
        # the stock sampling (true CFG off) ignores a negative prompt: refused instead of silently inert
        with pytest.raises(ValueError, match="no effect at guidance_scale 1.0"):
            bb.sample([PROMPT], [0], num_inference_steps=1, negative_prompt="golf ball")
    else:
        assert scale == bb.defaults.guidance_scale


def test_negative_guidance_scale_rules():
    bb = get_bundle("cogvideox-2b").bb
    assert negative_guidance_scale(bb, None) == bb.defaults.guidance_scale
    assert negative_guidance_scale(bb, 3.0) == 3.0
    assert negative_guidance_scale(bb, None, sampling_scale=4.5) == 4.5
    with pytest.raises(ValueError, match="no effect"):
        negative_guidance_scale(bb, 1.0)
    with pytest.raises(ValueError, match="guidance scale > 1"):
        negative_guidance_scale(bb, None, sampling_scale=1.0)
    hy = get_bundle("hunyuanvideo").bb
    assert negative_guidance_scale(hy, None) == DISTILLED_TRUE_CFG_SCALE
    assert negative_guidance_scale(hy, None, sampling_scale=1.0) == DISTILLED_TRUE_CFG_SCALE
    assert NegativePrompting(hy, ["nudity"], guidance_scale=3.0).settings() == {
        "negative_prompt": "nudity",
        "guidance_scale": 3.0,
        "true_cfg": True,
    }
    with pytest.raises(ValueError, match="at least one concept keyword"):
        NegativePrompting(hy, ["", " "])


def test_hunyuan_true_cfg_is_the_pipeline_formula():
    """v_neg + s·(v_cond − v_neg), every call with the embedded guidance (diffusers' true_cfg_scale)."""
    bb = get_bundle("hunyuanvideo").bb
    d = bb.defaults
    x = bb.initial_noise([0], d.num_frames, d.height, d.width)
    t = bb.timesteps_for(4)[1].reshape(1)
    c, n = bb.encode_prompts([PROMPT]), bb.encode_prompts(["golf ball"])
    with torch.no_grad():
        pn, pc, guided = bb.guided_prediction(x, t, c, n, 6.0)
        torch.testing.assert_close(pn, bb.predict(x, t, n), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(guided, pn + 6.0 * (pc - pn))


# ---------------------------------------------------------------------------------------------------- SAFREE
def test_orthonormal_basis_and_projection():
    g = torch.Generator().manual_seed(0)
    cols = torch.randn(8, 3, generator=g)
    cols = torch.cat([cols, cols[:, :1] * 2], 1)  # a dependent column is dropped
    q = orthonormal_basis(cols)
    assert q.shape == (8, 3)
    torch.testing.assert_close(q.T @ q, torch.eye(3, dtype=q.dtype))
    x = torch.randn(5, 8, generator=g)
    p = project(x, q)
    torch.testing.assert_close(project(p, q), p)  # idempotent
    reference = cols.double() @ torch.linalg.pinv(cols.double().T @ cols.double()) @ cols.double().T  # authors' P
    torch.testing.assert_close(p, x.double() @ reference.T)


def _reference_detection(sf, bb, prompt):
    """The trigger rule computed independently: mask each real token by token id 0 through the tokenizer's
    ids, re-encode, summary row, distance to span(keywords), (1 + α)·mean of the others."""
    ids, offsets = bb.text_tokens(prompt)
    real = [i for i, (s, e) in enumerate(offsets) if e > s]
    masked = [prompt[: offsets[i][0]] + bb.tokenizer.convert_ids_to_tokens(0) + prompt[offsets[i][1] :] for i in real]
    for m, i in zip(masked, real):
        mids, _ = bb.text_tokens(m)
        assert mids[i] == 0 and mids[:i] + mids[i + 1 :] == ids[:i] + ids[i + 1 :]  # that token only is id 0
    h = bb.encode_prompts(masked).hidden_states.double()
    off = bb.text_token_offset
    rows = h[:, off] if sf.token_summary == "first" else h[:, off + len(ids) - 1]
    k = bb.encode_prompts(sf.keywords).hidden_states.double()
    klen = [len(bb.text_tokens(w)[0]) for w in sf.keywords]
    kw = torch.stack([k[j, off] if sf.token_summary == "first" else k[j, off + n - 1] for j, n in enumerate(klen)])
    p = kw.T @ torch.linalg.pinv(kw @ kw.T) @ kw
    d = (rows - rows @ p).norm(dim=-1)
    flagged = []
    for j in range(len(real)):
        others = torch.cat([d[:j], d[j + 1 :]]).mean()
        if d[j] >= (1 + sf.alpha) * others:
            flagged.append(real[j] + off)
    return flagged, rows


@pytest.mark.parametrize("name,summary", [("cogvideox-2b", "first"), ("zeroscope", "last"), ("hunyuanvideo", "last")])
def test_safree_trigger_rule_is_the_authors(name, summary):
    bb = build_backbone(name, tiny=True, torch_dtype="float32")
    sf = SAFREE(bb, ["naked", "nude person"], alpha=0.01)
    assert sf.token_summary == summary  # T5 is bidirectional (position 0), CLIP and Llama causal (last token)
    prompt = "a naked person walking on the beach"
    det, in_basis = sf.detect(prompt)
    flagged, rows = _reference_detection(sf, bb, prompt)
    assert det.flagged == flagged and det.flagged
    ids, offsets = bb.text_tokens(prompt)
    assert len(det.positions) == sum(e > s for s, e in offsets)  # real tokens only: no BOS/EOS/padding
    # the input space is the span of the masked summaries
    torch.testing.assert_close(project(rows, in_basis), rows, atol=1e-5, rtol=1e-5)


def test_safree_projects_exactly_the_trigger_tokens():
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    sf = SAFREE(bb, ["naked", "nude", "nudity"])
    prompts = ["a naked person walking on the beach", "a red car in the city"]
    cond = bb.encode_prompts(prompts)
    projected, betas = sf.project_embedding(cond, prompts)
    for b, det in enumerate(sf.last_detections):
        changed = (projected.hidden_states[b] - cond.hidden_states[b]).abs().sum(-1).nonzero().flatten().tolist()
        assert changed == det.flagged
        if det.flagged:
            new = projected.hidden_states[b, det.flagged].double()
            toxic = project(new, sf.toxic_basis)
            assert toxic.norm() < 1e-4 * new.norm()  # nothing left in the toxic subspace
    assert all(0.0 <= beta <= 2.0 for beta in betas)


def test_safree_step_schedules():
    bb = get_bundle("cogvideox-2b").bb
    sf = SAFREE(bb, ["nudity"])
    assert sf.steps_for(50, beta=0.3) == 13  # the authors' video code: steps 0..12 of 50
    assert sf.steps_for(30, beta=0.3) == round(13 / 50 * 30)
    assert SAFREE(bb, ["nudity"], safe_steps=5).steps_for(50, 0.0) == 5
    svf = SAFREE(bb, ["nudity"], schedule="self_validating")

    def f_beta(beta, up_t=10):  # the image code's sigmoid filter
        return round(up_t * 1 / (1 + math.exp(-2.0 * 2.5 * (10 * beta - 5.333))))

    for beta in (0.0, 0.4, 0.53, 0.7, 1.0):
        assert svf.steps_for(50, beta) == f_beta(beta) + 1  # the loop runs the projection while i <= f_beta
    assert svf.steps_for(50, 1.0) == 11 and svf.steps_for(50, 0.0) == 1
    with pytest.raises(ValueError, match="schedule"):
        SAFREE(bb, ["nudity"], schedule="adaptive")


def test_safree_parts_switch_on_and_off():
    bb = get_bundle("cogvideox-2b").bb
    prompt = "a naked person walking on the beach"

    def run(**kw):
        with torch.no_grad():
            return SAFREE(bb, ["naked", "nude"], **kw).sample([prompt], [0], num_inference_steps=3)

    with torch.no_grad():
        original = bb.sample([prompt], [0], num_inference_steps=3)
    off = run(projection=False, negative_prompt=False)
    assert torch.equal(off, original)  # every part off: the original model
    neg_only = run(projection=False)
    proj_only = run(negative_prompt=False, safe_steps=3)
    both = run(safe_steps=3)
    for x in (neg_only, proj_only, both):
        assert not torch.allclose(x, original)
    assert not torch.allclose(neg_only, both) and not torch.allclose(proj_only, both)
    # no projected step: the projection cannot act
    assert torch.equal(run(negative_prompt=False, safe_steps=0), original)


def test_safree_negative_prompt_uses_true_cfg_on_hunyuan():
    bb = get_bundle("hunyuanvideo").bb
    sf = SAFREE(bb, ["golf ball"], projection=False)
    assert sf.settings()["guidance_scale"] == DISTILLED_TRUE_CFG_SCALE
    with torch.no_grad():
        plain = bb.sample([PROMPT], [0], num_inference_steps=2)
        assert not torch.allclose(sf.sample([PROMPT], [0], num_inference_steps=2), plain)


def test_latent_reattention_filter():
    bb = get_bundle("zeroscope").bb
    lra = LatentReattention(bb, [0.5])
    g = torch.Generator().manual_seed(0)
    own, ref = torch.randn(4, 3, 6, 6, generator=g), torch.randn(4, 3, 6, 6, generator=g)
    torch.testing.assert_close(LatentReattention(bb, [1.0]).filter(own, ref, 1.0), own, atol=1e-5, rtol=1e-5)
    rows = torch.tensor([False, True, False, True])
    out = lra.filter(own, ref, 0.5, rows)
    assert torch.equal(out[~rows], own[~rows]) and not torch.allclose(out[rows], own[rows])
    # only the low frequencies change: the authors' window (centre −1..0 of the shifted spectrum) and, as the
    # result is real, its mirror image (0..+1)
    spec = lambda x: torch.fft.fftshift(torch.fft.fftn(x, dim=(-2, -1)), dim=(-2, -1))  # noqa: E731
    diff = (spec(out) - spec(own)).abs()[rows]
    low = diff[..., 2:5, 2:5].sum()
    assert low > 0 and float(diff.sum()) == pytest.approx(float(low), rel=1e-4)
    with pytest.raises(ValueError, match="no up blocks"):
        LatentReattention(get_bundle("cogvideox-2b").bb, [0.9])


def test_safree_latent_reattention_acts_on_zeroscope():
    bb = get_bundle("zeroscope").bb
    prompt = "a naked person walking on the beach"
    kw = dict(negative_prompt=False, safe_steps=2)
    with torch.no_grad():
        plain = SAFREE(bb, ["naked", "nude"], **kw).sample([prompt], [0], num_inference_steps=2)
        lra = SAFREE(bb, ["naked", "nude"], latent_reattention=True, **kw)
        filtered = lra.sample([prompt], [0], num_inference_steps=2)
    assert lra.last_detections[0].flagged
    assert not torch.allclose(plain, filtered)
    assert lra.settings()["latent_reattention"] == {"scales": [0.9, 0.2], "radius": 1}
    with pytest.raises(ValueError, match="latent_reattention=false"):
        SAFREE(get_bundle("hunyuanvideo").bb, ["nudity"], latent_reattention=True)


def test_toy_world_concept_words_are_triggers():
    """In the toy world the colour/shape words of the toy table's "red ring" prompts are flagged (rates over
    more prompts and the benign side: ``benchmarks/safree_triggers.py``; the authors' α = 0.01 also flags tokens
    in benign prompts)."""
    from unlearn.toyworld.grammar import heldout_eval_prompts, synonym_phrases

    bb = build_backbone("toy-cogvideox", torch_dtype="float32")
    sf = SAFREE(bb, ["red ring", *synonym_phrases("red ring")])
    assert sf.token_summary == "first"
    records = [
        r for r in heldout_eval_prompts(per_class=20, seed=1234) if (r.scene.colour, r.scene.shape) == ("red", "ring")
    ]
    hits = sum(bool(set(r.concept_indices("red ring")) & set(sf.detect(r.text)[0].flagged)) for r in records)
    assert len(records) == 20 and hits == 20


# ---------------------------------------------------------------------------------------------------- rows
def test_baseline_rows_take_options_and_record_what_they_compute():
    from unlearn.evaluation.rows import RowGenerator, apply_row_options, parse_rows

    bb = get_bundle("hunyuanvideo").bb
    specs = parse_rows(["original", "negprompt", "strong:negprompt", "safree"])
    apply_row_options(specs, {"strong": {"guidance_scale": 9.0}, "safree": {"schedule": "self_validating"}})
    gen = RowGenerator(bb, specs, concept="golf ball", sampling={"num_inference_steps": 2})
    assert gen.describe("negprompt")["settings"] == {
        "negative_prompt": "golf ball",
        "guidance_scale": DISTILLED_TRUE_CFG_SCALE,
        "true_cfg": True,
    }
    assert gen.describe("strong")["settings"]["guidance_scale"] == 9.0
    assert gen.describe("strong")["options"] == {"guidance_scale": 9.0}
    assert gen.describe("safree")["settings"]["schedule"] == "self_validating"
    # options are part of the videos' manifest key: other options, other videos
    assert specs[1].fingerprint("golf ball") != specs[2].fingerprint("golf ball")
    video = gen.generate("strong", [PROMPT], [0])
    assert video.dtype == torch.uint8 and video.shape[0] == 1
    bad = parse_rows(["negprompt"])
    bad[0].options = {"scale": 2.0}
    with pytest.raises(ValueError, match="known: guidance_scale"):
        RowGenerator(bb, bad, concept="golf ball")
    with pytest.raises(ValueError, match="takes no options"):
        apply_row_options(parse_rows(["original"]), {"original": {"guidance_scale": 2.0}})
    with pytest.raises(ValueError, match="name no row"):
        apply_row_options(parse_rows(["negprompt"]), {"safree": {"alpha": 0.1}})
