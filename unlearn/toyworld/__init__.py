"""The toy world: a small text-to-video world where a CPU-sized model really knows concepts.

* :mod:`.render` - deterministic procedural videos of shapes (ring, square, cross, bar, dot) in colours (red,
  green, blue, yellow, white) with motion, background, size and an optional second object.
* :mod:`.grammar` - bare and rich prompts with synonyms, their scene specs and concept-word positions; the
  train / held-out split; the synonym API (:func:`grammar.synonyms`); a concept's neighbour classes.
* :mod:`.backbone` - the ``toy-cogvideox`` backbone: a tiny pixel-space ``CogVideoXTransformer3DModel``
  (v-prediction, CogVideoX-2B-style DDIM scheduler), the word-level tokenizer and the toy text encoder.
  It registers with :mod:`backbones` through an entry point; the world uses nothing of the backbones but their
  public contract.
* :mod:`.classifier` - the shape x colour frame classifier.
* :mod:`.pretrain` / :mod:`.evaluate_pretrained` - the reproducible pretraining and its evaluation.

``import unlearn.toyworld`` itself is cheap (no torch).
"""

from __future__ import annotations

from pathlib import Path

#: folder of the shipped pretrained weights (denoiser, text encoder, tokenizer, scheduler, classifier)
SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def weights_available(path=None) -> bool:
    """True when ``path`` (default: the shipped folder) holds a complete pretrained toy world."""
    d = Path(path) if path is not None else SHIPPED_WEIGHTS_DIR
    needed = [
        "world.json",
        "tokenizer/tokenizer.json",
        "text_encoder/model.safetensors",
        "transformer/config.json",
        "scheduler/scheduler_config.json",
        "classifier/model.safetensors",
    ]
    return all((d / n).exists() for n in needed)


def load_classifier(weights_dir=None, device="cpu"):
    """The shipped :class:`.classifier.ShapeColourClassifier` (imports torch)."""
    from .classifier import ShapeColourClassifier  # torch: only when a classifier is asked for

    d = Path(weights_dir) if weights_dir is not None else SHIPPED_WEIGHTS_DIR
    return ShapeColourClassifier.from_pretrained(d / "classifier", map_location=str(device))
