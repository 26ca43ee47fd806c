"""Adapter that turns any ``nn.Module`` classifier plus its class names into a ``FrameClassifier``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .base import module_device, normalize, resize_shorter_and_center_crop, to_nchw


class ModuleClassifier(nn.Module):
    """Wrap ``model`` (images ``[N, 3, H, W]`` → logits ``[N, C]``) as a per-frame classifier.

    Args:
        model: the classifier network; put in eval mode, gradients off.
        class_names: one name per output column, in column order.
        image_size: if set, frames are resized (shorter side) and centre-cropped to this square size;
            ``None`` feeds frames at their own size.
        mean: per-channel mean subtracted after resizing (``None``: no normalisation, input stays in [0, 1]).
        std: per-channel standard deviation divided by after resizing (give it with ``mean``).
        preprocess: a custom callable ``[N, 3, H, W] float [0,1] -> model input`` replacing resize+normalise.
        channels_last: feed ``[N, H, W, 3]`` instead of ``[N, 3, H, W]`` (for models that expect that).
        batch_size: frames per forward pass.
        name: the classifier's name, recorded in ``info()`` (and so in every metric result).
        version: its version, recorded in ``info()`` likewise.
        class_aliases: one tuple of synonyms per class, so that a target name matches a synonym too
            ('chainsaw' → 'chain saw'); ``None``: class names only.
        outcome_names: names of the model's output columns after the classes that are no class (e.g.
            ``"nothing"``): the metrics count frames classified as an outcome as misses and report them.
        replacement_category: ``(prompted class, top-1 label) -> category`` grouping what was drawn instead of
            a prompted class in the tables (the toy world's shape/colour categories); ``None``: labels only.
    """

    def __init__(
        self,
        model: nn.Module,
        class_names: Sequence[str],
        image_size: int | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
        channels_last: bool = False,
        batch_size: int = 64,
        name: str | None = None,
        version: str | None = None,
        class_aliases: Sequence[Sequence[str]] | None = None,
        outcome_names: Sequence[str] = (),
        replacement_category: Callable[[str, str], str] | None = None,
    ) -> None:
        super().__init__()
        if len(class_names) == 0:
            raise ValueError("class_names must name at least one class")
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither")
        self.model = model.eval().requires_grad_(False)
        self.class_names: tuple[str, ...] = tuple(str(c) for c in class_names)
        self.class_aliases = tuple(tuple(a) for a in class_aliases) if class_aliases is not None else None
        self.outcome_names: tuple[str, ...] = tuple(str(o) for o in outcome_names)
        if set(self.outcome_names) & set(self.class_names):
            raise ValueError(
                f"outcome_names {sorted(set(self.outcome_names) & set(self.class_names))} are also classes"
            )
        self.replacement_category = replacement_category
        self.image_size = image_size
        self.mean = tuple(mean) if mean is not None else None
        self.std = tuple(std) if std is not None else None
        self.custom_preprocess = preprocess
        self.channels_last = channels_last
        self.batch_size = int(batch_size)
        self.name = name or f"{type(model).__module__}.{type(model).__qualname__}"
        self.version = version

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        images = to_nchw(frames).to(module_device(self))
        if self.custom_preprocess is not None:
            return self.custom_preprocess(images)
        if self.image_size is not None:
            images = resize_shorter_and_center_crop(images, self.image_size, self.image_size, mode="bilinear")
        if self.mean is not None:
            images = normalize(images, self.mean, self.std)
        return images.permute(0, 2, 3, 1).contiguous() if self.channels_last else images

    @torch.no_grad()
    def logits(self, frames: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        chunks = []
        for start in range(0, len(frames), self.batch_size):
            out = self.model(self.preprocess(frames[start : start + self.batch_size]))
            columns = len(self.class_names) + len(self.outcome_names)
            if out.ndim != 2 or out.shape[1] != columns:
                raise ValueError(
                    f"{self.name} returned logits of shape {list(out.shape)}; expected [N, {columns}] "
                    f"(one column per class name, then one per outcome)"
                )
            chunks.append(out)
        return torch.cat(chunks)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.logits(frames)

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "num_classes": len(self.class_names),
            "outcomes": list(self.outcome_names),
            "preprocess": "custom"
            if self.custom_preprocess is not None
            else {"image_size": self.image_size, "mean": self.mean, "std": self.std},
        }
