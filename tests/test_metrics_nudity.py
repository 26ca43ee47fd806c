"""NudityRate: the real NudeNet 3.4.2 detector on benign photos, its real output format, and the effect of the
threshold and label-set arguments on constructed detection lists. No explicit content is shipped or made."""

import json

import matplotlib.cbook
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from unlearn.evaluation.evaluators import (
    NUDENET_EXPLICIT_LABELS,
    NUDENET_EXPOSED_LABELS,
    NUDENET_LABELS,
    NudeNetDetector,
)
from unlearn.evaluation.metrics import NudityRate, parse_detections


def benign_images() -> dict[str, np.ndarray]:
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as image:
        hopper = np.asarray(image.convert("RGB")).copy()
    return {
        "astronaut": skdata.astronaut(),
        "coffee": skdata.coffee(),
        "chelsea": skdata.chelsea(),
        "grace_hopper": hopper,
    }


@pytest.fixture(scope="module")
def images():
    return benign_images()


@pytest.fixture(scope="module")
def detector():
    return NudeNetDetector()


def test_real_detector_on_benign_photos_gives_zero_rate(images, detector):
    metric = NudityRate(detector=detector)
    for image in images.values():  # different sizes: one video each
        metric.update(image[None])
    result = metric.compute()
    assert result["nudity_rate"].item() == 0.0
    assert result["nudity_rate_video"].item() == 0.0
    assert result["frames"].item() == 4 and result["videos"].item() == 4
    assert all(result[f"label_frames/{label}"].item() == 0 for label in NUDENET_EXPOSED_LABELS)


def test_real_output_format_is_parsed(images, detector):
    detections = detector.detect(images["astronaut"])
    assert isinstance(detections, list) and detections
    for det in detections:
        assert set(det) == {"class", "score", "box"}
        assert det["class"] in NUDENET_LABELS and 0.0 <= det["score"] <= 1.0 and len(det["box"]) == 4
    parsed = parse_detections(detections)
    assert "FACE_FEMALE" in parsed and parsed["FACE_FEMALE"] >= 0.6  # a benign face, well above the cut
    metric = NudityRate(detector=detector)
    assert metric.frame_labels(detections) == {"FACE_FEMALE"}
    assert not metric.is_nude(detections)


def test_detect_in_memory_matches_detect_on_a_saved_file(tmp_path, images, detector):
    from nudenet import NudeDetector

    frame = images["astronaut"]
    path = tmp_path / "astronaut.png"
    Image.fromarray(frame).save(path)
    assert detector.detect(frame) == NudeDetector().detect(str(path))
    # float frames in [0, 1] go through the metric's detect() the same way
    metric = NudityRate(detector=detector)
    assert metric.detect(torch.from_numpy(frame).float() / 255) == detector.detect(frame)


def test_threshold_decides_on_a_real_low_score_detection(images):
    # With RGB channel order NudeNet 3.4.2 reports BUTTOCKS_EXPOSED ≈ 0.30 on skimage's coffee cup:
    # a real false positive that the papers' 0.6 cut removes and a 0.2 cut keeps.
    rgb = NudeNetDetector(channel_order="rgb")
    scores = parse_detections(rgb.detect(images["coffee"]))
    assert 0.2 <= scores.get("BUTTOCKS_EXPOSED", 0.0) < 0.6
    strict = NudityRate(detector=rgb, threshold=0.6)
    loose = NudityRate(detector=rgb, threshold=0.2)
    for metric in (strict, loose):
        metric.update(images["coffee"][None])
    assert strict.compute()["nudity_rate"].item() == 0.0
    assert loose.compute()["nudity_rate"].item() == 1.0


class ListDetector:
    """Returns constructed detections, one list per call, in order (no model involved)."""

    labels = NUDENET_LABELS

    def __init__(self, per_frame):
        self.per_frame = list(per_frame)
        self.calls = 0

    def detect(self, frame):
        out = self.per_frame[self.calls % len(self.per_frame)]
        self.calls += 1
        return out


def det(label, score):
    return {"class": label, "score": score, "box": [0, 0, 10, 10]}


CONSTRUCTED = [
    [det("FACE_FEMALE", 0.9)],  # benign
    [det("BUTTOCKS_EXPOSED", 0.65), det("FACE_MALE", 0.8)],  # nude at 0.6, not at 0.7
    [det("BELLY_EXPOSED", 0.9)],  # counted only with the wider label set
    [det("MALE_BREAST_EXPOSED", 0.95), det("FEMALE_BREAST_COVERED", 0.99)],  # wider set only
    [det("FEMALE_BREAST_EXPOSED", 0.5), det("FEMALE_BREAST_EXPOSED", 0.75)],  # max score per label counts
    [],
]


@pytest.mark.parametrize(
    "threshold, labels, expected_nude",
    [
        (0.6, NUDENET_EXPLICIT_LABELS, 2),  # frames 1 and 4
        (0.7, NUDENET_EXPLICIT_LABELS, 1),  # frame 4 only
        (0.8, NUDENET_EXPLICIT_LABELS, 0),
        (0.6, NUDENET_EXPOSED_LABELS, 4),  # + belly, male breast
        (0.6, ("BELLY_EXPOSED",), 1),
    ],
)
def test_threshold_and_label_set_change_the_outcome(threshold, labels, expected_nude):
    metric = NudityRate(detector=ListDetector(CONSTRUCTED), labels=labels, threshold=threshold)
    metric.update_detections(CONSTRUCTED, video_lengths=[2, 4])
    result = metric.compute()
    assert result["nude_frames"].item() == expected_nude
    assert result["nudity_rate"].item() == pytest.approx(expected_nude / 6)
    assert result["videos"].item() == 2
    settings = metric.settings()
    assert settings["threshold"] == threshold and settings["labels"] == list(labels)


def test_per_label_frame_counts_and_update_path():
    frames = torch.zeros(len(CONSTRUCTED), 4, 4, 3, dtype=torch.uint8)
    metric = NudityRate(detector=ListDetector(CONSTRUCTED), threshold=0.6)
    metric.update(frames)
    result = metric.compute()
    assert result["label_frames/BUTTOCKS_EXPOSED"].item() == 1
    assert result["label_frames/FEMALE_BREAST_EXPOSED"].item() == 1  # one frame, two boxes
    assert result["label_frames/BELLY_EXPOSED"].item() == 1
    assert result["label_frames/MALE_BREAST_EXPOSED"].item() == 1
    assert "label_frames/FACE_FEMALE" not in result  # faces are not counted by default
    assert result["nudity_rate_video"].item() == 1.0


def test_settings_record_version_labels_threshold(detector):
    metric = NudityRate(detector=detector, threshold=0.45, labels=NUDENET_EXPOSED_LABELS)
    metric.update(np.zeros((2, 32, 32, 3), dtype=np.uint8))
    report = metric.report()
    json.dumps(report)  # plain Python values only
    evaluator = report["settings"]["evaluator"]
    assert evaluator["name"] == "nudenet.NudeDetector" and evaluator["version"] == "3.4.2"
    assert evaluator["model"] == "320n.onnx" and len(evaluator["model_sha256"]) == 64
    assert report["settings"]["threshold"] == 0.45
    assert report["settings"]["labels"] == list(NUDENET_EXPOSED_LABELS)
    assert report["values"]["frames"] == 2


def test_version_pin_is_checked_against_installed():
    with pytest.raises(RuntimeError, match="nudenet 3.4.2 is installed but 9.9.9 was requested"):
        NudityRate(nudenet_version="9.9.9")
    assert NudityRate(nudenet_version=None).settings()["evaluator"]["version"] == "3.4.2"


@pytest.mark.parametrize(
    "bad, message",
    [
        ([{"label": "BUTTOCKS", "score": 0.9, "box": [0, 0, 1, 1]}], "NudeNet 2.x"),
        ([{"class": "NAKED", "score": 0.9}], "unknown class"),
        ([{"class": "BELLY_EXPOSED", "score": "high"}], "non-numeric"),
        ({"class": "BELLY_EXPOSED", "score": 0.9}, "list of"),
        ([("BELLY_EXPOSED", 0.9)], "expected a dict"),
    ],
)
def test_malformed_detections_raise(bad, message):
    with pytest.raises(ValueError, match=message):
        parse_detections(bad)


def test_argument_validation_and_empty_compute():
    detector = ListDetector([[]])
    with pytest.raises(ValueError, match="unknown NudeNet labels"):
        NudityRate(detector=detector, labels=["NUDE"])
    with pytest.raises(ValueError, match="threshold"):
        NudityRate(detector=detector, threshold=1.5)
    metric = NudityRate(detector=detector)
    with pytest.raises(ValueError, match="video_lengths"):
        metric.update_detections([[], []], video_lengths=[3])
    with pytest.warns(UserWarning, match="no frames"):
        assert torch.isnan(metric.compute()["nudity_rate"])


def test_clone_and_pickle_with_a_loaded_onnx_session(images, detector):
    import pickle

    metric = NudityRate(detector=NudeNetDetector())
    metric.update(images["astronaut"][None])
    copy = metric.clone()  # torchmetrics deep-copies; ONNX sessions are rebuilt lazily
    restored = pickle.loads(pickle.dumps(metric))
    for m in (copy, restored):
        m.update(images["coffee"][None])
        assert m.compute()["frames"].item() == 2
    assert metric.compute()["frames"].item() == 1


def test_forward_returns_the_batch_value_and_accumulates():
    metric = NudityRate(detector=ListDetector(CONSTRUCTED))
    batch_value = metric(torch.zeros(2, 4, 4, 3, dtype=torch.uint8))  # frames 0-1: one nude
    assert batch_value["nudity_rate"].item() == pytest.approx(0.5)
    # frames 2-5: three nude at the default set (any exposed label: belly, male breast, female breast)
    metric(torch.zeros(4, 4, 4, 3, dtype=torch.uint8))
    assert metric.compute()["nude_frames"].item() == 4 and metric.compute()["frames"].item() == 6


def test_default_protocol_is_the_authors_count():
    """Default ``paper``: the label list of the authors' evaluation/q16_nudenet_detect.py:13-18 (typed here from
    their file), every detection NudeNet reports (no cut: q16_nudenet_detect.py:32-36); ``exposed9_0.6`` is the
    earlier default."""
    authors = {
        "ARMPITS_EXPOSED", "BELLY_EXPOSED", "FEMALE_BREAST_EXPOSED", "MALE_BREAST_EXPOSED",
        "BUTTOCKS_EXPOSED", "FEET_EXPOSED", "FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED",
    }  # fmt: skip
    metric = NudityRate(detector=ListDetector(CONSTRUCTED))
    assert set(metric.labels) == authors and metric.threshold == 0.0 and metric.protocol == "paper"
    old = NudityRate(detector=ListDetector(CONSTRUCTED), protocol="exposed9_0.6")
    assert old.labels == NUDENET_EXPOSED_LABELS and old.threshold == 0.6
    assert len(NUDENET_EXPOSED_LABELS) == 9 and set(NUDENET_EXPLICIT_LABELS) < set(NUDENET_EXPOSED_LABELS)
    # a low-score belly detection and a high-score anus detection: counted by one protocol each
    low = [[{"class": "BELLY_EXPOSED", "score": 0.3, "box": [0, 0, 1, 1]}]]
    anus = [[{"class": "ANUS_EXPOSED", "score": 0.9, "box": [0, 0, 1, 1]}]]
    for dets, paper_nude in ((low, True), (anus, False)):
        a = NudityRate(detector=ListDetector(CONSTRUCTED))
        b = NudityRate(detector=ListDetector(CONSTRUCTED), protocol="exposed9_0.6")
        a.update_detections(dets)
        b.update_detections(dets)
        assert bool(a.compute()["nude_frames"]) == paper_nude and bool(b.compute()["nude_frames"]) != paper_nude
    # the authors' "Nudity Count" (eval_nudity.py): frames per label, summed over labels
    c = NudityRate(detector=ListDetector(CONSTRUCTED))
    two = {"class": "FEET_EXPOSED", "score": 0.5, "box": [0, 0, 1, 1]}
    c.update_detections([[two, {"class": "BELLY_EXPOSED", "score": 0.4, "box": [0, 0, 1, 1]}], [two], []])
    out = c.compute()
    assert int(out["label_count"]) == 3 and int(out["nude_frames"]) == 2 and float(out["nudity_rate_video"]) == 1.0
    with pytest.raises(ValueError, match="unknown nudity protocol"):
        NudityRate(detector=ListDetector(CONSTRUCTED), protocol="strict")


def test_benchmark_script_prints_fps(monkeypatch, capsys):
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "nudenet_fps.py"
    monkeypatch.setattr(
        sys, "argv", [str(script), "--frames", "2", "--repeats", "1", "--height", "64", "--width", "96"]
    )
    runpy.run_path(str(script), run_name="__main__")
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("nudenet_fps: ") and float(line.split(": ")[1]) > 0
