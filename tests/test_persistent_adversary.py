"""T2VUnlearning's persistent adversary (``adversary: persistent``, issue #28): a bank of unbounded perturbations
of the text conditioning, one per training prompt, warm-started across steps with its own Adam state and carried
through checkpoints. Real tiny models, the real Lightning trainer and the real ``unlearn fit``."""

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import yaml
from toy_training import quiet_trainer, tiny_toy_data, tiny_toy_model

from unlearn.checks import InputError
from unlearn.cli import main
from unlearn.io import load_checkpoint_file, save_checkpoint_file
from unlearn.methods.t2vunlearning import T2VUnlearning, ToyWorldDataModule, batch_embedding
from unlearn.methods.t2vunlearning.adversarial import (
    ConditioningBank,
    bank_conditioning,
    persistent_adversary_steps,
)
from unlearn.methods.t2vunlearning.losses import unlearning_loss

ROOT = Path(__file__).resolve().parent.parent


def _randomise_adapters(model: T2VUnlearning, seed: int = 0) -> None:
    """Give the zero-initialised ``Up`` layers weights, so that the adapted model differs from the frozen one."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.switch.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def _batch(model: T2VUnlearning, dm: ToyWorldDataModule, tmp_path) -> dict:
    trainer = quiet_trainer(tmp_path, max_steps=0)
    trainer.fit(model, dm)  # builds the pseudo data; no step
    return next(iter(dm.train_dataloader()))


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"adversary": "free"}, "model.adversary"),
        ({"adversary": "persistent", "adversary_lr": 0.0}, "model.adversary_lr"),
        ({"adversary": "persistent", "adversary_weight_decay": -0.1}, "model.adversary_weight_decay"),
        ({"adversary": "persistent", "adversary_bank": "concept"}, "model.adversary_bank"),
        ({"adversary": "persistent", "adversarial_steps": -1}, "model.adversarial_steps"),
    ],
)
def test_bad_adversary_settings_are_refused(kw, match):
    with pytest.raises(InputError, match=match):
        tiny_toy_model(**kw)


def test_the_inner_objective_falls_and_the_bank_keeps_its_adam_state(tmp_path):
    pl.seed_everything(0)
    model = tiny_toy_model(adversary="persistent", adversarial_steps=3)
    batch = _batch(model, tiny_toy_data(tmp_path), tmp_path)
    _randomise_adapters(model)
    bank, bb = ConditioningBank(), model.backbone
    rows = torch.as_tensor(batch["prompt_index"])
    cond = batch_embedding(batch, "cond.")
    x_t, t = batch["x_t"], batch["timesteps"]
    with torch.no_grad(), model.switch.disabled():
        concept = bb.predict(x_t, t, cond)
    losses = persistent_adversary_steps(lambda c: bb.predict(x_t, t, c), cond, concept, bank, rows, 20, 0.05, 0.0)
    # the adversary's objective (the adapted model's prediction vs the frozen concept prediction) falls
    assert losses[-1] < 0.7 * losses[0], losses
    assert bank.entries == int(rows.max()) + 1 and float(bank.scale) > 0
    visits = torch.bincount(rows, minlength=bank.entries)
    # one Adam step per visited entry and inner step (a row twice in the batch: one step with the summed gradient)
    assert bank.steps.tolist() == [20 * int(v > 0) for v in visits]
    # warm start: a second call continues from the bank (its first objective is the first call's last level)
    again = persistent_adversary_steps(lambda c: bb.predict(x_t, t, c), cond, concept, bank, rows, 1, 0.05, 0.0)
    assert again[0] < losses[1]
    # the perturbed conditioning is the clean one plus scale × delta
    perturbed = bank_conditioning(cond, bank, rows)
    diff = (perturbed.hidden_states - cond.hidden_states) / bank.scale
    assert torch.allclose(diff, bank.delta[rows], atol=1e-5)


def test_zero_adversary_steps_is_the_plain_method(tmp_path):
    dm = tiny_toy_data(tmp_path)
    pl.seed_everything(0)
    plain = tiny_toy_model()
    batch = _batch(plain, dm, tmp_path)
    pl.seed_everything(0)
    off = tiny_toy_model(adversary="persistent", adversarial_steps=0)
    assert off.adversary is None
    off.switch.load_state_dict(plain.switch.state_dict())
    a, b = plain.compute_losses(batch), off.compute_losses(batch)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_adversarial_erase_gradient_reaches_the_adapters(tmp_path):
    """``total``'s gradient is that of ``L_unlearn + β L_pre + w · L_unlearn(cond + bank)`` with the bank after
    its inner steps (the injected gradient is the adversarial forward's, taken before the clean forward)."""
    dm = tiny_toy_data(tmp_path)
    pl.seed_everything(0)
    model = tiny_toy_model(adversary="persistent", adversarial_steps=2, adversarial_weight=0.5)
    batch = _batch(model, dm, tmp_path)
    _randomise_adapters(model)
    params = [p for p in model.switch.parameters() if p.requires_grad]
    losses = model.compute_losses(batch)
    got = torch.autograd.grad(losses["total"], params, allow_unused=True)
    # the same gradient written out, with the bank as it is now (after the inner steps)
    rows = torch.as_tensor(batch["prompt_index"])
    cond = batch_embedding(batch, "cond.")
    bb = model.backbone
    pre = torch.mean(
        (
            bb.predict(batch["pre_x_t"], batch["pre_timesteps"], batch_embedding(batch, "pre_cond."))
            - batch["pre_target"]
        )
        ** 2
    )
    clean = unlearning_loss(bb.predict(batch["x_t"], batch["timesteps"], cond), batch["target"])
    adv = unlearning_loss(
        bb.predict(batch["x_t"], batch["timesteps"], bank_conditioning(cond, model.adversary, rows)), batch["target"]
    )
    assert float(adv.detach()) == pytest.approx(float(losses["adv_unlearn"]), rel=1e-5)
    assert float(losses["total"]) == pytest.approx(float(clean + pre + 0.5 * adv), rel=1e-5)
    want = torch.autograd.grad(clean + pre + 0.5 * adv, params, allow_unused=True, retain_graph=True)
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if g is not None:
            assert torch.allclose(g, w, rtol=1e-4, atol=1e-7)
    # the adversarial term matters: without it the gradient differs
    without = torch.autograd.grad(clean + pre, params, allow_unused=True)
    assert max(float((g - w).abs().max()) for g, w in zip(got, without) if g is not None) > 1e-6


def _config(folder: Path, cache: Path, **extra) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "config": str(ROOT / "configs" / "tiny_cogvideox.yaml"),
        "trainer.max_epochs": 2,
        "trainer.enable_progress_bar": False,
        "trainer.logger": False,
        "trainer.default_root_dir": str(folder),
        "trainer.callbacks": [
            {
                "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                "init_args": {
                    "dirpath": str(folder / "checkpoints"),
                    "save_last": True,
                    "save_top_k": -1,
                    "every_n_train_steps": 1,
                },
            },
            {
                "class_path": "unlearn.callbacks.AdapterCheckpoint",
                "init_args": {"dirpath": str(folder / "adapters"), "every_n_epochs": 0},
            },
        ],
        "data.init_args.cache_dir": str(cache),
        "model.init_args.adversary": "persistent",
        "model.init_args.adversarial_steps": 2,
        **extra,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_the_bank_is_saved_in_checkpoints_and_a_resumed_run_continues_it(tmp_path):
    cache = tmp_path / "cache"
    assert main(["fit", "--config", str(_config(tmp_path / "full", cache))]) == 0
    ckpts = tmp_path / "full" / "checkpoints"
    mid = load_checkpoint_file(ckpts / "epoch=0-step=2.ckpt")
    end = load_checkpoint_file(ckpts / "last.ckpt")
    assert {k for k in mid["state_dict"] if k.startswith("adversary.")} == {
        "adversary.delta",
        "adversary.exp_avg",
        "adversary.exp_avg_sq",
        "adversary.steps",
        "adversary.scale",
    }
    # tiny config: 2 prompts x 4 recorded steps, batch 2; each step gives every distinct prompt of its batch 2
    # Adam steps (both prompts: 4, one prompt twice: 2)
    n_mid, n_end = (int(c["state_dict"]["adversary.steps"].sum()) for c in (mid, end))
    assert n_mid % 2 == 0 and 2 * 2 <= n_mid <= 2 * 4
    assert n_end % 2 == 0 and 8 * 2 <= n_end <= 8 * 4 and n_end > n_mid
    # the bank persists across steps: it moved on between step 2 and the end
    assert not torch.equal(mid["state_dict"]["adversary.delta"], end["state_dict"]["adversary.delta"])
    assert float(end["state_dict"]["adversary.delta"].abs().max()) > 0

    run = tmp_path / "resumed"
    assert main(["fit", "--config", str(_config(run, cache)), "--ckpt_path", str(ckpts / "epoch=0-step=2.ckpt")]) == 0
    resumed = load_checkpoint_file(run / "checkpoints" / "last.ckpt")["state_dict"]
    for k, v in end["state_dict"].items():
        if k.startswith(("adversary.", "switch.")):
            assert torch.allclose(resumed[k].float(), v.float(), atol=1e-6), k

    # the test can fail: a run that starts its bank afresh at step 2 ends elsewhere
    fresh = dict(mid)
    fresh["state_dict"] = {k: v for k, v in mid["state_dict"].items() if not k.startswith("adversary.")}
    save_checkpoint_file(fresh, tmp_path / "no_bank.ckpt")

    other = tmp_path / "other"
    assert main(["fit", "--config", str(_config(other, cache)), "--ckpt_path", str(tmp_path / "no_bank.ckpt")]) == 0
    other_end = load_checkpoint_file(other / "checkpoints" / "last.ckpt")["state_dict"]
    assert not torch.allclose(other_end["adversary.delta"], end["state_dict"]["adversary.delta"], atol=1e-4)
