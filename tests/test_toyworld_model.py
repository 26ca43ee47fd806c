"""Toy denoiser: the CogVideoX contract (v-prediction, scheduler, layout), sampling, saving and loading."""

import json

import numpy as np
import torch

from unlearn.toyworld.model import WorldConfig, build_scheduler, build_transformer, encode_prompts, sample
from unlearn.toyworld.text import ToyTextEncoder, build_tokenizer


def _tiny():
    torch.manual_seed(0)
    world = WorldConfig(num_layers=1, num_attention_heads=2, attention_head_dim=8, text_dim=16, time_embed_dim=16)
    tok = build_tokenizer(max_length=world.max_text_length)
    te = ToyTextEncoder(len(tok), dim=world.text_dim, max_length=world.max_text_length).eval()
    return world, tok, te, build_transformer(world).eval(), build_scheduler()


def test_scheduler_matches_cogvideox_2b_contract():
    s = build_scheduler()
    c = s.config
    assert c.prediction_type == "v_prediction" and c.rescale_betas_zero_snr and c.timestep_spacing == "trailing"
    assert c.beta_schedule == "scaled_linear" and c.num_train_timesteps == 1000
    assert float(s.alphas_cumprod[-1]) < 1e-6  # zero terminal SNR


def test_forward_layout_and_sampling():
    world, tok, te, tr, sch = _tiny()
    assert tr.config.in_channels == tr.config.out_channels == 3 and tr.config.temporal_compression_ratio == 1
    assert not tr.config.use_rotary_positional_embeddings
    x = torch.randn(2, world.frames, 3, world.height, world.width)
    ctx = encode_prompts(tok, te, ["a red ring", "a blue dot"])
    with torch.no_grad():
        v = tr(hidden_states=x, encoder_hidden_states=ctx, timestep=torch.tensor([10, 900]), return_dict=False)[0]
    assert v.shape == x.shape
    lat = sample(tr, sch, ctx, encode_prompts(tok, te, [""]), world, num_inference_steps=2,
                 generator=torch.Generator().manual_seed(0))
    assert lat.shape == x.shape and torch.isfinite(lat).all()


def test_save_and_load_components(tmp_path):
    from unlearn.toyworld import load_toy_components

    world, tok, te, tr, sch = _tiny()
    tok.save_pretrained(str(tmp_path / "tokenizer"))
    te.save_pretrained(tmp_path / "text_encoder")
    tr.save_pretrained(str(tmp_path / "transformer"), safe_serialization=True)
    sch.save_pretrained(str(tmp_path / "scheduler"))
    (tmp_path / "world.json").write_text(world.to_json())
    assert not list(tmp_path.rglob("*.bin")) and not list(tmp_path.rglob("*.pt"))
    tok2, te2, tr2, sch2, world2 = load_toy_components(tmp_path)
    assert world2 == world and sch2.config.prediction_type == "v_prediction"
    x = torch.randn(1, world.frames, 3, world.height, world.width)
    with torch.no_grad():
        a = tr(hidden_states=x, encoder_hidden_states=encode_prompts(tok, te, ["a red ring"]), timestep=torch.tensor([5]))[0]
        b = tr2(hidden_states=x, encoder_hidden_states=encode_prompts(tok2, te2, ["a red ring"]), timestep=torch.tensor([5]))[0]
    assert torch.allclose(a, b)


def test_classifier_save_load_and_topk(tmp_path):
    from unlearn.toyworld.classifier import FrameClassifier, rendered_frames

    clf = FrameClassifier(width_mult=8).eval()
    x, y = rendered_frames(3, seed=0)
    v, i, names = clf.topk(x, k=3)
    assert v.shape == (12, 3) and len(names) == 12 and names[0][0] in clf.classes
    assert clf.logits(x.astype(np.float32) / 255.0).shape == (12, 25)
    clf.save_pretrained(tmp_path / "clf")
    cfg = json.loads((tmp_path / "clf" / "config.json").read_text())
    assert cfg["classes"][0] == "red ring" and len(cfg["classes"]) == 25
    assert torch.allclose(FrameClassifier.from_pretrained(tmp_path / "clf").logits(x), clf.logits(x))
    assert len(clf.predict_video(x.reshape(3, 4, 16, 16, 3))) == 3
