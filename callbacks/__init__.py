"""Lightning callbacks of t2v-unlearn: adapter checkpoints, the safe checkpoint format, concept masks, sample
videos, evaluation."""

from .checkpoint import AdapterCheckpoint, SafeCheckpointIO, install_safe_checkpoint_io
from .evaluation import ErasureEvaluation
from .masks import ConceptMaskCallback
from .samples import SampleVideoCallback

__all__ = ["AdapterCheckpoint", "SafeCheckpointIO", "install_safe_checkpoint_io", "ErasureEvaluation",
           "ConceptMaskCallback", "SampleVideoCallback"]
