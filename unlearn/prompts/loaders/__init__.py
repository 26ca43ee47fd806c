"""Loaders for public prompt suites, one module per source, and the registry ``LOADERS`` that configs name them by.

Third-party suites (Ring-A-Bell, SafeSora, T2VSafetyBench, I2P, the I2P nudity subset, ESD's ImageNet
prompts, the T2VUnlearning authors' ``evaluation/data`` sets) are **not shipped** with this project: download them from their authors and point the loaders at
your copy. Their licences differ (SafeSora: CC BY-NC 4.0, non-commercial; T2VSafetyBench: no licence file;
I2P and UnlearnDiffAtk's nudity subset: MIT); see ``docs/prompts.md``.

A new source is one module here with a ``load_<source>(path, **options) -> PromptSuite`` function, added to
``LOADERS`` below; the file-format helpers it needs (``read_text``, ``read_csv_dicts``, ``iter_json_rows``, ...)
are in :mod:`unlearn.prompts.suite`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from unlearn.prompts.builtin import builtin_suite
from unlearn.prompts.loaders.esd import load_esd_csv
from unlearn.prompts.loaders.i2p import load_i2p
from unlearn.prompts.loaders.nudity import load_nudity_subset
from unlearn.prompts.loaders.ring_a_bell import load_ring_a_bell
from unlearn.prompts.loaders.safesora import SAFESORA_CATEGORY_ALIASES, load_safesora
from unlearn.prompts.loaders.t2vsafetybench import T2VSAFETYBENCH_CATEGORIES, load_t2vsafetybench
from unlearn.prompts.loaders.t2vunlearning import T2VUNLEARNING_SETS, load_t2vunlearning
from unlearn.prompts.suite import PromptSuite

__all__ = [
    "LOADERS",
    "load_prompts",
    "load_i2p",
    "load_nudity_subset",
    "load_ring_a_bell",
    "load_safesora",
    "load_t2vsafetybench",
    "load_t2vunlearning",
    "T2VUNLEARNING_SETS",
    "load_esd_csv",
    "SAFESORA_CATEGORY_ALIASES",
    "T2VSAFETYBENCH_CATEGORIES",
]


def _load_suite_file(path: str | os.PathLike, **kw: Any) -> PromptSuite:
    return PromptSuite.load(path, **kw)


#: loader name -> function, for configs (``load_prompts(path, format="i2p", categories=["sexual"])``)
LOADERS: dict[str, Callable[..., PromptSuite]] = {
    "suite": _load_suite_file,
    "i2p": load_i2p,
    "nudity": load_nudity_subset,
    "ring_a_bell": load_ring_a_bell,
    "safesora": load_safesora,
    "t2vsafetybench": load_t2vsafetybench,
    "esd": load_esd_csv,
    "t2vunlearning": load_t2vunlearning,  # the authors' evaluation/data sets by name: set="gen_cogvideox", ...
}


def load_prompts(path: str | os.PathLike, format: str = "suite", **kwargs: Any) -> PromptSuite:
    """Load prompts with the loader named by ``format`` (a key of :data:`LOADERS`), or a builtin suite.

    ``path`` may also be ``"builtin:<name>"`` (see :func:`builtin_suite`).
    """
    if isinstance(path, str) and path.startswith("builtin:"):
        return builtin_suite(path.split(":", 1)[1], **kwargs)
    key = format.lower().replace("-", "_")
    if key not in LOADERS:
        raise ValueError(f"unknown prompt format {format!r}; known: {sorted(LOADERS)}")
    return LOADERS[key](path, **kwargs)
