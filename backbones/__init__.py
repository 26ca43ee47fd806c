"""Video diffusion backbones behind one contract (:class:`unlearn.backbones.base.VideoBackbone`).

>>> from unlearn.backbones import build_backbone, available_backbones
>>> available_backbones()            # doctest: +SKIP
['cogvideox-2b', 'cogvideox-5b', ...]
>>> bb = build_backbone("cogvideox-2b", tiny=True)   # doctest: +SKIP
"""

from __future__ import annotations

if __name__ != "unlearn.backbones":  # the folder backbones/ is the package unlearn.backbones (one installed namespace)
    raise ImportError(
        "the top-level package 'backbones' was renamed: import unlearn.backbones instead "
        "(configs: class_path: unlearn.backbones.<Name>)"
    )

import importlib
import pkgutil
from importlib.metadata import entry_points

from .base import AttentionSite, ConceptNotInPromptError, PromptEmbedding, SamplingSettings, Switch, VideoBackbone
from .loading import Component, WeightsFolderError
from .registry import (
    DEFAULT_BACKBONE,
    DEFAULT_TORCH_DTYPE,
    UnknownBackboneError,
    available_backbones,
    backbone_class,
    build_backbone,
    check_pretrained,
    default_hub_id,
    register_backbone,
    unregister_backbone,
)

_INFRA = {"base", "registry", "common", "loading", "check_copies"}


def _import_family_modules() -> None:
    # one file per family registers itself on import; importing them all here means adding a backbone
    # never needs an edit to this file
    for info in pkgutil.iter_modules(__path__):
        if info.name not in _INFRA and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    for ep in entry_points(group="t2v_unlearn.backbones"):
        ep.load()


_import_family_modules()

__all__ = [
    "AttentionSite",
    "Component",
    "ConceptNotInPromptError",
    "PromptEmbedding",
    "SamplingSettings",
    "Switch",
    "UnknownBackboneError",
    "VideoBackbone",
    "WeightsFolderError",
    "available_backbones",
    "backbone_class",
    "build_backbone",
    "check_pretrained",
    "default_hub_id",
    "register_backbone",
    "DEFAULT_BACKBONE",
    "DEFAULT_TORCH_DTYPE",
    "unregister_backbone",
]
