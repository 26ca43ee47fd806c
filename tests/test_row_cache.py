"""Rows that do not depend on training are cached on disk, keyed by everything their frames depend on (#22)."""

from __future__ import annotations

import pytest
import torch

from unlearn.backbones import build_backbone
from unlearn.evaluation import RowGenerator, RowSpec
from unlearn.evaluation.row_cache import RowVideoCache, weights_sha256

PROMPTS = ["a red ring moves left", "a blue square moves right"]
SEEDS = [3, 4]
STEPS = {"num_inference_steps": 2}


@pytest.fixture(scope="module")
def backbone():
    return build_backbone("toy-cogvideox", torch_dtype="float32")


def generator(bb, cache, rows=("original", "negprompt", "safree"), sampling=STEPS, **spec_kw):
    specs = [RowSpec(kind=r, **spec_kw.get(r, {})) for r in rows]
    return RowGenerator(bb, specs, concept="red ring", sampling=dict(sampling), cache=cache)


def test_second_generation_reads_the_cache_and_gives_the_same_frames(backbone, tmp_path):
    first = RowVideoCache(tmp_path)
    fresh = {r: generator(backbone, first).generate(r, PROMPTS, SEEDS) for r in ("original", "negprompt", "safree")}
    assert (first.hits, first.misses) == (0, 3) and len(list(tmp_path.rglob("*.safetensors"))) == 3
    again = RowVideoCache(tmp_path)  # a later run: a new cache object on the same folder
    gen = generator(backbone, again)
    for row, videos in fresh.items():
        cached = gen.generate(row, PROMPTS, SEEDS)
        assert cached.dtype == torch.uint8 and torch.equal(cached, videos)
    assert (again.hits, again.misses) == (3, 0)
    uncached = generator(backbone, None).generate("original", PROMPTS, SEEDS)  # the cache changes no frame
    assert torch.equal(uncached, fresh["original"])


def test_a_changed_key_regenerates(backbone, tmp_path):
    cache = RowVideoCache(tmp_path)
    base = generator(backbone, cache)
    base.generate("negprompt", PROMPTS, SEEDS)
    keys = {base.cache_key("negprompt", PROMPTS, SEEDS)}
    changes = {
        "seeds": lambda: generator(backbone, cache).generate("negprompt", PROMPTS, [3, 5]),
        "prompts": lambda: generator(backbone, cache).generate("negprompt", PROMPTS[::-1], SEEDS[::-1]),
        "sampling": lambda: generator(backbone, cache, sampling={"num_inference_steps": 3}).generate(
            "negprompt", PROMPTS, SEEDS
        ),
        "row options": lambda: generator(
            backbone, cache, rows=("negprompt",), negprompt={"options": {"guidance_scale": 7.0}}
        ).generate("negprompt", PROMPTS, SEEDS),
        "concept": lambda: generator(backbone, cache, rows=("negprompt",), negprompt={"concept": "blue square"})
        .generate("negprompt", PROMPTS, SEEDS),
    }  # fmt: skip
    for what, run in changes.items():
        misses = cache.misses
        run()
        assert cache.misses == misses + 1, what
    assert len(list(tmp_path.rglob("*.safetensors"))) == 1 + len(changes)
    # a row's name is not part of its frames: the same row under another name is a hit
    hits = cache.hits
    RowGenerator(backbone, [RowSpec(kind="negprompt", name="np2")], concept="red ring", sampling=STEPS,
                    cache=cache).generate("np2", PROMPTS, SEEDS)  # fmt: skip
    assert cache.hits == hits + 1
    assert len(keys) == 1


def test_changed_weights_regenerate_and_restored_weights_hit(backbone, tmp_path):
    cache = RowVideoCache(tmp_path)
    before = generator(backbone, cache, rows=("original",)).generate("original", PROMPTS, SEEDS)
    digest = weights_sha256(backbone)
    param = backbone.denoiser.proj_out.bias
    saved = param.detach().clone()
    with torch.no_grad():
        param.add_(0.5)
    try:
        assert weights_sha256(backbone) != digest
        changed = generator(backbone, cache, rows=("original",)).generate("original", PROMPTS, SEEDS)
        assert cache.misses == 2 and not torch.equal(changed, before)
    finally:
        with torch.no_grad():
            param.copy_(saved)
    assert weights_sha256(backbone) == digest
    again = generator(backbone, cache, rows=("original",)).generate("original", PROMPTS, SEEDS)
    assert cache.hits == 1 and torch.equal(again, before)


def test_a_damaged_entry_is_generated_again(backbone, tmp_path):
    cache = RowVideoCache(tmp_path)
    gen = generator(backbone, cache, rows=("original",))
    videos = gen.generate("original", PROMPTS, SEEDS)
    entry = next(tmp_path.rglob("*.safetensors"))
    entry.write_bytes(entry.read_bytes()[:100])  # truncated
    assert torch.equal(gen.generate("original", PROMPTS, SEEDS), videos) and cache.misses == 2
    key = gen.cache_key("original", PROMPTS, SEEDS)
    wrong = cache.path("0" * 64)
    wrong.parent.mkdir(parents=True, exist_ok=True)
    cache.path(key).rename(wrong)  # an entry under another key's name is not trusted
    assert cache.get("0" * 64) is None and cache.get(key) is None


def test_live_rows_are_never_cached(tmp_path):
    from unlearn.methods.t2vunlearning import AdapterSwitch

    backbone = build_backbone("toy-cogvideox", torch_dtype="float32")  # its own: adapters get attached
    switch = AdapterSwitch([s.video_dim for s in backbone.attention_sites()], inner_dim=4)
    backbone.attach_switch(switch)
    cache = RowVideoCache(tmp_path)
    gen = RowGenerator(backbone, [RowSpec(kind="t2vunlearning", live=True), RowSpec(kind="original")],
                          concept="red ring", sampling=STEPS, switch=switch, cache=cache)  # fmt: skip
    assert gen.cache_key("t2vunlearning", PROMPTS, SEEDS) is None
    gen.generate("t2vunlearning", PROMPTS, SEEDS)
    assert (cache.hits, cache.misses) == (0, 0) and not list(tmp_path.rglob("*.safetensors"))
    # the original row of the same run is cached, keyed by the frozen weights: training the adapters (not
    # part of the backbone's state) leaves its key, and its entry, valid
    before = gen.cache_key("original", PROMPTS, SEEDS)
    with torch.no_grad():
        switch.adapters[0].up.weight.add_(1.0)
    assert gen.cache_key("original", PROMPTS, SEEDS) == before
    gen.generate("original", PROMPTS, SEEDS)
    assert cache.misses == 1 and gen.generate("original", PROMPTS, SEEDS) is not None and cache.hits == 1
