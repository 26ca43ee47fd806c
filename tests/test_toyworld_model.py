"""Toy denoiser: the CogVideoX contract (v-prediction, scheduler, layout), sampling, saving and loading."""

import json

import numpy as np
import torch

from unlearn.backbones import build_backbone
from unlearn.toyworld.backbone import ToyCogVideoXBackbone, WorldConfig, build_scheduler


def _tiny() -> ToyCogVideoXBackbone:
    world = WorldConfig(num_layers=1, num_attention_heads=2, attention_head_dim=8, text_dim=16, time_embed_dim=16)
    return ToyCogVideoXBackbone.tiny(seed=0, world=world)


def test_scheduler_matches_cogvideox_2b_contract():
    s = build_scheduler()
    c = s.config
    assert c.prediction_type == "v_prediction" and c.rescale_betas_zero_snr and c.timestep_spacing == "trailing"
    assert c.beta_schedule == "scaled_linear" and c.num_train_timesteps == 1000
    assert float(s.alphas_cumprod[-1]) < 1e-6  # zero terminal SNR


def test_forward_layout_and_sampling():
    bb = _tiny()
    world, tr = bb.world, bb.denoiser
    assert tr.config.in_channels == tr.config.out_channels == 3 and tr.config.temporal_compression_ratio == 1
    assert not tr.config.use_rotary_positional_embeddings
    x = torch.randn(2, world.frames, 3, world.height, world.width)
    v = bb.predict(x, torch.tensor([10, 900]), bb.encode_prompts(["a red ring", "a blue dot"]))
    assert v.shape == x.shape
    lat = bb.sample(["a red ring"], [0], num_inference_steps=2)
    assert lat.shape == (1, *x.shape[1:]) and torch.isfinite(lat).all()
    frames = bb.decode(lat)
    assert frames.dtype == torch.uint8 and frames.shape == (1, world.frames, world.height, world.width, 3)


def test_save_and_load_components(tmp_path):
    bb = _tiny()
    bb.save_pretrained(str(tmp_path))
    assert not list(tmp_path.rglob("*.bin")) and not list(tmp_path.rglob("*.pt"))
    bb2 = build_backbone("toy-cogvideox", pretrained=str(tmp_path), torch_dtype="float32")
    assert bb2.world == bb.world and bb2.scheduler.config.prediction_type == "v_prediction"
    x = torch.randn(1, bb.world.frames, 3, bb.world.height, bb.world.width)
    a = bb.predict(x, torch.tensor([5]), bb.encode_prompts(["a red ring"]))
    b = bb2.predict(x, torch.tensor([5]), bb2.encode_prompts(["a red ring"]))
    assert torch.allclose(a, b)


def test_classifier_save_load_and_topk(tmp_path):
    from unlearn.toyworld.classifier import ShapeColourClassifier, rendered_frames

    clf = ShapeColourClassifier(width_mult=8).eval()
    x, y = rendered_frames(3, seed=0)
    v, i, names = clf.topk(x, k=3)
    assert v.shape == (12, 3) and len(names) == 12 and names[0][0] in clf.classes
    assert clf.logits(x.astype(np.float32) / 255.0).shape == (12, 25)
    clf.save_pretrained(tmp_path / "clf")
    cfg = json.loads((tmp_path / "clf" / "config.json").read_text())
    assert cfg["classes"][0] == "red ring" and len(cfg["classes"]) == 25
    assert torch.allclose(ShapeColourClassifier.from_pretrained(tmp_path / "clf").logits(x), clf.logits(x))
    assert len(clf.predict_video(x.reshape(3, 4, 16, 16, 3))) == 3
