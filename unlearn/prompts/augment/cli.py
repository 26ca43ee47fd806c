"""``unlearn augment``: write an augmented training prompt suite for a concept.

    unlearn augment --concept nudity --n 100 --style cogvideox --out prompts.jsonl \\
        [--source template|transformers|openai] [--model ID_OR_FOLDER] [--url http://127.0.0.1:8000/v1] \\
        [--synonyms naked,nude] [--seed 0] [--cache_dir DIR | --no_cache true] [--exclude eval_suite.jsonl ...]

The same arguments give the same file: the second run reads the augmentation cache and does not call the
source. ``--exclude`` (repeatable; any suite file: .jsonl, .csv with a ``prompt`` column, .txt) keeps the
training prompts disjoint from evaluation prompts. Exit status: 0 on success, 2 on a usage or input error,
1 when augmentation fails (too few valid prompts, endpoint unreachable).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from unlearn.checks import InputError
from unlearn.prompts.suite import PromptSuite, output_format

from .augmenter import PromptAugmenter, default_cache_dir
from .hf import TransformersSource
from .openai_chat import OpenAIChatSource
from .template import TemplateSource

__all__ = ["augment"]

Source = Literal["template", "transformers", "openai"]


def augment(
    concept: str,
    n: int,
    out: Path,
    style: str = "cogvideox",
    source: Source = "template",
    model: str | None = None,
    url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    synonyms: str = "",
    seed: int = 0,
    cache_dir: Path | None = None,
    no_cache: bool = False,
    exclude: list[Path] | None = None,
    max_rounds: int = 5,
    temperature: float = 0.9,
    top_p: float = 0.95,
    prompts_per_call: int = 10,
    max_new_tokens: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    timeout: float = 120.0,
    max_retries: int = 3,
    name: str | None = None,
) -> int:
    """Write prompts that place a concept in rich context, in a backbone's prompt style.

    Args:
        concept: the concept to place in the prompts, e.g. nudity.
        n: number of prompts.
        out: output suite file (``.jsonl``, ``.json`` or ``.csv``).
        style: prompt style: ``cogvideox`` (long paragraphs), ``hunyuanvideo`` (sentence + style tags),
            ``zeroscope`` (short), ``plain``.
        source: where prompts come from (``template``: offline).
        model: transformers: hub id or local folder; openai: the served model name.
        url: openai: API root of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1.
        api_key_env: openai: environment variable holding the API key (empty: none).
        synonyms: comma-separated words that also express the concept.
        seed: seed of the augmentation and base of the prompt seeds.
        cache_dir: augmentation cache folder (default: ``~/.cache/t2v-unlearn/augment``).
        no_cache: neither read nor write the cache.
        exclude: suite files whose prompts must not appear (repeatable).
        max_rounds: requests to the source before giving up.
        temperature / top_p: sampling of the LLM sources.
        prompts_per_call: LLM sources: prompts asked per request.
        max_new_tokens: LLM sources: generation budget per request.
        device: transformers: cpu, cuda, ... (default: cuda when available).
        dtype: transformers: bfloat16, float16 or float32.
        timeout: openai: seconds per request.
        max_retries: openai: retries per request.
        name: suite name (default: ``<concept>-<style>-<source>``).
    """
    out = Path(out)
    if n < 1:
        raise InputError("--n must be at least 1")
    output_format(out)  # an unsupported suffix fails now, not after the prompts were generated
    if out.is_dir():
        raise InputError(f"--out {str(out)!r} is a folder; give a file name ending in .jsonl, .json or .csv")
    for key, value in (
        ("--max_rounds", max_rounds),
        ("--prompts_per_call", prompts_per_call),
        ("--max_retries", max_retries + 1),
    ):
        if value < 1:
            raise InputError(f"{key} must be at least {1 if key != '--max_retries' else 0}")
    if timeout <= 0:
        raise InputError("--timeout must be > 0 seconds")
    if source == "template":
        generator = TemplateSource()
    elif source == "transformers":
        if not model:
            raise InputError("--source transformers needs --model (a hub id or a local folder)")
        generator = TransformersSource(
            model,
            device=device,
            dtype=dtype,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            prompts_per_call=prompts_per_call,
        )
    else:
        if not url or not model:
            raise InputError(
                "--source openai needs --url (e.g. http://127.0.0.1:8000/v1) and --model (the served name)"
            )
        generator = OpenAIChatSource(
            url,
            model,
            api_key_env=api_key_env or None,
            timeout=timeout,
            max_retries=max_retries,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_new_tokens,
            prompts_per_call=prompts_per_call,
        )
    excluded = None
    for p in exclude or []:
        s = PromptSuite.load(p)
        excluded = s if excluded is None else excluded + s
    cache = None if no_cache else (Path(cache_dir) if cache_dir else default_cache_dir())
    words = [s.strip() for s in synonyms.split(",") if s.strip()]
    augmenter = PromptAugmenter(generator, cache_dir=cache, max_rounds=max_rounds)
    suite = augmenter.augment(concept, n, style=style, seed=seed, synonyms=words, exclude=excluded, name=name)
    if excluded is not None:
        suite.assert_disjoint_from(excluded, what="the --exclude suite(s)")
    suite.save(out)
    st = augmenter.last_stats
    origin = "cache hit" if st.cache_hit else f"generated in {st.rounds} round(s), {st.source_calls} source call(s)"
    print(
        f"unlearn augment: wrote {len(suite)} prompts for {concept!r} ({style}, {source} source, "
        f"{origin}) to {out}  sha256={suite.sha256()[:16]}",
        file=sys.stderr,
    )
    return 0
