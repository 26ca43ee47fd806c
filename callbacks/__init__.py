"""Lightning callbacks of t2v-unlearn: adapter checkpoints, concept masks, sample videos."""

from .checkpoint import AdapterCheckpoint
from .evaluation import ErasureEvaluation
from .masks import ConceptMaskCallback
from .samples import SampleVideoCallback

__all__ = ["AdapterCheckpoint", "ErasureEvaluation", "ConceptMaskCallback", "SampleVideoCallback"]
