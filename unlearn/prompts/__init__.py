"""Prompts: the suite type, loaders for public suites, augmentation, and the project's built-in prompt files."""

from .suite import *  # noqa: F401,F403
from .suite import __all__  # noqa: F401
