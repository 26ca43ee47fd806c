"""Toy tokenizer and text encoder: round trips, token positions, save/load."""

import numpy as np
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
    assert tokenize(tok2, ["a crimson hoop rises"])["input_ids"].tolist() == tokenize(tok, ["a crimson hoop rises"])["input_ids"].tolist()
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
