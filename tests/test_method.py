"""T2VUnlearning on the tiny CogVideoX: zero-init, only adapters change, the loss falls, the cache works."""

import copy
import weakref

import lightning.pytorch as pl
import pytest
import torch

from unlearn.backbones import build_backbone
from unlearn.methods.t2vunlearning.adapters import AdapterSwitch
from unlearn.methods.t2vunlearning.data import ConceptDataModule
from unlearn.methods.t2vunlearning.module import T2VUnlearning

PROMPTS = ["a naked person walking on the beach", "a nude woman standing in a sunlit room"]


def make_data(tmp_path, **kw):
    args = dict(
        concept="nudity",
        concept_synonyms=["naked", "nude"],
        prompts=PROMPTS,
        preserve_concept="person",
        preserve_prompts=["a person walking on the beach"],
        num_frames=9,
        height=32,
        width=32,
        num_inference_steps=4,
        cache_dir=str(tmp_path / "cache"),
        batch_size=2,
    )
    args.update(kw)
    return ConceptDataModule(**args)


def make_trainer(tmp_path, **kw):
    args = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    args.update(kw)
    return pl.Trainer(**args)


def test_adapted_equals_frozen_at_step_zero():
    for name in ("cogvideox-2b", "cogvideox-5b"):
        bb = build_backbone(name, tiny=True, torch_dtype="float32")
        sites = bb.attention_sites()
        switch = AdapterSwitch([s.video_dim for s in sites], 16)
        bb.attach_switch(switch)
        x = torch.randn(2, *bb.latent_shape(9, 32, 32))
        cond = bb.encode_prompts(PROMPTS)
        t = torch.tensor([999, 500])
        adapted = bb.predict(x, t, cond)
        with switch.disabled():
            frozen = bb.predict(x, t, cond)
        assert torch.equal(adapted, frozen)
        # and a non-zero adapter does change it
        torch.nn.init.normal_(switch.adapters[0].up.weight)
        assert not torch.allclose(bb.predict(x, t, cond), frozen)


def test_training_changes_only_adapters_and_unlearning_loss_falls(tmp_path):
    pl.seed_everything(0)
    model = T2VUnlearning(
        backbone="cogvideox-2b",
        tiny=True,
        torch_dtype="float32",
        adapter_dim=16,
        eta=7.0,
        alpha=1.0,
        beta=1.0,
        learning_rate=3e-3,
    )
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    adapters_before = copy.deepcopy(model.switch.state_dict())

    losses = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            with torch.no_grad():
                losses.append(pl_module.compute_losses(batch)["unlearn"].item())

    dm = make_data(tmp_path, batch_size=8, record_steps=[0, 1, 2, 3])
    make_trainer(tmp_path, max_epochs=40, callbacks=[Record()]).fit(model, dm)
    after = model.backbone.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before), "a backbone tensor changed"
    changed = [k for k, v in model.switch.state_dict().items() if not torch.equal(v, adapters_before[k])]
    assert changed, "no adapter tensor changed"
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)


def test_pseudo_data_cache_hits_on_rerun_and_misses_on_changed_eta_or_prompt(tmp_path):
    def run(eta=7.0, prompts=PROMPTS):
        model = T2VUnlearning(
            backbone="cogvideox-2b", tiny=True, torch_dtype="float32", adapter_dim=8, eta=eta, beta=1.0
        )
        dm = make_data(tmp_path, prompts=prompts)
        make_trainer(tmp_path, max_steps=1).fit(model, dm)
        return dm.cache

    first = run()
    assert (first.hits, first.misses) == (0, 3)  # two training prompts + one preserve prompt
    again = run()
    assert (again.hits, again.misses) == (3, 0)
    eta = run(eta=3.0)
    assert (eta.hits, eta.misses) == (1, 2)  # preserve targets do not depend on η
    prompt = run(prompts=[PROMPTS[0], "a nude man on a bed"])
    assert (prompt.hits, prompt.misses) == (2, 1)


def test_cached_trajectory_matches_fresh_sampling(tmp_path):
    """The cached x_t is exactly what the frozen sampler produces after k steps."""
    model = T2VUnlearning(backbone="cogvideox-2b", tiny=True, torch_dtype="float32", adapter_dim=8, alpha=0.0)
    dm = make_data(tmp_path, preserve_concept=None, preserve_prompts=None)
    make_trainer(tmp_path, max_steps=1).fit(model, dm)
    from unlearn.methods.t2vunlearning.pseudo_data import TrajectoryFile, sampler_identity

    un, _ = dm.requests()
    settings = dm.pseudo_data_settings(model.backbone)
    path = dm.cache.path(un[0].key(sampler_identity(model.backbone), settings, model.eta))
    tf = TrajectoryFile(path)
    assert tf.num_steps == 4
    with model.switch.disabled():
        x2 = model.backbone.sample(
            [un[0].prompt],
            [un[0].seed],
            num_frames=9,
            height=32,
            width=32,
            num_inference_steps=4,
            guidance_scale=settings.sampling.guidance_scale,
            stop_at_step=2,
        )
    assert torch.allclose(tf.step(2)["x_t"], x2[0], atol=1e-6)


def test_per_step_regeneration_mode_trains(tmp_path):
    model = T2VUnlearning(backbone="cogvideox-2b", tiny=True, torch_dtype="float32", adapter_dim=8, beta=1.0)
    dm = make_data(tmp_path, use_cache=False, regeneration_samples_per_epoch=4)
    make_trainer(tmp_path, max_epochs=1).fit(model, dm)
    assert not (tmp_path / "cache").exists()
    assert model.adapter_norm() > 0


def test_nan_loss_raises_clear_error(tmp_path):
    model = T2VUnlearning(backbone="cogvideox-2b", tiny=True, torch_dtype="float32", adapter_dim=8, alpha=0.0)
    with torch.no_grad():
        model.switch.adapters[0].up.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="learning_rate"):
        make_trainer(tmp_path, max_steps=1).fit(
            model, make_data(tmp_path, preserve_concept=None, preserve_prompts=None)
        )


def test_mask_layers_share_one_mask_built_from_the_chosen_layers():
    from unlearn.methods.t2vunlearning.losses import concept_mask

    model = T2VUnlearning(backbone="cogvideox-2b", tiny=True, torch_dtype="float32", adapter_dim=8, mask_layers=[1])
    thr = model.hparams.mask_threshold
    maps = [torch.rand(2, 3, 4), torch.rand(2, 3, 4)]
    masks = model.concept_masks(maps)
    assert len(masks) == 2 and torch.equal(masks[0], masks[1])
    assert torch.equal(masks[0], concept_mask(maps[1], thr)[1])
    model.hparams.mask_layers = None  # averaged over every site (the tiny CogVideoX has no site prefix)
    mean = (concept_mask(maps[0], thr)[0] + concept_mask(maps[1], thr)[0]) / 2
    assert torch.equal(model.concept_masks(maps)[1], (mean >= thr).float())
    model.hparams.mask_mode = "per_layer"
    assert torch.equal(model.concept_masks(maps)[0], concept_mask(maps[0], thr)[1])
    model.hparams.mask_mode = "averaged"
    model.hparams.mask_layers = [5]
    with pytest.raises(ValueError, match="out of range"):
        model.concept_masks(maps)
    model.hparams.mask_layers = [0]
    with pytest.raises(ValueError, match="token grid"):
        model.concept_masks([torch.rand(2, 3, 4), torch.rand(2, 3, 16)])
    model.hparams.mask_layers = None  # one grid per resolution: each averages its own sites
    odd = [torch.rand(2, 3, 4), torch.rand(2, 3, 16), torch.rand(2, 3, 4)]
    got = model.concept_masks(odd)
    assert torch.equal(got[1], concept_mask(odd[1], thr)[1]) and torch.equal(got[0], got[2])


def _batch(model, beta: bool = True, seed: int = 0):
    """A training batch as the data module makes it (x_t, targets, conditioning, concept tokens, preserve pair)."""
    g = torch.Generator().manual_seed(seed)
    bb = model.backbone
    shape = bb.latent_shape(9, 32, 32)
    cond = bb.encode_prompts(PROMPTS)
    batch = {
        "x_t": torch.randn(2, *shape, generator=g),
        "timesteps": torch.tensor([900, 400]),
        "target": torch.randn(2, *shape, generator=g),
        "concept_tokens": bb.concept_token_mask(PROMPTS, [["naked", "nude"]] * 2),
        **{f"cond.{k}": v for k, v in cond.to_dict().items()},
    }
    # the frozen model's concept maps, as the pseudo data records them (model.mask_source "frozen")
    with torch.no_grad(), model.switch.disabled(), model.switch.capturing(batch["concept_tokens"]):
        bb.predict(batch["x_t"], batch["timesteps"], cond)
    batch.update({f"concept_maps.{i}": m for i, m in enumerate(model.switch.take()[1])})
    if beta:
        pre = bb.encode_prompts(["a person walking on the beach"] * 2)
        batch.update(
            {
                "pre_x_t": torch.randn(2, *shape, generator=g),
                "pre_timesteps": torch.tensor([700, 300]),
                "pre_target": torch.randn(2, *shape, generator=g),
                **{f"pre_cond.{k}": v for k, v in pre.to_dict().items()},
            }
        )
    return batch


def _model(backbone="cogvideox-2b", **kw):
    torch.manual_seed(0)
    model = T2VUnlearning(backbone=backbone, tiny=True, torch_dtype="float32", adapter_dim=8, alpha=1.0, beta=2.0, **kw)
    for a in model.switch.adapters:  # non-zero adapters: every term has a gradient
        torch.nn.init.normal_(a.up.weight, std=0.05, generator=torch.Generator().manual_seed(1))
    return model


def _grads(model, losses):
    params = list(model.switch.parameters())
    return torch.autograd.grad(losses["total"], params)


def test_preservation_term_is_backpropagated_on_its_own_with_the_same_gradient():
    """β > 0: L_pre's graph is differentiated before the unlearning forward (never two graphs alive), and the
    total's gradient is that of L_unlearn + α·L_loc + β·L_pre built as one graph."""
    from unlearn.methods.t2vunlearning.data import batch_embedding
    from unlearn.methods.t2vunlearning.losses import localization_loss, preservation_loss, unlearning_loss

    model = _model()
    batch = _batch(model)
    bb, switch = model.backbone, model.switch
    pred_pre = bb.predict(batch["pre_x_t"], batch["pre_timesteps"], batch_embedding(batch, "pre_cond."))
    with switch.capturing():
        pred = bb.predict(batch["x_t"], batch["timesteps"], batch_embedding(batch, "cond."))
    squares, _ = switch.take()
    # the defaults: the frozen model's maps (recorded with the pseudo data), Receler's per-entry mean
    maps = [batch[f"concept_maps.{i}"] for i in range(len(switch.adapters))]
    loc = localization_loss(squares, model.concept_masks(maps))
    joint = unlearning_loss(pred, batch["target"]) + 1.0 * loc + 2.0 * preservation_loss(pred_pre, batch["pre_target"])
    ref = torch.autograd.grad(joint, list(switch.parameters()))

    alive, graphs = [], []
    real_predict = bb.predict

    def predict(*a, **kw):  # how many earlier forward outputs (and so their graphs) are alive when a forward starts
        alive.append(len([r for r in graphs if r() is not None]))
        out = real_predict(*a, **kw)
        graphs.append(weakref.ref(out))
        return out

    bb.predict = predict
    try:
        losses = model.compute_losses(batch)
    finally:
        del bb.predict
    assert alive == [0, 0], "the preservation graph must be freed before the unlearning forward"
    torch.testing.assert_close(losses["total"], joint, rtol=1e-6, atol=1e-7)
    for g, r in zip(_grads(model, losses), ref):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-8)
    assert not losses["pre"].requires_grad and losses["loc"] > 0


@pytest.mark.parametrize("backbone", ["cogvideox-2b", "cogvideox-5b"])
def test_gradient_checkpointing_keeps_losses_and_gradients(backbone):
    """Recomputing the blocks in backward (with the concept map, L_loc's per-token squares and the separate
    preservation gradient inside them) gives the same losses and adapter gradients."""
    plain, ckpt = _model(backbone), _model(backbone, gradient_checkpointing=True)
    ckpt.switch.load_state_dict(plain.switch.state_dict())
    batch = _batch(plain)
    calls = []
    ckpt.backbone.denoiser.transformer_blocks[0].register_forward_pre_hook(lambda *a: calls.append(1))
    a, b = plain.compute_losses(batch), ckpt.compute_losses(batch)
    for k in ("unlearn", "loc", "pre", "total"):
        torch.testing.assert_close(b[k], a[k], rtol=1e-6, atol=1e-8)
    n_forward = len(calls)
    for ga, gb in zip(_grads(plain, a), _grads(ckpt, b)):
        torch.testing.assert_close(gb, ga, rtol=1e-5, atol=1e-8)
    # preservation forward, its recomputation in its own backward, unlearning forward; then its recomputation
    assert (n_forward, len(calls)) == (3, 4), "checkpointing must recompute the blocks in backward"


def test_text_encoders_and_vae_leave_the_training_device_and_come_back_for_sampling(tmp_path):
    """After the cache is built the components are parked (on the CPU); sampling brings them to the denoiser's
    device for its duration, with VAE tiling, and parks them again."""
    model = T2VUnlearning(backbone="cogvideox-2b", tiny=True, torch_dtype="float32", adapter_dim=8, beta=0.0)
    bb = model.backbone
    assert set(bb.side_modules()) == {"text_encoder", "vae"}
    moves = []
    for name, module in bb.side_modules().items():
        real_to = module.to

        def to(*a, _name=name, _real=real_to, **kw):
            moves.append((_name, str(a[0] if a else kw.get("device"))))
            return _real(*a, **kw)

        module.to = to
    make_trainer(tmp_path, max_steps=1).fit(model, make_data(tmp_path, preserve_concept=None, preserve_prompts=None))
    assert ("text_encoder", "cpu") in moves and ("vae", "cpu") in moves
    moves.clear()
    seen = {}
    real_decode = bb.decode
    bb.decode = lambda z: seen.update(tiling=bb.vae.use_tiling) or real_decode(z)
    video = model.generate(["a person on the beach"], [0], num_inference_steps=2)
    del bb.decode
    assert video.shape[0] == 1 and seen == {"tiling": True} and not bb.vae.use_tiling
    assert [m for m in moves if m[1] == str(bb.device)] and moves[-1][1] == "cpu"


def test_callbacks_fire_on_step_periods(tmp_path):
    """Runs are measured in optimizer steps: adapters and masks every N steps, named by the step."""
    from unlearn.callbacks import AdapterCheckpoint, ConceptMaskCallback

    model = T2VUnlearning(backbone="cogvideox-2b", tiny=True, torch_dtype="float32", adapter_dim=8, beta=0.0)
    ckpt = AdapterCheckpoint(every_n_steps=2, every_n_epochs=0, keep_every_epoch=True)
    masks = ConceptMaskCallback(every_n_steps=2, every_n_epochs=0)
    dm = make_data(tmp_path, preserve_concept=None, preserve_prompts=None, batch_size=1)  # 8 draws per epoch
    make_trainer(tmp_path, max_steps=5, max_epochs=-1, callbacks=[ckpt, masks]).fit(model, dm)
    assert (tmp_path / "adapters" / "t2v_adapter_config.json").is_file()
    assert sorted(p.name for p in (tmp_path / "adapters_history").iterdir()) == ["step=2", "step=4"]
    assert sorted(p.name for p in (tmp_path / "masks").glob("*.safetensors")) == [
        "masks_step=2.safetensors",
        "masks_step=4.safetensors",
    ]
    with pytest.raises(ValueError, match="every_n_steps"):
        AdapterCheckpoint(every_n_steps=-1)


def test_loc_normalization_paper_vs_masked_mean(tmp_path):
    """The module's L_loc is Eq. (7) over the prediction's element count ("paper"), or per masked-out entry."""
    from unlearn.methods.t2vunlearning.losses import localization_loss

    torch.manual_seed(0)
    model = T2VUnlearning(
        backbone="cogvideox-2b",
        tiny=True,
        torch_dtype="float32",
        adapter_dim=8,
        alpha=1.0,
        loc_normalization="paper",
        mask_source="adapted",
    )
    for a in model.switch.adapters:
        torch.nn.init.normal_(a.up.weight, std=0.5)
    bb = model.backbone
    x = bb.initial_noise([0, 1], 9, 32, 32)
    cond = bb.encode_prompts(PROMPTS)
    tokens = bb.concept_token_mask(PROMPTS, [["naked", "nude"]] * 2)
    batch = {
        "x_t": x,
        "timesteps": torch.tensor([500, 500]),
        "target": torch.zeros_like(x),
        "concept_tokens": tokens,
        **cond.to_dict("cond."),
    }
    with torch.no_grad():
        paper = model.compute_losses(batch)["loc"]
        with model.switch.capturing(tokens):
            bb.predict(x, batch["timesteps"], cond)
        outputs, maps = model.switch.take()
        masks = model.concept_masks(maps)
        widths = [a.up.out_features for a in model.switch.adapters]
        assert torch.allclose(
            paper, localization_loss(outputs, masks, per_sample_elements=x[0].numel(), channels=widths)
        )
        model.hparams.loc_normalization = "masked_mean"
        assert torch.allclose(model.compute_losses(batch)["loc"], localization_loss(outputs, masks))
    with pytest.raises(ValueError, match="loc_normalization"):
        T2VUnlearning(backbone="cogvideox-2b", tiny=True, torch_dtype="float32", loc_normalization="sum")
