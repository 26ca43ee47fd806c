"""``unlearn augment``: write an augmented training prompt suite for a concept.

    unlearn augment --concept nudity --n 100 --style cogvideox --out prompts.jsonl \\
        [--source template|transformers|openai] [--model ID_OR_FOLDER] [--url http://127.0.0.1:8000/v1] \\
        [--synonyms naked,nude] [--seed 0] [--cache-dir DIR | --no-cache] [--exclude eval_suite.jsonl ...]

The same arguments give the same file: the second run reads the augmentation cache and does not call the
source. ``--exclude`` (repeatable; any suite file: .jsonl, .csv with a ``prompt`` column, .txt) keeps the
training prompts disjoint from evaluation prompts. Exit status: 0 on success, 2 on a usage or input error,
1 when augmentation fails (too few valid prompts, endpoint unreachable).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unlearn.prompts.suite import PromptFileError, PromptSuite, output_format

from .augmenter import PromptAugmenter, default_cache_dir
from .base import AugmentationError
from .hf import TransformersSource
from .openai_chat import OpenAIChatSource
from .template import TemplateSource

__all__ = ["augment_main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="unlearn augment",
        description="Write prompts that place a concept in rich context, in a backbone's prompt style.",
    )
    ap.add_argument("--concept", required=True, help="the concept to place in the prompts, e.g. nudity")
    ap.add_argument("--n", type=int, required=True, help="number of prompts")
    ap.add_argument(
        "--style",
        default="cogvideox",
        help="prompt style: cogvideox (long paragraphs), hunyuanvideo (sentence + style tags), "
        "zeroscope (short), plain (default: %(default)s)",
    )
    ap.add_argument("--out", required=True, type=Path, help="output suite file (.jsonl, .json or .csv)")
    ap.add_argument(
        "--source",
        choices=("template", "transformers", "openai"),
        default="template",
        help="where prompts come from (default: %(default)s, offline)",
    )
    ap.add_argument("--model", help="transformers: hub id or local folder; openai: the served model name")
    ap.add_argument("--url", help="openai: API root of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    ap.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        help="openai: environment variable holding the API key (default: %(default)s; unset = none)",
    )
    ap.add_argument("--synonyms", default="", help="comma-separated words that also express the concept")
    ap.add_argument("--seed", type=int, default=0, help="seed of the augmentation and base of the prompt seeds")
    ap.add_argument("--cache-dir", type=Path, help="augmentation cache folder (default: ~/.cache/t2v-unlearn/augment)")
    ap.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    ap.add_argument(
        "--exclude",
        action="append",
        default=[],
        type=Path,
        help="suite file whose prompts must not appear (repeatable)",
    )
    ap.add_argument("--max-rounds", type=int, default=5, help="requests to the source before giving up")
    ap.add_argument("--temperature", type=float, default=0.9)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--prompts-per-call", type=int, default=10, help="LLM sources: prompts asked per request")
    ap.add_argument("--max-new-tokens", type=int, help="LLM sources: generation budget per request")
    ap.add_argument("--device", help="transformers: cpu, cuda, ... (default: cuda when available)")
    ap.add_argument("--dtype", help="transformers: bfloat16, float16 or float32")
    ap.add_argument("--timeout", type=float, default=120.0, help="openai: seconds per request")
    ap.add_argument("--max-retries", type=int, default=3, help="openai: retries per request")
    ap.add_argument("--name", help="suite name (default: <concept>-<style>-<source>)")
    return ap


def _make_source(args: argparse.Namespace):
    if args.source == "template":
        return TemplateSource()
    if args.source == "transformers":
        if not args.model:
            raise ValueError("--source transformers needs --model (a hub id or a local folder)")
        return TransformersSource(
            args.model,
            device=args.device,
            dtype=args.dtype,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_p=args.top_p,
            prompts_per_call=args.prompts_per_call,
        )
    if not args.url or not args.model:
        raise ValueError("--source openai needs --url (e.g. http://127.0.0.1:8000/v1) and --model (the served name)")
    return OpenAIChatSource(
        args.url,
        args.model,
        api_key_env=args.api_key_env or None,
        timeout=args.timeout,
        max_retries=args.max_retries,
        temperature=args.temperature,
        top_p=args.top_p,
        max_tokens=args.max_new_tokens,
        prompts_per_call=args.prompts_per_call,
    )


def augment_main(argv: list[str] | None = None) -> int:
    """Run ``unlearn augment`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    ap = build_parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:  # --help or a usage error: argparse already printed
        return int(e.code or 0)

    try:
        if args.n < 1:
            raise ValueError("--n must be at least 1")
        output_format(args.out)  # an unsupported suffix fails now, not after the prompts were generated
        if args.out.is_dir():
            raise ValueError(f"--out {str(args.out)!r} is a folder; give a file name ending in .jsonl, .json or .csv")
        for key, value in (
            ("--max-rounds", args.max_rounds),
            ("--prompts-per-call", args.prompts_per_call),
            ("--max-retries", args.max_retries + 1),
        ):
            if value < 1:
                raise ValueError(f"{key} must be at least {1 if key != '--max-retries' else 0}")
        if args.timeout <= 0:
            raise ValueError("--timeout must be > 0 seconds")
        source = _make_source(args)
        exclude = None
        for p in args.exclude:
            s = PromptSuite.load(p)
            exclude = s if exclude is None else exclude + s
        cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
        synonyms = [s.strip() for s in args.synonyms.split(",") if s.strip()]
        augmenter = PromptAugmenter(source, cache_dir=cache_dir, max_rounds=args.max_rounds)
        suite = augmenter.augment(
            args.concept, args.n, style=args.style, seed=args.seed, synonyms=synonyms, exclude=exclude, name=args.name
        )
        if exclude is not None:
            suite.assert_disjoint_from(exclude, what="the --exclude suite(s)")
        suite.save(args.out)
    except (PromptFileError, ValueError) as e:
        print("unlearn augment: error: " + " ".join(str(e).split()), file=sys.stderr)
        return 2
    except AugmentationError as e:
        print("unlearn augment: error: " + " ".join(str(e).split()), file=sys.stderr)
        return 1
    st = augmenter.last_stats
    origin = "cache hit" if st.cache_hit else f"generated in {st.rounds} round(s), {st.source_calls} source call(s)"
    print(
        f"unlearn augment: wrote {len(suite)} prompts for {args.concept!r} ({args.style}, {args.source} source, "
        f"{origin}) to {args.out}  sha256={suite.sha256()[:16]}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(augment_main())
