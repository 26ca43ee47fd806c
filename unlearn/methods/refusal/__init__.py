"""Low-rank refusal vector (Facchiano et al.): a training-free, closed-form weight edit."""

from .edit import *  # noqa: F401,F403
from .edit import __all__ as _edit_all
from .module import RefusalPairsDataModule, RefusalVectorUnlearning
from .pairs import PairFileError, as_pairs, toyworld_pairs

__all__ = [
    *_edit_all,
    "PairFileError",
    "RefusalPairsDataModule",
    "RefusalVectorUnlearning",
    "as_pairs",
    "toyworld_pairs",
]
