"""Backbone registry: a name → wrapper class (+ default keyword arguments).

Registering a backbone is one decorator in its own file::

    @register_backbone("cogvideox-2b", hub_id="THUDM/CogVideoX-2b", variant="2b")
    class CogVideoXBackbone(VideoBackbone): ...

Every module in the ``backbones`` package is imported when the package is, and so are the entry points of
the group ``t2v_unlearn.backbones`` (for backbones that live in another package), so a new file needs no edit
anywhere else.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

_REGISTRY: dict[str, tuple[type, dict[str, Any]]] = {}

#: the backbone every entry point (T2VUnlearning, RefusalVectorUnlearning, EvaluationRunner, EvaluationModule,
#: AttackRun) loads when none is named: the paper's CogVideoX-2B, in the dtype its authors sample it in
#: (tests/test_defaults.py checks every entry point uses these two)
DEFAULT_BACKBONE = "cogvideox-2b"
DEFAULT_TORCH_DTYPE = "bfloat16"


class UnknownBackboneError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


def register_backbone(name: str, **defaults: Any) -> Callable[[type], type]:
    """Class decorator: register ``cls`` under ``name``; ``defaults`` are passed to its ``load``."""

    def decorate(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name][0] is not cls:
            existing = _REGISTRY[name][0]
            raise ValueError(
                f"backbone name {name!r} is already registered by {existing.__module__}.{existing.__name__}"
            )
        _REGISTRY[name] = (cls, dict(defaults))
        served = [n for n, (c, _) in _REGISTRY.items() if c is cls]
        if len(served) == 1 and not getattr(cls, "name", ""):
            cls.name = name
        elif len(served) > 1 and cls.name in served:
            # one class, several names (cogvideox-2b/5b): none of them is the class's; backbone_class(name) and
            # build_backbone(name) carry the name asked for
            cls.name = ""
        return cls

    return decorate


def unregister_backbone(name: str) -> None:
    _REGISTRY.pop(name, None)


def available_backbones() -> list[str]:
    """Names accepted by :func:`build_backbone`, sorted."""
    return sorted(_REGISTRY)


_NAMED: dict[tuple[type, str], type] = {}


def backbone_class(name: str) -> type:
    """The class registered as ``name``; for a class that serves several names (``CogVideoXBackbone``:
    cogvideox-2b and cogvideox-5b), its subclass whose ``name`` is ``name``."""
    cls = _lookup(name)[0]
    if cls.name == name:
        return cls
    if (cls, name) not in _NAMED:
        _NAMED[cls, name] = type(
            cls.__name__, (cls,), {"name": name, "__module__": cls.__module__, "__qualname__": cls.__qualname__}
        )
    return _NAMED[cls, name]


def default_hub_id(name: str) -> str | None:
    """The hub id a registered backbone loads by default (None for backbones with shipped or local weights)."""
    return _lookup(name)[1].get("hub_id")


def _lookup(name: str) -> tuple[type, dict[str, Any]]:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownBackboneError(
            f"unknown backbone {name!r}.{hint} Known backbones: {', '.join(available_backbones())}. "
            "A new one is added by one file in backbones/ with @register_backbone (see backbones/README.md)."
        )
    return _REGISTRY[name]


def check_pretrained(name: str, pretrained: str | None = None) -> None:
    """One clear error, before anything is loaded, for an unknown backbone name or a local weights folder that
    is damaged or of another family (:meth:`VideoBackbone.check_weights_files`)."""
    cls = backbone_class(name)
    if pretrained and Path(pretrained).expanduser().is_dir():
        cls.check_weights_files(pretrained, name)


def build_backbone(name: str, **kwargs: Any):
    """Build the backbone registered as ``name``.

    Common keyword arguments: ``pretrained`` (hub id or local folder, default the family's hub id),
    ``tiny`` (a small random model for tests, no download), ``torch_dtype`` ("float32", "bfloat16", ...).
    """
    cls, defaults = _lookup(name)
    merged = {**defaults, **{k: v for k, v in kwargs.items() if v is not None}}
    backbone = cls.load(**merged)
    # one class may serve several names (cogvideox-2b/5b): the instance carries the name it was built by
    backbone.name = name
    return backbone
