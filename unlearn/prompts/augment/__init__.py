"""Prompt augmentation as a service: rich-context prompts for a concept, in a backbone's prompt style.

Three interchangeable sources behind :class:`AugmentationSource`
(``generate(concept, n, style, seed, synonyms) -> list[str]``):

- :class:`TemplateSource`: offline grammar, no model, deterministic (the default and what tests use);
- :class:`TransformersSource`: a local causal LM (any ``AutoModelForCausalLM`` folder or hub id);
- :class:`OpenAIChatSource`: any OpenAI-compatible ``/v1/chat/completions`` server (vLLM, llama.cpp, Ollama).

:class:`PromptAugmenter` wraps a source with an on-disk cache, de-duplication and the concept check, and
returns a :class:`~unlearn.prompts.PromptSuite`::

    from unlearn.prompts.augment import PromptAugmenter, TemplateSource
    suite = PromptAugmenter(TemplateSource(), cache_dir="cache/augment").augment(
        "nudity", n=100, style="cogvideox", seed=0, synonyms=["naked", "nude"])

The command line is ``unlearn augment`` (:func:`unlearn.prompts.augment.cli.augment`: its parameters are the flags).
"""

from __future__ import annotations

from typing import Any

from .augmenter import AugmentStats, PromptAugmenter, default_cache_dir
from .base import (
    AugmentationError,
    AugmentationSource,
    EndpointError,
    build_messages,
    build_plain_prompt,
    concept_terms,
    parse_prompt_list,
)
from .hf import TransformersSource
from .openai_chat import OpenAIChatSource
from .styles import STYLES, PromptStyle, get_style, register_style
from .template import DEFAULT_GRAMMAR, Grammar, TemplateGrammar, TemplateSource

SOURCES: dict[str, type[AugmentationSource]] = {
    "template": TemplateSource,
    "transformers": TransformersSource,
    "openai": OpenAIChatSource,
}


def build_source(kind: str, **kwargs: Any) -> AugmentationSource:
    """Construct a source by name (``template``, ``transformers``, ``openai``) with its keyword arguments."""
    if kind not in SOURCES:
        raise ValueError(f"unknown augmentation source {kind!r}; known: {sorted(SOURCES)}")
    return SOURCES[kind](**kwargs)


__all__ = [
    "AugmentStats",
    "AugmentationError",
    "AugmentationSource",
    "DEFAULT_GRAMMAR",
    "EndpointError",
    "Grammar",
    "OpenAIChatSource",
    "PromptAugmenter",
    "PromptStyle",
    "SOURCES",
    "STYLES",
    "TemplateGrammar",
    "TemplateSource",
    "TransformersSource",
    "build_messages",
    "build_plain_prompt",
    "build_source",
    "concept_terms",
    "default_cache_dir",
    "get_style",
    "parse_prompt_list",
    "register_style",
]
