"""T2VUnlearning's localization follows its lineage (docs/t2vunlearning.md, "Localization: each choice and its
evidence"). The references below are re-derived from the public code, not from this package:

- Receler (jasper0314-huang/Receler) ``train_receler.py:138-143``: the attention maps are captured in the frozen
  forward (erasers disabled) on the concept prompt at x_t;
- Receler ``receler/concept_reg.py:29-34``: the chosen layers' maps averaged into one map, min-max normalised,
  ``mask[mask >= thres] = 1``; ``train_receler.py:241``: ``--mask_thres`` 0.1;
- the T2VUnlearning authors' ``receler/concept_reg_cogvideo.py:82-85``: min-max per frame (over h×w);
- Receler ``train_receler.py:180-185``: ``flip_mask = ~mask``; per layer
  ``((e_out * flip_mask) ** 2).mean(1).sum() / (flip_mask.sum() + 1e-9)``, then ``/= reg_count``.

Each test fails if a default drifts from that evidence.
"""

import pytest
import torch

from unlearn.backbones import SamplingSettings
from unlearn.methods.t2vunlearning.data import batch_embedding
from unlearn.methods.t2vunlearning.module import T2VUnlearning
from unlearn.methods.t2vunlearning.pseudo_data import (
    PseudoDataSettings,
    PseudoTrajectoryCache,
    TrajectoryFile,
    TrajectoryRequest,
    make_trajectories,
    sampler_identity,
)

PROMPTS = ["a naked person walking on the beach", "a nude woman standing in a sunlit room"]
WORDS = [["naked", "nude"]] * 2


def _model(**kw):
    torch.manual_seed(0)
    model = T2VUnlearning(backbone="cogvideox-2b", tiny=True, torch_dtype="float32", adapter_dim=8, **kw)
    g = torch.Generator().manual_seed(1)
    for a in model.switch.adapters:  # adapters far from zero: the adapted model's maps differ from the frozen
        torch.nn.init.normal_(a.up.weight, std=0.5, generator=g)
        torch.nn.init.normal_(a.down.weight, std=0.5, generator=g)
    return model


def _receler_mask(frozen_maps: list[torch.Tensor], thres: float) -> torch.Tensor:
    """One mask from the frozen maps: per frame min-max (authors), mean over layers, ``>= thres`` (Receler)."""
    normed = []
    for m in frozen_maps:  # [B, F, S]
        lo = m.min(dim=-1, keepdim=True)[0]
        hi = m.max(dim=-1, keepdim=True)[0]
        normed.append((m - lo) / (hi - lo))
    avg = torch.stack(normed, dim=1).mean(1)
    mask = avg.clone()
    mask[avg >= thres] = 1
    mask[avg < thres] = 0
    return mask


def _receler_reg(eraser_outs: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """Receler's regularizer for one video (batch 1): e_out [1, N, C], mask [1, N]."""
    loss = torch.tensor(0.0)
    for e_out in eraser_outs:
        flip_mask = (~mask.bool()).float().unsqueeze(-1)  # [1, N, 1]
        loss = loss + ((e_out * flip_mask) ** 2).mean(-1).sum() / (flip_mask.sum() + 1e-9)
    return loss / len(eraser_outs)


def test_defaults_are_the_lineage_values():
    model = T2VUnlearning(backbone="cogvideox-2b", tiny=True, torch_dtype="float32", adapter_dim=8)
    hp = model.hparams
    assert hp.mask_threshold == 0.1  # Receler train_receler.py:241
    assert (hp.mask_source, hp.mask_mode, hp.mask_normalization, hp.loc_normalization) == (
        "frozen",
        "averaged",
        "frame",
        "masked_mean",
    )


def test_default_l_loc_is_recelers_regularizer_on_the_frozen_models_averaged_mask():
    # threshold 0.5 here: at 0.1 the tiny model's averaged mask covers every token (L_loc = 0, nothing to compare)
    model = _model(alpha=1.0, mask_threshold=0.5)
    bb, switch = model.backbone, model.switch
    x = bb.initial_noise([0], 9, 32, 32)
    t = torch.tensor([600])
    cond = bb.encode_prompts(PROMPTS[:1])
    tokens = bb.concept_token_mask(PROMPTS[:1], WORDS[:1])
    # the frozen forward on the concept prompt at x_t (Receler: under DisableEraser, AttnMapsCapture)
    with torch.no_grad(), switch.disabled(), switch.capturing(tokens):
        bb.predict(x, t, cond)
    frozen_maps = switch.take()[1]
    batch = {
        "x_t": x,
        "timesteps": t,
        "target": torch.zeros_like(x),
        "concept_tokens": tokens,
        **cond.to_dict("cond."),
        **{f"concept_maps.{i}": m for i, m in enumerate(frozen_maps)},
    }
    outs: list[torch.Tensor] = []
    hooks = [a.register_forward_hook(lambda mod, inp, out: outs.append(out.detach())) for a in switch.adapters]
    with torch.no_grad():
        losses = model.compute_losses(batch)
    for h in hooks:
        h.remove()
    mask = _receler_mask(frozen_maps, 0.5).reshape(1, -1)
    expected = _receler_reg(outs, mask)
    assert 0 < float(losses["mask_coverage"]) < 1
    torch.testing.assert_close(losses["loc"], expected, rtol=1e-5, atol=1e-9)
    # the adapted model's maps give another mask, so the check above can tell the two sources apart
    with torch.no_grad(), switch.capturing(tokens):
        bb.predict(x, t, cond)
    adapted_mask = _receler_mask(switch.take()[1], 0.5).reshape(1, -1)
    assert not torch.equal(adapted_mask, mask)
    assert not torch.allclose(_receler_reg(outs, adapted_mask), expected)


def test_named_options_keep_the_earlier_choices():
    """mask_source adapted, mask_mode per_layer, loc_normalization paper, mask_normalization video still work."""
    model = _model(
        alpha=1.0, mask_source="adapted", mask_mode="per_layer", loc_normalization="paper", mask_threshold=0.5
    )
    bb, switch = model.backbone, model.switch
    x = bb.initial_noise([0], 9, 32, 32)
    t = torch.tensor([600])
    cond = bb.encode_prompts(PROMPTS[:1])
    tokens = bb.concept_token_mask(PROMPTS[:1], WORDS[:1])
    batch = {"x_t": x, "timesteps": t, "target": torch.zeros_like(x), "concept_tokens": tokens, **cond.to_dict("cond.")}
    outs: list[torch.Tensor] = []
    hooks = [a.register_forward_hook(lambda mod, inp, out: outs.append(out.detach())) for a in switch.adapters]
    with torch.no_grad():
        loc = model.compute_losses(batch)["loc"]
    for h in hooks:
        h.remove()
    with torch.no_grad(), switch.capturing(tokens):
        bb.predict(x, t, cond)
    maps = switch.take()[1]
    expected = torch.tensor(0.0)
    for o, m in zip(
        outs, maps, strict=True
    ):  # each layer its own adapted map, per frame, Eq. (7) over the prediction's size
        lo, hi = m.amin(-1, keepdim=True), m.amax(-1, keepdim=True)
        keep = ((m - lo) / (hi - lo) >= 0.5).float().reshape(1, -1, 1)
        expected = expected + ((o * (1 - keep)) ** 2).sum() / x[0].numel()
    torch.testing.assert_close(loc, expected / len(outs), rtol=1e-5, atol=1e-9)
    # the video-wide normalisation differs from the per-frame one on these maps
    from unlearn.methods.t2vunlearning.losses import concept_mask

    assert not torch.equal(concept_mask(maps[0], 0.5, "video")[1], concept_mask(maps[0], 0.5, "frame")[1])


def test_frozen_maps_are_recorded_with_the_pseudo_data_and_cached(tmp_path):
    """The maps come from the sampler's own frozen conditional forward at the recorded x_t (no extra forward),
    are cached with the trajectory, and a cached entry that lacks them is made again."""
    model = _model(alpha=1.0)
    bb, switch = model.backbone, model.switch
    tokens = bb.concept_token_mask(PROMPTS, WORDS)
    reqs = [
        TrajectoryRequest("unlearn", p, s, p, tuple(bool(b) for b in m.tolist()))
        for p, s, m in zip(PROMPTS, (3, 4), tokens, strict=True)
    ]
    settings = PseudoDataSettings(
        SamplingSettings(num_frames=9, height=32, width=32, num_inference_steps=4, guidance_scale=6.0)
    )
    calls = []
    hook = bb.denoiser.register_forward_pre_hook(lambda *a: calls.append(1))
    with switch.disabled():
        plain = make_trajectories(
            bb, [TrajectoryRequest("unlearn", p, s, p) for p, s in zip(PROMPTS, (3, 4), strict=True)], settings, 7.0
        )
        n_plain = len(calls)
        made = make_trajectories(bb, reqs, settings, 7.0)
    hook.remove()
    assert len(calls) - n_plain == n_plain, "recording the maps must not add a forward"
    torch.testing.assert_close(made[0]["target"], plain[0]["target"])
    n_sites = len(switch.adapters)
    assert sorted(k for k in made[1] if k.startswith("concept_maps.")) == [f"concept_maps.{i}" for i in range(n_sites)]
    # step 2 of request 1: the frozen model's maps on its loss prompt at its x_t
    entry = made[1]
    cond = bb.encode_prompts([PROMPTS[1]])
    with torch.no_grad(), switch.disabled(), switch.capturing(tokens[1:]):
        bb.predict(entry["x_t"][2:3], entry["timesteps"][2:3], cond)
    for i, m in enumerate(switch.take()[1]):
        torch.testing.assert_close(entry[f"concept_maps.{i}"][2], m[0], rtol=1e-4, atol=1e-7)
    # cached with the trajectory; an entry asked for maps that holds none is made again
    cache = PseudoTrajectoryCache(tmp_path)
    with switch.disabled():
        paths = cache.build(bb, reqs, settings, 7.0, batch_size=2, progress=False)
    tf = TrajectoryFile(paths[1])
    step = tf.step(2)
    for i in range(n_sites):
        torch.testing.assert_close(step[f"concept_maps.{i}"], entry[f"concept_maps.{i}"][2])
    key = reqs[0].key(sampler_identity(bb), settings, 7.0)
    stripped = {k: v for k, v in made[0].items() if not k.startswith("concept_maps.")}
    cache.put(key, stripped, {**reqs[0].__dict__, "concept_tokens": list(reqs[0].concept_tokens)})
    with switch.disabled(), pytest.warns(RuntimeWarning, match="holds none"):
        cache.build(bb, reqs, settings, 7.0, batch_size=2, progress=False)
    assert cache.rebuilt and "concept_maps.0" in TrajectoryFile(paths[0]).map_keys


def test_frozen_source_needs_the_recorded_maps():
    model = _model(alpha=1.0)
    bb = model.backbone
    x = bb.initial_noise([0], 9, 32, 32)
    cond = bb.encode_prompts(PROMPTS[:1])
    batch = {
        "x_t": x,
        "timesteps": torch.tensor([600]),
        "target": torch.zeros_like(x),
        "concept_tokens": bb.concept_token_mask(PROMPTS[:1], WORDS[:1]),
        **cond.to_dict("cond."),
    }
    with pytest.raises(ValueError, match="mask_source"):
        model.compute_losses(batch)
    assert batch_embedding(batch, "cond.").hidden_states.shape[0] == 1
