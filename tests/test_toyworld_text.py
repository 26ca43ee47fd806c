"""Toy tokenizer and text encoder: round trips, token positions, save/load."""

import numpy as np
import pytest
import torch

from unlearn.toyworld import grammar as g
from unlearn.toyworld.backbone import ToyCogVideoXBackbone, ToyTextEncoder, build_tokenizer, tokenize


def test_tokenizer_round_trip_and_positions(tmp_path):
    tok = build_tokenizer()
    rng = np.random.default_rng(0)
    recs = [g.sample_prompt(rng) for _ in range(50)]
    enc = tokenize(tok, [r.text for r in recs] + [""])
    assert enc["input_ids"].shape == (51, tok.model_max_length)
    assert int(enc["attention_mask"][-1].sum()) == 0
    unk = tok.convert_tokens_to_ids("<unk>")
    bb = ToyCogVideoXBackbone.tiny(tokenizer=tok)
    for r, ids in zip(recs, enc["input_ids"]):
        assert unk not in ids.tolist()
        assert tok.decode(ids, skip_special_tokens=True) == r.text
        assert tok.convert_ids_to_tokens(int(ids[r.shape_index])) == r.shape_word
        assert bb.concept_token_indices(r.text, g.synonyms(r.scene.shape)) == [r.shape_index]
    assert tok("A RED Ring")["input_ids"] == tok("a red ring")["input_ids"]
    tok.save_pretrained(str(tmp_path / "tok"))
    from transformers import PreTrainedTokenizerFast

    tok2 = PreTrainedTokenizerFast.from_pretrained(str(tmp_path / "tok"))
    assert (
        tokenize(tok2, ["a crimson hoop rises"])["input_ids"].tolist()
        == tokenize(tok, ["a crimson hoop rises"])["input_ids"].tolist()
    )
    assert tok2.model_max_length == tok.model_max_length


def test_text_encoder_shapes_and_save_load(tmp_path):
    torch.manual_seed(0)
    tok = build_tokenizer()
    te = ToyTextEncoder(len(tok), dim=32).eval()
    enc = tokenize(tok, ["a red ring", "", "the hoop is crimson and rises on black"])
    out = te(enc["input_ids"], enc["attention_mask"])
    assert out.shape == (3, tok.model_max_length, 32) and torch.isfinite(out).all()
    # context matters: the same word in different prompts gets different features
    e1 = te(**tokenize(tok, ["a red ring", "a blue ring"]))
    assert not torch.allclose(e1[0, 2], e1[1, 2])
    te.save_pretrained(tmp_path / "te")
    assert sorted(p.name for p in (tmp_path / "te").iterdir()) == ["config.json", "model.safetensors"]
    te2 = ToyTextEncoder.from_pretrained(tmp_path / "te")
    assert torch.allclose(te2(enc["input_ids"], enc["attention_mask"]), out)


def test_unknown_words_and_truncation_are_named(monkeypatch):
    import warnings

    from unlearn.toyworld.backbone import PromptNotUnderstoodWarning, build_tokenizer, tokenize

    tok = build_tokenizer()
    long = "a big red ring slowly moves left on a dark background next to a blue speck " * 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        enc = tokenize(tok, ["a purple ring", long, "a red ring"], 24)
    said = [str(w.message) for w in caught if issubclass(w.category, PromptNotUnderstoodWarning)]
    assert len(said) == 2 and "['purple']" in said[0]
    assert "cut off" in said[1] and "['a', 'dark', 'background', 'next', 'to', 'a', 'blue', 'speck']" in said[1]
    assert enc["input_ids"].shape == (3, 24)
    with pytest.raises(ValueError, match="purple"):
        tokenize(tok, ["a purple ring"], 24, strict=True)
    monkeypatch.setenv("UNLEARN_STRICT_PROMPTS", "1")
    with pytest.raises(ValueError, match="cut off"):
        tokenize(tok, [long], 24)


def test_the_backbone_speaks_up_when_encoding(recwarn):
    from unlearn.backbones import build_backbone
    from unlearn.toyworld.backbone import PromptNotUnderstoodWarning

    bb = build_backbone("toy-cogvideox", tiny=True)
    bb.encode_prompts(["a red ring", "a red ring on a velvet cushion"])
    said = [str(w.message) for w in recwarn.list if issubclass(w.category, PromptNotUnderstoodWarning)]
    assert len(said) == 1 and "['velvet', 'cushion']" in said[0]
    bb.strict_prompts = True
    with pytest.raises(ValueError, match="velvet"):
        bb.encode_prompts(["a velvet ring"])
