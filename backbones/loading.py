"""What a weights folder holds and how its parts are loaded: the one loading path every backbone family shares.

A family declares its folder as a table, entry (sub-folder or file) → :class:`Component`::

    components = {
        "model_index.json": Component("pipeline index"),
        "tokenizer": Component("T5 tokenizer", "transformers.AutoTokenizer"),
        "text_encoder": Component("T5EncoderModel", "transformers.T5EncoderModel", dtype=True),
        ...
    }

and :meth:`unlearn.backbones.base.VideoBackbone.from_pretrained` walks it: a local folder is checked first (one
:class:`WeightsFolderError` naming every missing entry), then every entry is loaded in order; an ``OSError`` while
loading becomes one error that names the entry and the fix.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch


class WeightsFolderError(FileNotFoundError):
    """A local weights folder is missing, lacks a component, or holds one that does not load."""


#: ``(folder or hub id, entry, torch_dtype, options) -> part``: a loader for what ``Class.from_pretrained`` cannot load
Loader = Callable[[str, str, torch.dtype, Mapping[str, Any]], Any]


@dataclasses.dataclass(frozen=True)
class Component:
    """One entry of a weights folder.

    Args:
        what: what the entry holds, for error messages (``"T5EncoderModel"``, ``"pipeline index"``).
        loader: ``"package.Class"``, loaded as ``Class.from_pretrained(folder, subfolder=entry, ...)`` (imported
            only when loading, so ``import backbones`` stays light); or a :data:`Loader` callable for anything
            else (a scheduler whose class is an option, a file, a model with its own format); or ``None`` for an
            entry that must exist but is not loaded (``model_index.json``).
        dtype: ``True``: load in the backbone's ``torch_dtype``; a ``torch.dtype``: always in that one (the Wan
            VAE stays float32); ``False``: no dtype (tokenizers, schedulers). Callables handle the dtype themselves.
    """

    what: str
    loader: str | Loader | None = None
    dtype: bool | torch.dtype = False

    def load(self, pretrained: str, entry: str, torch_dtype: torch.dtype, options: Mapping[str, Any]) -> Any:
        if self.loader is None:
            return None
        if callable(self.loader):
            return self.loader(pretrained, entry, torch_dtype, options)
        module, _, name = self.loader.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        kwargs: dict[str, Any] = {}
        if self.dtype is True:
            kwargs["torch_dtype"] = torch_dtype
        elif isinstance(self.dtype, torch.dtype):
            kwargs["torch_dtype"] = self.dtype
        return cls.from_pretrained(pretrained, subfolder=entry, **kwargs)


def scheduler_from_folder(pretrained: str, entry: str, class_name: str | None, fallback: str) -> Any:
    """The scheduler config of ``pretrained/entry`` in the diffusers class ``class_name`` (default: the class the
    config names, or ``fallback`` if it names none)."""
    import diffusers

    config = getattr(diffusers, fallback).load_config(pretrained, subfolder=entry)
    return getattr(diffusers, class_name or config.get("_class_name", fallback)).from_config(config)


def resolve_dtype(torch_dtype: str | torch.dtype) -> torch.dtype:
    """``"bfloat16"`` → ``torch.bfloat16`` (a dtype passes through); an unknown name is one clear error."""
    if isinstance(torch_dtype, torch.dtype):
        return torch_dtype
    dtype = getattr(torch, str(torch_dtype), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown torch_dtype {torch_dtype!r}; use float32, bfloat16 or float16")
    return dtype


def is_local_path(pretrained: str) -> bool:
    """A string that looks like a path (not ``org/name``) is a local folder, even if it does not exist yet."""
    p = Path(pretrained).expanduser()
    return p.exists() or pretrained.startswith((".", "/", "~")) or pretrained.count("/") != 1


def check_weights_folder(path: str | os.PathLike, required: Mapping[str, str], family: str, hub: bool = True) -> Path:
    """Raise one clear error if ``path`` is not a folder holding every ``required`` entry.

    ``required`` maps a sub-folder (or file) name to what it holds, for the message; ``hub`` says whether the
    family's weights can also come from the model hub (the fix the message suggests).
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        fix = (
            "pass pretrained=<hub id> on a machine with hub access, or download the model "
            f"(e.g. `huggingface-cli download <id> --local-dir {root}`)."
            if hub
            else "pass a folder written by save_pretrained()."
        )
        raise WeightsFolderError(f"{family}: weights folder {str(root)!r} does not exist. Fix: {fix}")
    missing = [f"{_label(name)} ({what})" for name, what in required.items() if not (root / name).exists()]
    if missing:
        raise WeightsFolderError(
            f"{family}: weights folder {str(root)!r} is incomplete; missing {', '.join(missing)}. "
            "Fix: download the full diffusers folder (all components), or save one with pipeline.save_pretrained()."
        )
    return root


def _label(entry: str) -> str:
    """``vae/`` for a sub-folder, ``model_index.json`` for a file."""
    return entry if "." in entry else f"{entry}/"


def load_components(
    components: Mapping[str, Component],
    pretrained: str,
    torch_dtype: torch.dtype,
    options: Mapping[str, Any],
    family: str,
    hub: bool = True,
) -> dict[str, Any]:
    """Every entry of ``components`` loaded from ``pretrained`` (a local folder, or a hub id when ``hub``).

    A local folder is checked first (:func:`check_weights_folder`); an ``OSError`` while loading an entry becomes
    one error naming the entry: :class:`WeightsFolderError` for a local folder, ``OSError`` for the hub.
    """
    local = not hub or is_local_path(pretrained)
    if local:
        check_weights_folder(pretrained, {e: c.what for e, c in components.items()}, family, hub=hub)
    parts: dict[str, Any] = {}
    for entry, component in components.items():
        try:
            parts[entry] = component.load(str(pretrained), entry, torch_dtype, options)
        except OSError as err:
            if isinstance(err, WeightsFolderError):
                raise
            if local:
                raise WeightsFolderError(
                    f"{family}: {_label(entry)} ({component.what}) in {str(pretrained)!r} does not load "
                    f"({type(err).__name__}: {err}). Fix: download or save that component again."
                ) from err
            raise OSError(
                f"{family}: could not load {_label(entry)} ({component.what}) of {pretrained!r} from the model hub "
                f"({type(err).__name__}: {err}). Without network access, download the weights elsewhere and pass "
                "pretrained=<local folder>."
            ) from err
    return parts
