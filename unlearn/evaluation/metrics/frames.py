"""The frames convention shared by every metric, and its validation.

A metric's ``update`` takes frames as a ``torch.Tensor`` or ``numpy.ndarray``:

* ``[N, H, W, 3]`` — the N frames of one video, or
* ``[B, F, H, W, 3]`` — a batch of B videos of F frames each, or
* a list/tuple of ``[F_i, H, W, 3]`` arrays — videos of different lengths,

with dtype ``uint8`` (0..255) or floating point in ``[0, 1]`` (RGB, channels last). Anything else raises one
``ValueError`` that names the problem (channels-first layout, a video with zero frames, values in [-1, 1], …).
Per-video arguments (class targets, prompts, identities) are one value per video, or a single value that
applies to every video of the call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

_FLOAT_TOLERANCE = 1e-3


def _as_tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise ValueError(f"{what}: got a numpy array of Python objects; pass a numeric array")
        return torch.from_numpy(np.ascontiguousarray(value))
    raise ValueError(f"{what}: expected a torch.Tensor or numpy.ndarray, got {type(value).__name__}")


def _check_video(video: torch.Tensor, what: str) -> torch.Tensor:
    shape = list(video.shape)
    if video.ndim != 4:
        raise ValueError(f"{what}: a video must have shape [F, H, W, 3], got {shape}")
    if video.shape[-1] != 3:
        if video.shape[1] == 3 or video.shape[-3] == 3:
            raise ValueError(
                f"{what}: frames must be channels-last [.., H, W, 3], got {shape} (looks channels-first: "
                f"permute to [.., H, W, 3])"
            )
        raise ValueError(f"{what}: frames must have 3 RGB channels in the last dimension, got {shape}")
    if video.shape[0] == 0:
        raise ValueError(f"{what}: the video has zero frames (shape {shape})")
    if video.shape[1] == 0 or video.shape[2] == 0:
        raise ValueError(f"{what}: frames have zero height or width (shape {shape})")
    if video.dtype == torch.uint8:
        return video
    if video.dtype == torch.bool or not video.is_floating_point():
        raise ValueError(f"{what}: frames must be uint8 (0..255) or floating point in [0, 1], got dtype {video.dtype}")
    if not bool(torch.isfinite(video).all()):
        raise ValueError(f"{what}: frames contain NaN or infinite values")
    low, high = float(video.min()), float(video.max())
    if low < -_FLOAT_TOLERANCE or high > 1 + _FLOAT_TOLERANCE:
        hint = " (looks like [-1, 1]: use (x + 1) / 2)" if low < 0 else " (looks like 0..255: use uint8 or x / 255)"
        raise ValueError(f"{what}: float frames must lie in [0, 1], got values in [{low:.3g}, {high:.3g}]{hint}")
    return video.clamp(0.0, 1.0)


def as_videos(frames: Any, name: str = "frames") -> list[torch.Tensor]:
    """Validate ``frames`` and return a list of videos, each ``[F, H, W, 3]`` (uint8 or float in [0, 1])."""
    if isinstance(frames, (list, tuple)):
        if len(frames) == 0:
            raise ValueError(f"{name}: got an empty list of videos")
        return [_check_video(_as_tensor(v, f"{name}[{i}]"), f"{name}[{i}]") for i, v in enumerate(frames)]
    tensor = _as_tensor(frames, name)
    if tensor.ndim == 4:
        return [_check_video(tensor, name)]
    if tensor.ndim == 5:
        if tensor.shape[0] == 0:
            raise ValueError(f"{name}: the batch holds zero videos (shape {list(tensor.shape)})")
        if tensor.shape[1] == 0:
            raise ValueError(f"{name}: the videos have zero frames (shape {list(tensor.shape)})")
        if tensor.shape[-1] != 3:
            _check_video(tensor[0], name)  # raises the channel message
        checked = _check_video(tensor.reshape(-1, *tensor.shape[2:]), name).reshape(tensor.shape)
        return list(checked.unbind(0))
    raise ValueError(
        f"{name}: expected [N, H, W, 3] (one video) or [B, F, H, W, 3] (a batch of videos), got shape "
        f"{list(tensor.shape)}"
    )


def to_float(video: torch.Tensor) -> torch.Tensor:
    """A validated video as float32 in [0, 1]."""
    return video.float() / 255.0 if video.dtype == torch.uint8 else video.float()


def to_uint8_numpy(video: torch.Tensor) -> np.ndarray:
    """A validated video as an RGB uint8 numpy array ``[F, H, W, 3]`` on the CPU."""
    if video.dtype != torch.uint8:
        video = (video.float() * 255.0).round().clamp(0, 255).to(torch.uint8)
    return np.ascontiguousarray(video.cpu().numpy())


def per_video(value: Any, num_videos: int, name: str) -> list[Any]:
    """One value per video: a sequence of length ``num_videos``, or a scalar applied to every video."""
    if isinstance(value, torch.Tensor):
        if value.ndim == 0:
            return [int(value.item())] * num_videos
        value = [int(v) for v in value.reshape(-1).tolist()]
    elif isinstance(value, np.ndarray):
        value = value.reshape(-1).tolist() if value.ndim else [value.item()] * num_videos
    if isinstance(value, (str, bytes, int, float)) or value is None or not isinstance(value, Sequence):
        return [value] * num_videos
    value = list(value)
    if len(value) != num_videos:
        raise ValueError(
            f"{name}: got {len(value)} values for {num_videos} video(s); give one per video or one for all"
        )
    return value


def count_frames(videos: Sequence[torch.Tensor]) -> int:
    return int(sum(v.shape[0] for v in videos))
