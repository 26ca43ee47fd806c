"""Protocols every evaluator model implements, and the small image helpers they share.

Frames reach an evaluator as a float tensor ``[N, H, W, 3]`` with values in ``[0, 1]`` (RGB), already
validated by the metric (see :func:`unlearn.evaluation.metrics.frames.as_videos`). Evaluators that run outside torch
(NudeNet, the face models) take one RGB ``uint8`` numpy frame ``[H, W, 3]`` at a time.

Every evaluator describes itself with ``info() -> dict`` (name, package, version, weights, preprocessing):
metrics copy that record into their ``settings()`` so every reported number names the model that produced it.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

from unlearn.io import file_sha256  # noqa: F401  (re-exported: the evaluators hash their weight files)


@runtime_checkable
class FrameClassifier(Protocol):
    """A per-frame classifier over a fixed list of classes.

    ``class_names[i]`` names output column ``i`` of ``logits``. ``logits`` receives RGB frames as a float
    tensor ``[N, H, W, 3]`` in ``[0, 1]`` of any size (the classifier resizes/normalises itself) and returns
    ``[N, C]`` scores whose ordering ranks the classes (logits, log-probabilities or similarities all work).

    Optional: ``outcome_names`` — columns after the ``C`` classes that are no class (e.g. ``"nothing"``;
    ``logits`` then returns ``[N, C + O]``); a frame classified as an outcome is never the prompted class.
    ``replacement_category(prompted, top1_label) -> str`` groups what was drawn instead in the tables.
    """

    class_names: Sequence[str]

    def logits(self, frames: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class FrameFeatureExtractor(Protocol):
    """Maps RGB frames ``[N, H, W, 3]`` float in ``[0, 1]`` to feature vectors ``[N, D]``."""

    def features(self, frames: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class FaceEmbedder(Protocol):
    """Finds the main (largest) face of one RGB ``uint8`` frame ``[H, W, 3]`` and embeds it.

    Returns a 1-D embedding, or ``None`` when no face is found (the metric counts those frames).
    """

    def embed(self, frame: np.ndarray) -> np.ndarray | None: ...


@runtime_checkable
class NudityDetector(Protocol):
    """Runs on one RGB ``uint8`` frame ``[H, W, 3]`` and returns NudeNet-style detections:
    ``[{"class": str, "score": float, "box": [x, y, w, h]}, ...]``."""

    def detect(self, frame: np.ndarray) -> list[dict[str, Any]]: ...


def evaluator_info(evaluator: Any) -> dict[str, Any]:
    """``evaluator.info()`` when it has one, else its class name (so every result names its evaluator)."""
    info = getattr(evaluator, "info", None)
    if callable(info):
        return dict(info())
    cls = type(evaluator)
    return {"name": f"{cls.__module__}.{cls.__qualname__}", "version": None}


def package_version(distribution: str) -> str | None:
    """Installed version of a distribution, or None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def require_file(path: str | os.PathLike, what: str, fix: str) -> Path:
    """Return ``Path(path)`` or raise one FileNotFoundError that names the path and how to get the file."""
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise FileNotFoundError(f"{what} not found at '{resolved}'. {fix}")
    return resolved


def default_num_threads() -> int | None:
    """Thread count for ONNX Runtime sessions: ``OMP_NUM_THREADS`` when set, else ONNX Runtime's default."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def onnx_session_options(num_threads: int | None):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only; the stock models trigger pages of harmless warnings
    if num_threads:
        options.intra_op_num_threads = int(num_threads)
        options.inter_op_num_threads = 1
    return options


# --------------------------------------------------------------------------------------------------------
# image helpers (torch, batched, channel-last in / channel-first out)
# --------------------------------------------------------------------------------------------------------


def to_nchw(frames: torch.Tensor) -> torch.Tensor:
    """``[N, H, W, 3]`` float in [0, 1] → contiguous float32 ``[N, 3, H, W]``."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape [N, H, W, 3], got {list(frames.shape)}")
    if not frames.is_floating_point():
        frames = frames.float() / 255.0
    return frames.permute(0, 3, 1, 2).to(torch.float32).contiguous()


def resize_shorter_and_center_crop(images: torch.Tensor, resize: int, crop: int, mode: str = "bicubic") -> torch.Tensor:
    """Resize ``[N, 3, H, W]`` so the shorter side is ``resize`` (antialiased), then centre-crop ``crop``²."""
    height, width = images.shape[-2:]
    scale = resize / min(height, width)
    new_h, new_w = max(crop, round(height * scale)), max(crop, round(width * scale))
    kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    images = F.interpolate(images, size=(new_h, new_w), mode=mode, antialias=mode != "nearest", **kwargs)
    top, left = (new_h - crop) // 2, (new_w - crop) // 2
    images = images[..., top : top + crop, left : left + crop]
    return images.clamp(0.0, 1.0) if mode == "bicubic" else images


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    mean_t = torch.as_tensor(mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    return (images - mean_t) / std_t


def module_device(module: torch.nn.Module) -> torch.device:
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def load_rgb_image(source: Any) -> np.ndarray:
    """An RGB ``uint8`` ``[H, W, 3]`` array from a path, PIL image, numpy array or tensor (HWC, RGB)."""
    if isinstance(source, (str, os.PathLike)):
        from PIL import Image

        path = Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"image not found at '{path}'")
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    if hasattr(source, "convert") and hasattr(source, "size"):  # PIL image
        return np.asarray(source.convert("RGB"), dtype=np.uint8).copy()
    if isinstance(source, torch.Tensor):
        source = source.detach().cpu().numpy()
    array = np.asarray(source)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise ValueError(f"expected an RGB image [H, W, 3], got shape {list(array.shape)}")
    array = array[..., :3]
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < -1e-3 or array.max() > 1 + 1e-3:
            raise ValueError("float images must have finite values in [0, 1]")
        return np.ascontiguousarray(np.round(np.clip(array, 0, 1) * 255).astype(np.uint8))
    raise ValueError(f"images must be uint8 or float in [0, 1], got dtype {array.dtype}")
