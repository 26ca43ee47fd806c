"""Lightning callbacks of t2v-unlearn: adapter checkpoints, concept masks, sample videos, evaluation, run status."""

from .checkpoint import AdapterCheckpoint
from .evaluation import ErasureEvaluation
from .masks import ConceptMaskCallback
from .samples import SampleVideoCallback
from .status import RunStatus

__all__ = ["AdapterCheckpoint", "ErasureEvaluation", "ConceptMaskCallback", "SampleVideoCallback", "RunStatus"]
