"""The project's own prompt suites: the files in this folder (written by this project, CC0) and their API.

:func:`builtin_suite` reads them by name: ``"imagenet10"`` (10 ImageNet classes x 20 video prompts with
seeds), ``"faces"`` (5 public figures x 30 prompts) and ``"faces_templates"`` (30 templates with
``{identity}``; :func:`expand_identity_templates` fills them). ``build_project_prompts.py`` beside them
rewrites the files (``--check`` compares); ``SOURCES.md`` says what each holds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unlearn.prompts.suite import PromptRecord, PromptSuite

__all__ = ["builtin_suite", "builtin_prompt_dir", "expand_identity_templates", "IMAGENET10_CLASSES", "FACES_IDENTITIES"]

#: the 10 Imagenette classes of the ESD object-erasure protocol, in ESD's order
IMAGENET10_CLASSES: tuple[str, ...] = (
    "cassette player",
    "chain saw",
    "church",
    "gas pump",
    "tench",
    "garbage truck",
    "English springer",
    "golf ball",
    "parachute",
    "French horn",
)

#: the five public figures of the paper's face-erasure table
FACES_IDENTITIES: tuple[str, ...] = (
    "Angela Merkel",
    "Barack Obama",
    "Donald Trump",
    "Joe Biden",
    "Queen Elizabeth II",
)


def builtin_prompt_dir() -> Path:
    """Folder of the project's own prompt files (this package's folder, installed with it as package data).

    The environment variable ``T2V_UNLEARN_PROMPT_DIR`` points it elsewhere.
    """
    env = os.environ.get("T2V_UNLEARN_PROMPT_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent


_BUILTIN_FILES = {
    "imagenet10": "imagenet10_video.jsonl",
    "faces": "faces_5ids.jsonl",
    "faces_templates": "faces_templates.jsonl",
}


def builtin_suite(name: str, **filter_kwargs: Any) -> PromptSuite:
    """One of the project's own suites: ``imagenet10``, ``faces``, ``faces_templates``.

    Keyword arguments are passed to :meth:`PromptSuite.filter` (e.g. ``concept="golf ball"``).
    """
    if name not in _BUILTIN_FILES:
        raise ValueError(f"unknown builtin suite {name!r}; known: {sorted(_BUILTIN_FILES)}")
    path = builtin_prompt_dir() / _BUILTIN_FILES[name]
    suite = PromptSuite.load(path, name=name)
    return suite.filter(**filter_kwargs) if filter_kwargs else suite


def expand_identity_templates(
    templates: PromptSuite, identities: Sequence[str], *, category: str = "face", name: str = "faces"
) -> PromptSuite:
    """Fill ``{identity}`` in every template with each identity (identity-major order).

    Each output record: concept = identity, concept_words = (identity,), seed = the template's seed (the same
    seed for every identity, so identities are compared on equal noise), id = ``<identity slug>-<template id>``.
    """
    recs = []
    for ident in identities:
        slug = re.sub(r"[^a-z0-9]+", "_", ident.lower()).strip("_")
        for t in templates:
            if "{identity}" not in t.prompt:
                raise ValueError(f"template {t.prompt!r} has no {{identity}} placeholder")
            recs.append(
                PromptRecord(
                    prompt=t.prompt.replace("{identity}", ident),
                    concept=ident,
                    category=category,
                    seed=t.seed,
                    concept_words=(ident,),
                    id=f"{slug}-{t.id}",
                )
            )
    return PromptSuite(recs, name=name)
