"""The full-size backbones without weights, for the benchmark scripts: the module moved into the package as
``unlearn.backbones.fullsize`` (tests and other code import it from there); importing this one registers the
``random-<name>`` backbones (``register_random_backbones``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from unlearn.backbones.fullsize import *  # noqa: E402,F403
from unlearn.backbones.fullsize import _REAL_SDPA, _cuda_like_sdpa, register_random_backbones  # noqa: E402,F401

register_random_backbones()
