"""The toy world: a small text-to-video world where a CPU-sized model really knows concepts.

* :mod:`.render` - deterministic procedural videos of shapes (ring, square, cross, bar, dot) in colours (red,
  green, blue, yellow, white) with motion, background, size and an optional second object.
* :mod:`.grammar` - bare and rich prompts with synonyms, their scene specs and concept-word positions; the
  train / held-out split; the synonym API (:func:`grammar.synonyms`).
* :mod:`.text` - the word-level tokenizer and the toy text encoder.
* :mod:`.model` - the tiny pixel-space ``CogVideoXTransformer3DModel`` (v-prediction, CogVideoX-2B-style DDIM
  scheduler), sampling, and :func:`load_toy_components`.
* :mod:`.classifier` - the shape x colour frame classifier.
* :mod:`.pretrain` / :mod:`.evaluate_pretrained` - the reproducible pretraining and its evaluation.

Modules import torch/diffusers lazily where they can; ``import unlearn.toyworld`` itself is cheap.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def default_weights_dir() -> Path:
    """Folder of the shipped pretrained toy weights (may be absent in a fresh checkout before pretraining)."""
    return DEFAULT_WEIGHTS_DIR


def weights_available(path=None) -> bool:
    """True when ``path`` (default: the shipped folder) holds a complete pretrained toy world."""
    d = Path(path) if path is not None else DEFAULT_WEIGHTS_DIR
    needed = ["world.json", "tokenizer/tokenizer.json", "text_encoder/model.safetensors",
              "transformer/config.json", "scheduler/scheduler_config.json", "classifier/model.safetensors"]
    return all((d / n).exists() for n in needed)


def load_toy_components(weights_dir=None, device="cpu"):
    """``(tokenizer, text_encoder, transformer, scheduler, world)``; see :func:`.model.load_toy_components`."""
    from .model import load_toy_components as _load

    return _load(weights_dir if weights_dir is not None else DEFAULT_WEIGHTS_DIR, device=device)


def load_classifier(weights_dir=None, device="cpu"):
    """The shipped :class:`.classifier.FrameClassifier`."""
    from .classifier import FrameClassifier

    d = Path(weights_dir) if weights_dir is not None else DEFAULT_WEIGHTS_DIR
    return FrameClassifier.from_pretrained(d / "classifier", map_location=str(device))
