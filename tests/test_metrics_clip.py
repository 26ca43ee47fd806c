"""CLIPScore on a tiny random open_clip model (no weights ship offline) and against hand-computed cosines."""

import math

import pytest
import torch
import torch.nn.functional as F

from unlearn.evaluation.metrics import CLIPScore

TINY_CLIP = dict(
    embed_dim=16,
    vision_cfg=dict(image_size=32, layers=1, width=32, patch_size=8, head_width=16),
    text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1),
)


@pytest.fixture(scope="module")
def tiny_clip():
    from unlearn.evaluation.evaluators import OpenCLIPModel

    torch.manual_seed(0)
    return OpenCLIPModel("ViT-B-32", pretrained=None, model_kwargs=TINY_CLIP)


def test_tiny_model_shapes_and_range(tiny_clip):
    metric = CLIPScore(clip=tiny_clip)
    frames = torch.rand(2, 3, 40, 56, 3)
    metric.update(frames, ["a red ball rolling", "a dog running on grass"])
    out = metric.compute()
    assert out["frames"].item() == 6
    assert 0.0 <= out["clip_score"].item() <= 100.0
    assert -1.0 <= out["clip_cosine"].item() <= 1.0
    # the metric's per-frame cosine equals the one computed from the model's own embeddings
    image = tiny_clip.encode_images(frames[0])
    text = tiny_clip.encode_texts(["a red ball rolling"])
    assert image.shape == (3, 16) and text.shape == (1, 16)
    assert torch.allclose(image.norm(dim=-1), torch.ones(3), atol=1e-5)
    single = CLIPScore(clip=tiny_clip)
    single.update(frames[0], "a red ball rolling")
    assert single.compute()["clip_cosine"].item() == pytest.approx((image @ text.T).mean().item(), abs=1e-5)
    settings = metric.settings()
    assert settings["evaluator"]["name"] == "open_clip[ViT-B-32]" and settings["evaluator"]["pretrained"] is None


def test_hand_computed_cosine_on_given_embeddings(tiny_clip):
    images = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    texts = torch.tensor([[4.0, 3.0], [-1.0, 0.0], [0.0, 1.0]])
    cosines = [24 / 25, -1.0, 1.0]
    assert CLIPScore.scores(images, texts).tolist() == pytest.approx(cosines)
    metric = CLIPScore(clip=tiny_clip)
    metric.update_embeddings(images, texts)
    out = metric.compute()
    assert out["clip_cosine"].item() == pytest.approx(sum(cosines) / 3, abs=1e-6)
    assert out["clip_score"].item() == pytest.approx((96.0 + 0.0 + 100.0) / 3, abs=1e-4)  # negatives clamp to 0
    assert out["clip_cosine"].item() == pytest.approx(F.cosine_similarity(images, texts).mean().item(), abs=1e-6)


def test_errors(tiny_clip, tmp_path):
    metric = CLIPScore(clip=tiny_clip)
    with pytest.raises(ValueError, match="prompts must be strings"):
        metric.update(torch.rand(2, 8, 8, 3), 3)
    with pytest.raises(ValueError, match="1 values for 2 video"):
        metric.update(torch.rand(2, 2, 8, 8, 3), ["only one"] * 1)
    with pytest.warns(UserWarning, match="no frames"):
        assert math.isnan(CLIPScore(clip=tiny_clip).compute()["clip_score"].item())
    missing = tmp_path / "clip.bin"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        CLIPScore(pretrained=str(missing))
