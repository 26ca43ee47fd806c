"""Video quality metrics reviewers expect beside erasure: FVD and two VBench dimensions, as torchmetrics metrics.

* :class:`FrechetVideoDistance`: the Fréchet distance between the I3D features of real and generated videos,
  as StyleGAN-V computes it (``src/metrics/frechet_video_distance.py``: the TorchScript I3D ``i3d_torchscript.pt``
  called with ``rescale=True, resize=True, return_features=True`` on uint8 ``[B, 3, T, H, W]`` videos;
  ``metric_utils.FeatureStats``: mean and unbiased covariance; the distance
  ``|μ_g − μ_r|² + tr(Σ_g + Σ_r − 2 (Σ_g Σ_r)^½)``).
* :class:`VBenchSubjectConsistency`: VBench's ``subject_consistency`` (``vbench/subject_consistency.py``): DINO
  ViT-B/16 features of every frame (``vbench/utils.py`` ``dino_transform(224)``: shorter side to 224, /255,
  ImageNet mean/std), L2-normalised; each frame after the first scores
  ``(max(0, cos(f_i, f_{i−1})) + max(0, cos(f_i, f_0))) / 2``; the result is the mean over all those frames of
  all videos (``sim_per_frame``), per video the mean over its frames.
* :class:`VBenchObjectClass`: VBench's ``object_class`` (``vbench/object_class.py``): the share of frames in
  which the prompt's object class is detected, pooled over videos. VBench detects with GRiT (detectron2); here
  any ``transformers`` object detector (``AutoModelForObjectDetection``, e.g. ``hustvl/yolos-small`` or
  ``facebook/detr-resnet-50``) with a score threshold (its processor's ``post_process_object_detection``).

Weights are given, never downloaded behind the user's back: a path (a TorchScript file, or a folder that
``from_pretrained`` reads) or a Hugging Face Hub id (``owner/name``; ``owner/name:file.pt`` for a TorchScript
file in a repository), read through the Hub cache (``HF_HUB_OFFLINE=1``: the cached copy only). Missing weights
raise one :class:`~unlearn.checks.InputError` naming what was looked for and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import Metric

from unlearn.checks import InputError

from .frames import as_videos

#: ImageNet normalisation of VBench's dino_transform (vbench/utils.py)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: StyleGAN-V's detector call (src/metrics/frechet_video_distance.py, compute_fvd)
I3D_KWARGS = {"rescale": True, "resize": True, "return_features": True}


class MissingWeightsError(InputError):
    """The weights of a quality metric are not where they were said to be."""


def _looks_like_hub_id(text: str) -> bool:
    repo = text.split(":", 1)[0]
    return repo.count("/") == 1 and not text.startswith((".", "/", "~")) and all(repo.split("/"))


def resolve_weights(weights: str | os.PathLike, what: str, default_file: str | None = None) -> Path:
    """The local file or folder ``weights`` names: a path as it is, or a Hub id through the Hub cache
    (``owner/name`` → the snapshot folder; ``owner/name:file`` or ``default_file`` → that file)."""
    path = Path(weights).expanduser()
    if path.exists():
        return path
    text = str(weights)
    if not _looks_like_hub_id(text):
        raise MissingWeightsError(
            f"{what}: {text!r} does not exist. Fix: give the path of the weights (a file or a folder) or a "
            "Hugging Face Hub id (owner/name)"
        )
    repo, _, filename = text.partition(":")
    filename = filename or default_file
    try:
        if filename:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(repo, filename))
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo))
    except Exception as e:  # noqa: BLE001 - not cached offline, no such repo, no network: one message
        raise MissingWeightsError(
            f"{what}: cannot get {text!r} from the Hugging Face Hub ({type(e).__name__}: "
            f"{' '.join(str(e).split())[:200]}). Fix: download it once (`hf download {repo}`) or give a local path"
        ) from None


class _FeatureNet(nn.Module):
    """A feature network from weights: a TorchScript file (``torch.jit.load``), a ``transformers`` model folder
    or Hub id (``AutoModel``; features: the CLS token of the last hidden state), or an ``nn.Module`` given as is."""

    def __init__(self, weights: str | os.PathLike | nn.Module, what: str, default_file: str | None = None) -> None:
        super().__init__()
        self.kind = "module"
        if isinstance(weights, nn.Module):
            self.net = weights
            self.source = type(weights).__name__
            return
        path = resolve_weights(weights, what, default_file)
        self.source = str(weights)
        if path.is_file():
            try:
                self.net = torch.jit.load(str(path), map_location="cpu")
            except Exception as e:  # noqa: BLE001
                raise InputError(f"{what}: {path} is not a TorchScript file ({type(e).__name__}: {e})") from None
            self.kind = "torchscript"
        else:
            from transformers import AutoModel

            try:
                self.net = AutoModel.from_pretrained(str(path))
            except Exception as e:  # noqa: BLE001
                raise InputError(
                    f"{what}: {path} holds no transformers model ({type(e).__name__}: {' '.join(str(e).split())[:200]})"
                ) from None
            self.kind = "transformers"
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    def forward(self, x: Tensor, **kwargs: Any) -> Tensor:
        if self.kind == "transformers":
            out = self.net(pixel_values=x, interpolate_pos_encoding=True)
            return out.last_hidden_state[:, 0]
        return self.net(x, **kwargs)


# ------------------------------------------------------------------------------------------------ FVD
class FrechetVideoDistance(Metric):
    """FVD between the ``real=True`` and ``real=False`` videos given to :meth:`update`.

    Args:
        detector: the I3D weights (StyleGAN-V's ``i3d_torchscript.pt``: a path, or ``owner/name:file`` on the
            Hub) or any feature network (``nn.Module`` or TorchScript) mapping ``[B, 3, T, H, W]`` videos to
            ``[B, D]`` features.
        detector_kwargs: keyword arguments of the detector call (StyleGAN-V's: :data:`I3D_KWARGS`; the I3D
            then takes uint8-range input and rescales and resizes it itself); ``{}`` for a plain module.
        feature_dim: the features' width (I3D: 400).

    ``compute()`` → ``{"fvd": ...}``. Statistics are float64 sums (feature sum, outer-product sum, count), so
    the metric syncs across ranks and needs no stored features.
    """

    full_state_update = False
    higher_is_better = False

    def __init__(
        self,
        detector: str | os.PathLike | nn.Module,
        detector_kwargs: dict[str, Any] | None = None,
        feature_dim: int = 400,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.detector = _FeatureNet(detector, "FrechetVideoDistance.detector", "i3d_torchscript.pt")
        self.detector_kwargs = dict(I3D_KWARGS if detector_kwargs is None else detector_kwargs)
        self.feature_dim = feature_dim
        for side in ("real", "fake"):
            self.add_state(f"{side}_sum", torch.zeros(feature_dim, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(
                f"{side}_outer", torch.zeros(feature_dim, feature_dim, dtype=torch.float64), dist_reduce_fx="sum"
            )
            self.add_state(f"{side}_n", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def features(self, frames: Any) -> Tensor:
        """``[B, D]`` features of ``[B, F, H, W, 3]`` videos (uint8, or float in [0, 1] scaled to 0..255)."""
        videos = as_videos(frames)
        x = torch.stack([v.float() * (255.0 if v.dtype != torch.uint8 else 1.0) for v in videos])
        x = x.permute(0, 4, 1, 2, 3).contiguous().to(self.device)  # [B, 3, T, H, W]
        with torch.no_grad():
            feats = self.detector(x, **self.detector_kwargs)
        if feats.ndim != 2 or feats.shape[1] != self.feature_dim:
            raise ValueError(
                f"the detector gave features of shape {list(feats.shape)}; expected [B, {self.feature_dim}]"
            )
        return feats.double()

    def update(self, frames: Any, real: bool) -> None:
        f = self.features(frames)
        side = "real" if real else "fake"
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + f.sum(0))
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + f.T @ f)
        setattr(self, f"{side}_n", getattr(self, f"{side}_n") + f.shape[0])

    def compute(self) -> dict[str, Tensor]:
        stats = []
        for side in ("real", "fake"):
            n = int(getattr(self, f"{side}_n"))
            if n < 2:
                raise ValueError(f"FVD needs at least 2 {side} videos, got {n}")
            mu = getattr(self, f"{side}_sum") / n
            sigma = (getattr(self, f"{side}_outer") - n * torch.outer(mu, mu)) / (n - 1)
            stats.append((mu, sigma))
        return {"fvd": frechet_distance(*stats[0], *stats[1]).float()}

    def settings(self) -> dict[str, Any]:
        return {"detector": self.detector.source, "detector_kwargs": self.detector_kwargs}


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> Tensor:
    """``|μ1 − μ2|² + tr(Σ1) + tr(Σ2) − 2 tr((Σ1 Σ2)^½)``; the trace of the square root is the sum of the square
    roots of the eigenvalues of ``Σ1 Σ2`` (real and non-negative for covariances), in float64."""
    a = (mu1 - mu2).square().sum()
    eig = torch.linalg.eigvals(sigma1.double() @ sigma2.double())
    return a + torch.trace(sigma1) + torch.trace(sigma2) - 2 * eig.sqrt().real.sum()


# ------------------------------------------------------------------------------------ VBench dimensions
def vbench_dino_input(video: Tensor, resolution: int = 224) -> Tensor:
    """VBench's ``dino_transform(resolution)`` of a ``[F, H, W, 3]`` video: ``[F, 3, h, w]`` with the shorter
    side ``resolution`` (torchvision's ``resize`` of the uint8 frames, no antialias), /255 and ImageNet-normalised."""
    from torchvision.transforms.functional import resize

    if video.dtype != torch.uint8:  # VBench reads uint8 frames from the mp4
        video = (video.clamp(0, 1) * 255).round().to(torch.uint8)
    x = resize(video.permute(0, 3, 1, 2), size=resolution, antialias=False).float()
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x / 255.0 - mean) / std


class VBenchSubjectConsistency(Metric):
    """VBench's subject consistency with DINO features (module docstring).

    Args:
        dino: DINO ViT-B/16 weights: a Hub id of a transformers checkpoint (``facebook/dino-vitb16``, the
            weights of VBench's ``torch.hub`` ``dino_vitb16``), a local folder of one, a TorchScript file, or an
            ``nn.Module`` that maps ``[N, 3, h, w]`` to ``[N, D]`` features.
        resolution: the shorter side frames are resized to (VBench: 224).

    ``compute()`` → ``{"subject_consistency": mean over scored frames, "videos": n}``; ``per_video`` keeps each
    video's mean.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, dino: str | os.PathLike | nn.Module, resolution: int = 224, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dino = _FeatureNet(dino, "VBenchSubjectConsistency.dino")
        self.resolution = resolution
        self.add_state("total", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("frames", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("videos", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.per_video: list[float] = []

    def update(self, frames: Any) -> None:
        for video in as_videos(frames):
            if video.shape[0] < 2:
                raise ValueError("subject consistency needs videos of at least 2 frames")
            with torch.no_grad():
                f = F.normalize(self.dino(vbench_dino_input(video.to(self.device), self.resolution)).double(), dim=-1)
            to_previous = (f[1:] * f[:-1]).sum(-1).clamp_min(0)
            to_first = (f[1:] * f[:1]).sum(-1).clamp_min(0)
            scores = (to_previous + to_first) / 2
            self.total += scores.sum()
            self.frames += scores.numel()
            self.videos += 1
            self.per_video.append(float(scores.mean()))

    def compute(self) -> dict[str, Tensor]:
        if int(self.frames) == 0:
            raise ValueError("subject consistency: no video was given")
        return {"subject_consistency": (self.total / self.frames).float(), "videos": self.videos.clone()}

    def reset(self) -> None:
        super().reset()
        self.per_video = []

    def settings(self) -> dict[str, Any]:
        return {"dino": self.dino.source, "resolution": self.resolution}


class VBenchObjectClass(Metric):
    """VBench's object class: the share of frames in which the prompt's object is detected (module docstring).

    Args:
        detector: a transformers object detector: Hub id or folder (``AutoModelForObjectDetection`` with its
            ``AutoImageProcessor``).
        threshold: the detection score a frame needs (``post_process_object_detection``).

    ``update(frames, objects)``: ``objects[i]`` is the class name of video ``i`` (as the detector's ``id2label``
    names it). ``compute()`` → ``{"object_class": success frames / frames, "frames": n}``.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, detector: str | os.PathLike, threshold: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from transformers import AutoImageProcessor, AutoModelForObjectDetection

        path = resolve_weights(detector, "VBenchObjectClass.detector")
        try:
            self.processor = AutoImageProcessor.from_pretrained(str(path))
            self.detector = AutoModelForObjectDetection.from_pretrained(str(path)).eval().requires_grad_(False)
        except Exception as e:  # noqa: BLE001
            raise InputError(
                f"VBenchObjectClass.detector: {path} holds no transformers object detector ({type(e).__name__}: "
                f"{' '.join(str(e).split())[:200]})"
            ) from None
        self.source, self.threshold = str(detector), float(threshold)
        self.labels = {str(v).lower(): int(k) for k, v in self.detector.config.id2label.items()}
        self.add_state("hits", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("frames", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.per_video: list[float] = []

    def detected(self, video: Tensor) -> list[set[str]]:
        """The class names detected in each frame of a ``[F, H, W, 3]`` video."""
        frames = [f.cpu().numpy() for f in (video if video.dtype == torch.uint8 else (video * 255).round().byte())]
        inputs = self.processor(images=frames, return_tensors="pt").to(self.device)
        with torch.no_grad():
            out = self.detector(**inputs)
        sizes = torch.tensor([f.shape[:2] for f in frames])
        found = self.processor.post_process_object_detection(out, threshold=self.threshold, target_sizes=sizes)
        names = self.detector.config.id2label
        return [{str(names[int(i)]).lower() for i in r["labels"]} for r in found]

    def update(self, frames: Any, objects: Sequence[str]) -> None:
        videos = as_videos(frames)
        if len(objects) != len(videos):
            raise ValueError(f"{len(videos)} videos but {len(objects)} object names")
        for video, obj in zip(videos, objects, strict=True):
            if obj.lower() not in self.labels:
                raise InputError(f"object class {obj!r} is not a label of the detector {self.source!r}")
            per_frame = self.detected(video)
            hits = sum(obj.lower() in s for s in per_frame)
            self.hits += hits
            self.frames += len(per_frame)
            self.per_video.append(hits / len(per_frame))

    def compute(self) -> dict[str, Tensor]:
        if int(self.frames) == 0:
            raise ValueError("object class: no video was given")
        return {"object_class": (self.hits / self.frames).float(), "frames": self.frames.clone()}

    def reset(self) -> None:
        super().reset()
        self.per_video = []

    def settings(self) -> dict[str, Any]:
        return {"detector": self.source, "threshold": self.threshold}
