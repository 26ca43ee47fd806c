"""Prompts: the suite type, loaders for public suites (one module per source), augmentation, and the
project's built-in prompt files.

- :mod:`unlearn.prompts.suite`: :class:`PromptRecord`, :class:`PromptSuite`, :class:`PromptFileError`, the
  text helpers and the file-format helpers;
- :mod:`unlearn.prompts.loaders`: ``load_i2p``, ``load_nudity_subset``, ``load_ring_a_bell``,
  ``load_safesora``, ``load_t2vsafetybench``, ``load_esd_csv``, the registry ``LOADERS`` and ``load_prompts``;
- :mod:`unlearn.prompts.builtin`: ``builtin_suite`` and the files it reads (package data);
- :mod:`unlearn.prompts.augment`: prompt augmentation (templates, local LLMs, OpenAI-compatible endpoints).
"""

from unlearn.prompts.builtin import (
    FACES_IDENTITIES,
    IMAGENET10_CLASSES,
    builtin_prompt_dir,
    builtin_suite,
    expand_identity_templates,
)
from unlearn.prompts.loaders import (
    LOADERS,
    SAFESORA_CATEGORY_ALIASES,
    T2VSAFETYBENCH_CATEGORIES,
    load_esd_csv,
    load_i2p,
    load_nudity_subset,
    load_prompts,
    load_ring_a_bell,
    load_safesora,
    load_t2vsafetybench,
)
from unlearn.prompts.suite import (
    PromptFileError,
    PromptOverlapError,
    PromptRecord,
    PromptSuite,
    find_concept_words,
    normalize_prompt,
)

__all__ = [
    "PromptFileError",
    "PromptOverlapError",
    "PromptRecord",
    "PromptSuite",
    "find_concept_words",
    "normalize_prompt",
    "load_prompts",
    "load_i2p",
    "load_nudity_subset",
    "load_ring_a_bell",
    "load_safesora",
    "load_t2vsafetybench",
    "load_esd_csv",
    "builtin_suite",
    "builtin_prompt_dir",
    "expand_identity_templates",
    "IMAGENET10_CLASSES",
    "FACES_IDENTITIES",
    "T2VSAFETYBENCH_CATEGORIES",
    "SAFESORA_CATEGORY_ALIASES",
    "LOADERS",
]
