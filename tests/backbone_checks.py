"""The contract checks every registered backbone must pass, on its tiny random model (a tests helper module).

Each check is a plain function of a :class:`Bundle` (a built backbone plus its stock attention processors), so
that ``test_backbone_contract.py`` runs them on every registered backbone and ``test_backbone_registry.py`` on a
backbone registered elsewhere. A backbone whose class cannot build ``tiny=True`` is skipped.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any

import numpy as np
import pytest
import torch

from unlearn.backbones import VideoBackbone, backbone_class, build_backbone
from unlearn.methods.t2vunlearning.adapters import AdapterSwitch

PROMPTS = ["a golf ball rolls across the grass", "a red ball and a golf ball on the beach"]
CONCEPT = "golf ball"


@dataclasses.dataclass
class Bundle:
    name: str
    bb: VideoBackbone
    stock_processors: list[Any]  # the denoiser's own processors at the sites, before any adapters

    def restore_stock(self) -> None:
        for site, proc in zip(self.bb.attention_sites(), self.stock_processors):
            site.module.set_processor(proc)


def build_bundle(name: str) -> Bundle:
    cls = backbone_class(name)
    if "tiny" not in inspect.signature(cls.load).parameters:
        pytest.skip(f"{name}: its class cannot build a tiny random model")
    try:
        bb = build_backbone(name, tiny=True, torch_dtype="float32")
    except NotImplementedError as err:
        pytest.skip(f"{name}: no tiny model ({err})")
    return Bundle(name, bb, [s.module.processor for s in bb.attention_sites()])


_BUNDLES: dict[str, Bundle] = {}


def get_bundle(name: str) -> Bundle:
    # one tiny model per name for the whole session (building is the slow part); every check attaches its own
    # switch, so no state leaks between checks
    if name not in _BUNDLES:
        _BUNDLES[name] = build_bundle(name)
    b = _BUNDLES[name]
    b.restore_stock()
    return b


# ---------------------------------------------------------------------------------------------------- helpers
def new_switch(bb: VideoBackbone, inner: int = 8, nonzero: float = 0.0, seed: int = 0) -> AdapterSwitch:
    sites = bb.attention_sites()
    torch.manual_seed(seed)
    switch = AdapterSwitch([s.video_dim for s in sites], inner, [s.name for s in sites])
    if nonzero:
        for a in switch.adapters:
            torch.nn.init.normal_(a.up.weight, std=nonzero)
    bb.attach_switch(switch)
    return switch


def inputs(bb: VideoBackbone, prompts=PROMPTS):
    d = bb.defaults
    x = bb.initial_noise(list(range(len(prompts))), d.num_frames, d.height, d.width)
    t = bb.timesteps_for(4)[1].reshape(1).expand(len(prompts)).clone()
    return x, t, bb.encode_prompts(prompts)


def layout(cls: type) -> str | None:
    """'cross', 'first' or 'last' from the class's ``token_layout`` (see backbones/README.md)."""
    text = cls.token_layout.lower()
    if text.startswith("cross"):
        return "cross"
    if "text first" in text:
        return "first"
    if "text last" in text:
        return "last"
    return None


def stock_pipeline(bb: VideoBackbone):
    try:
        return bb.as_pipeline()
    except NotImplementedError as err:
        pytest.skip(f"{bb.name}: no stock diffusers pipeline ({err})")


def run_pipeline(pipe, bb: VideoBackbone) -> torch.Tensor:
    params = inspect.signature(pipe.__call__).parameters
    d = bb.defaults
    kw: dict[str, Any] = dict(
        prompt=PROMPTS[0],
        num_frames=d.num_frames,
        height=d.height,
        width=d.width,
        num_inference_steps=2,
        output_type="latent",
        generator=torch.Generator().manual_seed(0),
    )
    if "max_sequence_length" in params:
        kw["max_sequence_length"] = bb.max_text_length
    if "prompt_template" in params and hasattr(bb, "prompt_template"):
        kw["prompt_template"] = bb.prompt_template
    out = pipe(**kw)
    frames = out.frames if hasattr(out, "frames") else out[0]
    return torch.as_tensor(np.asarray(frames)) if not isinstance(frames, torch.Tensor) else frames


# ---------------------------------------------------------------------------------------------------- checks
def check_zero_init_is_frozen(b: Bundle) -> None:
    bb = b.bb
    switch = new_switch(bb)
    x, t, c = inputs(bb)
    with torch.no_grad():
        with switch.disabled():
            frozen = bb.predict(x, t, c)
        adapted = bb.predict(x, t, c)
    assert frozen.shape == x.shape
    assert torch.equal(adapted, frozen)


def check_only_adapters_train_and_loss_falls(b: Bundle) -> None:
    bb = b.bb
    switch = new_switch(bb)
    before = {k: v.clone() for k, v in bb.state_dict().items()}
    adapters_before = {k: v.clone() for k, v in switch.state_dict().items()}
    x, t, c = inputs(bb)
    with torch.no_grad(), switch.disabled():
        target = bb.predict(x, t, c) + 0.5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.Adam(switch.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = torch.mean((bb.predict(x, t, c) - target) ** 2)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
    assert all(p.grad is None for p in bb.parameters())
    after = bb.state_dict()
    assert after.keys() == before.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert not changed, f"backbone tensors changed: {changed[:5]}"
    assert all(
        not torch.equal(adapters_before[k], v) for k, v in switch.state_dict().items() if k.endswith("up.weight")
    )


def check_concept_map_matches_dense_reference(b: Bundle, monkeypatch) -> None:
    """The map the processors record (chunked, many chunks forced) equals a dense softmax computed in float64
    from the q and k that the *stock* diffusers processor hands to scaled_dot_product_attention."""
    import unlearn.backbones.attention as am

    bb = b.bb
    lay = layout(type(bb))
    if lay is None:
        pytest.skip(f"{b.name}: token_layout {type(bb).token_layout!r} names no known layout")
    switch = new_switch(bb)
    x, t, c = inputs(bb)
    ct = bb.concept_token_mask(PROMPTS, [[CONCEPT]] * len(PROMPTS))
    monkeypatch.setattr(am, "DEFAULT_CHUNK_ELEMENTS", 256)  # a handful of queries per chunk
    with torch.no_grad(), switch.capturing(ct):
        bb.predict(x, t, c)
    _, maps = switch.take()
    sites = bb.attention_sites()
    assert len(maps) == len(sites)

    # reference: stock processors, q/k/mask recorded at SDPA, attributed to sites by module hooks
    current: list[int | None] = [None]
    records: dict[int, list[tuple]] = {}
    hooks = []
    for i, site in enumerate(sites):
        hooks.append(site.module.register_forward_pre_hook(lambda m, a, i=i: current.__setitem__(0, i)))
        hooks.append(site.module.register_forward_hook(lambda m, a, o: current.__setitem__(0, None)))
    real_sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **kw):
        if current[0] is not None:
            records.setdefault(current[0], []).append((query.detach().clone(), key.detach().clone(), attn_mask, scale))
        return real_sdpa(
            query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale, **kw
        )

    b.restore_stock()
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    try:
        with torch.no_grad():
            bb.predict(x, t, c)
    finally:
        for h in hooks:
            h.remove()
        monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", real_sdpa)
    assert sorted(records) == list(range(len(sites))), "every site must run exactly one stock attention"
    n_text = ct.shape[1]
    for i, m in enumerate(maps):
        assert len(records[i]) == 1
        q, k, mask, scale = records[i][0]
        bsz, _, _, d = q.shape
        n_keys = k.shape[2]
        if lay == "cross":
            assert n_keys == n_text
            qv, concept = q, ct.repeat_interleave(bsz // ct.shape[0], 0)
        elif lay == "first":
            qv = q[:, :, n_text:]
            concept = torch.cat([ct, torch.zeros(bsz, n_keys - n_text, dtype=torch.bool)], 1)
        else:
            qv = q[:, :, : n_keys - n_text]
            concept = torch.cat([torch.zeros(bsz, n_keys - n_text, dtype=torch.bool), ct], 1)
        logits = qv.double() @ k.double().transpose(-1, -2) * (scale if scale is not None else 1 / math.sqrt(d))
        if mask is not None:
            logits = logits.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else logits + mask.double()
        ref = (torch.softmax(logits, -1) * concept[:, None, None, :].double()).sum(-1).mean(1)
        assert m.shape[0] == ct.shape[0] and m.dim() == 3
        torch.testing.assert_close(m.double(), ref.reshape(m.shape), atol=1e-5, rtol=0)
        assert float(m.max()) > 0.0


def check_export_round_trip(b: Bundle, tmp_path) -> None:
    bb = b.bb
    switch = new_switch(bb, nonzero=0.5)
    x, t, c = inputs(bb)
    with torch.no_grad():
        wrapper_pred = bb.predict(x, t, c)
    pipe = stock_pipeline(bb)
    b.restore_stock()
    stock = run_pipeline(pipe, bb)
    try:
        from unlearn.methods.t2vunlearning.export import attach_adapters, save_adapters
    except ImportError:  # pragma: no cover - before unlearn/export.py existed
        loaded = switch
        type(bb).install_adapter_processors(getattr(pipe, "transformer", None) or pipe.unet, loaded)
    else:
        save_adapters(switch, bb.name, tmp_path / "adapters")
        loaded = attach_adapters(pipe, tmp_path / "adapters")
        for k, v in switch.state_dict().items():
            assert torch.equal(loaded.state_dict()[k], v)
    adapted = run_pipeline(pipe, bb)
    with loaded.scaled(0.0):
        zero = run_pipeline(pipe, bb)
    assert torch.equal(zero, stock)
    assert (adapted - stock).abs().max() > 1e-4
    # the pipeline's denoiser (shared with the wrapper) now runs the loaded adapters: same prediction
    with torch.no_grad():
        assert torch.equal(bb.predict(x, t, c), wrapper_pred)


def _token_span(bb: VideoBackbone, prompt: str, idx: list[int]) -> str:
    _, offsets = bb.text_tokens(prompt)
    spans = [offsets[i - bb.text_token_offset] for i in idx]
    return prompt[min(s for s, _ in spans) : max(e for _, e in spans)].strip()


def check_concept_token_indices(b: Bundle) -> None:
    bb = b.bb
    length = bb.encode_prompts(["a"]).hidden_states.shape[1]
    cases = [
        ("golf ball rolling across the grass", "golf ball"),  # start
        ("a small golf ball rolls on the grass", "golf ball"),  # middle
        ("a dog watches a golf ball", "golf ball"),  # end
        ("a red zqxjvk rolls on the grass", "zqxjvk"),  # not in any vocabulary: several tokens
    ]
    unk = getattr(bb.tokenizer, "unk_token_id", None)
    for prompt, phrase in cases:
        idx = bb.concept_token_indices(prompt, phrase)
        assert idx == sorted(idx) and all(0 <= i < length for i in idx), (prompt, idx)
        assert idx == list(range(idx[0], idx[-1] + 1)), f"concept tokens must be contiguous: {prompt!r} {idx}"
        assert _token_span(bb, prompt, idx).lower() == phrase, (prompt, idx)
        ids, _ = bb.text_tokens(prompt)
        concept_ids = [ids[i - bb.text_token_offset] for i in idx]
        if unk not in concept_ids:  # a word-level tokenizer maps unknown words to one <unk>
            decoded = bb.tokenizer.decode(concept_ids).replace("</w>", " ")
            assert "".join(decoded.lower().split()) == phrase.replace(" ", ""), (prompt, decoded)
        mask = bb.concept_token_mask([prompt], [[phrase]])
        assert mask.shape == (1, length) and mask[0].nonzero().flatten().tolist() == idx
    split = bb.concept_token_indices(cases[-1][0], "zqxjvk")
    ids, _ = bb.text_tokens(cases[-1][0])
    if ids[split[0] - bb.text_token_offset] != unk:  # subword tokenizers spell an unknown word in pieces
        assert len(split) >= 2
    # start/middle/end tokens sit where the prompt puts them
    first = bb.concept_token_indices(cases[0][0], "golf ball")[0]
    last = bb.concept_token_indices(cases[2][0], "golf ball")[-1]
    ids_end, _ = bb.text_tokens(cases[2][0])
    assert first <= bb.text_token_offset + 1  # at most a BOS token before it
    assert last - bb.text_token_offset >= len([i for i in ids_end]) - 3  # only EOS/template tokens after it


def check_sample_and_decode(b: Bundle) -> None:
    bb = b.bb
    new_switch(bb)
    d = bb.defaults
    lat = bb.sample(PROMPTS[:1], [0], stop_at_step=1)
    assert tuple(lat.shape) == (1, *bb.latent_shape(d.num_frames, d.height, d.width))
    video = bb.decode(lat)
    assert video.dtype == torch.uint8 and tuple(video.shape) == (1, d.num_frames, d.height, d.width, 3)
    x, t, c = inputs(bb)
    u = bb.encode_prompts([""] * len(PROMPTS))
    with torch.no_grad():
        pu, pc, g = bb.guided_prediction(x, t[:1], c, u, 3.0)
        alone = bb.predict(x, t, u)
    assert pu.shape == pc.shape == g.shape == x.shape
    torch.testing.assert_close(pu, alone, atol=1e-5, rtol=1e-5)  # the unconditional half is v(x_t, ∅, t)
    assert bb.prediction_type in ("v_prediction", "epsilon", "flow")


def check_video_size(b: Bundle) -> None:
    """The backbone accepts its own default size and names the key of a size it cannot generate."""
    bb, d = b.bb, b.bb.defaults
    bb.check_video_size(d.num_frames, d.height, d.width)
    with pytest.raises(ValueError, match="num_frames"):
        bb.check_video_size(0, d.height, d.width)
    with pytest.raises(ValueError, match="data.height"):
        bb.check_video_size(d.num_frames, d.height + 1, d.width, keys=("data.num_frames", "data.height", "data.width"))


def check_noisy_target_follows_the_scheduler(b: Bundle) -> None:
    """``noisy_target`` speaks the scheduler's convention: one sampler step with the exact target as the
    prediction lands on ``x0`` noised to the next timestep (same noise)."""
    bb = b.bb
    d = bb.defaults
    g = torch.Generator().manual_seed(0)
    shape = (2, *bb.latent_shape(d.num_frames, d.height, d.width))
    x0, noise = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    scheduler = bb.new_scheduler()
    scheduler.set_timesteps(10)
    t0, t1 = scheduler.timesteps[0], scheduler.timesteps[1]
    x_t, target = bb.noisy_target(x0, noise, t0.reshape(1).expand(2))
    assert x_t.shape == target.shape == x0.shape
    stepped = bb.scheduler_step(scheduler, target, t0, x_t)
    expected, _ = bb.noisy_target(x0, noise, t1.reshape(1).expand(2))
    # flow samplers round σ·1000 to integer timesteps (σ 0.9001 is t 900), so σ = t / 1000 is off by < 1e-3
    tol = 2e-2 if bb.prediction_type == "flow" else 1e-4
    torch.testing.assert_close(stepped, expected, atol=tol, rtol=tol)


def check_text_at_the_embedding_level(b: Bundle) -> None:
    """Either the token-embedding path gives exactly ``encode_prompts`` (and gradients reach the embeddings),
    or the family says plainly that it lacks it."""
    bb = b.bb
    try:
        ids, mask = bb.text_input_ids(PROMPTS)
        table = bb.text_input_embeddings()
        embeds = table(ids.to(table.weight.device)).detach().requires_grad_(True)
        enc = bb.encode_input_embeddings(embeds, mask)
    except NotImplementedError as err:
        assert "Fix:" in str(err) and "Ring-A-Bell" in str(err)
        return
    ref = bb.encode_prompts(PROMPTS)
    torch.testing.assert_close(enc.hidden_states.detach(), ref.hidden_states, atol=1e-5, rtol=1e-5)
    enc.hidden_states.square().sum().backward()
    assert embeds.grad is not None and embeds.grad.abs().sum() > 0


ALL_CHECKS = [
    check_noisy_target_follows_the_scheduler,
    check_text_at_the_embedding_level,
    check_zero_init_is_frozen,
    check_only_adapters_train_and_loss_falls,
    check_concept_map_matches_dense_reference,
    check_export_round_trip,
    check_concept_token_indices,
    check_video_size,
    check_sample_and_decode,
]


def run_all_checks(b: Bundle, tmp_path, monkeypatch) -> None:
    """Every contract check on one bundle (used for backbones registered at test time)."""
    for check in ALL_CHECKS:
        params = inspect.signature(check).parameters
        kwargs = {k: v for k, v in (("tmp_path", tmp_path), ("monkeypatch", monkeypatch)) if k in params}
        check(b, **kwargs)


# ---------------------------------------------------------------------------------------------------- tests


def random_adapters(bb: VideoBackbone, seed: int = 0) -> AdapterSwitch:
    """Adapters with random (non-zero) up-projections at every attention site of ``bb``."""
    sites = bb.attention_sites()
    switch = AdapterSwitch([s.video_dim for s in sites], 8, [s.name for s in sites])
    g = torch.Generator().manual_seed(seed)
    for a in switch.adapters:
        a.up.weight.data = torch.randn(a.up.weight.shape, generator=g) * 0.2
    return switch
