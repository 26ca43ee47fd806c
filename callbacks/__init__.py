"""Lightning callbacks of t2v-unlearn: adapter checkpoints, the safe checkpoint format, concept masks, sample
videos, evaluation, run status."""

if __name__ != "unlearn.callbacks":  # the folder callbacks/ is the package unlearn.callbacks (one installed namespace)
    raise ImportError(
        "the top-level package 'callbacks' was renamed: import unlearn.callbacks instead "
        "(configs: class_path: unlearn.callbacks.<Name>)"
    )


from .checkpoint import AdapterCheckpoint, SafeCheckpointIO, install_safe_checkpoint_io
from .evaluation import ErasureEvaluation
from .masks import ConceptMaskCallback
from .progress import PlainProgressBar, TrainingTelemetry
from .samples import SampleVideoCallback
from .status import RunStatus

__all__ = [
    "AdapterCheckpoint",
    "SafeCheckpointIO",
    "install_safe_checkpoint_io",
    "ErasureEvaluation",
    "ConceptMaskCallback",
    "SampleVideoCallback",
    "RunStatus",
    "PlainProgressBar",
    "TrainingTelemetry",
]
