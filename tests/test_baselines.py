"""The inference-time baselines: negative prompting acts on every registered backbone (true CFG on the
guidance-distilled HunyuanVideo), and SAFREE as its authors run it, part by part, on tiny and toy models."""

import math

import pytest
import torch
from test_backbone_contract import get_bundle

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


# ---------------------------------------------------------------------------------------------------- negative prompting
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
        "embedded_guidance_scale": 1.0,  # the T2VUnlearning authors' guidance_scale=1.0 under true CFG
    }
    with pytest.raises(ValueError, match="guidance-distilled"):
        NegativePrompting(bb, ["nudity"], embedded_guidance_scale=1.0)
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


def _authors_pinv_projector(columns):
    """The authors' ``projection_matrix(E) = E (EᵀE)⁺ Eᵀ`` (cogvideox_pipeline.py:124-133), E = columns."""
    e = columns.double()
    return e @ torch.linalg.pinv(e.T @ e) @ e.T


def _authors_summaries(bb, keywords, prompt):
    """SAFREE's keyword and masked-prompt vectors, computed here from the authors' code without SAFREE's
    encoding path: own tokenizer calls, own masking, own pooling.

    * T5 (CogVideoX; jaehong31/SAFREE cogvideox_pipeline.py): keywords ``padding="max_length"`` *with* their
      attention mask (``_new_encode_negative_prompt2``, lines 387-413), masked prompts ``padding="longest"``
      (unpadded) with one id set to 0 and no mask (``_masked_encode_prompt``, 416-457); both
      ``last_hidden_state[:, 0]``.
    * Llama (HunyuanVideo; TobisawaMisakii/T2VUnlearning safree_hunyuan_pipeline.py): keywords in the prompt
      template padded to ``max_length + crop_start`` with their mask, ``last_hidden_state.mean(dim=1)``
      (350-402); masked prompts: the templated prompt's ids cropped at ``crop_start``, id ``i`` set to 0 for
      every token but the closing ``<|eot_id|>``, no mask, ``mean(dim=1)`` (516-575).
    * CLIP (ZeroScope; the SAFREE image code): keywords padded to 77 with mask, masked prompts unpadded
      (positions after BOS), the EOS state (``pooler_output``).

    One difference is ours, not the authors': their T5 code masks positions ``i + 1`` (an index written for
    CLIP's BOS), so T5's first token is never tested; every real token is masked here and in SAFREE.
    """
    enc, tok = bb.text_encoder, bb.tokenizer

    def run(ids, mask=None):
        out = enc(input_ids=ids, attention_mask=mask)
        return (out if isinstance(out, torch.Tensor) else out.last_hidden_state).double()

    if bb.name == "hunyuanvideo":
        template, crop = bb.prompt_template["template"], bb.crop_start
        k = tok([template.format(w) for w in keywords], max_length=bb.max_text_length + crop,
                padding="max_length", truncation=True, return_tensors="pt")  # fmt: skip
        kw = run(k.input_ids, k.attention_mask).mean(dim=1)
        ids = tok([template.format(prompt)], padding="longest", return_tensors="pt").input_ids[:, crop:]
        n = ids.shape[1] - 1  # the special token at the end stays
        masked = ids.repeat(n, 1)
        for i in range(n):
            masked[i, i] = 0
        return kw, run(masked).mean(dim=1), list(range(n))
    k = tok(list(keywords), max_length=bb.max_text_length, padding="max_length", truncation=True, return_tensors="pt")
    h = run(k.input_ids, k.attention_mask)
    ids = tok([prompt], padding="longest", return_tensors="pt").input_ids
    if bb.name == "zeroscope":  # causal CLIP: the EOS state
        kw = h[torch.arange(len(keywords)), k.attention_mask.sum(1) - 1]
        n = ids.shape[1] - 2
        masked = ids.repeat(n, 1)
        for i in range(n):
            masked[i, i + 1] = 0
        return kw, run(masked)[:, -1], [i + 1 for i in range(n)]
    n = ids.shape[1] - 1  # T5: every token but </s>
    masked = ids.repeat(n, 1)
    for i in range(n):
        masked[i, i] = 0
    return h[:, 0], run(masked)[:, 0], list(range(n))


def _reference_detection(bb, keywords, prompt, alpha):
    kw, rows, positions = _authors_summaries(bb, keywords, prompt)
    p = _authors_pinv_projector(kw.T)  # the concept subspace
    d = (rows - rows @ p.T).norm(dim=-1)  # ‖(I − P_c) e_i‖
    flagged = [positions[j] for j in range(len(d)) if d[j] >= (1 + alpha) * torch.cat([d[:j], d[j + 1 :]]).mean()]
    return kw, rows, positions, d, flagged


@pytest.mark.parametrize("name,summary", [("cogvideox-2b", "first"), ("zeroscope", "last"), ("hunyuanvideo", "mean")])
def test_safree_trigger_rule_is_the_authors(name, summary):
    """The keyword vectors, the masked-prompt vectors, their distances and the flagged tokens equal the
    authors' rule computed independently (a change of padding, attention mask, pooling or mask position in
    SAFREE's encoding fails here)."""
    bb = build_backbone(name, tiny=True, torch_dtype="float32")
    keywords = ["naked", "nude person"]
    sf = SAFREE(bb, keywords, alpha=0.01)
    assert sf.token_summary == summary and sf.encoding == "authors"
    prompt = "a naked person walking on the beach"
    kw, rows, positions, d, flagged = _reference_detection(bb, keywords, prompt, 0.01)
    torch.testing.assert_close(sf.keyword_summaries().double(), kw, atol=1e-5, rtol=1e-5)
    ours, ours_positions, _ = sf.masked_summaries(prompt)
    torch.testing.assert_close(ours.double(), rows, atol=1e-5, rtol=1e-5)
    det, in_basis = sf.detect(prompt)
    assert det.positions == ours_positions == positions
    torch.testing.assert_close(torch.tensor(det.distances, dtype=torch.float64), d, atol=1e-5, rtol=1e-4)
    assert det.flagged == flagged
    # the input space is the span of the masked summaries
    torch.testing.assert_close(project(rows, in_basis), rows, atol=1e-5, rtol=1e-5)


def test_safree_authors_encoding_differs_from_the_padded_conditioning_path():
    """On T5 the padded, unmasked encoding of the backbone's conditioning path (``encoding="backbone"``) gives
    other keyword vectors: the pads enter them. The authors' masking is what the default computes."""
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    authors = SAFREE(bb, ["naked", "nude person"]).keyword_summaries()
    padded = SAFREE(bb, ["naked", "nude person"], encoding="backbone").keyword_summaries()
    assert not torch.allclose(authors, padded, atol=1e-4)


def test_safree_keywords_default_to_the_authors_list():
    from unlearn.methods.baselines.keywords import AUTHORS_CONCEPT_KEYWORDS, safree_keywords

    nudity = ["Sexual Acts", "Naked", "Nudity", "Sexual Orientation", "Sexual Attraction", "Sexual Intercourse"]
    assert safree_keywords("nudity") == safree_keywords("porn") == nudity == list(AUTHORS_CONCEPT_KEYWORDS["porn"])
    assert safree_keywords("Violence")[:2] == ["Physical Assault", "Blood"]
    assert safree_keywords("golf ball") == ["golf ball"]  # no list of the authors: the concept itself
    from unlearn.evaluation.rows import MethodGenerator, parse_methods

    gen = MethodGenerator(get_bundle("cogvideox-2b").bb, parse_methods(["negprompt", "safree"]), concept="nudity")
    assert gen.keywords("safree") == nudity
    assert gen.describe("safree")["settings"]["negative_prompt"] == ", ".join(nudity)
    assert gen.keywords("negprompt") == ["nudity"]  # T2VUnlearning's negative prompt: "nudity"


def test_safree_hunyuan_pooled_vector_is_the_authors():
    """HunyuanVideo: the CLIP pooled vector at the projected steps is the mean over the 77 CLIP token states
    with the CLIP-side trigger tokens projected (safree_hunyuan_pipeline.py:938-945), computed here on its own."""
    bb = build_backbone("hunyuanvideo", tiny=True, torch_dtype="float32")
    keywords = ["naked", "nude person"]
    sf = SAFREE(bb, keywords)
    assert sf.project_pooled and not sf.use_negative_prompt  # the T2VUnlearning authors' HunyuanVideo run
    prompt = "a naked person walking on the beach"
    tok, enc = bb.tokenizer_2, bb.text_encoder_2
    with torch.no_grad():
        kw = enc(tok(keywords, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids)
        states = enc(tok([prompt], padding="max_length", max_length=77, return_tensors="pt").input_ids)
        ids = tok([prompt], padding="longest", return_tensors="pt").input_ids
        n = ids.shape[1] - 2
        masked = ids.repeat(n, 1)
        for i in range(n):
            masked[i, i + 1] = 0
        e = enc(masked).pooler_output.double()
    cs = _authors_pinv_projector(kw.pooler_output.double().T)
    ms = _authors_pinv_projector(e.T)
    d = (e - e @ cs.T).norm(dim=-1)
    h = states.last_hidden_state[0].double()
    new = h @ ms.T @ (torch.eye(cs.shape[0], dtype=torch.float64) - cs).T  # (I − cs) ms h, row-wise
    merged = h.clone()
    for j in range(n):
        if d[j] >= 1.01 * torch.cat([d[:j], d[j + 1 :]]).mean():
            merged[j + 1] = new[j + 1]
    torch.testing.assert_close(sf.projected_pooled(prompt).double(), merged.mean(0), atol=1e-4, rtol=1e-4)
    # the conditioning at a projected step carries it, after the schedule the prompt's own pooled vector
    cond = bb.encode_prompts([prompt])
    at = sf.step_conditioning(cond, [prompt], 30)
    torch.testing.assert_close(
        at(0).pooled[0].double(), merged.mean(0).to(cond.pooled.dtype).double(), atol=1e-4, rtol=1e-4
    )
    assert torch.equal(at(13).pooled, cond.pooled) and sf.steps_for(30, 0.0) == 13  # steps 0..12 at 30 steps


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
    assert sf.steps_for(30, beta=0.3) == 13  # and of 30 (T2VUnlearning's HunyuanVideo run: 0 <= i <= 12)
    assert sf.steps_for(8, beta=0.3) == 8
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


def test_safree_on_hunyuan_is_the_t2vunlearning_authors_run():
    """test_safree_hunyuan.py + safree_hunyuan_pipeline.py: no negative prompt (``do_true_cfg = False``), the
    embedded guidance of the run; switched on, the negative prompt acts through true CFG."""
    bb = get_bundle("hunyuanvideo").bb
    sf = SAFREE(bb, ["golf ball"], projection=False)
    settings = sf.settings()
    assert settings["negative_prompt"] is None and settings["embedded_guidance_scale"] == 6.0
    with torch.no_grad():
        plain = bb.sample([PROMPT], [0], num_inference_steps=2)
        assert torch.equal(sf.sample([PROMPT], [0], num_inference_steps=2), plain)
        neg = SAFREE(bb, ["golf ball"], projection=False, negative_prompt=True)
        assert neg.settings()["guidance_scale"] == DISTILLED_TRUE_CFG_SCALE
        assert not torch.allclose(neg.sample([PROMPT], [0], num_inference_steps=2), plain)


def test_hunyuan_negative_prompting_is_the_t2vunlearning_authors_run():
    """test_hunyuan_negprompt.py: negative prompt, true_cfg_scale 6, embedded guidance 1.0 while it samples."""
    bb = get_bundle("hunyuanvideo").bb
    neg = NegativePrompting(bb, ["golf ball"])
    before = bb.embedded_guidance_scale
    with torch.no_grad():
        ours = neg.sample([PROMPT], [0], num_inference_steps=2)
        bb.embedded_guidance_scale = 1.0
        try:
            expected = bb.sample([PROMPT], [0], num_inference_steps=2, negative_prompt="golf ball", guidance_scale=6.0)
        finally:
            bb.embedded_guidance_scale = before
        stacked = NegativePrompting(bb, ["golf ball"], embedded_guidance_scale=before).sample(
            [PROMPT], [0], num_inference_steps=2
        )
    torch.testing.assert_close(ours, expected)
    assert not torch.allclose(stacked, ours)  # the embedded guidance is not left at its default
    assert bb.embedded_guidance_scale == before  # restored


def test_safree_cogvideox_dpm_sampler_is_the_demos():
    """sampler="cogvideox_dpm": CogVideoXDPMScheduler (trailing) + dynamic CFG, as SAFREE's cli_demo.py, and
    the backbone's own sampler back afterwards."""
    from diffusers import CogVideoXDPMScheduler

    bb = get_bundle("cogvideox-2b").bb
    own = type(bb.scheduler)
    sf = SAFREE(bb, ["golf ball"], sampler="cogvideox_dpm", projection=False)
    assert sf.settings()["scheduler"] == "CogVideoXDPMScheduler" and sf.settings()["guidance"]["use_dynamic_cfg"]
    seen = []
    with torch.no_grad():
        dpm = sf.sample([PROMPT], [0], num_inference_steps=3, on_step=lambda *a: seen.append(type(bb.scheduler)))
        plain = SAFREE(bb, ["golf ball"], projection=False).sample([PROMPT], [0], num_inference_steps=3)
    assert seen == [CogVideoXDPMScheduler] * 3 and type(bb.scheduler) is own and not bb.use_dynamic_cfg
    assert torch.isfinite(dpm).all() and not torch.allclose(dpm, plain)
    # the stock CogVideoXPipeline with the demo's scheduler and dynamic CFG, same seed: the same latents (the
    # DPM steps draw their noise from the seed's generator, as the pipeline's)
    pipe = bb.as_pipeline()
    pipe.scheduler = CogVideoXDPMScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing")
    d = bb.defaults
    with torch.no_grad():
        stock = pipe(
            prompt=PROMPT, num_frames=d.num_frames, height=d.height, width=d.width, num_inference_steps=3,
            guidance_scale=6.0, use_dynamic_cfg=True, output_type="latent",
            generator=torch.Generator().manual_seed(0), max_sequence_length=bb.max_text_length,
        ).frames  # fmt: skip
        ours = SAFREE(bb, ["golf ball"], sampler="cogvideox_dpm", projection=False, negative_prompt=False).sample(
            [PROMPT, PROMPT], [0, 5], num_inference_steps=3, guidance_scale=6.0
        )
        again = SAFREE(bb, ["golf ball"], sampler="cogvideox_dpm", projection=False, negative_prompt=False).sample(
            [PROMPT], [5], num_inference_steps=3, guidance_scale=6.0
        )
    torch.testing.assert_close(ours[:1], stock, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours[1:], again, atol=1e-5, rtol=1e-5)  # per seed, whatever the batch
    with pytest.raises(ValueError, match="not a CogVideoX backbone"):
        SAFREE(get_bundle("zeroscope").bb, ["nudity"], sampler="cogvideox_dpm")


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
    from unlearn.evaluation.rows import MethodGenerator, apply_row_options, parse_methods

    bb = get_bundle("hunyuanvideo").bb
    specs = parse_methods(["original", "negprompt", "strong:negprompt", "safree"])
    apply_row_options(specs, {"strong": {"guidance_scale": 9.0}, "safree": {"schedule": "self_validating"}})
    gen = MethodGenerator(bb, specs, concept="golf ball", sampling={"num_inference_steps": 2})
    assert gen.describe("negprompt")["settings"] == {
        "negative_prompt": "golf ball",
        "guidance_scale": DISTILLED_TRUE_CFG_SCALE,
        "true_cfg": True,
        "embedded_guidance_scale": 1.0,
    }
    safree = gen.describe("safree")["settings"]  # every setting of the authors' HunyuanVideo run is recorded
    assert safree["negative_prompt"] is None and safree["embedded_guidance_scale"] == 6.0
    assert safree["token_summary"] == "mean" and safree["encoding"] == "authors" and safree["project_pooled"]
    assert gen.describe("strong")["settings"]["guidance_scale"] == 9.0
    assert gen.describe("strong")["options"] == {"guidance_scale": 9.0}
    assert gen.describe("safree")["settings"]["schedule"] == "self_validating"
    # options are part of the videos' manifest key: other options, other videos
    assert specs[1].fingerprint("golf ball") != specs[2].fingerprint("golf ball")
    video = gen.generate("strong", [PROMPT], [0])
    assert video.dtype == torch.uint8 and video.shape[0] == 1
    bad = parse_methods(["negprompt"])
    bad[0].options = {"scale": 2.0}
    with pytest.raises(ValueError, match="known: guidance_scale, embedded_guidance_scale"):
        MethodGenerator(bb, bad, concept="golf ball")
    with pytest.raises(ValueError, match="takes no options"):
        apply_row_options(parse_methods(["original"]), {"original": {"guidance_scale": 2.0}})
    with pytest.raises(ValueError, match="name no row"):
        apply_row_options(parse_methods(["negprompt"]), {"safree": {"alpha": 0.1}})
