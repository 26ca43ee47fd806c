"""The augmentation service: any source, plus an on-disk cache, de-duplication and the concept check.

:class:`PromptAugmenter` asks its source for prompts, keeps only those that mention the concept or one of
its synonyms (whole words, case-insensitive; simple plurals count), drops duplicates (case and whitespace
normalized) and prompts of an exclusion suite, re-asks for what is missing with a new seed (at most
``max_rounds`` rounds) and raises :class:`~unlearn.prompts.augment.AugmentationError` when too few valid prompts
remain. A prompt without the concept never gets through.

The result is a :class:`~unlearn.prompts.PromptSuite` whose records carry ``concept``, ``seed``
(``seed + index``) and ``concept_words`` (the concept/synonym phrases found in each prompt, spelled as in
the prompt), so the localization mask can find the concept tokens.

Results are cached as JSON files (written atomically) in ``cache_dir``, keyed by the sha256 of
(source kind, model id, instruction text, concept, style, n, seed, synonyms, exclusion suite hash, cache
format version). A second call with the same arguments reads the file and does not call the source.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from unlearn.io import atomic_write_text, cache_dir
from unlearn.prompts.suite import PromptRecord, PromptSuite, find_concept_words, normalize_prompt

from .base import AugmentationError, AugmentationSource, concept_terms
from .styles import _ALIASES, STYLES, get_style

__all__ = ["PromptAugmenter", "AugmentStats", "default_cache_dir", "CACHE_VERSION"]

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """Where augmentation requests are cached: :func:`unlearn.io.cache_dir` ``("augment")``."""
    return cache_dir("augment")


@dataclass
class AugmentStats:
    """What happened during one :meth:`PromptAugmenter.augment` call."""

    cache_hit: bool = False
    cache_file: str | None = None
    rounds: int = 0
    source_calls: int = 0
    returned: int = 0
    accepted: int = 0
    dropped_no_concept: int = 0
    dropped_duplicate: int = 0
    dropped_excluded: int = 0
    dropped_examples: list[str] = field(default_factory=list)


def _derive_seed(seed: int, round_: int) -> int:
    if round_ == 0:
        return int(seed)
    return int.from_bytes(hashlib.sha256(f"{seed}:{round_}".encode()).digest()[:4], "big") & 0x7FFFFFFF


class PromptAugmenter:
    """Wraps an :class:`~unlearn.prompts.augment.AugmentationSource` with caching and validation.

    Args:
        source: where prompts come from (template grammar, local LM, HTTP endpoint).
        cache_dir: folder for the JSON cache; ``None`` disables caching.
        max_rounds: how many times to ask the source (the first request included) before giving up.
        allow_plural: accept "golf balls" for the concept "golf ball".
    """

    def __init__(
        self,
        source: AugmentationSource,
        cache_dir: str | os.PathLike | None = None,
        *,
        max_rounds: int = 5,
        allow_plural: bool = True,
    ):
        if max_rounds < 1:
            raise ValueError("max_rounds must be at least 1")
        self.source = source
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.max_rounds = int(max_rounds)
        self.allow_plural = allow_plural
        #: statistics of the last :meth:`augment` call
        self.last_stats: AugmentStats | None = None

    @property
    def last_cache_hit(self) -> bool:
        return bool(self.last_stats and self.last_stats.cache_hit)

    # -- cache ----------------------------------------------------------------------------------------------------
    def cache_fields(
        self,
        concept: str,
        n: int,
        style: str,
        seed: int,
        synonyms: Sequence[str] = (),
        exclude_sha256: str | None = None,
    ) -> dict:
        """The values the cache key hashes (also stored in the cache file for inspection)."""
        return {
            "version": CACHE_VERSION,
            "source_kind": self.source.kind,
            "model_id": self.source.model_id,
            "instructions": self.source.instructions(style),
            "concept": concept,
            "style": style,
            "n": int(n),
            "seed": int(seed),
            "synonyms": list(synonyms),
            "exclude_sha256": exclude_sha256,
            # max_rounds is left out on purpose: a result that succeeded is the same for any larger limit
            "allow_plural": self.allow_plural,
        }

    def cache_key(
        self,
        concept: str,
        n: int,
        style: str,
        seed: int,
        synonyms: Sequence[str] = (),
        exclude_sha256: str | None = None,
    ) -> str:
        blob = json.dumps(
            self.cache_fields(concept, n, style, seed, synonyms, exclude_sha256), sort_keys=True, ensure_ascii=False
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def cache_path(self, key: str) -> Path | None:
        """Where the result for ``key`` is stored (``None`` without a cache folder)."""
        return None if self.cache_dir is None else self.cache_dir / f"{key}.json"

    def _read_cache(self, path: Path, fields: dict) -> list[dict] | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("fields") != fields:
                raise ValueError("cache fields differ from the request")
            items = data["prompts"]
            if not isinstance(items, list) or not all(isinstance(i, dict) and "prompt" in i for i in items):
                raise ValueError("no prompt list")
            return items
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            warnings.warn(f"ignoring unreadable augmentation cache file {path} ({e}); regenerating", stacklevel=3)
            return None

    # -- main entry -------------------------------------------------------------------------------------------
    def augment(
        self,
        concept: str,
        n: int,
        style: str = "cogvideox",
        seed: int = 0,
        synonyms: Sequence[str] = (),
        exclude: PromptSuite | Iterable[str] | None = None,
        name: str | None = None,
        category: str | None = "augmented",
    ) -> PromptSuite:
        """``n`` distinct prompts that mention ``concept`` (or a synonym), in ``style``, reproducible from ``seed``.

        ``exclude``: prompts that must not appear (e.g. the evaluation suite); they count as dropped and are
        re-asked for. Raises :class:`AugmentationError` when fewer than ``n`` valid prompts remain after
        ``max_rounds`` requests.
        """
        if not concept or not concept.strip():
            raise ValueError("concept must be a non-empty string")
        if n < 1:
            raise ValueError("n must be at least 1")
        # built-in style names and aliases are canonicalised ("Hunyuan" -> "hunyuanvideo"); a custom grammar's
        # own style names pass through unchanged
        style = get_style(style).name if style.strip().lower() in _known_style_names() else style
        synonyms = [s for s in concept_terms(concept, synonyms)[1:]]
        concept = " ".join(concept.split())
        terms = concept_terms(concept, synonyms)
        excluded: set[str] = set()
        exclude_sha = None
        if exclude is not None:
            ex_suite = exclude if isinstance(exclude, PromptSuite) else PromptSuite.from_prompts(list(exclude))
            excluded = {normalize_prompt(p) for p in ex_suite.prompts}
            exclude_sha = ex_suite.sha256()
        fields = self.cache_fields(concept, n, style, seed, synonyms, exclude_sha)
        key = self.cache_key(concept, n, style, seed, synonyms, exclude_sha)
        path = self.cache_path(key)
        stats = AugmentStats(cache_file=None if path is None else str(path))
        self.last_stats = stats
        suite_name = name or f"{_slug(concept)}-{style}-{self.source.kind}"

        if path is not None and path.exists():
            items = self._read_cache(path, fields)
            if items is not None:
                stats.cache_hit = True
                stats.accepted = len(items)
                return self._to_suite([i["prompt"] for i in items], terms, concept, seed, suite_name, category)

        accepted: list[str] = []
        seen: set[str] = set()
        calls_before = self.source.calls
        for round_ in range(self.max_rounds):
            missing = n - len(accepted)
            if missing <= 0:
                break
            stats.rounds += 1
            got = self.source.generate(concept, missing, style, _derive_seed(seed, round_), list(synonyms))
            stats.returned += len(got)
            for p in got:
                if len(accepted) >= n:
                    break
                p = " ".join(str(p).split())
                if not p:
                    continue
                k = normalize_prompt(p)
                if not find_concept_words(p, terms, allow_plural=self.allow_plural):
                    stats.dropped_no_concept += 1
                    if len(stats.dropped_examples) < 5:
                        stats.dropped_examples.append(p[:120])
                    continue
                if k in excluded:
                    stats.dropped_excluded += 1
                    continue
                if k in seen:
                    stats.dropped_duplicate += 1
                    continue
                seen.add(k)
                accepted.append(p)
        stats.source_calls = self.source.calls - calls_before
        stats.accepted = len(accepted)
        if len(accepted) < n:
            shown = "; ".join(repr(d) for d in stats.dropped_examples[:3]) or "none"
            raise AugmentationError(
                f"the {self.source.kind} source ({self.source.model_id}) gave only {len(accepted)} valid prompts of "
                f"{n} asked for concept {concept!r} (style {style!r}) after {stats.rounds} round(s): "
                f"{stats.dropped_no_concept} did not mention any of {terms}, {stats.dropped_duplicate} were "
                f"duplicates, {stats.dropped_excluded} were in the exclusion suite. Dropped lines, e.g.: {shown}. "
                "Fix: raise max_rounds (--max-rounds), list the words the model uses as synonyms (--synonyms), "
                "or use a stronger model"
            )
        if path is not None:
            payload = {"fields": fields, "stats": asdict(stats), "prompts": [{"prompt": p} for p in accepted]}
            atomic_write_text(path, json.dumps(payload, ensure_ascii=False, indent=1) + "\n")
        return self._to_suite(accepted, terms, concept, seed, suite_name, category)

    def _to_suite(
        self, prompts: Sequence[str], terms: Sequence[str], concept: str, seed: int, name: str, category: str | None
    ) -> PromptSuite:
        recs = []
        slug = _slug(concept)
        for i, p in enumerate(prompts):
            words = find_concept_words(p, terms, allow_plural=self.allow_plural)
            if not words:  # a hand-edited cache file: never let a prompt without the concept through
                raise AugmentationError(
                    f"cached prompt {p!r} does not mention any of {list(terms)}; delete the "
                    f"cache file {self.last_stats.cache_file if self.last_stats else ''}"
                )
            recs.append(
                PromptRecord(
                    prompt=p,
                    concept=concept,
                    category=category,
                    seed=int(seed) + i,
                    concept_words=tuple(words),
                    id=f"{slug}-{i:04d}",
                )
            )
        return PromptSuite(recs, name=name)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "concept"


def _known_style_names() -> set[str]:
    return set(STYLES) | set(_ALIASES)
