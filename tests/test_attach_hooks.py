"""Adapters attach to any diffusers pipeline through forward hooks on the attention outputs: the pipeline keeps
its attention processors, so the attention backend the user set keeps working, and the outputs equal those of
the project's own processors (the previous way of attaching)."""

import copy

import pytest
import torch
from backbone_checks import random_adapters as _switch

from unlearn.backbones import build_backbone

#: one tiny model per family (the toy world is a CogVideoX)
FAMILIES = ["cogvideox-2b", "cogvideox-5b", "wan2.1-t2v-1.3b", "hunyuanvideo", "zeroscope"]
#: a non-default diffusers attention backend that runs on a CPU (math-kernel SDPA)
BACKEND = "_native_math"


def _inputs(bb, batch: int = 2):
    d = bb.defaults
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *bb.latent_shape(d.num_frames, d.height, d.width), generator=g)
    cond = bb.encode_prompts(["a naked person walking on the beach", "a red ring on a plain background"][:batch])
    return x, torch.tensor([900, 300][:batch]), cond


@pytest.fixture
def backend_calls(monkeypatch):
    """Counts the calls of the chosen backend's attention function (diffusers looks it up on every call)."""
    from diffusers.models.attention_dispatch import AttentionBackendName, _AttentionBackendRegistry

    key = AttentionBackendName(BACKEND)
    original = _AttentionBackendRegistry._backends[key]
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setitem(_AttentionBackendRegistry._backends, key, counted)
    # set_attention_backend also sets diffusers' process-wide active backend: restored after the test
    monkeypatch.setattr(_AttentionBackendRegistry, "_active_backend", _AttentionBackendRegistry._active_backend)
    return calls


@pytest.mark.parametrize("name", FAMILIES)
def test_hooks_with_another_attention_backend_equal_the_processors(name, backend_calls):
    with_processors = build_backbone(name, tiny=True, torch_dtype="float32")
    with_hooks = build_backbone(name, tiny=True, torch_dtype="float32")
    sd_a, sd_b = with_processors.denoiser.state_dict(), with_hooks.denoiser.state_dict()
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)  # the same weights, twice
    x, t, cond = _inputs(with_hooks)

    denoiser = with_hooks.denoiser
    denoiser.set_attention_backend(BACKEND)
    stock_processors = {s.name: s.module.processor for s in with_hooks.attention_sites()}
    with torch.no_grad():
        stock = with_hooks.predict(x, t, cond)

    switch = _switch(with_hooks)
    type(with_hooks).install_adapter_hooks(denoiser, switch)
    # the user's processors (and the backend chosen on them) are untouched
    for site in with_hooks.attention_sites():
        assert site.module.processor is stock_processors[site.name]
        if hasattr(site.module.processor, "_attention_backend"):
            backend = site.module.processor._attention_backend
            assert getattr(backend, "value", backend) == BACKEND
    dispatching = any(hasattr(s.module.processor, "_attention_backend") for s in with_hooks.attention_sites())
    before = len(backend_calls)
    with torch.no_grad():
        hooked = with_hooks.predict(x, t, cond)
    hooked_calls = len(backend_calls) - before
    with torch.no_grad(), switch.scaled(0.0):
        zero = with_hooks.predict(x, t, cond)
    assert torch.equal(zero, stock)  # scale 0: exactly the stock model

    ref = copy.deepcopy(switch)
    type(with_processors).install_adapter_processors(with_processors.denoiser, ref)
    if dispatching:  # Wan, HunyuanVideo: the adapted model's attention ran on the backend the user chose
        assert hooked_calls > 0
    with torch.no_grad():
        processed = with_processors.predict(x, t, cond)
    diff = (hooked - processed).abs().max().item()
    print(
        f"{name}: hooks ({BACKEND}) vs processors: max |delta| = {diff:.3e}; "
        f"adapters move the prediction by {(hooked - stock).abs().max().item():.3e}"
    )
    assert diff <= 1e-5, diff
    assert (hooked - stock).abs().max().item() > 1e-3  # the adapters do change the prediction

    # installing again replaces the hooks (adapters are not applied twice)
    type(with_hooks).install_adapter_hooks(denoiser, switch)
    with torch.no_grad():
        assert torch.allclose(with_hooks.predict(x, t, cond), hooked, atol=1e-6)


def test_stock_wan_pipeline_keeps_its_backend_and_matches_the_processor_attach(tmp_path, backend_calls):
    """End to end: a WanPipeline (its attention goes through diffusers' dispatcher) saved and loaded like a
    download, the backend set by the user, adapters attached from a folder."""
    from diffusers import WanPipeline

    from unlearn.backbones import backbone_class
    from unlearn.methods.t2vunlearning.export import attach_adapters, load_adapters, save_adapters

    bb = build_backbone("wan2.1-t2v-1.3b", tiny=True, torch_dtype="float32")
    save_adapters(_switch(bb), bb.name, tmp_path / "adapters")
    bb.save_pretrained(str(tmp_path / "pipe"))
    run = dict(
        prompt="a naked person walking on the beach",
        num_frames=9,
        height=64,
        width=64,
        num_inference_steps=2,
        output_type="pt",
        max_sequence_length=16,
    )

    pipe = WanPipeline.from_pretrained(str(tmp_path / "pipe"))
    pipe.transformer.set_attention_backend(BACKEND)
    stock = pipe(**run, generator=torch.Generator().manual_seed(0)).frames
    switch = attach_adapters(pipe, tmp_path / "adapters")
    before = len(backend_calls)
    backend = pipe.transformer.blocks[0].attn2.processor._attention_backend
    assert getattr(backend, "value", backend) == BACKEND
    erased = pipe(**run, generator=torch.Generator().manual_seed(0)).frames
    assert len(backend_calls) > before  # generated through the user's backend
    with switch.scaled(0.0):
        assert torch.equal(pipe(**run, generator=torch.Generator().manual_seed(0)).frames, stock)

    other = WanPipeline.from_pretrained(str(tmp_path / "pipe"))
    reference, _ = load_adapters(tmp_path / "adapters")
    backbone_class("wan2.1-t2v-1.3b").install_adapter_processors(other.transformer, reference)
    by_processors = other(**run, generator=torch.Generator().manual_seed(0)).frames
    diff = (erased - by_processors).abs().max().item()
    print(f"WanPipeline ({BACKEND}), hooks vs processors: max |delta frames| = {diff:.3e}")
    assert diff <= 1e-5
    assert (erased - stock).abs().max().item() > 1e-4


def test_a_processor_the_user_installed_stays_fused_qkv_cogvideox(tmp_path):
    """The processor a user chose (here diffusers' fused-QKV CogVideoX processor; FlashAttention-3 or Sage
    processors are installed the same way) keeps running: the previous attach replaced it."""
    from diffusers.models.attention_processor import FusedCogVideoXAttnProcessor2_0

    from unlearn.methods.t2vunlearning.export import attach_adapters, save_adapters

    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    reference = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    switch = _switch(bb)
    save_adapters(switch, bb.name, tmp_path / "adapters")
    x, t, cond = _inputs(bb)
    bb.denoiser.fuse_qkv_projections()
    with torch.no_grad():
        stock = bb.predict(x, t, cond)
    loaded = attach_adapters(bb.denoiser, tmp_path / "adapters")
    assert all(isinstance(s.module.processor, FusedCogVideoXAttnProcessor2_0) for s in bb.attention_sites())
    with torch.no_grad():
        fused = bb.predict(x, t, cond)
        with loaded.scaled(0.0):
            assert torch.equal(bb.predict(x, t, cond), stock)
    type(reference).install_adapter_processors(reference.denoiser, copy.deepcopy(switch))
    with torch.no_grad():
        unfused = reference.predict(x, t, cond)
    diff = (fused - unfused).abs().max().item()
    print(f"cogvideox-2b fused QKV + hooks vs processors: max |delta| = {diff:.3e}")
    assert diff <= 1e-5 and (fused - stock).abs().max().item() > 1e-3
