"""torchvision ResNet-50: the ESD object-erasure protocol's classifier (``ResNet50_Weights.DEFAULT``, i.e.
``IMAGENET1K_V2``, with that weight's own ``transforms()``: bilinear resize 232, crop 224, ImageNet mean/std).

Weights come from a local file (``weights_path``) or, when ``weights_path`` is None and
``allow_download=True``, from torchvision's download URL (needs network; cached under ``$TORCH_HOME``).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from .base import file_sha256, module_device, package_version, require_file, to_nchw
from .imagenet import imagenet_class_names, imagenet_synonyms

_VARIANTS = ("IMAGENET1K_V1", "IMAGENET1K_V2")


class ResNet50Classifier(nn.Module):
    """ImageNet-1k ``FrameClassifier`` backed by torchvision's ResNet-50.

    Args:
        weights_path: local state dict (``resnet50-11ad3fa6.pth`` for V2, ``resnet50-0676ba61.pth`` for V1).
        variant: which torchvision weights the file holds: sets the preprocessing (V2: resize 232, V1: 256).
        allow_download: with ``weights_path=None``, fetch the variant's weights from torchvision's URL.
        batch_size: frames per forward pass.
        device: where the network runs (``None``: leave it; metrics move it to their device).

    Raises:
        FileNotFoundError: ``weights_path`` does not exist (the message names the path and where to get it).
    """

    def __init__(
        self,
        weights_path: str | os.PathLike | None = None,
        variant: str = "IMAGENET1K_V2",
        allow_download: bool = False,
        batch_size: int = 32,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__()
        from torchvision.models import ResNet50_Weights, resnet50

        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {_VARIANTS}, got {variant!r}")
        weights_enum = ResNet50_Weights[variant]
        self.variant = variant
        self.batch_size = int(batch_size)
        self.transform = weights_enum.transforms()  # tensor-capable: resize, centre crop, normalise
        if weights_path is None and not allow_download:
            raise FileNotFoundError(
                f"ResNet50Classifier needs weights: pass weights_path= to a local copy of {weights_enum.url} "
                f"(download it once where the network is reachable), or allow_download=True to fetch it."
            )
        if weights_path is not None:
            path = require_file(
                weights_path,
                "ResNet-50 weights",
                f"Download {weights_enum.url} ({variant}) and pass its local path as weights_path=, "
                f"or use allow_download=True where the network is reachable.",
            )
            self.net = resnet50(weights=None)
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.net.load_state_dict(state)
            self.weights_source = str(path)
            self.weights_sha256 = file_sha256(path)
        else:
            self.net = resnet50(weights=weights_enum)
            self.weights_source = weights_enum.url
            self.weights_sha256 = None
        self.net.eval().requires_grad_(False)
        if device is not None:
            self.to(device)
        self.class_names: tuple[str, ...] = imagenet_class_names()
        self.class_aliases: tuple[tuple[str, ...], ...] = imagenet_synonyms()

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        return self.transform(to_nchw(frames).to(module_device(self)))

    @torch.no_grad()
    def logits(self, frames: torch.Tensor) -> torch.Tensor:
        """``[N, H, W, 3]`` RGB in [0, 1] → ImageNet-1k logits ``[N, 1000]``."""
        self.net.eval()
        chunks = [
            self.net(self.preprocess(frames[i : i + self.batch_size])) for i in range(0, len(frames), self.batch_size)
        ]
        return torch.cat(chunks)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.logits(frames)

    def info(self) -> dict[str, Any]:
        return {
            "name": "torchvision.models.resnet50",
            "package": "torchvision",
            "version": package_version("torchvision"),
            "weights": f"ResNet50_Weights.{self.variant}",
            "weights_source": self.weights_source,
            "weights_sha256": self.weights_sha256,
            "classes": "imagenet-1k",
            "preprocess": repr(self.transform).replace("\n", " "),
        }
