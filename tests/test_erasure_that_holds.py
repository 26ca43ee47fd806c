"""Issue #28: several refusal directions combined against the kept prompts' outputs (``combine="kept_whitened"``)
and T2VUnlearning's preservation set chosen by the model's text conditioning (``preserve_rule="conditioning"``)."""

from __future__ import annotations

import warnings

import pytest
import torch

from unlearn.checks import InputError
from unlearn.methods.refusal import RefusalPairsDataModule, RefusalVectorConfig, apply_refusal_edit
from unlearn.methods.refusal.keep import kept_energy_share, whiten_against_kept
from unlearn.toyworld import weights_available

warnings.filterwarnings("ignore", category=FutureWarning)
needs_toy = pytest.mark.skipif(not weights_available(), reason="toy-world weights not shipped")
THREE = ["red ring", "blue square", "green cross"]


# ====================================================================== the whitening, in closed form
def _kept(n: int, d: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scales = torch.linspace(3.0, 0.1, d, dtype=torch.float64)  # anisotropic: some directions carry the energy
    return torch.randn(n, d, generator=g, dtype=torch.float64) * scales


@pytest.mark.parametrize("n", [5, 40])  # Woodbury (n < D) and the direct solve (n >= D)
def test_whitening_is_the_ridge_solve(n):
    d = 12
    kept = _kept(n, d)
    basis = torch.randn(d, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ridge = 0.3
    s = kept.T @ kept / n
    lam = ridge * torch.trace(s) / d
    expected = torch.linalg.solve(s + lam * torch.eye(d, dtype=torch.float64), basis)
    torch.testing.assert_close(whiten_against_kept(basis, kept, ridge), expected, rtol=1e-9, atol=1e-9)


def test_whitened_direction_avoids_the_kept_outputs_and_tends_to_the_plain_one():
    d = 6
    e = torch.eye(d, dtype=torch.float64)
    # the kept outputs live on axis 0 (plus a little everywhere); the concept differs along axes 0 and 1
    kept = torch.cat([5.0 * e[:1].repeat(8, 1) * torch.linspace(0.5, 1.5, 8, dtype=torch.float64)[:, None], 0.01 * e])
    diff = (e[0] + e[1])[:, None]
    plain = diff / diff.norm()
    small = whiten_against_kept(diff, kept, 1e-3)
    small = small / small.norm()
    big = whiten_against_kept(diff, kept, 1e6)
    big = big / big.norm()
    assert kept_energy_share(small, kept) < 0.01 < 0.4 < kept_energy_share(plain, kept)
    assert abs(float(small[1, 0])) > 0.99  # what remains is the part of the difference the kept outputs never use
    torch.testing.assert_close(big, plain, atol=1e-4, rtol=0)  # a huge ridge gives back the plain direction


def test_whitening_rejects_bad_input():
    with pytest.raises(ValueError, match="share D"):
        whiten_against_kept(torch.zeros(4, 1), torch.zeros(3, 5), 0.1)
    with pytest.raises(ValueError, match="kept_ridge"):
        whiten_against_kept(torch.ones(4, 1), torch.ones(3, 4), 0.0)
    with pytest.raises(ValueError, match="combine"):
        RefusalVectorConfig(combine="sum")
    with pytest.raises(ValueError, match="kept_ridge"):
        RefusalVectorConfig(kept_ridge=-1.0)


# ====================================================================== on the toy model
@pytest.fixture(scope="module")
def toy():
    from unlearn.backbones import build_backbone

    if not weights_available():
        pytest.skip("toy-world weights not shipped")
    return build_backbone("toy-cogvideox", torch_dtype="float32")


@needs_toy
def test_kept_whitened_edit_takes_less_from_the_safe_prompts_than_the_stacked_one(toy):
    from unlearn.methods.refusal.edit import collect_token_activations

    pairs = RefusalPairsDataModule(concept=THREE, source="toyworld", num_pairs=5).pairs_by_concept()
    safe = [p.safe for ps in pairs.values() for p in ps]
    unsafe = [p.unsafe for ps in pairs.values() for p in ps]
    shares = {}
    for combine in ("stack", "kept_whitened"):
        edit = apply_refusal_edit(toy, pairs, RefusalVectorConfig(rank=1, combine=combine, kept_ridge=0.1))
        try:
            (layer,) = edit.layers
            u = edit.bases[layer]
            assert u.shape[1] == 3 and torch.allclose(u.T @ u, torch.eye(3, dtype=u.dtype), atol=1e-8)
            with edit.original_weights(toy):
                acts = collect_token_activations(toy, safe + unsafe, [layer])[layer]
            kept = acts[: len(safe)].reshape(-1, acts.shape[-1])
            shares[combine] = kept_energy_share(u, kept)
            if combine == "kept_whitened":
                assert edit.stats[layer]["kept_tokens"] == kept.shape[0]
                # each concept's direction still points along its own mean difference
                for c in THREE:
                    ps = pairs[c]
                    with edit.original_weights(toy):
                        a = collect_token_activations(toy, [p.unsafe for p in ps] + [p.safe for p in ps], [layer])
                    m = a[layer].mean(1).double()
                    diff = m[: len(ps)].mean(0) - m[len(ps) :].mean(0)
                    assert float(edit.concept_bases[c][layer][:, 0] @ diff) > 0
        finally:
            edit.restore(toy)
    assert shares["kept_whitened"] < 0.5 * shares["stack"], shares


# ====================================================================== T2VUnlearning's preservation rule
@needs_toy
def test_conditioning_rule_ranks_by_absolute_cosine_and_keeps_erased_classes_out(toy):
    from unlearn.methods.t2vunlearning.data import ToyWorldDataModule, conditioning_neighbours

    ranked = conditioning_neighbours(toy, "red ring", ["blue square"])
    names = [c for c, _ in ranked]
    assert "red ring" not in names and "blue square" not in names and len(names) == 23
    mags = [abs(v) for _, v in ranked]
    assert mags == sorted(mags, reverse=True)
    assert any(v < 0 for _, v in ranked[:8]) and any(v > 0 for _, v in ranked[:8])  # both sides of the concept
    dm = ToyWorldDataModule(concept="red ring", preserve_rule="conditioning", preserve_top_k=5)
    chosen = dm.choose_preserve_classes(toy)
    assert chosen == [c for c, _ in conditioning_neighbours(toy, "red ring", ["red ring"])[:5]]
    assert len(dm.preserve_prompts) == 5 * dm.preserve_per_class
    assert dm.preserve_concept == ", ".join(chosen)
    # a one-word concept: never a class that shows it
    assert not any("ring" in c for c, _ in conditioning_neighbours(toy, "ring"))


def test_conditioning_rule_and_an_explicit_list_conflict():
    from unlearn.methods.t2vunlearning.data import ToyWorldDataModule

    with pytest.raises(InputError, match="preserve_rule"):
        ToyWorldDataModule(concept="red ring", preserve_rule="conditioning", preserve_classes=["blue ring"])
    with pytest.raises(InputError, match="preserve_rule"):
        ToyWorldDataModule(concept="red ring", preserve_rule="nearest")


# ====================================================================== through the Lightning module
@needs_toy
def test_module_runs_kept_whitened_with_the_kept_classes(tmp_path):
    import json

    import lightning.pytorch as pl

    from unlearn.methods.refusal import RefusalVectorUnlearning

    data = RefusalPairsDataModule(concept=THREE, source="toyworld", num_pairs=3, kept_per_class=1)
    kept = data.kept_prompts()
    assert len(kept) == 22  # one prompt of each class that shows none of the three
    model = RefusalVectorUnlearning(
        backbone="toy-cogvideox",
        torch_dtype="float32",
        rank=1,
        combine="kept_whitened",
        kept_ridge=0.3,
        output_dir=str(tmp_path / "out"),
        save_model=False,
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(model, datamodule=data)
    summary = json.loads((tmp_path / "out" / "refusal_edit.json").read_text())
    assert summary["config"]["combine"] == "kept_whitened" and summary["config"]["kept_ridge"] == 0.3
    (layer,) = summary["layers"]
    assert summary["layers"][layer]["kept_prompts"] == 3 * 3 + 22  # every concept's safe prompts + the kept classes
    assert summary["layers"][layer]["shape"][1] == 3


def test_kept_options_are_checked():
    with pytest.raises(InputError, match="kept_per_class"):
        RefusalPairsDataModule(concept="nudity", kept_per_class=2)
    with pytest.raises(InputError, match="kept_prompts"):
        RefusalPairsDataModule(concept="nudity", kept_prompts=["a person", " "])
    from unlearn.methods.refusal import RefusalVectorUnlearning

    with pytest.raises(InputError, match="model.combine"):
        RefusalVectorUnlearning(backbone="cogvideox-2b", tiny=True, torch_dtype="float32", combine="sum")
