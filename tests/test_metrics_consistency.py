"""SubjectConsistency: hand-computed pair cosines with a pluggable extractor, and the shipped default."""

import math

import numpy as np
import pytest
import torch
from skimage import data as skdata

from unlearn.evaluation.metrics import SubjectConsistency, pair_similarities


class MeanColour:
    """Feature = the frame's mean RGB colour."""

    def features(self, frames):
        return frames.mean(dim=(1, 2))


def coloured(*rgb):
    video = torch.zeros(len(rgb), 4, 4, 3)
    for i, c in enumerate(rgb):
        video[i] = torch.tensor(c)
    return video


def test_hand_computed_consecutive_and_vbench():
    video = coloured((1, 0, 0), (1, 1, 0), (0, 1, 0))
    s = math.sqrt(0.5)
    assert pair_similarities(MeanColour().features(video)).tolist() == pytest.approx([s, s])
    # vbench: frame 1: (cos(f1,f0) + cos(f1,f0)) / 2 = s; frame 2: (cos(f2,f1) + cos(f2,f0)) / 2 = (s + 0) / 2
    assert pair_similarities(MeanColour().features(video), "vbench").tolist() == pytest.approx([s, s / 2])

    metric = SubjectConsistency(extractor=MeanColour())
    metric.update(video)
    metric.update(coloured((0, 0, 1), (0, 0, 1)))  # identical frames: 1
    metric.update(coloured((1, 1, 1)))  # one frame: no pair
    out = metric.compute()
    assert out["pairs"].item() == 3 and out["videos"].item() == 3 and out["single_frame_videos"].item() == 1
    assert out["subject_consistency"].item() == pytest.approx((2 * s + 1) / 3, abs=1e-6)


def test_clamp_negative_and_empty():
    features = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert pair_similarities(features).tolist() == [-1.0]
    assert pair_similarities(features, clamp_negative=True).tolist() == [0.0]
    metric = SubjectConsistency(extractor=MeanColour())
    metric.update(coloured((1, 1, 1)))
    with pytest.warns(UserWarning, match="no frame pairs"):
        assert math.isnan(metric.compute()["subject_consistency"].item())
    with pytest.raises(ValueError, match="mode"):
        SubjectConsistency(extractor=MeanColour(), mode="dino")


def test_default_efficientnet_features_on_real_frames():
    metric = SubjectConsistency()
    coffee = skdata.coffee()
    still = np.stack([coffee, coffee, coffee])
    metric.update(still)
    assert metric.compute()["subject_consistency"].item() == pytest.approx(1.0, abs=1e-5)
    metric.reset()
    metric.update([coffee[None], skdata.chelsea()[None]])  # two one-frame videos: no pair
    metric.update(np.stack([coffee[:300, :400], skdata.chelsea()[:300, :400]]))
    out = metric.compute()
    assert out["pairs"].item() == 1 and out["single_frame_videos"].item() == 2
    assert out["subject_consistency"].item() < 0.9  # a cut from a coffee cup to a cat
    assert metric.settings()["evaluator"]["features"].startswith("extract_features")
