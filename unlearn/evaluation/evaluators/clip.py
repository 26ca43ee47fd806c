"""open_clip models as evaluators: image/text embeddings (for ``CLIPScore``), frame features (for
``SubjectConsistency``) and zero-shot frame classification (a ``FrameClassifier``).

No CLIP weights ship in a package: real use names a model and a pretrained tag (downloaded from the hub by
open_clip) or a local checkpoint file (``pretrained="/path/open_clip_pytorch_model.bin"``) or a local folder
(``model_name="local-dir:/path"``). Tests build tiny random models with ``pretrained=None`` and
``model_kwargs`` overriding the architecture.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import file_sha256, module_device, normalize, package_version, resize_shorter_and_center_crop, to_nchw

#: A compact subset of CLIP's ImageNet prompt templates (the 7-template ensemble of the CLIP notebooks).
DEFAULT_TEMPLATES: tuple[str, ...] = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)


class OpenCLIPModel(nn.Module):
    """An open_clip model with its tokenizer and a tensor version of its preprocessing.

    Args:
        model_name: open_clip architecture ('ViT-B-32', ...) or 'local-dir:/folder' / 'hf-hub:org/repo'.
        pretrained: a pretrained tag ('openai', 'laion2b_s34b_b79k', ...), a local checkpoint path, or ``None``
            for random weights (tests).
        model_kwargs: overrides of the architecture config (e.g. a tiny ``vision_cfg``/``text_cfg``).
        batch_size: frames per image forward pass.
        device: where the model runs (``None``: leave it; metrics move it to their device).

    Raises:
        FileNotFoundError: ``pretrained`` looks like a path (contains a path separator or a checkpoint
            suffix) and the file does not exist.
        RuntimeError: the tag cannot be downloaded (no network): the message says how to use a local file.
    """

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | None = "openai",
        model_kwargs: dict[str, Any] | None = None,
        batch_size: int = 32,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__()
        import open_clip

        if pretrained is not None and _looks_like_path(pretrained) and not os.path.isfile(pretrained):
            raise FileNotFoundError(
                f"open_clip checkpoint not found at '{pretrained}'. Pass an existing checkpoint file, a pretrained "
                f"tag (see open_clip.list_pretrained()), or model_name='local-dir:/folder'."
            )
        try:
            model = open_clip.create_model(model_name, pretrained=pretrained, **(model_kwargs or {}))
        except RuntimeError as exc:
            if pretrained is not None and not os.path.isfile(str(pretrained)):
                raise RuntimeError(
                    f"could not load open_clip '{model_name}' with pretrained='{pretrained}': {exc}. Where the hub "
                    f"is unreachable, download the checkpoint elsewhere and pass its local path as pretrained=."
                ) from exc
            raise
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = open_clip.get_tokenizer(model_name, context_length=getattr(model, "context_length", None))
        cfg = open_clip.get_model_preprocess_cfg(model)
        size = cfg.get("size", 224)
        self.image_size = int(size if isinstance(size, int) else size[0])
        self.mean = tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN))
        self.std = tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD))
        self.interpolation = cfg.get("interpolation", "bicubic")
        self.model_name = model_name
        self.pretrained = pretrained
        self.model_kwargs = dict(model_kwargs or {})
        self.batch_size = int(batch_size)
        self._weights_sha256 = file_sha256(pretrained) if pretrained and os.path.isfile(pretrained) else None
        if device is not None:
            self.to(device)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        images = to_nchw(frames).to(module_device(self))
        mode = self.interpolation if self.interpolation in ("bilinear", "bicubic", "nearest") else "bicubic"
        images = resize_shorter_and_center_crop(images, self.image_size, self.image_size, mode=mode)
        return normalize(images, self.mean, self.std)

    @torch.no_grad()
    def encode_images(self, frames: torch.Tensor) -> torch.Tensor:
        """``[N, H, W, 3]`` RGB in [0, 1] → L2-normalised image embeddings ``[N, D]``."""
        self.model.eval()
        chunks = [
            self.model.encode_image(self.preprocess(frames[i : i + self.batch_size])).float()
            for i in range(0, len(frames), self.batch_size)
        ]
        return F.normalize(torch.cat(chunks), dim=-1)

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Strings → L2-normalised text embeddings ``[T, D]`` (truncated to the model's context length)."""
        self.model.eval()
        tokens = self.tokenizer(list(texts)).to(module_device(self))
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1)

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """``FrameFeatureExtractor``: the normalised image embeddings."""
        return self.encode_images(frames)

    @property
    def logit_scale(self) -> float:
        scale = getattr(self.model, "logit_scale", None)
        return float(scale.exp()) if isinstance(scale, torch.Tensor) else 100.0

    def info(self) -> dict[str, Any]:
        return {
            "name": f"open_clip[{self.model_name}]",
            "package": "open_clip_torch",
            "version": package_version("open_clip_torch"),
            "pretrained": self.pretrained,
            "weights_sha256": self._weights_sha256,
            "model_kwargs": self.model_kwargs or None,
            "preprocess": f"shorter side {self.image_size}px {self.interpolation}, centre crop, mean={self.mean}, "
            f"std={self.std}",
        }


def _looks_like_path(value: str) -> bool:
    return os.sep in value or "/" in value or value.endswith((".pt", ".pth", ".bin", ".safetensors"))


class OpenCLIPZeroShotClassifier(nn.Module):
    """Zero-shot ``FrameClassifier``: logits = ``logit_scale · image_emb · class_emb``, where each class
    embedding is the normalised mean of its prompt-template embeddings.

    Args:
        class_names: the classes (prompted as ``template.format(name)``).
        clip: an :class:`OpenCLIPModel`; default builds one from ``model_name``/``pretrained``/``model_kwargs``.
        templates: prompt templates with one ``{}``.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        clip: OpenCLIPModel | None = None,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        model_name: str = "ViT-B-32",
        pretrained: str | None = "openai",
        model_kwargs: dict[str, Any] | None = None,
        class_aliases: Sequence[Sequence[str]] | None = None,
    ) -> None:
        super().__init__()
        if len(class_names) == 0:
            raise ValueError("class_names must name at least one class")
        if not templates or any("{}" not in t for t in templates):
            raise ValueError("every template must contain one '{}' for the class name")
        self.clip = clip if clip is not None else OpenCLIPModel(model_name, pretrained, model_kwargs)
        self.class_names: tuple[str, ...] = tuple(class_names)
        self.class_aliases = tuple(tuple(a) for a in class_aliases) if class_aliases is not None else None
        self.templates = tuple(templates)
        self._class_embeddings: torch.Tensor | None = None

    @torch.no_grad()
    def class_embeddings(self) -> torch.Tensor:
        device = module_device(self.clip)
        if self._class_embeddings is None or self._class_embeddings.device != device:
            rows = []
            for name in self.class_names:
                emb = self.clip.encode_texts([t.format(name) for t in self.templates]).mean(dim=0)
                rows.append(F.normalize(emb, dim=-1))
            self._class_embeddings = torch.stack(rows)
        return self._class_embeddings

    @torch.no_grad()
    def logits(self, frames: torch.Tensor) -> torch.Tensor:
        return self.clip.logit_scale * self.clip.encode_images(frames) @ self.class_embeddings().T

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.logits(frames)

    def info(self) -> dict[str, Any]:
        info = self.clip.info()
        info.update(name=f"zero-shot {info['name']}", templates=list(self.templates), num_classes=len(self.class_names))
        return info
