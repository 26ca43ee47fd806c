"""ESD (Gandikota et al., "Erasing Concepts from Diffusion Models"), ESD-x: the backbone's own text-attention
projections fine-tuned towards the negatively guided prediction, on T2VUnlearning's pseudo data."""

from .module import EDIT_FILE, TRAIN_METHODS, ESDUnlearning, esd_layers, load_esd_edit

__all__ = ["EDIT_FILE", "TRAIN_METHODS", "ESDUnlearning", "esd_layers", "load_esd_edit"]
