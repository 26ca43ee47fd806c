"""T2VUnlearning (Ye et al.): zero-initialised adapters on a frozen backbone, trained on pseudo data."""

from .adapters import AdapterStack, AdapterSwitch, VideoTokenAdapter
from .adversarial import optimise_embedding, worst_case_conditioning
from .data import ConceptDataModule, ToyWorldDataModule, TrainingPrompt, batch_embedding
from .export import (
    AdapterFileError,
    adapter_config,
    attach_adapters,
    check_adapter_sites,
    detach_adapters,
    load_adapter_weights,
    load_adapters,
    read_adapter_config,
    save_adapters,
)
from .losses import concept_mask, localization_loss, negatively_guided_target, preservation_loss, unlearning_loss
from .module import DivergenceError, T2VUnlearning
from .pseudo_data import (
    PseudoDataSettings,
    PseudoTrajectoryCache,
    TrajectoryFile,
    TrajectoryRequest,
    make_trajectories,
    sampler_identity,
)

__all__ = [
    "AdapterSwitch",
    "AdapterFileError",
    "AdapterStack",
    "DivergenceError",
    "adapter_config",
    "check_adapter_sites",
    "ConceptDataModule",
    "ToyWorldDataModule",
    "PseudoTrajectoryCache",
    "PseudoDataSettings",
    "T2VUnlearning",
    "TrainingPrompt",
    "TrajectoryFile",
    "TrajectoryRequest",
    "VideoTokenAdapter",
    "attach_adapters",
    "batch_embedding",
    "concept_mask",
    "detach_adapters",
    "load_adapter_weights",
    "load_adapters",
    "localization_loss",
    "make_trajectories",
    "negatively_guided_target",
    "optimise_embedding",
    "preservation_loss",
    "read_adapter_config",
    "sampler_identity",
    "save_adapters",
    "unlearning_loss",
    "worst_case_conditioning",
]
