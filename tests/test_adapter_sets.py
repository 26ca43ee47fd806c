"""Several adapter sets on one stock model, each with its scale, and a clean detach; the config file's own name
(`t2v_adapter_config.json`) with the legacy `adapter_config.json` still read. Tiny backbones, real diffusers."""

import json

import pytest
import torch

from unlearn.backbones import build_backbone
from unlearn.checks import InputError
from unlearn.methods.t2vunlearning import AdapterSwitch, attach_adapters, detach_adapters
from unlearn.methods.t2vunlearning.export import CONFIG_NAME, LEGACY_CONFIG_NAME, load_adapters, save_adapters


def _switch(bb, seed: int) -> AdapterSwitch:
    sites = bb.attention_sites()
    switch = AdapterSwitch([s.video_dim for s in sites], 8, [s.name for s in sites])
    g = torch.Generator().manual_seed(seed)
    for a in switch.adapters:
        a.down.weight.data = torch.randn(a.down.weight.shape, generator=g) * 0.5
        a.up.weight.data = torch.randn(a.up.weight.shape, generator=g) * 0.2
        a.up.bias.data = torch.randn(a.up.bias.shape, generator=g) * 0.05
    return switch


def _merged(first: AdapterSwitch, s1: float, second: AdapterSwitch, s2: float) -> AdapterSwitch:
    """One switch computing ``s1·A1(h) + s2·A2(h)`` exactly: the two inner layers side by side."""
    dims = [a.up.out_features for a in first.adapters]
    out = AdapterSwitch(dims, first.inner_dim + second.inner_dim, first.site_names)
    with torch.no_grad():
        for m, a, b in zip(out.adapters, first.adapters, second.adapters, strict=True):
            m.down.weight.copy_(torch.cat([a.down.weight, b.down.weight]))
            m.down.bias.copy_(torch.cat([a.down.bias, b.down.bias]))
            m.up.weight.copy_(torch.cat([s1 * a.up.weight, s2 * b.up.weight], 1))
            m.up.bias.copy_(s1 * a.up.bias + s2 * b.up.bias)
    return out


def _inputs(bb):
    d = bb.defaults
    x = torch.randn(2, *bb.latent_shape(d.num_frames, d.height, d.width), generator=torch.Generator().manual_seed(0))
    cond = bb.encode_prompts(["a naked person walking on the beach", "a red ring on a plain background"])
    return x, torch.tensor([900, 300]), cond


@pytest.mark.parametrize("name", ["cogvideox-2b", "zeroscope"])  # zeroscope: its frame-count context hook too
def test_two_sets_add_their_scaled_outputs_and_detach_cleanly(name, tmp_path):
    bb = build_backbone(name, tiny=True, torch_dtype="float32")
    reference = build_backbone(name, tiny=True, torch_dtype="float32")
    first, second = _switch(bb, 1), _switch(bb, 2)
    save_adapters(first, bb.name, tmp_path / "a")
    save_adapters(second, bb.name, tmp_path / "b")
    x, t, cond = _inputs(bb)
    sites = [s.module for s in bb.attention_sites()]
    hooks_before = [len(m._forward_hooks) for m in sites], len(bb.denoiser._forward_pre_hooks)
    with torch.no_grad():
        stock = bb.predict(x, t, cond)

    one = attach_adapters(bb.denoiser, tmp_path / "a", scale=0.7, adapter_name="nudity")
    with torch.no_grad():
        only_first = bb.predict(x, t, cond)
    two = attach_adapters(bb.denoiser, tmp_path / "b", scale=-0.4)  # default name, as diffusers names LoRAs
    assert list(bb.denoiser._t2v_unlearn_adapters.scales) == ["nudity", "default_1"]
    assert bb.denoiser._t2v_unlearn_adapters.scales == {"nudity": 0.7, "default_1": -0.4}
    with torch.no_grad():
        both = bb.predict(x, t, cond)

    # reference: the project's own processors with one switch holding 0.7·A1 + (−0.4)·A2
    type(reference).install_adapter_processors(reference.denoiser, _merged(first, 0.7, second, -0.4))
    with torch.no_grad():
        expected = reference.predict(x, t, cond)
    diff = (both - expected).abs().max().item()
    print(f"{name}: two sets vs merged reference: max |delta| = {diff:.3e}")
    assert diff <= 1e-5
    assert (both - only_first).abs().max().item() > 1e-3  # the second set counts
    two.scale = 0.0  # one set's scale alone changes the output
    with torch.no_grad():
        assert torch.equal(bb.predict(x, t, cond), only_first)
    two.scale = -0.4

    detach_adapters(bb.denoiser, "default_1")
    with torch.no_grad():
        assert torch.equal(bb.predict(x, t, cond), only_first)
    assert one.scale == 0.7
    detach_adapters(bb.denoiser)
    with torch.no_grad():
        assert torch.equal(bb.predict(x, t, cond), stock)
    assert ([len(m._forward_hooks) for m in sites], len(bb.denoiser._forward_pre_hooks)) == hooks_before
    assert not hasattr(bb.denoiser, "_t2v_unlearn_adapters")
    attach_adapters(bb.denoiser, tmp_path / "b", scale=-0.4, adapter_name="again")  # attaches afresh
    with torch.no_grad():
        again = bb.predict(x, t, cond)
    assert (again - stock).abs().max().item() > 1e-3


def test_names_are_checked(tmp_path):
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    save_adapters(_switch(bb, 1), bb.name, tmp_path / "a")
    with pytest.raises(InputError, match="no adapters are attached"):
        detach_adapters(bb.denoiser)
    attach_adapters(bb.denoiser, tmp_path / "a", adapter_name="x")
    with pytest.raises(InputError, match="'x' is already attached"):
        attach_adapters(bb.denoiser, tmp_path / "a", adapter_name="x")
    with pytest.raises(InputError, match="no adapter set 'y'"):
        detach_adapters(bb.denoiser, "y")


def test_own_config_name_written_legacy_name_read(tmp_path):
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    switch = _switch(bb, 3)
    save_adapters(switch, bb.name, tmp_path / "new")
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["adapters.safetensors", CONFIG_NAME]
    assert CONFIG_NAME == "t2v_adapter_config.json"
    # a folder written before the rename
    old = tmp_path / "old"
    old.mkdir()
    (old / "adapters.safetensors").write_bytes((tmp_path / "new" / "adapters.safetensors").read_bytes())
    (old / LEGACY_CONFIG_NAME).write_text((tmp_path / "new" / CONFIG_NAME).read_text())
    back, config = load_adapters(old)
    assert config == json.loads((tmp_path / "new" / CONFIG_NAME).read_text())
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), switch.state_dict().values(), strict=True))
    # a PEFT adapter_config.json is not ours: one clear error naming the file
    (old / LEGACY_CONFIG_NAME).write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    with pytest.raises(Exception, match="unknown adapter format"):
        load_adapters(old)
