"""Exported adapters in a stock diffusers pipeline; clear errors on bad input."""

import json

import pytest
import torch

from unlearn.backbones import ConceptNotInPromptError, UnknownBackboneError, WeightsFolderError, build_backbone
from unlearn.methods.t2vunlearning.adapters import AdapterSwitch
from unlearn.methods.t2vunlearning.data import ConceptDataModule
from unlearn.methods.t2vunlearning.export import attach_adapters, load_adapters, save_adapters


def test_exported_adapters_change_stock_pipeline_only_when_scaled_in(tmp_path):
    from diffusers import CogVideoXPipeline

    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    sites = bb.attention_sites()
    switch = AdapterSwitch([s.video_dim for s in sites], 16, [s.name for s in sites])
    torch.manual_seed(0)
    for a in switch.adapters:
        torch.nn.init.normal_(a.up.weight, std=0.5)
    save_adapters(switch, bb.name, tmp_path / "adapters", extra={"eta": 7.0})
    cfg = json.loads((tmp_path / "adapters" / "t2v_adapter_config.json").read_text())
    assert cfg["backbone"] == "cogvideox-2b" and cfg["site_names"] == [s.name for s in sites]

    # a stock pipeline from the tiny components, loaded back from disk like a user's download
    bb.save_pretrained(str(tmp_path / "pipe"))
    pipe = CogVideoXPipeline.from_pretrained(str(tmp_path / "pipe"))
    run = dict(
        prompt="a naked person walking on the beach",
        num_frames=9,
        height=32,
        width=32,
        num_inference_steps=3,
        output_type="pt",
        max_sequence_length=16,
    )
    original = pipe(**run, generator=torch.Generator().manual_seed(0)).frames

    loaded = attach_adapters(pipe, tmp_path / "adapters")
    with loaded.scaled(0.0):
        zero = pipe(**run, generator=torch.Generator().manual_seed(0)).frames
    erased = pipe(**run, generator=torch.Generator().manual_seed(0)).frames
    assert torch.equal(zero, original)
    assert (erased - original).abs().max() > 1e-3
    # the pipeline runs on its own processors; the hooks apply the loaded weights
    assert torch.equal(loaded.adapters[0].up.weight, switch.adapters[0].up.weight)


def test_adapter_folder_round_trip_and_atomic_overwrite(tmp_path):
    switch = AdapterSwitch([8, 8], 4, ["a", "b"])
    save_adapters(switch, "cogvideox-2b", tmp_path / "ad")
    torch.nn.init.ones_(switch.adapters[1].up.weight)
    save_adapters(switch, "cogvideox-2b", tmp_path / "ad")
    back, cfg = load_adapters(tmp_path / "ad")
    assert torch.equal(back.adapters[1].up.weight, torch.ones(8, 4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ad"]  # no temp or old folders left behind
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        load_adapters(tmp_path / "nothing")


def test_unknown_backbone_lists_known_ones():
    with pytest.raises(UnknownBackboneError) as err:
        build_backbone("cogvideox-3b", tiny=True)
    msg = str(err.value)
    assert "cogvideox-3b" in msg and "cogvideox-2b" in msg and "cogvideox-5b" in msg


def test_missing_or_incomplete_weights_folder(tmp_path):
    with pytest.raises(WeightsFolderError, match="does not exist"):
        build_backbone("cogvideox-2b", pretrained=str(tmp_path / "missing"))
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    bb.save_pretrained(str(tmp_path / "w"))
    import shutil

    shutil.rmtree(tmp_path / "w" / "vae")
    with pytest.raises(WeightsFolderError, match=r"missing vae/"):
        build_backbone("cogvideox-2b", pretrained=str(tmp_path / "w"))


def test_local_folder_loads_the_same_model(tmp_path):
    bb = build_backbone("cogvideox-5b", tiny=True, torch_dtype="float32")
    bb.save_pretrained(str(tmp_path / "w"))
    back = build_backbone("cogvideox-5b", pretrained=str(tmp_path / "w"), torch_dtype="float32")
    x = torch.randn(1, *bb.latent_shape(9, 32, 32))
    c = bb.encode_prompts(["a cat"])
    assert torch.equal(
        bb.predict(x, torch.tensor([10]), c), back.predict(x, torch.tensor([10]), back.encode_prompts(["a cat"]))
    )


def test_concept_missing_from_prompt_is_named():
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    with pytest.raises(ConceptNotInPromptError, match="a cat on a bed"):
        bb.concept_token_indices("a cat on a bed", ["nudity", "naked"])
    # start, middle, end, and a word split into several tokens
    assert bb.concept_token_indices("golf ball on the green", ["golf ball"]) == [0, 1]
    assert bb.concept_token_indices("a red golf ball rolls", ["golf ball"]) == [2, 3]
    ids = bb.concept_token_indices("a dog near the xylophone", ["xylophone"])
    assert len(ids) > 1 and ids == list(range(ids[0], ids[0] + len(ids)))


def test_empty_prompt_list_and_concept_errors(tmp_path):
    with pytest.raises(ValueError, match="data.prompts is empty"):
        ConceptDataModule(concept="nudity", prompts=[], cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="data.concept is empty"):
        ConceptDataModule(concept=" ", prompts=["x"], cache_dir=str(tmp_path))


def test_unknown_torch_dtype_is_named():
    with pytest.raises(ValueError, match="unknown torch_dtype 'bfloat'"):
        build_backbone("cogvideox-2b", tiny=True, torch_dtype="bfloat")
