"""Video files: mp4 written with a real encoder (ffmpeg through imageio), atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from unlearn.io import atomic_path


def write_mp4(frames: torch.Tensor | np.ndarray, path: str | os.PathLike, fps: int = 8) -> Path:
    """Write uint8 frames ``[F, H, W, 3]`` as H.264 mp4. Frames smaller than 16 px or of odd size are
    upscaled (nearest) to a size every player accepts. The file appears only once it is complete."""
    arr = frames.cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] == 0:
        raise ValueError(f"write_mp4 needs uint8 frames [F, H, W, 3] with F > 0; got shape {arr.shape}")
    h, w = arr.shape[1:3]
    factor = max(1, -(-64 // min(h, w)))  # players and yuv420p want even sizes; tiny videos get enlarged
    if factor > 1:
        arr = arr.repeat(factor, axis=1).repeat(factor, axis=2)
    if arr.shape[1] % 2 or arr.shape[2] % 2:
        arr = np.pad(arr, ((0, 0), (0, arr.shape[1] % 2), (0, arr.shape[2] % 2), (0, 0)), mode="edge")
    path = Path(path)
    with atomic_path(path, suffix=".mp4") as tmp:
        # PyAV directly: imageio's writer runs gc.collect() twice per file (up to a second with a model loaded)
        import av

        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = arr.shape[2], arr.shape[1], "yuv420p"
            for frame in arr.astype(np.uint8):
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
    return path


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Frames of a video file as uint8 ``[F, H, W, 3]``."""
    import imageio.v3 as iio

    return np.asarray(iio.imread(path, plugin="pyav"))
