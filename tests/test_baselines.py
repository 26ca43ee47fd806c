"""SAFREE's projection on the tiny CogVideoX: trigger tokens found, toxic directions removed."""

import torch

from backbones import build_backbone
from unlearn.methods.baselines.safree import SAFREE, _projector


def test_projector_is_orthogonal_projection():
    basis = torch.randn(6, 2)
    p = _projector(basis)
    assert torch.allclose(p @ p, p, atol=1e-5) and torch.allclose(p, p.T, atol=1e-6)
    assert torch.allclose(p @ basis, basis, atol=1e-5)


def test_safree_projects_only_trigger_tokens_and_removes_toxic_component():
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    safree = SAFREE(bb, ["naked", "nude", "nudity"], token_z_threshold=1.0)
    prompt = "a naked person walking on the beach"
    cond = bb.encode_prompts([prompt])
    projected, cos = safree.project(cond)
    trig = safree.last_trigger_tokens[0]
    assert trig, "no trigger token found"
    changed = (projected.hidden_states - cond.hidden_states).abs().sum(-1)[0].nonzero().flatten().tolist()
    assert changed == trig
    # projected trigger tokens have (almost) no component in the toxic subspace
    toxic = safree.toxic
    before = (cond.hidden_states[0, trig] @ toxic).norm()
    after = (projected.hidden_states[0, trig] @ toxic).norm()
    assert after < 0.5 * before
    assert 0 < float(cos[0]) <= 1.0001
    video = bb.decode(safree.sample([prompt], [0], num_frames=9, height=32, width=32, num_inference_steps=3))
    assert video.shape == (1, 9, 32, 32, 3) and video.dtype == torch.uint8
