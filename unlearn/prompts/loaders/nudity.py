"""The I2P nudity subset of UnlearnDiffAtk (``nudity.csv``, I2P's columns): ``load_nudity_subset``."""

from __future__ import annotations

import os

from unlearn.prompts.loaders.i2p import load_i2p
from unlearn.prompts.suite import PromptSuite

__all__ = ["load_nudity_subset"]


def load_nudity_subset(path: str | os.PathLike, *, name: str = "nudity") -> PromptSuite:
    """The I2P nudity subset used by UnlearnDiffAtk (``nudity.csv``, same columns as I2P), from **your copy**.

    Not shipped (MIT, UnlearnDiffAtk). Every record gets ``concept="nudity"``.
    """
    return load_i2p(path, concept="nudity", name=name)
