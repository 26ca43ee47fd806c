"""The toy world's evaluation pieces: held-out suite and the shipped frame classifier."""

from __future__ import annotations

from pathlib import Path

from unlearn.evaluation import EvalPrompt

WEIGHTS = Path(__file__).resolve().parent / "weights"


def heldout_suite(per_class: int = 2, seed: int = 1234) -> list[EvalPrompt]:
    """Held-out rich prompts (templates and combinations never used for training), ``per_class`` per class."""
    from .grammar import heldout_eval_prompts

    records = heldout_eval_prompts(per_class=per_class, seed=seed)
    return [EvalPrompt(r.text, f"{r.scene.colour} {r.scene.shape}", seed + i) for i, r in enumerate(records)]


def shipped_classifier(path: str | Path | None = None):
    """The toy world's shape × colour frame classifier as a metrics ``FrameClassifier``."""
    from unlearn.evaluators.module_classifier import ModuleClassifier

    from .classifier import FrameClassifier

    folder = Path(path) if path else WEIGHTS / "classifier"
    if not (folder / FrameClassifier.weights_name).is_file():
        raise FileNotFoundError(
            f"toy classifier weights not found in {str(folder)!r}. Fix: run `unlearn toyworld pretrain` "
            "(it writes unlearn/toyworld/weights/classifier) or pass the folder explicitly."
        )
    clf = FrameClassifier.from_pretrained(folder)
    return ModuleClassifier(clf, clf.classes, name="toyworld-frame-classifier",
                            version=_version(folder))


def _version(folder: Path) -> str:
    import hashlib

    from .classifier import FrameClassifier

    return "sha256:" + hashlib.sha256((folder / FrameClassifier.weights_name).read_bytes()).hexdigest()[:16]
