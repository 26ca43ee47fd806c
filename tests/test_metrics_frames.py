"""The frames convention: accepted layouts and the one clear ValueError for each malformed input."""

import numpy as np
import pytest
import torch

from unlearn.evaluation.metrics.frames import as_videos, per_video, to_float, to_uint8_numpy


def test_accepted_layouts():
    one = torch.rand(5, 8, 9, 3)
    (video,) = as_videos(one)
    assert video.shape == (5, 8, 9, 3)
    batch = as_videos(np.zeros((2, 3, 8, 9, 3), dtype=np.uint8))
    assert len(batch) == 2 and batch[0].shape == (3, 8, 9, 3) and batch[0].dtype == torch.uint8
    ragged = as_videos([torch.rand(2, 4, 4, 3), np.zeros((7, 4, 4, 3), dtype=np.uint8)])
    assert [v.shape[0] for v in ragged] == [2, 7]


def test_conversions_roundtrip():
    video = torch.tensor([[[[0.0, 0.5, 1.0]]]])
    assert to_uint8_numpy(video).tolist() == [[[[0, 128, 255]]]]
    assert torch.allclose(
        to_float(torch.tensor([[[[0, 255, 51]]]], dtype=torch.uint8)), torch.tensor([[[[0.0, 1.0, 0.2]]]])
    )


@pytest.mark.parametrize(
    "frames, message",
    [
        (torch.rand(0, 8, 8, 3), "zero frames"),
        (torch.rand(2, 0, 8, 8, 3), "zero frames"),
        (torch.rand(0, 2, 8, 8, 3), "zero videos"),
        (torch.rand(4, 3, 8, 8), "channels-first"),
        (torch.rand(2, 4, 3, 8, 8), "channels-first"),
        (torch.rand(4, 8, 8, 4), "3 RGB channels"),
        (torch.rand(8, 8, 3), r"\[N, H, W, 3\]"),
        (torch.rand(4, 8, 8, 3) * 2 - 1, r"\[-1, 1\]"),
        (torch.rand(4, 8, 8, 3) * 255, "0..255"),
        (torch.full((2, 4, 4, 3), float("nan")), "NaN"),
        (torch.zeros(2, 4, 4, 3, dtype=torch.int32), "dtype"),
        (torch.zeros(2, 4, 4, 3, dtype=torch.bool), "dtype"),
        (torch.rand(2, 0, 4, 3), "zero height or width"),
        ([], "empty list"),
        ([torch.rand(3, 4, 4, 3), torch.rand(0, 4, 4, 3)], r"frames\[1\].*zero frames"),
        ("video.mp4", "torch.Tensor or numpy.ndarray"),
    ],
)
def test_malformed_frames_raise_one_clear_error(frames, message):
    with pytest.raises(ValueError, match=message):
        as_videos(frames)


def test_per_video_values():
    assert per_video("cat", 3, "prompts") == ["cat"] * 3
    assert per_video(torch.tensor(2), 2, "target") == [2, 2]
    assert per_video(torch.tensor([1, 2]), 2, "target") == [1, 2]
    assert per_video(["a", "b"], 2, "prompts") == ["a", "b"]
    with pytest.raises(ValueError, match="2 values for 3 video"):
        per_video(["a", "b"], 3, "prompts")
