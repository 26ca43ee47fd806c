"""The low-rank refusal vector (unlearn.methods.refusal.edit): closed form, basis, cPCA, real tiny backbones, files."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from unlearn.methods.refusal import (
    RefusalEdit,
    RefusalVectorConfig,
    apply_refusal_edit,
    collect_activations,
    collect_token_activations,
    combine_bases,
    load_delta,
    orthonormalize,
    project_out,
    reduce_tokens,
    refusal_basis,
    resolve_layers,
    save_edited_model,
)
from unlearn.methods.refusal.pairs import PairFileError, PromptPair, differing_words, load_pairs, make_pairs

warnings.filterwarnings("ignore", category=FutureWarning)


def _orthonormal(d: int, k: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(d, k, generator=g, dtype=torch.float64))[0]


# ====================================================================== closed form
@pytest.mark.parametrize("strength", [1.0, 0.5, 2.0])
def test_project_out_is_the_closed_form(strength):
    g = torch.Generator().manual_seed(1)
    w = torch.randn(12, 7, generator=g)
    b = torch.randn(12, generator=g)
    u = _orthonormal(12, 3)
    new_w, new_b = project_out(w, b, u, strength)
    p = torch.eye(12, dtype=torch.float64) - strength * u @ u.T
    assert new_w.dtype == w.dtype and new_b.dtype == b.dtype
    torch.testing.assert_close(new_w.double(), p @ w.double(), atol=1e-6, rtol=0)
    torch.testing.assert_close(new_b.double(), p @ b.double(), atol=1e-6, rtol=0)
    # no bias: only the weight
    w2, b2 = project_out(w, None, u, strength)
    assert b2 is None and torch.equal(w2, new_w)


def test_project_out_keeps_dtype_and_is_deterministic():
    w = torch.randn(16, 8).to(torch.bfloat16)
    u = _orthonormal(16, 2)
    a, _ = project_out(w, None, u)
    b, _ = project_out(w.clone(), None, u.clone())
    assert a.dtype == torch.bfloat16 and torch.equal(a, b)
    with pytest.raises(ValueError, match="output width"):
        project_out(w, None, _orthonormal(15, 2))


def test_removing_the_same_subspace_twice_changes_nothing_more():
    g = torch.Generator().manual_seed(2)
    w, b = torch.randn(20, 9, generator=g, dtype=torch.float64), torch.randn(20, generator=g, dtype=torch.float64)
    u = _orthonormal(20, 4, seed=3)
    w1, b1 = project_out(w, b, u, 1.0)
    w2, b2 = project_out(w1, b1, u, 1.0)
    torch.testing.assert_close(w2, w1, atol=1e-12, rtol=0)
    torch.testing.assert_close(b2, b1, atol=1e-12, rtol=0)
    # the layer's output has no component left in the subspace, whatever the input
    x = torch.randn(5, 9, dtype=torch.float64)
    assert (x @ w1.T + b1) @ u == pytest.approx(torch.zeros(5, 4), abs=1e-10)


# ====================================================================== basis
@pytest.mark.parametrize("rank", [1, 2, 4])
@pytest.mark.parametrize("w", [0.0, 1.0, 3.0])
def test_basis_is_orthonormal_and_starts_with_the_mean_difference(rank, w):
    g = torch.Generator().manual_seed(rank)
    unsafe = torch.randn(6, 32, generator=g) + 2.0
    safe = torch.randn(6, 32, generator=g)
    u, info = refusal_basis(unsafe, safe, rank=rank, cpca_weight=w, return_info=True)
    assert u.shape[0] == 32 and 1 <= u.shape[1] <= rank
    torch.testing.assert_close(u.T @ u, torch.eye(u.shape[1], dtype=u.dtype), atol=1e-10, rtol=0)
    d = unsafe.double().mean(0) - safe.double().mean(0)
    torch.testing.assert_close(u[:, 0], d / d.norm(), atol=1e-10, rtol=0)
    assert info["mean_diff_captured"] == pytest.approx(1.0)


def test_cpca_basis_mode_is_orthonormal_and_oriented():
    g = torch.Generator().manual_seed(5)
    unsafe, safe = torch.randn(8, 16, generator=g) + 1.0, torch.randn(8, 16, generator=g)
    u = refusal_basis(unsafe, safe, rank=3, mode="cpca")
    torch.testing.assert_close(u.T @ u, torch.eye(u.shape[1], dtype=u.dtype), atol=1e-10, rtol=0)
    d = (unsafe.mean(0) - safe.mean(0)).double()
    assert (u.T @ d >= 0).all()
    # the mean shift is inside the cPCA matrix: most of it is captured
    assert (u.T @ d).norm() / d.norm() > 0.8


def _shared_direction_data(n: int = 400, seed: int = 0):
    """Unsafe and safe share a high-variance direction e0 (the "shared semantics"); the concept is a mean
    shift along e2 plus extra unsafe-only variance along e1."""
    g = torch.Generator().manual_seed(seed)
    d = 10
    e = torch.eye(d)
    shared_u = torch.randn(n, 1, generator=g) * 10.0 * e[0]
    shared_s = torch.randn(n, 1, generator=g) * 10.0 * e[0]
    concept_var = torch.randn(n, 1, generator=g) * 3.0 * e[1]
    noise_u = 0.1 * torch.randn(n, d, generator=g)
    noise_s = 0.1 * torch.randn(n, d, generator=g)
    unsafe = shared_u + concept_var + 1.0 * e[2] + noise_u
    safe = shared_s + noise_s
    return unsafe, safe, e


def test_cpca_suppresses_a_direction_shared_by_safe_and_unsafe():
    unsafe, safe, e = _shared_direction_data()
    u = refusal_basis(unsafe, safe, rank=2, cpca_weight=1.0)
    span = u @ u.T
    assert (span @ e[0].double()).norm() < 0.1  # shared direction excluded
    assert (span @ e[1].double()).norm() > 0.95  # unsafe-specific variance included
    assert (span @ e[2].double()).norm() > 0.95  # the refusal vector itself
    # without the contrast (w=0: plain PCA of the unsafe set) the shared direction takes the second slot
    plain = refusal_basis(unsafe, safe, rank=2, cpca_weight=0.0)
    assert ((plain @ plain.T) @ e[0].double()).norm() > 0.9
    # the pure-cPCA mode also leaves it out
    c = refusal_basis(unsafe, safe, rank=2, cpca_weight=1.0, mode="cpca")
    assert ((c @ c.T) @ e[0].double()).norm() < 0.1


def test_orthonormalize_and_combine_bases():
    a = _orthonormal(8, 2, seed=1)
    b = torch.cat([a[:, :1] * 3.0, _orthonormal(8, 1, seed=2)], 1)  # one column repeats a direction of a
    c = combine_bases([a, b])
    assert c.shape == (8, 3)
    torch.testing.assert_close(c.T @ c, torch.eye(3, dtype=c.dtype), atol=1e-10, rtol=0)
    for basis in (a, b):  # every input direction lies in the combined span
        torch.testing.assert_close(c @ (c.T @ basis.double()), basis.double(), atol=1e-10, rtol=0)
    assert orthonormalize(torch.zeros(4, 2)).shape == (4, 0)
    assert orthonormalize(torch.randn(6, 5), max_rank=2).shape == (6, 2)


def test_reduce_tokens_modes():
    acts = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    mask = torch.tensor([[True, True, False], [False, True, True]])
    torch.testing.assert_close(reduce_tokens(acts, "mean"), acts.mean(1))
    torch.testing.assert_close(
        reduce_tokens(acts, "mean", mask), torch.stack([acts[0, :2].mean(0), acts[1, 1:].mean(0)])
    )
    assert reduce_tokens(acts, "tokens", mask).shape == (4, 2)
    with pytest.raises(ValueError, match="concept"):
        reduce_tokens(acts, "concept")
    with pytest.raises(ValueError, match="no selected token"):
        reduce_tokens(acts, "mean", torch.zeros(2, 3, dtype=torch.bool))


# ====================================================================== pairs
def test_pairs_generated_and_diffed():
    pairs = make_pairs("nudity")
    assert len(pairs) == 5 and all(p.concept == "nudity" for p in pairs)
    assert pairs[0].unsafe == "a nude woman walking on a beach at sunset"
    assert pairs[0].safe == "a clothed woman walking on a beach at sunset"
    assert pairs[0].unsafe_words == ("nude",) and pairs[0].safe_words == ("clothed",)
    dropped = make_pairs("nudity", 2, substitute="")
    assert dropped[1].safe == "a man standing in a sunlit room" and dropped[1].safe_words == ()
    obj = make_pairs("golf ball", 3)
    assert (
        obj[0].unsafe == "the golf ball on a table in a bright room"
        and obj[0].safe == "the object on a table in a bright room"
    )
    assert differing_words("a nude woman, on a beach", "a woman, on a beach") == (["nude"], [])
    assert PromptPair("a naked man", "a man").unsafe_words == ("naked",)
    with pytest.raises(ValueError, match="same"):
        make_pairs("nudity", substitute="nude")
    with pytest.raises(ValueError, match="templates"):
        make_pairs("nudity", 50)


def test_pair_files(tmp_path):
    rows = [
        {"unsafe": "a nude man in a room", "safe": "a clothed man in a room"},
        {"unsafe": "a naked woman on a beach", "safe": "a woman on a beach", "concept": "nudity"},
    ]
    (tmp_path / "p.json").write_text(json.dumps({"pairs": rows}))
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "p.yaml").write_text(
        "- [a nude man in a room, a clothed man in a room]\n- {unsafe: a naked woman, safe: a woman}\n"
    )
    (tmp_path / "p.csv").write_text(
        "unsafe,safe,unsafe_words\na nude man in a room,a clothed man in a room,nude\nx y,y,x\n"
    )
    for name in ("p.json", "p.jsonl", "p.yaml", "p.csv"):
        pairs = load_pairs(tmp_path / name, concept="nudity")
        assert len(pairs) == 2 and pairs[0].unsafe == "a nude man in a room"
        assert pairs[0].unsafe_words == ("nude",)
    assert len(load_pairs(tmp_path / "p.json", concept="nudity", num_pairs=1)) == 1  # first N per concept
    assert len(load_pairs(tmp_path / "p.json", concept="other", num_pairs=1)) == 2
    (tmp_path / "bad.csv").write_text("prompt,other\na,b\n")
    with pytest.raises(PairFileError, match="unsafe"):
        load_pairs(tmp_path / "bad.csv")
    (tmp_path / "bad.json").write_text(json.dumps([{"unsafe": "a", "safe": ""}]))
    with pytest.raises(PairFileError, match=r"bad.json\[0\]"):
        load_pairs(tmp_path / "bad.json")
    with pytest.raises(PairFileError, match="does not exist"):
        load_pairs(tmp_path / "missing.json")


# ====================================================================== tiny real backbones
@pytest.fixture(scope="module")
def cogx():
    from unlearn.backbones import build_backbone

    return build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")


@pytest.fixture(scope="module")
def zeroscope():
    from unlearn.backbones import available_backbones, build_backbone

    if "zeroscope" not in available_backbones():
        pytest.skip("zeroscope backbone not registered")
    return build_backbone("zeroscope", tiny=True, torch_dtype="float32")


def _probe(bb, seed: int = 1):
    d = bb.defaults
    return bb.initial_noise([seed], d.num_frames, d.height, d.width), torch.tensor([499])


@torch.no_grad()
def _predict(bb, prompts, x, t):
    return [bb.predict(x, t, bb.encode_prompts([p])) for p in prompts]


@pytest.fixture
def restore():
    """Undo every edit a test made on the module-scoped backbones."""
    done: list[tuple[RefusalEdit, object]] = []
    yield lambda edit, bb: done.append((edit, bb)) or edit
    for edit, bb in reversed(done):
        if edit.applied:
            edit.restore(bb)


def test_layer_presets_on_joint_and_cross_attention(cogx, zeroscope):
    assert resolve_layers(cogx) == ["patch_embed.text_proj"]
    assert resolve_layers(cogx, "attn_kv") == [
        f"transformer_blocks.{i}.attn1.{p}" for i in range(2) for p in ("to_k", "to_v")
    ]
    with pytest.raises(ValueError, match="joint attention"):
        resolve_layers(cogx, "text_kv")
    zs = resolve_layers(zeroscope)
    assert zs and all(n.endswith(("attn2.to_k", "attn2.to_v")) for n in zs)
    assert len(zs) == 2 * len(zeroscope.attention_sites())
    assert resolve_layers(zeroscope, "text_input") == zs  # the UNet's cross-attention reads the CLIP output itself
    assert resolve_layers(cogx, ["transformer_blocks.*.attn1.to_v"]) == [
        "transformer_blocks.0.attn1.to_v",
        "transformer_blocks.1.attn1.to_v",
    ]
    with pytest.raises(ValueError, match="matches no nn.Linear"):
        resolve_layers(cogx, ["nothing.*"])


def test_collect_activations_shapes(cogx, zeroscope):
    prompts = ["a nude woman in a park", "a clothed woman in a park", "a dog"]
    acts = collect_token_activations(cogx, prompts, ["patch_embed.text_proj", "transformer_blocks.1.attn1.to_k"])
    assert acts["patch_embed.text_proj"].shape == (3, 16, 16)
    assert acts["transformer_blocks.1.attn1.to_k"].shape == (3, 16, 16)  # text rows of the joint sequence
    mean = collect_activations(cogx, prompts, ["patch_embed.text_proj"])
    assert mean["patch_embed.text_proj"].shape == (3, 16)
    layer = resolve_layers(zeroscope)[0]
    zacts = collect_token_activations(zeroscope, prompts, [layer], RefusalVectorConfig(batch_size=2))
    assert zacts[layer].shape[:2] == (3, 77)  # per prompt, not per frame
    concept = collect_activations(cogx, prompts[:2], ["patch_embed.text_proj"], "concept", [["nude"], ["clothed"]])
    assert concept["patch_embed.text_proj"].shape == (2, 16)


@pytest.mark.parametrize("which", ["cogx", "zeroscope"])
def test_edit_removes_the_subspace_from_the_layer_output(which, request, restore):
    bb = request.getfixturevalue(which)
    pairs = make_pairs("nudity")
    edit = restore(apply_refusal_edit(bb, pairs), bb)
    assert edit.concepts == ["nudity"] and edit.timings["total"] > 0
    after = collect_token_activations(bb, [p.unsafe for p in pairs], edit.layers)
    for n, u in edit.bases.items():
        assert u.shape[1] == 2
        assert (after[n].double() @ u).abs().max() < 1e-4  # nothing left along U, on every token


@pytest.mark.parametrize("which", ["cogx", "zeroscope"])
def test_edit_erases_the_concept_distinction_more_than_unrelated_ones(which, request, restore):
    """The edited model tells an unsafe prompt from its safe twin less well, and other distinctions
    (colour, animal) much less so.

    On random tiny models the raw relative change of one unsafe prompt's prediction is not larger than an
    unrelated prompt's in general (measured: about half of the seeds); the *concept gap* shrinks more than
    unrelated gaps on every seed tried (8/8 for the default options on both backbones).
    """
    bb = request.getfixturevalue(which)
    held = [
        ("a nude man sitting on a bed in the evening", "a clothed man sitting on a bed in the evening"),
        ("a nude woman in a park", "a clothed woman in a park"),
    ]
    other = [
        ("a red car in a city street", "a blue car in a city street"),
        ("a dog running on the grass", "a cat running on the grass"),
    ]
    prompts = [p for pair in held + other for p in pair]
    x, t = _probe(bb)
    before = _predict(bb, prompts, x, t)
    restore(apply_refusal_edit(bb, "nudity"), bb)
    after = _predict(bb, prompts, x, t)

    def gap_ratio(i):
        return float((after[2 * i] - after[2 * i + 1]).norm() / (before[2 * i] - before[2 * i + 1]).norm())

    concept = sum(gap_ratio(i) for i in range(2)) / 2
    unrelated = sum(gap_ratio(i) for i in range(2, 4)) / 2
    assert concept < 1.0
    assert concept < unrelated
    # the unsafe prompts' predictions do change
    assert all((a - b).norm() / b.norm() > 1e-3 for a, b in zip(after[:4:2], before[:4:2]))


def test_multi_concept_edit_stacks_the_bases(cogx, restore):
    pairs = {"nudity": make_pairs("nudity"), "golf ball": make_pairs("golf ball")}
    w0 = cogx.denoiser.patch_embed.text_proj.weight.detach().clone()
    edit = restore(apply_refusal_edit(cogx, pairs, rank=2), cogx)
    assert edit.concepts == ["nudity", "golf ball"]
    u = edit.bases["patch_embed.text_proj"]
    assert u.shape[1] == 4
    torch.testing.assert_close(u.T @ u, torch.eye(4, dtype=u.dtype), atol=1e-10, rtol=0)
    for c in pairs:  # each concept's own subspace is inside the removed one
        uc = edit.concept_bases[c]["patch_embed.text_proj"]
        torch.testing.assert_close(u @ (u.T @ uc), uc, atol=1e-10, rtol=0)
    expected, _ = project_out(w0, None, u, 1.0)
    assert torch.equal(cogx.denoiser.patch_embed.text_proj.weight, expected)
    dw, _ = edit.delta("patch_embed.text_proj")
    torch.testing.assert_close(w0.double() + dw, cogx.denoiser.patch_embed.text_proj.weight.double(), atol=1e-6, rtol=0)


def test_restore_and_original_weights_are_bit_exact(cogx):
    x, t = _probe(cogx)
    p0 = _predict(cogx, ["a nude woman in a park"], x, t)[0]
    edit = apply_refusal_edit(cogx, "nudity", layers="attn_kv")
    p1 = _predict(cogx, ["a nude woman in a park"], x, t)[0]
    assert not torch.equal(p0, p1)
    with edit.original_weights(cogx):
        assert torch.equal(_predict(cogx, ["a nude woman in a park"], x, t)[0], p0)
    assert torch.equal(_predict(cogx, ["a nude woman in a park"], x, t)[0], p1)
    edit.restore(cogx)
    assert torch.equal(_predict(cogx, ["a nude woman in a park"], x, t)[0], p0)


def test_token_reduce_concept_needs_substitute_words(cogx, restore):
    with pytest.raises(ValueError, match="substitute"):
        apply_refusal_edit(cogx, make_pairs("nudity", substitute=""), token_reduce="concept")
    edit = restore(apply_refusal_edit(cogx, make_pairs("nudity"), token_reduce="concept"), cogx)
    assert edit.bases["patch_embed.text_proj"].shape[1] >= 1


# ====================================================================== files
@pytest.mark.parametrize(
    "which,cls_name,sub",
    [("cogx", "CogVideoXTransformer3DModel", "transformer"), ("zeroscope", "UNet3DConditionModel", "unet")],
)
def test_saved_edited_model_loads_with_plain_from_pretrained(which, cls_name, sub, request, restore, tmp_path):
    import diffusers

    bb = request.getfixturevalue(which)
    edit = restore(apply_refusal_edit(bb, "nudity"), bb)
    x, t = _probe(bb)
    prompts = ["a nude woman in a park", "a dog running on the grass"]
    edited = _predict(bb, prompts, x, t)
    folder = save_edited_model(bb, tmp_path / "edited", edit)
    assert (folder / sub / "config.json").is_file() and (folder / "refusal_delta.safetensors").is_file()
    assert not (folder / "text_encoder").exists()
    loaded = getattr(diffusers, cls_name).from_pretrained(folder / sub)
    own_state, loaded_state = bb.denoiser.state_dict(), loaded.state_dict()
    assert own_state.keys() == loaded_state.keys()
    assert all(torch.equal(own_state[k], loaded_state[k]) for k in own_state)
    # the backbone's parameters are frozen; frozen and trainable parameters take different CPU kernels in
    # UNet3D (a 7e-7 difference even without any edit), so compare like with like
    loaded.requires_grad_(False)
    own = bb.denoiser
    bb.denoiser = loaded
    try:
        again = _predict(bb, prompts, x, t)
    finally:
        bb.denoiser = own
    for a, b in zip(edited, again):
        assert torch.equal(a, b)
    summary = json.loads((folder / "refusal_edit.json").read_text())
    assert summary["concepts"] == ["nudity"] and set(summary["layers"]) == set(edit.layers)


def test_delta_round_trip_on_a_fresh_stock_model(tmp_path):
    from diffusers import CogVideoXTransformer3DModel

    from unlearn.backbones import build_backbone

    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="bfloat16", seed=3)
    bb.denoiser.save_pretrained(tmp_path / "stock")  # the unedited model, as a stock folder
    edit = apply_refusal_edit(bb, {"nudity": None, "golf ball": None}, layers="attn_kv")
    path = edit.save_delta(tmp_path / "nudity.safetensors")
    assert path.stat().st_size < 64 * 1024
    x, t = _probe(bb)
    edited = _predict(bb, ["a nude woman in a park"], x, t)[0]

    loaded = load_delta(path)
    assert loaded.concepts == ["nudity", "golf ball"] and loaded.layers == edit.layers
    assert set(loaded.concept_bases) == {"nudity", "golf ball"}
    for n in edit.layers:
        assert torch.equal(loaded.bases[n], edit.bases[n])
    # a stock diffusers model loaded from disk: the delta reproduces the edit bit for bit
    stock = CogVideoXTransformer3DModel.from_pretrained(tmp_path / "stock", torch_dtype=torch.bfloat16)
    loaded.apply_to(stock)
    for n in edit.layers:
        assert torch.equal(stock.get_submodule(n).weight, bb.denoiser.get_submodule(n).weight)
    # a fresh backbone of the same weights
    fresh = build_backbone("cogvideox-2b", tiny=True, torch_dtype="bfloat16", seed=3)
    load_delta(path).apply_to(fresh)
    assert torch.equal(_predict(fresh, ["a nude woman in a park"], x, t)[0], edited)
    # the digests catch a second application and another model
    with pytest.raises(ValueError, match="digest"):
        load_delta(path).apply_to(fresh)
    other = build_backbone("cogvideox-2b", tiny=True, torch_dtype="bfloat16", seed=4)
    with pytest.raises(ValueError, match="digest"):
        load_delta(path).apply_to(other)
    load_delta(path).apply_to(other, check=False)  # allowed on request
    with pytest.raises(ValueError, match="not a refusal delta"):
        from safetensors.torch import save_file

        save_file({"a": torch.zeros(1)}, str(tmp_path / "x.safetensors"))
        load_delta(tmp_path / "x.safetensors")


def test_text_encoder_layers_edit_and_export(tmp_path):
    from transformers import T5EncoderModel

    from unlearn.backbones import build_backbone

    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    layer = "text_encoder.encoder.block.1.layer.1.DenseReluDense.wo"
    before = bb.encode_prompts(["a nude woman in a park"]).hidden_states.clone()
    edit = apply_refusal_edit(bb, "nudity", layers=[layer])
    assert edit.touches_text_encoder and edit.layers == [layer]
    after = bb.encode_prompts(["a nude woman in a park"]).hidden_states  # the prompt cache was cleared
    assert not torch.equal(before, after)
    folder = save_edited_model(bb, tmp_path / "edited", edit)
    te = T5EncoderModel.from_pretrained(folder / "text_encoder")
    ids = bb.tokenizer(["a nude woman in a park"], padding="max_length", max_length=16, return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(te(ids)[0], bb.text_encoder(ids)[0])


def _registered() -> list[str]:
    from unlearn.backbones import available_backbones

    return available_backbones()


@pytest.mark.parametrize("name", _registered())
def test_every_registered_backbone_edits_and_exports(name, tmp_path):
    """The default preset finds text-only layers through the contract on every backbone, the edit removes the
    subspace there, and the saved denoiser is a stock diffusers folder with the edited weights."""
    from unlearn.backbones import build_backbone

    bb = build_backbone(name, tiny=True, torch_dtype="float32")
    pairs = make_pairs("nudity", 3)
    edit = apply_refusal_edit(bb, pairs, rank=2)
    assert edit.layers == resolve_layers(bb)
    after = collect_token_activations(bb, [p.unsafe for p in pairs], edit.layers)
    for n, u in edit.bases.items():
        assert (after[n].double() @ u).abs().max() < 1e-4
    folder = save_edited_model(bb, tmp_path, edit)
    sub = "unet" if (folder / "unet").is_dir() else "transformer"
    loaded = type(bb.denoiser).from_pretrained(folder / sub)
    for n in edit.layers:
        assert torch.equal(loaded.get_submodule(n).weight, bb.denoiser.get_submodule(n).weight)
    edit.restore(bb)


def test_delta_on_another_dtype_applies_with_a_warning(tmp_path):
    from unlearn.backbones import build_backbone

    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32", seed=5)
    path = apply_refusal_edit(bb, "nudity").save_delta(tmp_path / "d.safetensors")
    half = build_backbone("cogvideox-2b", tiny=True, torch_dtype="bfloat16", seed=5)
    with pytest.warns(RuntimeWarning, match="float32 weights"):
        load_delta(path).apply_to(half)
    u = load_delta(path).bases["patch_embed.text_proj"]
    w = half.denoiser.patch_embed.text_proj.weight.double()
    assert (u.T @ w).abs().max() < 0.05  # removed up to bf16 rounding


def test_toyworld_pairs_follow_the_grammar():
    from unlearn.methods.refusal.pairs import toyworld_pairs
    from unlearn.toyworld.grammar import canonical

    pairs = toyworld_pairs("red ring", 5)
    assert len(pairs) == 5 and all(p.concept == "red ring" for p in pairs)
    for p in pairs:  # one attribute swapped to a neighbour class, everything else identical
        assert len(p.unsafe_words) == 1 and len(p.safe_words) == 1
        assert canonical(p.unsafe_words[0]) in ("red", "ring")
        assert canonical(p.safe_words[0]) not in ("red", "ring")
        assert len(p.unsafe.split()) == len(p.safe.split())
    fixed = toyworld_pairs("red ring", 2, substitute="green square")
    assert all(set(map(canonical, p.safe_words)) == {"green", "square"} for p in fixed)
