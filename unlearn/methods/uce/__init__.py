"""Unified Concept Editing (Gandikota et al.): a closed-form edit of the projections that read the text."""

from .edit import EDIT_FILE, UCEConfig, apply_uce_edit, expand_concepts, last_token_index, load_uce_edit, uce_weight
from .module import UCEConceptsDataModule, UCEUnlearning

__all__ = [
    "EDIT_FILE",
    "UCEConceptsDataModule",
    "UCEConfig",
    "UCEUnlearning",
    "apply_uce_edit",
    "expand_concepts",
    "last_token_index",
    "load_uce_edit",
    "uce_weight",
]
