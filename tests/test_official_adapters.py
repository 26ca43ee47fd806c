"""The T2VUnlearning authors' adapter format (``eraser_weights.pt`` + ``eraser_config.json``) on the tiny backbones.

The reference injection below is re-derived from reading their code (TobisawaMisakii/T2VUnlearning,
``receler/erasers/utils.py:304-320`` ``AdapterEraser``: ``up(GELU(down(h)))``; ``cogvideo_erasers.py:99-122``
``CogVideoXWithEraser``: ``hidden_states, encoder = attn(...)``, then ``hidden_states + adapter(hidden_states)``;
``hunyuan_erasers.py:84-102`` ``HunyuanWithEraser`` on ``single_transformer_blocks.<i>.attn`` with
``eraser_weight`` 1): it wraps the stock diffusers attention modules, independent of this package's processors.
"""

import copy
import json

import pytest
import torch
from torch import nn

from unlearn.backbones import build_backbone
from unlearn.methods.t2vunlearning.adapters import AdapterSwitch
from unlearn.methods.t2vunlearning.export import attach_adapters, load_adapter_weights, load_adapters
from unlearn.methods.t2vunlearning.official import (
    OfficialFormatError,
    load_official,
    read_official,
    save_official,
)

PROMPT = "a naked person walking on the beach"


class _TheirEraser(nn.Module):
    def __init__(self, dim: int, rank: int) -> None:
        super().__init__()
        self.down = nn.Linear(dim, rank)
        self.act = nn.GELU()
        self.up = nn.Linear(rank, dim)

    def forward(self, h):
        return self.up(self.act(self.down(h)))


class _TheirWrapper(nn.Module):
    """Their ``CogVideoXWithEraser`` / ``HunyuanWithEraser`` arithmetic: the eraser on the attention's video output."""

    def __init__(self, attn: nn.Module, eraser: nn.Module) -> None:
        super().__init__()
        self.attn, self.adapter = attn, eraser

    def forward(self, hidden_states, encoder_hidden_states=None, attention_mask=None, **kw):
        hidden_states, encoder_hidden_states = self.attn(hidden_states, encoder_hidden_states, attention_mask, **kw)
        return hidden_states + 1.0 * self.adapter(hidden_states), encoder_hidden_states


def _their_folder(tmp_path, blocks, attr: str, prefix: str, rank: int = 6, seed: int = 0):
    """An eraser folder as their save_*_eraser_from_transformer writes it: {'<site>.adapter': state_dict}."""
    g = torch.Generator().manual_seed(seed)
    state, erasers = {}, {}
    for i, block in enumerate(blocks):
        attn = getattr(block, attr)
        dim = attn.to_v.weight.shape[-1]  # their width: attn.to_v.weight.shape[-1]
        e = _TheirEraser(dim, rank)
        for p in e.parameters():
            p.data = torch.randn(p.shape, generator=g) * 0.3
        state[f"{prefix}.{i}.{attr}.adapter"] = e.state_dict()
        erasers[i] = e
    folder = tmp_path / "eraser"
    folder.mkdir()
    torch.save(state, folder / "eraser_weights.pt")
    (folder / "eraser_config.json").write_text(json.dumps({"eraser_type": "adapter", "eraser_rank": rank}))
    return folder, erasers


def _cog_inputs(bb):
    x = torch.randn(1, *bb.latent_shape(9, 32, 32), generator=torch.Generator().manual_seed(3))
    cond = bb.encode_prompts([PROMPT]).hidden_states
    return dict(hidden_states=x, encoder_hidden_states=cond, timestep=torch.tensor([500]), return_dict=False)


def test_their_cogvideox_eraser_gives_their_injections_output(tmp_path):
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    stock = copy.deepcopy(bb.denoiser)  # a stock transformer: diffusers' own processors
    folder, erasers = _their_folder(tmp_path, stock.transformer_blocks, "attn1", "transformer_blocks")
    theirs = copy.deepcopy(stock)
    for i, block in enumerate(theirs.transformer_blocks):
        block.attn1 = _TheirWrapper(block.attn1, erasers[i])
    inputs = _cog_inputs(bb)
    with torch.no_grad():
        reference = theirs(**inputs)[0]
        plain = stock(**inputs)[0]
        switch = attach_adapters(stock, folder)
        ours = stock(**inputs)[0]
    assert (reference - plain).abs().max() > 1e-3  # the erasers change the output
    assert (ours - reference).abs().max() <= 1e-6
    # the same adapters inside this package's own processors (the backbone used for training and evaluation)
    ctl2, config = load_adapters(folder)
    assert config["backbone"] == "unknown" and config["inner_dim"] == 6  # a tiny width: no published model
    bb.attach_switch(ctl2)
    with torch.no_grad():
        mine = bb.denoiser(**inputs)[0]
    assert (mine - reference).abs().max() <= 1e-6
    assert switch.inner_dim == 6


def test_their_hunyuan_eraser_gives_their_injections_output(tmp_path):
    bb = build_backbone("hunyuanvideo", tiny=True, torch_dtype="float32")
    stock = copy.deepcopy(bb.denoiser)
    folder, erasers = _their_folder(tmp_path, stock.single_transformer_blocks, "attn", "single_transformer_blocks")
    theirs = copy.deepcopy(stock)
    for i, block in enumerate(theirs.single_transformer_blocks):
        block.attn = _TheirWrapper(block.attn, erasers[i])
    x = torch.randn(1, *bb.latent_shape(9, 32, 32), generator=torch.Generator().manual_seed(3))
    emb = bb.encode_prompts([PROMPT])
    t = torch.tensor([500])
    with torch.no_grad():
        ref = bb.predict  # the backbone's call convention, run on the two transformers
        bb_theirs = copy.copy(bb)
        object.__setattr__(bb_theirs, "denoiser", theirs)
        object.__setattr__(bb_theirs, "switch", None)
        reference = type(bb).predict(bb_theirs, x, t, emb)
        sites = bb.attention_sites()
        switch, config = load_official(folder, "hunyuanvideo", [s.name for s in sites], [s.video_dim for s in sites])
        bb.attach_switch(switch)
        ours = ref(x, t, emb)
        with switch.disabled():
            plain = ref(x, t, emb)
    assert (reference - plain).abs().max() > 1e-3
    assert (ours - reference).abs().max() <= 1e-6
    # the dual-stream sites, which their injection does not touch, hold zero adapters
    dual = [i for i, s in enumerate(sites) if s.name.startswith("transformer_blocks.")]
    assert dual and all(not switch.adapters[i].up.weight.any() for i in dual)
    with pytest.raises(OfficialFormatError, match="single-stream"):
        load_official(folder)


def test_round_trip_ours_theirs_ours_is_exact(tmp_path):
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    sites = bb.attention_sites()
    switch = AdapterSwitch([s.video_dim for s in sites], 8, [s.name for s in sites])
    torch.manual_seed(0)
    for p in switch.parameters():
        torch.nn.init.normal_(p)
    save_official(switch, bb.name, tmp_path / "theirs")
    raw = torch.load(tmp_path / "theirs" / "eraser_weights.pt", weights_only=True)
    assert sorted(raw) == sorted(f"{s.name}.adapter" for s in sites)
    assert json.loads((tmp_path / "theirs" / "eraser_config.json").read_text()) == {
        "eraser_type": "adapter",
        "eraser_rank": 8,
    }
    back, _ = load_adapters(tmp_path / "theirs")
    for (k, a), (k2, b) in zip(switch.state_dict().items(), back.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)
    # into a model as init_adapters
    target = AdapterSwitch([s.video_dim for s in sites], 8, [s.name for s in sites])
    load_adapter_weights(target, tmp_path / "theirs", expect_backbone="cogvideox-2b")
    assert all(torch.equal(a, b) for a, b in zip(switch.parameters(), target.parameters(), strict=True))
    # HunyuanVideo: a non-zero adapter where their code has none cannot be written in their format
    hb = build_backbone("hunyuanvideo", tiny=True, torch_dtype="float32")
    hs = hb.attention_sites()
    hctl = AdapterSwitch([s.video_dim for s in hs], 4, [s.name for s in hs])
    save_official(hctl, "hunyuanvideo", tmp_path / "h0")  # zero-initialised: fine
    torch.nn.init.normal_(hctl.adapters[0].up.weight)
    with pytest.raises(OfficialFormatError, match="adapter_sites"):
        save_official(hctl, "hunyuanvideo", tmp_path / "h1")


def test_export_writes_their_format_from_a_checkpoint(tmp_path):
    """`unlearn export --format t2vunlearning` on a checkpoint as `unlearn fit` writes it (the module's own
    on_save_checkpoint, saved tensors-only): the same adapters as the default format, bit for bit."""
    from unlearn.cli import main as unlearn_main
    from unlearn.io import save_checkpoint_file
    from unlearn.methods.t2vunlearning.export import export_adapters
    from unlearn.methods.t2vunlearning.module import T2VUnlearning

    model = T2VUnlearning(backbone="cogvideox-2b", tiny=True, torch_dtype="float32", adapter_dim=8, alpha=0.0)
    torch.manual_seed(0)
    for p in model.switch.parameters():
        torch.nn.init.normal_(p)
    ckpt = {"state_dict": dict(model.state_dict()), "hyper_parameters": dict(model.hparams)}
    model.on_save_checkpoint(ckpt)
    save_checkpoint_file(ckpt, tmp_path / "run.ckpt")
    export_adapters(str(tmp_path / "run.ckpt"), str(tmp_path / "ours"))
    assert (
        unlearn_main(
            [
                "export",
                "--ckpt",
                str(tmp_path / "run.ckpt"),
                "--out",
                str(tmp_path / "theirs"),
                "--format",
                "t2vunlearning",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "theirs").iterdir()) == ["eraser_config.json", "eraser_weights.pt"]
    a, _ = load_adapters(tmp_path / "ours")
    b, _ = load_adapters(tmp_path / "theirs")
    for x, y, z in zip(
        a.state_dict().values(), b.state_dict().values(), model.switch.state_dict().values(), strict=True
    ):
        assert torch.equal(x, y) and torch.equal(x, z)


@pytest.mark.parametrize(
    "defect, match",
    [
        ("no_config", "lacks eraser_config.json"),
        ("type", "eraser_type"),
        ("rank", "eraser_rank 5"),
        ("nan", "NaN"),
        ("pickle", "weights_only=True"),
        ("missing_site", "missing"),
        ("width", "width differs"),
    ],
)
def test_bad_official_folders_get_one_clear_error(tmp_path, defect, match):
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    folder, _ = _their_folder(tmp_path, bb.denoiser.transformer_blocks, "attn1", "transformer_blocks")
    weights, config = folder / "eraser_weights.pt", folder / "eraser_config.json"
    state = torch.load(weights, weights_only=True)
    key = next(iter(state))
    if defect == "no_config":
        config.unlink()
    elif defect == "type":
        config.write_text(json.dumps({"eraser_type": "lora", "eraser_rank": 6}))
    elif defect == "rank":
        config.write_text(json.dumps({"eraser_type": "adapter", "eraser_rank": 5}))
    elif defect == "nan":
        state[key]["up.bias"][0] = float("nan")
        torch.save(state, weights)
    elif defect == "pickle":
        torch.save({key: {"down.weight": _Payload()}}, weights)
    elif defect == "missing_site":
        del state[key]
        torch.save(state, weights)
    elif defect == "width":
        sites = bb.attention_sites()
        with pytest.raises(OfficialFormatError, match=match):
            load_official(folder, "cogvideox-2b", [s.name for s in sites], [s.video_dim + 1 for s in sites])
        return
    with pytest.raises(OfficialFormatError, match=match):
        sites = bb.attention_sites()
        state2, rank = read_official(folder)
        load_official(folder, "cogvideox-2b", [s.name for s in sites], [s.video_dim for s in sites])


class _Payload:
    """An object a weights-only load must refuse (arbitrary classes are code)."""


def test_official_row_generates_with_their_adapters(tmp_path):
    from unlearn.evaluation.rows import RowGenerator, parse_rows

    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    folder, _ = _their_folder(tmp_path, bb.denoiser.transformer_blocks, "attn1", "transformer_blocks", rank=4)
    specs = parse_rows(["original", f"t2vunlearning_official={folder}"])
    gen = RowGenerator(bb, specs, sampling={"num_inference_steps": 2, "num_frames": 9, "height": 32, "width": 32})
    a = gen.generate("original", [PROMPT], [0])
    b = gen.generate("t2vunlearning_official", [PROMPT], [0])
    assert a.shape == b.shape and not torch.equal(a, b)
    assert specs[1].fingerprint(None)["adapters_sha256"]
    with pytest.raises(ValueError, match="authors' adapter folder"):
        parse_rows([f"t2vunlearning_official={tmp_path}"])[0].check(None, "cogvideox-2b")
