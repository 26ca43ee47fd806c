"""Inference-time baselines evaluated beside the methods: negative prompting and SAFREE."""

from .safree import SAFREE

__all__ = ["SAFREE"]
