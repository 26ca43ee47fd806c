"""One contract suite for every registered backbone, on its tiny random model.

Each check is a plain function of a :class:`Bundle` (a built backbone plus its stock attention processors) so
that a backbone registered elsewhere (see ``test_backbone_registry.py``) runs the very same checks. A backbone
whose class cannot build ``tiny=True`` (e.g. one that only ships real weights) is skipped.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from backbone_checks import (
    CONCEPT,
    PROMPTS,
    Bundle,
    check_concept_map_matches_dense_reference,
    check_concept_token_indices,
    check_export_round_trip,
    check_noisy_target_follows_the_scheduler,
    check_only_adapters_train_and_loss_falls,
    check_sample_and_decode,
    check_text_at_the_embedding_level,
    check_video_size,
    check_zero_init_is_frozen,
    get_bundle,
    inputs,
    new_switch,
    stock_pipeline,
)

from unlearn.backbones import VideoBackbone, available_backbones


@pytest.fixture(params=available_backbones())
def bundle(request) -> Bundle:
    return get_bundle(request.param)


def test_zero_init_adapters_equal_frozen_model(bundle):
    check_zero_init_is_frozen(bundle)


def test_only_adapters_change_and_loss_falls(bundle):
    check_only_adapters_train_and_loss_falls(bundle)


def test_chunked_concept_map_equals_dense_reference(bundle, monkeypatch):
    check_concept_map_matches_dense_reference(bundle, monkeypatch)


def test_export_import_round_trip_into_stock_pipeline(bundle, tmp_path):
    check_export_round_trip(bundle, tmp_path)


def test_concept_token_indices(bundle):
    check_concept_token_indices(bundle)


def test_noisy_target_follows_the_scheduler(bundle):
    check_noisy_target_follows_the_scheduler(bundle)


def test_text_at_the_embedding_level(bundle):
    check_text_at_the_embedding_level(bundle)


def test_sample_decode_and_guidance_shapes(bundle):
    check_sample_and_decode(bundle)


def test_video_size_is_checked(bundle):
    check_video_size(bundle)


def test_cogvideox_needs_4k_plus_1_frames():
    bb = get_bundle("cogvideox-2b").bb
    with pytest.raises(ValueError, match=r"4k\+1.*got 8.*5 or 9"):
        bb.check_video_size(8, 32, 32)
    bb.check_video_size(13, 32, 32)


# ---------------------------------------------------------------------------------------------------- family specifics
def _stock_encode(pipe, bb: VideoBackbone, prompt: str):
    """The stock pipeline's own text conditioning for ``prompt`` (hidden states, mask, pooled)."""
    kind = type(pipe).__name__
    if kind == "HunyuanVideoPipeline":
        h, pooled, mask = pipe.encode_prompt(
            prompt, prompt_template=bb.prompt_template, max_sequence_length=bb.max_text_length, device="cpu"
        )
        return h, mask, pooled
    if kind == "WanPipeline":
        h, _ = pipe.encode_prompt(
            prompt, do_classifier_free_guidance=False, max_sequence_length=bb.max_text_length, device="cpu"
        )
        return h, None, None
    if kind == "CogVideoXPipeline":
        h, _ = pipe.encode_prompt(
            prompt, do_classifier_free_guidance=False, max_sequence_length=bb.max_text_length, device="cpu"
        )
        return h, None, None
    if kind == "TextToVideoSDPipeline":
        h, _ = pipe.encode_prompt(prompt, "cpu", 1, False)
        return h, None, None
    pytest.skip(f"no stock encode_prompt recipe for {kind}")


def test_text_conditioning_matches_stock_pipeline(bundle):
    """``_encode`` reproduces the stock pipeline's conditioning (template, crop, padding, pooled CLIP)."""
    bb = bundle.bb
    pipe = stock_pipeline(bb)
    for prompt in (PROMPTS[1], ""):
        h, mask, pooled = _stock_encode(pipe, bb, prompt)
        ours = bb.encode_prompts([prompt])
        # (the cache may hold an encoding made in a larger batch: equal up to float32 rounding)
        torch.testing.assert_close(ours.hidden_states, h.to(ours.hidden_states.dtype), atol=1e-6, rtol=1e-5)
        if mask is not None:
            assert torch.equal(ours.attention_mask.long(), mask.long())
        if pooled is not None:
            torch.testing.assert_close(ours.pooled, pooled.to(ours.pooled.dtype), atol=1e-6, rtol=1e-5)


def test_hunyuan_cropped_tokens_are_the_pipeline_tokens():
    bb = get_bundle("hunyuanvideo").bb
    prompt = "a nude woman standing in a sunlit room"
    template, crop = bb.prompt_template["template"], bb.prompt_template["crop_start"]
    full = bb.tokenizer(
        template.format(prompt), max_length=bb.max_text_length + crop, padding="max_length", truncation=True
    ).input_ids
    ids, offsets = bb.text_tokens(prompt)
    assert full[crop : crop + len(ids)] == ids
    idx = bb.concept_token_indices(prompt, "nude")
    assert bb.tokenizer.decode([full[crop + i] for i in idx]).strip() == "nude"
    # the template's closing token is not part of the prompt
    assert offsets[-1] == (0, 0) and bb.tokenizer.convert_ids_to_tokens(ids[-1]) == "<|eot_id|>"


def test_hunyuan_guidance_is_embedded_and_fixed():
    bb = get_bundle("hunyuanvideo").bb
    new_switch(bb)
    x, t, c = inputs(bb)
    u = bb.encode_prompts([""] * len(PROMPTS))
    with torch.no_grad():
        pu, pc, g = bb.guided_prediction(x, t[:1], c, u, 1.0)
        assert torch.equal(g, pc)  # true CFG off: the stock pipeline's prediction
        bb.embedded_guidance_scale = 2.0
        pc2 = bb.predict(x, t, c)
        bb.embedded_guidance_scale = 6.0
    assert not torch.allclose(pc, pc2)  # the embedded guidance value reaches the transformer


def test_hunyuan_scheduler_follows_the_pipeline_sigmas():
    from diffusers import FlowMatchEulerDiscreteScheduler

    bb = get_bundle("hunyuanvideo").bb
    ref = FlowMatchEulerDiscreteScheduler.from_config(bb.scheduler.config)
    ref.set_timesteps(sigmas=np.linspace(1.0, 0.0, 5)[:-1])
    assert torch.allclose(bb.timesteps_for(4), ref.timesteps)


def test_zeroscope_folds_frames_consistently():
    """Sites of different widths and resolutions; adapter input is [B, F*HW, C] frame-major, maps [B, F, HW]."""
    bb = get_bundle("zeroscope").bb
    sites = bb.attention_sites()
    assert len({s.video_dim for s in sites}) > 1
    switch = new_switch(bb, nonzero=0.1)
    x, t, c = inputs(bb)
    ct = bb.concept_token_mask(PROMPTS, [[CONCEPT]] * 2)
    seen: list[tuple[int, ...]] = []
    hooks = [a.register_forward_hook(lambda m, a, o: seen.append(tuple(a[0].shape))) for a in switch.adapters]
    with torch.no_grad(), switch.capturing(ct):
        bb.predict(x, t, c)
    for h in hooks:
        h.remove()
    outs, maps = switch.take()  # per-token squares of the adapter outputs, [B, F*HW]
    f = x.shape[2]
    assert len(outs) == len(maps) == len(sites) == len(seen)
    for o, m, s, shape in zip(outs, maps, sites, seen):
        assert shape[0] == 2 and shape[2] == s.video_dim and m.shape[:2] == (2, f)
        assert o.shape == (2, shape[1]) and shape[1] == m.shape[1] * m.shape[2]
    # per-video adapter outputs do not depend on the batch partner (no mixing across the folded batch)
    with torch.no_grad(), switch.capturing(ct[:1]):
        bb.predict(x[:1], t[:1], c[:1])
    outs1, maps1 = switch.take()
    torch.testing.assert_close(outs1[0], outs[0][:1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(maps1[-1], maps[-1][:1], atol=1e-6, rtol=1e-5)
