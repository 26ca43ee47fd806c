"""The backbone registry: names, clear errors for bad names and weights folders, save/load round trips, and
a backbone registered from outside the package passing the same contract checks as the built-in ones."""

from __future__ import annotations

import inspect
import shutil

import pytest
import torch
from backbone_checks import build_bundle, inputs, new_switch, run_all_checks

import unlearn.backbones
from unlearn.backbones import (
    UnknownBackboneError,
    WeightsFolderError,
    available_backbones,
    backbone_class,
    build_backbone,
    register_backbone,
    unregister_backbone,
)


def _tiny_capable(name: str) -> bool:
    return "tiny" in inspect.signature(backbone_class(name).load).parameters


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownBackboneError) as err:
        build_backbone("hunyuanvideo-2", tiny=True)
    msg = str(err.value)
    assert "'hunyuanvideo-2'" in msg and "Did you mean 'hunyuanvideo'" in msg
    for name in available_backbones():
        assert name in msg
    assert isinstance(err.value, KeyError)  # callers may catch it as a KeyError


@pytest.mark.parametrize("name", ["hunyuanvideo", "zeroscope", "wan2.1-t2v-1.3b", "cogvideox-2b"])
def test_missing_weights_folder_is_a_clear_error(name, tmp_path):
    with pytest.raises(WeightsFolderError, match="does not exist"):
        build_backbone(name, pretrained=str(tmp_path / "no-such-folder"), torch_dtype="float32")


@pytest.mark.parametrize("name", [n for n in available_backbones() if _tiny_capable(n)])
def test_save_pretrained_round_trip_and_incomplete_folder(name, tmp_path):
    bb = build_backbone(name, tiny=True, torch_dtype="float32")
    folder = tmp_path / "weights"
    bb.save_pretrained(str(folder))
    back = build_backbone(name, pretrained=str(folder), torch_dtype="float32")
    assert type(back) is type(bb) and back.name == name
    assert back.defaults == bb.defaults and back.max_text_length == bb.max_text_length
    assert type(back.scheduler).__name__ == type(bb.scheduler).__name__
    public = lambda cfg: {k: v for k, v in cfg.items() if not k.startswith("_")}  # noqa: E731
    assert public(back.scheduler.config) == public(bb.scheduler.config)
    prompts = ["a golf ball rolls across the grass"]
    x, t, c = inputs(bb, prompts)
    c2 = back.encode_prompts(prompts)
    assert torch.equal(c.hidden_states, c2.hidden_states)
    for ctl_bb in (bb, back):
        new_switch(ctl_bb)
    for part in ("denoiser", "text_encoder"):
        a, b = getattr(bb, part).state_dict(), getattr(back, part).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
    with torch.no_grad():
        # same weights bit for bit; memory-mapped tensors may take other SIMD paths: equal to float32 rounding
        torch.testing.assert_close(bb.predict(x, t, c), back.predict(x, t, c2), atol=1e-5, rtol=1e-5)
    assert bb.fingerprint() != "" and back.timesteps_for(4).tolist() == bb.timesteps_for(4).tolist()

    # drop one component: the error names it
    parts = sorted(p.name for p in folder.iterdir() if p.is_dir())
    gone = "vae" if "vae" in parts else "text_encoder"
    shutil.copytree(folder, tmp_path / "incomplete")
    shutil.rmtree(tmp_path / "incomplete" / gone)
    with pytest.raises(WeightsFolderError) as err:
        build_backbone(name, pretrained=str(tmp_path / "incomplete"), torch_dtype="float32")
    assert f"missing {gone}/" in str(err.value)

    # present but broken: the error names the entry that does not load
    shutil.copytree(tmp_path / "weights", tmp_path / "broken")
    for config in (tmp_path / "broken" / "scheduler").glob("*.json"):
        config.unlink()
    with pytest.raises(WeightsFolderError, match=r"scheduler/ \(.*\) in .* does not load"):
        build_backbone(name, pretrained=str(tmp_path / "broken"), torch_dtype="float32")


def _three_block_wan():
    from diffusers import WanTransformer3DModel

    from unlearn.backbones.wan import TINY_TRANSFORMER_CONFIG, WanBackbone

    class ThreeBlockWan(WanBackbone):
        """A backbone defined outside the package: Wan with a deeper tiny transformer."""

        @classmethod
        def tiny(cls, seed: int = 0, torch_dtype: torch.dtype = torch.float32):
            bb = super().tiny(seed=seed, torch_dtype=torch_dtype)
            torch.manual_seed(seed + 1)
            bb.denoiser = WanTransformer3DModel(**{**TINY_TRANSFORMER_CONFIG, "num_layers": 3}).to(torch_dtype)
            bb.denoiser.requires_grad_(False).eval()
            return bb

    return ThreeBlockWan


def test_backbone_registered_from_a_test_file_passes_the_contract(tmp_path, monkeypatch):
    name = "test-wan-3block"
    cls = _three_block_wan()
    register_backbone(name, hub_id="example/not-downloaded")(cls)
    try:
        assert name in available_backbones() and backbone_class(name) is cls
        with pytest.raises(ValueError, match="already registered"):
            register_backbone(name)(type("Other", (cls,), {}))
        bundle = build_bundle(name)
        assert len(bundle.bb.attention_sites()) == 3 and bundle.bb.name == name
        run_all_checks(bundle, tmp_path, monkeypatch)
    finally:
        unregister_backbone(name)
    assert name not in available_backbones()


def test_entry_point_backbones_are_loaded(monkeypatch):
    """External packages register through the ``t2v_unlearn.backbones`` entry point group."""
    loaded = []

    class FakeEntryPoint:
        name = "external"

        def load(self):
            loaded.append(True)

            @register_backbone("test-external")
            class External(_three_block_wan()):
                pass

            return External

    def fake_entry_points(group=None):
        assert group == "t2v_unlearn.backbones"
        return [FakeEntryPoint()]

    monkeypatch.setattr(unlearn.backbones, "entry_points", fake_entry_points)
    try:
        unlearn.backbones._import_family_modules()
        assert loaded and "test-external" in available_backbones()
    finally:
        unregister_backbone("test-external")


def test_folder_loaded_in_bfloat16_keeps_float32_parts_and_predicts(tmp_path):
    """diffusers keeps some Wan modules in float32 when loading in bfloat16 (``_keep_in_fp32_modules``): the
    backbone's dtype is still the compute dtype, so ``predict`` feeds the patch embedding bfloat16 latents."""
    build_backbone("wan2.1-t2v-1.3b", tiny=True, torch_dtype="float32").save_pretrained(str(tmp_path / "w"))
    bb = build_backbone("wan2.1-t2v-1.3b", pretrained=str(tmp_path / "w"), torch_dtype="bfloat16")
    assert {p.dtype for p in bb.denoiser.parameters()} == {torch.bfloat16, torch.float32}
    assert bb.dtype == torch.bfloat16
    x, t, c = inputs(bb, ["a golf ball"])
    with torch.no_grad():
        out = bb.predict(x, t, c)
    assert out.shape == x.shape and out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_hub_failure_is_one_error_naming_the_component(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no network here: fail at once
    with pytest.raises(OSError) as err:
        build_backbone("cogvideox-2b", pretrained="someorg/no-such-model", torch_dtype="float32")
    msg = str(err.value)
    assert not isinstance(err.value, WeightsFolderError)
    assert "could not load tokenizer/ (T5 tokenizer) of 'someorg/no-such-model' from the model hub" in msg
    assert "pass pretrained=<local folder>" in msg


def test_loading_options_reach_the_model_and_unknown_ones_are_named(tmp_path):
    zs = build_backbone("zeroscope", tiny=True, torch_dtype="float32")
    assert type(zs.scheduler).__name__ == "DPMSolverMultistepScheduler"  # the model card's scheduler
    assert (
        type(build_backbone("zeroscope", tiny=True, scheduler_class="DDIMScheduler").scheduler).__name__
        == "DDIMScheduler"
    )
    zs.save_pretrained(str(tmp_path / "zs"))
    back = build_backbone(
        "zeroscope", pretrained=str(tmp_path / "zs"), torch_dtype="float32", scheduler_class="EulerDiscreteScheduler"
    )
    assert type(back.scheduler).__name__ == "EulerDiscreteScheduler"
    with pytest.raises(ValueError, match="exactly 77 tokens"):
        build_backbone("zeroscope", tiny=True, max_text_length=32)

    hy = build_backbone("hunyuanvideo", tiny=True, torch_dtype="float32", embedded_guidance_scale=3.5)
    assert hy.embedded_guidance_scale == 3.5
    cog = build_backbone("cogvideox-5b", tiny=True, torch_dtype="float32", max_text_length=12)
    assert (
        cog.max_text_length == 12
        and cog.source == "tiny-5b-seed0"
        and cog.denoiser.config.use_rotary_positional_embeddings
    )

    with pytest.raises(
        TypeError,
        match=r"unknown loading option\(s\) 'embeded_guidance_scale'; it takes "
        r"max_text_length, embedded_guidance_scale",
    ):
        build_backbone("hunyuanvideo", tiny=True, embeded_guidance_scale=3.5)
    with pytest.raises(ValueError, match="no weights given"):
        backbone_class("cogvideox-2b").load()
