"""UCE and ESD-x as peers of the other methods: on every registered backbone (tiny models) the edit changes the
prediction for concept prompts, the switch off gives the original model bit for bit, the file round trip is
exact, the edit attaches to a stock diffusers pipeline; their rows work in evaluation and in `unlearn attack`."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import yaml
from backbone_checks import get_bundle

from unlearn.backbones import available_backbones, build_backbone
from unlearn.cli import main
from unlearn.evaluation import RowGenerator, RowSpec
from unlearn.methods.esd import ESDUnlearning, esd_layers, load_esd_edit
from unlearn.methods.uce import (
    UCEConceptsDataModule,
    UCEUnlearning,
    apply_uce_edit,
    last_token_index,
    load_uce_edit,
    uce_weight,
)
from unlearn.methods.weight_edits import EditSwitch, get_linear, load_weight_edit

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parent.parent
CONCEPT = "red ring"
PROMPTS = ["a red ring moves left", "a blue square on the beach"]


def _predict(bb, prompts, seed=0):
    d = bb.defaults
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((len(prompts), *bb.latent_shape(d.num_frames, d.height, d.width)), generator=g).to(bb.dtype)
    t = bb.timesteps_for(d.num_inference_steps)[len(bb.timesteps_for(d.num_inference_steps)) // 2]
    with torch.no_grad():
        return bb.predict(x, t.reshape(1).expand(len(prompts)), bb.encode_prompts(prompts, cache=False))


def _weights(bb, layers):
    return {n: get_linear(n, bb.denoiser, None).weight.detach().clone() for n in layers}


# ---------------------------------------------------------------------------------------------------- UCE
def test_uce_closed_form_maps_the_concept_to_its_guide_and_keeps_preserved_ones():
    torch.manual_seed(0)
    w = torch.randn(6, 10, dtype=torch.float64)
    c = torch.randn(3, 10, dtype=torch.float64)  # erase 0 -> guide 1, preserve 2
    new = uce_weight(w, c[:1], c[1:2] @ w.T, c[2:], c[2:] @ w.T, lamb=1e-6)
    torch.testing.assert_close(c[:1] @ new.T, c[1:2] @ w.T, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(c[2:] @ new.T, c[2:] @ w.T, rtol=1e-4, atol=1e-4)
    # Eq. 7 written out: (λW + v*cᵀ + v_p c_pᵀ)(λI + ccᵀ + c_p c_pᵀ)⁻¹
    lam = 0.5
    m1 = lam * w + (c[1:2] @ w.T).T @ c[:1] + (c[2:] @ w.T).T @ c[2:]
    m2 = lam * torch.eye(10, dtype=torch.float64) + c[:1].T @ c[:1] + c[2:].T @ c[2:]
    ref = m1 @ torch.linalg.inv(m2)
    torch.testing.assert_close(uce_weight(w, c[:1], c[1:2] @ w.T, c[2:], c[2:] @ w.T, lamb=lam), ref)


@pytest.mark.parametrize("name", available_backbones())
def test_uce_on_every_backbone(name, tmp_path):
    bb = get_bundle(name).bb
    before = _predict(bb, PROMPTS)
    edit = apply_uce_edit(bb, CONCEPT)
    assert edit.layers and all(edit.stats[n]["relative_change"] > 0 for n in edit.layers)
    after = _predict(bb, PROMPTS)
    assert (after[0] - before[0]).abs().max() > 1e-5  # the concept prompt's prediction changes
    # switch: off = the original bit for bit, on again = the edited bit for bit
    with edit.original_weights(bb):
        assert torch.equal(_predict(bb, PROMPTS), before)
    assert torch.equal(_predict(bb, PROMPTS), after)
    # file round trip: the loaded edit re-applied on the original weights gives the same weights and outputs
    edit.save(tmp_path / "uce_edit.safetensors")
    edited = _weights(bb, edit.layers)
    edit.restore(bb)
    assert torch.equal(_predict(bb, PROMPTS), before)
    loaded = load_uce_edit(str(tmp_path))
    loaded.apply_to(bb, keep_originals=True)  # digests checked: the weights are the ones it was computed on
    assert all(torch.equal(edited[n], w) for n, w in _weights(bb, edit.layers).items())
    assert torch.equal(_predict(bb, PROMPTS), after)
    with pytest.raises(ValueError, match="digest"):
        loaded.apply_to(bb)  # already edited
    loaded.restore(bb)
    assert torch.equal(_predict(bb, PROMPTS), before)


def test_uce_maps_the_concepts_output_onto_the_guides_bias_included():
    """On a layer with a bias (CogVideoX's text_proj), with λ → 0 the edited layer's output at the concept's last
    token equals the original layer's output at the guide's token."""
    from unlearn.methods.weight_edits import collect_token_activations

    toy = build_backbone("toy-cogvideox", tiny=True, torch_dtype="float32")
    layer = "patch_embed.text_proj"
    acts = collect_token_activations(toy, [CONCEPT, ""], [layer], record="input")[layer].double()
    c_e, c_g = acts[0, last_token_index(toy, CONCEPT)], acts[1, 0]
    mod = get_linear(layer, toy.denoiser, None)
    assert mod.bias is not None
    w, b = mod.weight.detach().double().clone(), mod.bias.detach().double().clone()
    edit = apply_uce_edit(toy, CONCEPT, lamb=1e-8)
    w2 = mod.weight.detach().double()
    torch.testing.assert_close(w2 @ c_e + b, w @ c_g + b, rtol=1e-3, atol=1e-3)
    edit.restore(toy)


def test_uce_layers_and_tokens_follow_the_authors():
    toy = get_bundle("toy-cogvideox").bb
    edit = apply_uce_edit(toy, CONCEPT)
    assert edit.layers == ["patch_embed.text_proj"]  # joint attention: the text input projection (uce_flux_edit.py)
    assert edit.config["guide_concepts"] == [""] and edit.config["lamb"] == 0.5
    edit.restore(toy)
    zs = get_bundle("zeroscope").bb
    edit = apply_uce_edit(zs, CONCEPT)
    assert edit.layers and all(n.endswith(("attn2.to_k", "attn2.to_v")) for n in edit.layers)  # uce_sd_erase.py:18
    edit.restore(zs)
    ids, _ = zs.text_tokens("a red ring")
    assert last_token_index(zs, "a red ring") == len(ids) - 2  # attention_mask.sum() - 2 (uce_sd_erase.py:39)
    with pytest.raises(ValueError, match="guide"):
        apply_uce_edit(zs, ["a", "b"], guide_concepts=["x", "y", "z"])


def test_uce_attaches_to_a_stock_pipeline(tmp_path):
    """The saved edit applies to a stock diffusers CogVideoXPipeline's transformer (digests checked) and undoes."""
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    edit = apply_uce_edit(bb, CONCEPT)
    edited = _weights(bb, edit.layers)
    edit.restore(bb)
    edit.save(tmp_path / "uce_edit.safetensors")
    pipe = bb.as_pipeline()
    assert type(pipe).__name__ == "CogVideoXPipeline"
    stock = {n: get_linear(n, pipe.transformer, None).weight.detach().clone() for n in edit.layers}
    loaded = load_uce_edit(str(tmp_path)).apply_to(pipe, keep_originals=True)
    assert all(torch.equal(get_linear(n, pipe.transformer, None).weight, w) for n, w in edited.items())
    loaded.restore(pipe)
    assert all(torch.equal(get_linear(n, pipe.transformer, None).weight, w) for n, w in stock.items())


def test_uce_lightning_fit_exports_and_reloads(tmp_path):
    dm = UCEConceptsDataModule(concept=CONCEPT)
    module = UCEUnlearning(backbone="toy-cogvideox", tiny=True, torch_dtype="float32", output_dir=str(tmp_path / "u"))
    before = _predict(module.backbone, PROMPTS)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(module, dm)
    assert isinstance(module.switch, EditSwitch)
    with module.switch.disabled():
        assert torch.equal(_predict(module.backbone, PROMPTS), before)
    summary = json.loads((tmp_path / "u" / "uce_edit.json").read_text())
    assert summary["method"] == "uce" and (tmp_path / "u" / "transformer").is_dir()
    again = UCEUnlearning(backbone="toy-cogvideox", tiny=True, torch_dtype="float32", edit_file=str(tmp_path / "u"))
    again.perform_edit()
    assert torch.equal(_predict(again.backbone, PROMPTS), _predict(module.backbone, PROMPTS))
    with pytest.raises(ValueError, match="not a 'esd_x'"):
        load_esd_edit(str(tmp_path / "u" / "uce_edit.safetensors"))


# ---------------------------------------------------------------------------------------------------- ESD
@pytest.mark.parametrize("name", available_backbones())
def test_esd_layers_on_every_backbone(name):
    bb = get_bundle(name).bb
    layers = esd_layers(bb, "esd-x")
    sites = [s.name for s in bb.attention_sites()]
    assert layers and all(any(n.startswith(s + ".") for s in sites) for n in layers)
    if name in ("zeroscope",):  # cross attention: the authors' attn2 layers (esd_sd.py:29)
        assert all(".attn2." in n for n in layers)


def _esd_fit(tmp_path, steps=3):
    from unlearn.methods.t2vunlearning import ToyWorldDataModule

    dm = ToyWorldDataModule(
        concept=CONCEPT,
        num_prompts=2,
        record_steps=[1],
        num_inference_steps=3,
        batch_size=1,
        cache_dir=str(tmp_path / "cache"),
        preserve_prompts_per_class=1,
    )
    module = ESDUnlearning(
        backbone="toy-cogvideox",
        tiny=True,
        torch_dtype="float32",
        learning_rate=1e-2,
        output_dir=str(tmp_path / "esd"),
    )
    before = _predict(module.backbone, PROMPTS)
    trainer = pl.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(module, dm)
    return module, before


def test_esd_trains_the_attention_projections_and_switches_exactly(tmp_path):
    module, before = _esd_fit(tmp_path)
    bb = module.backbone
    after = _predict(bb, PROMPTS)
    assert (after - before).abs().max() > 1e-5  # trained
    with module.switch.disabled():
        assert torch.equal(_predict(bb, PROMPTS), before)  # off = the original, bit for bit
    assert torch.equal(_predict(bb, PROMPTS), after)  # on again = the trained model, bit for bit
    edit = load_esd_edit(str(tmp_path / "esd"))
    assert edit.method == "esd_x" and set(edit.layers) == set(module.layers)
    assert edit.config["negative_guidance"] == 2.0 and module.hparams.eta == 1.0  # target: η = g − 1
    # a fresh model with the file applied is the trained one bit for bit
    fresh = build_backbone("toy-cogvideox", tiny=True, torch_dtype="float32")
    assert torch.equal(_predict(fresh, PROMPTS), before)
    edit.apply_to(fresh, keep_originals=True)
    assert torch.equal(_predict(fresh, PROMPTS), after)
    edit.restore(fresh)
    assert torch.equal(_predict(fresh, PROMPTS), before)


@pytest.mark.parametrize("name", available_backbones())
def test_esd_step_on_every_backbone(name, tmp_path):
    """One real ESD training step on each tiny backbone: the trained model differs, the switch off is the original
    bit for bit, the exported file on a fresh model is the trained one bit for bit."""
    module = ESDUnlearning(backbone=name, tiny=True, torch_dtype="float32", learning_rate=1e-2)
    bb = module.backbone
    before = _predict(bb, PROMPTS)
    d = bb.defaults
    x = torch.randn((1, *bb.latent_shape(d.num_frames, d.height, d.width)), generator=torch.Generator().manual_seed(1))
    ts = bb.timesteps_for(d.num_inference_steps)[1].reshape(1)
    cond = bb.encode_prompts(PROMPTS[:1])
    with torch.no_grad(), module.switch.disabled():
        target = -bb.predict(x, ts, cond)  # any target away from the prediction
    opt = module.configure_optimizers()
    module.training_step({"x_t": x, "timesteps": ts, "target": target, **cond.to_dict("cond.")}, 0).backward()
    opt.step()
    after = _predict(bb, PROMPTS)
    assert (after - before).abs().max() > 1e-6
    with module.switch.disabled():
        assert torch.equal(_predict(bb, PROMPTS), before)
    assert torch.equal(_predict(bb, PROMPTS), after)
    module.export(tmp_path)
    fresh = build_backbone(name, tiny=True, torch_dtype="float32")
    assert torch.equal(_predict(fresh, PROMPTS), before)
    load_esd_edit(str(tmp_path)).apply_to(fresh)  # digests: computed on these very weights
    assert torch.equal(_predict(fresh, PROMPTS), after)


# ---------------------------------------------------------------------------------------------------- rows
@pytest.fixture(scope="module")
def edit_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("edits")
    toy = build_backbone("toy-cogvideox", tiny=True, torch_dtype="float32")
    uce = apply_uce_edit(toy, CONCEPT)
    uce.save(folder / "uce" / "uce_edit.safetensors") if (folder / "uce").mkdir() is None else None
    uce.restore(toy)
    # an ESD-shaped file: the attention projections scaled (the rows only read the file)
    from unlearn.methods.weight_edits import WeightEdit

    layers = esd_layers(toy)
    esd = WeightEdit.capture(toy, layers, method="esd_x")
    esd.weights = {n: w * 1.1 for n, w in esd.weights.items()}
    (folder / "esd").mkdir()
    esd.save(folder / "esd" / "esd_edit.safetensors")
    return folder


def test_rows_load_apply_and_undo_the_edits(edit_files):
    toy = build_backbone("toy-cogvideox", tiny=True, torch_dtype="float32")
    specs = [
        RowSpec.parse("original"),
        RowSpec.parse(f"uce={edit_files / 'uce'}"),
        RowSpec.parse(f"esd_x={edit_files / 'esd'}"),
    ]
    gen = RowGenerator(toy, specs, concept=CONCEPT, sampling={"num_inference_steps": 2})
    state = {k: v.clone() for k, v in toy.denoiser.state_dict().items()}
    frozen = _predict(toy, PROMPTS)
    for row in ("uce", "esd_x"):
        with gen.row_model(row):
            assert (_predict(toy, PROMPTS) - frozen).abs().max() > 1e-5, row
        assert all(torch.equal(state[k], v) for k, v in toy.denoiser.state_dict().items()), row
        videos = gen.generate(row, PROMPTS[:1], [0])
        assert videos.dtype == torch.uint8
    fp = specs[1].fingerprint(CONCEPT)
    assert "edit_sha256" in fp
    with pytest.raises(FileNotFoundError, match="uce_edit.safetensors"):
        RowSpec.parse(f"uce={edit_files}").check(CONCEPT)
    with pytest.raises(ValueError, match="needs its edit"):
        RowSpec.parse("esd_x").check(CONCEPT)
    assert load_weight_edit(edit_files / "uce" / "uce_edit.safetensors").method == "uce"


def test_attack_command_runs_the_new_rows(tmp_path, edit_files, monkeypatch):
    """`unlearn attack` on configs/attack_toy.yaml with the uce and esd_x rows (tiny budgets, tiny toy model)."""
    monkeypatch.setenv("T2V_UNLEARN_CACHE", str(tmp_path / "cache"))
    cfg = yaml.safe_load((ROOT / "configs/attack_toy.yaml").read_text())
    cfg.update(
        tiny=True,
        per_class=2,
        num_inference_steps=2,
        output_dir=str(tmp_path / "out"),
        batch_size=4,
        rows=["original", f"uce={edit_files / 'uce'}", f"esd_x={edit_files / 'esd'}"],
    )
    cfg["attacks"] = [a for a in cfg["attacks"] if "Embedding" in a["class_path"]]
    cfg["attacks"][0]["init_args"].update(steps=2, batch_size=2)
    path = tmp_path / "attack.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["attack", "--config", str(path)]) == 0
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(doc["results"]) == {"original", "uce", "esd_x"}
    assert all(0 <= doc["results"][r]["embedding"]["asr"] <= 100 for r in ("uce", "esd_x"))
