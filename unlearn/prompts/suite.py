"""The prompt suite: one record format for training and evaluation prompts, read and written as JSONL, JSON or CSV.

A *prompt suite* is a list of :class:`PromptRecord` rows stored as JSONL (one JSON object a line) or CSV
(a header row). Fields:

============== ======== ================================================================================
field          required meaning
============== ======== ================================================================================
prompt         yes      the text given to the video model (non-empty)
concept        no       the concept the prompt expresses ("nudity", "golf ball", an identity)
category       no       a label used for filtering and reporting ("sexual", "object", "face", ...)
seed           no       integer seed for the noise of this prompt's video (evaluation protocols fix it)
concept_words  no       the words/phrases *in the prompt* that express the concept, used to find the
                        concept tokens for the localization mask; JSON list, or in CSV one string with
                        the phrases separated by ``|`` ("nude|naked")
id             no       a stable identifier (e.g. the source file's case number)
============== ======== ================================================================================

Other columns/keys are ignored on load, so the public CSVs of I2P and ESD load as suites too (but their
seed column is called ``evaluation_seed``; use :func:`load_i2p` / :func:`load_esd_csv` for those).

This module holds the record and the suite, their errors, the text helpers (:func:`normalize_prompt`,
:func:`find_concept_words`) and the file-format helpers that the loaders of public suites share
(:mod:`unlearn.prompts.loaders`); the project's own suites are in :mod:`unlearn.prompts.builtin`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from unlearn.io import atomic_write_bytes, atomic_write_text

__all__ = [
    "PromptFileError",
    "PromptOverlapError",
    "PromptRecord",
    "PromptSuite",
    "find_concept_words",
    "normalize_prompt",
    "output_format",
    # file-format helpers shared by the loaders
    "optional_str",
    "suite_name",
    "format_from_suffix",
    "read_text",
    "iter_json_rows",
    "row_location",
    "read_csv_dicts",
    "seed_or_none",
    "split_categories",
]

_CSV_WORD_SEP = "|"
_CORE_FIELDS = ("prompt", "concept", "category", "seed", "concept_words", "id")


# --------------------------------------------------------------------------------------------------------------
# errors


class PromptFileError(ValueError):
    """A prompt file cannot be read as a suite. The message names the file, the line (when known) and a fix."""

    def __init__(
        self, path: str | os.PathLike | None, problem: str, *, line: int | None = None, fix: str | None = None
    ):
        self.path = None if path is None else str(path)
        self.line = line
        self.problem = problem
        self.fix = fix
        where = self.path or "<prompts>"
        if line is not None:
            where += f", line {line}"
        msg = f"{where}: {problem}"
        if fix:
            msg += f". Fix: {fix}"
        super().__init__(msg)


class PromptOverlapError(ValueError):
    """Two suites that must be disjoint (training vs evaluation) share prompts."""


# --------------------------------------------------------------------------------------------------------------
# text helpers


def normalize_prompt(text: str) -> str:
    """Case-folded, whitespace-collapsed form of a prompt, used for de-duplication and overlap checks."""
    return " ".join(str(text).split()).casefold()


def _phrase_pattern(phrase: str, allow_plural: bool = True) -> re.Pattern[str]:
    words = phrase.split()
    body = r"\s+".join(re.escape(w) for w in words)
    suffix = r"(?:'s|s|es)?" if allow_plural else ""
    return re.compile(r"(?<!\w)(" + body + r")" + suffix + r"(?!\w)", flags=re.IGNORECASE)


def find_concept_words(prompt: str, phrases: Iterable[str], *, allow_plural: bool = True) -> list[str]:
    """The phrases of ``phrases`` that occur in ``prompt`` as whole words, case-insensitive.

    Returned as they are spelled *in the prompt* (so they can be located again), ordered by first position,
    without duplicates. A phrase of several words matches across any whitespace; with ``allow_plural`` a
    trailing ``s``/``es``/``'s`` is accepted ("golf balls" matches "golf ball"; the returned word is then
    "golf balls" as spelled in the prompt, so a strict whole-word search finds it again). Returns ``[]``
    when none occurs.
    """
    spans: list[tuple[int, int, str]] = []
    for phrase in phrases:
        if not phrase or not phrase.strip():
            continue
        spans += [(m.start(), m.end(), m.group(0)) for m in _phrase_pattern(phrase, allow_plural).finditer(prompt)]
    # a phrase inside a longer match ("ball" inside "golf balls") is part of that match, not a new word
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    hits: list[tuple[int, str]] = []
    seen: set[str] = set()
    end = -1
    for start, stop, word in spans:
        if start < end:
            continue
        end = stop
        key = normalize_prompt(word)
        if key not in seen:
            seen.add(key)
            hits.append((start, word))
    return [w for _, w in hits]


# --------------------------------------------------------------------------------------------------------------
# record and suite


def optional_str(value: Any) -> str | None:
    """``str(value)`` stripped; None for None or an empty string."""
    if value is None:
        return None
    s = str(value).strip()
    return s or None


@dataclass(frozen=True)
class PromptRecord:
    """One prompt of a suite. See the module docstring for the meaning of each field.

    Raises ``ValueError`` for an empty prompt, a seed that is not an integer, or a concept word that does not
    occur in the prompt (as a whole word, case-insensitive).
    """

    prompt: str
    concept: str | None = None
    category: str | None = None
    seed: int | None = None
    concept_words: tuple[str, ...] = field(default_factory=tuple)
    id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise ValueError(f"empty prompt {self.prompt!r}: every record needs non-empty text")
        object.__setattr__(self, "prompt", self.prompt.strip())
        for name in ("concept", "category", "id"):
            object.__setattr__(self, name, optional_str(getattr(self, name)))
        if self.seed is not None:
            if isinstance(self.seed, bool) or not isinstance(self.seed, int):
                raise ValueError(f"seed {self.seed!r} is not an integer")
        words = self.concept_words
        if words is None:
            words = ()
        elif isinstance(words, str):
            words = tuple(w for w in words.split(_CSV_WORD_SEP))
        words = tuple(w.strip() for w in words if w is not None and str(w).strip())
        object.__setattr__(self, "concept_words", words)
        missing = [w for w in words if not find_concept_words(self.prompt, [w])]
        if missing:
            raise ValueError(
                f"concept word(s) {missing!r} do not occur in the prompt {self.prompt!r} (whole words, "
                "case-insensitive); concept_words must be spelled as in the prompt"
            )

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON-ready dict (all fields, ``None`` where unset, concept_words as a list)."""
        return {
            "prompt": self.prompt,
            "concept": self.concept,
            "category": self.category,
            "seed": self.seed,
            "concept_words": list(self.concept_words),
            "id": self.id,
        }

    def concept_spans(self) -> list[tuple[int, int]]:
        """Character spans ``(start, end)`` of every occurrence of the concept words in the prompt."""
        spans: list[tuple[int, int]] = []
        for w in self.concept_words:
            spans += [m.span() for m in _phrase_pattern(w).finditer(self.prompt)]
        return sorted(set(spans))

    def replace(self, **changes: Any) -> PromptRecord:
        d = self.to_dict()
        d.update(changes)
        return PromptRecord(**d)


class PromptSuite(Sequence[PromptRecord]):
    """An ordered list of :class:`PromptRecord` with a ``name``.

    ``sha256()`` hashes the canonical JSON of the records (not the name, not the file format), so the same
    prompts saved as JSONL and as CSV hash the same.
    """

    def __init__(self, records: Iterable[PromptRecord | Mapping[str, Any] | str] = (), name: str = "prompts"):
        recs: list[PromptRecord] = []
        for r in records:
            if isinstance(r, PromptRecord):
                recs.append(r)
            elif isinstance(r, str):
                recs.append(PromptRecord(prompt=r))
            elif isinstance(r, Mapping):
                recs.append(PromptRecord(**{k: v for k, v in r.items() if k in _CORE_FIELDS}))
            else:
                raise TypeError(f"cannot make a PromptRecord from {type(r).__name__}")
        self.records: list[PromptRecord] = recs
        self.name = name

    # -- sequence protocol ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    @overload
    def __getitem__(self, i: int) -> PromptRecord: ...
    @overload
    def __getitem__(self, i: slice) -> PromptSuite: ...
    def __getitem__(self, i):
        if isinstance(i, slice):
            return PromptSuite(self.records[i], name=self.name)
        return self.records[i]

    def __iter__(self) -> Iterator[PromptRecord]:
        return iter(self.records)

    def __add__(self, other: PromptSuite) -> PromptSuite:
        return PromptSuite(self.records + list(other), name=self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PromptSuite) and self.records == other.records

    def __repr__(self) -> str:
        return f"PromptSuite(name={self.name!r}, n={len(self)})"

    # -- views ------------------------------------------------------------------------------------------------
    @property
    def prompts(self) -> list[str]:
        return [r.prompt for r in self.records]

    @property
    def seeds(self) -> list[int | None]:
        return [r.seed for r in self.records]

    def concepts(self) -> list[str]:
        """Distinct concepts in order of first appearance."""
        return list(dict.fromkeys(r.concept for r in self.records if r.concept))

    def to_dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.records]

    def sha256(self) -> str:
        """Content hash of the records: sha256 of their canonical JSON (sorted keys, compact, UTF-8)."""
        blob = json.dumps(self.to_dicts(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    # -- transformations --------------------------------------------------------------------------------------
    def filter(
        self,
        predicate: Callable[[PromptRecord], bool] | None = None,
        *,
        concept: str | Iterable[str] | None = None,
        category: str | Iterable[str] | None = None,
        name: str | None = None,
    ) -> PromptSuite:
        """Records matching all given conditions (``concept``/``category``: one value or several, exact)."""

        def as_set(v):
            return None if v is None else ({v} if isinstance(v, str) else set(v))

        concepts, categories = as_set(concept), as_set(category)
        out = [
            r
            for r in self.records
            if (concepts is None or r.concept in concepts)
            and (categories is None or r.category in categories)
            and (predicate is None or predicate(r))
        ]
        return PromptSuite(out, name=name or self.name)

    def with_seeds(self, base_seed: int = 0) -> PromptSuite:
        """Fill missing seeds with ``base_seed + index``; records that have a seed keep it."""
        return PromptSuite(
            [r if r.seed is not None else r.replace(seed=base_seed + i) for i, r in enumerate(self.records)],
            name=self.name,
        )

    def deduplicate(self) -> PromptSuite:
        """Drop records whose normalized prompt occurred earlier."""
        seen: set[str] = set()
        out = []
        for r in self.records:
            k = normalize_prompt(r.prompt)
            if k not in seen:
                seen.add(k)
                out.append(r)
        return PromptSuite(out, name=self.name)

    def overlap(self, other: PromptSuite | Iterable[str]) -> list[str]:
        """Prompts of this suite that also occur in ``other`` (case/whitespace-normalized comparison)."""
        others = {normalize_prompt(p) for p in _prompt_texts(other)}
        return [r.prompt for r in self.records if normalize_prompt(r.prompt) in others]

    def disjoint_from(self, other: PromptSuite | Iterable[str]) -> bool:
        """True when no prompt of this suite occurs in ``other`` (normalized comparison)."""
        return not self.overlap(other)

    def assert_disjoint_from(self, other: PromptSuite | Iterable[str], what: str = "the evaluation suite") -> None:
        """Raise :class:`PromptOverlapError` listing shared prompts, e.g. training prompts that leak into eval."""
        shared = self.overlap(other)
        if shared:
            shown = "; ".join(repr(s[:80]) for s in shared[:3])
            raise PromptOverlapError(
                f"{len(shared)} prompt(s) of suite {self.name!r} also occur in {what}, e.g. {shown}. Fix: drop "
                "them with suite.exclude(other) (CLI: --exclude) so training and evaluation prompts stay disjoint"
            )

    def exclude(self, other: PromptSuite | Iterable[str]) -> PromptSuite:
        """This suite without the prompts that occur in ``other``."""
        others = {normalize_prompt(p) for p in _prompt_texts(other)}
        return PromptSuite([r for r in self.records if normalize_prompt(r.prompt) not in others], name=self.name)

    @classmethod
    def from_prompts(
        cls,
        prompts: Iterable[str],
        *,
        name: str = "prompts",
        concept: str | None = None,
        category: str | None = None,
        base_seed: int | None = None,
        concept_words: Sequence[str] | None = None,
    ) -> PromptSuite:
        """Wrap plain strings; ``concept_words`` (candidate phrases) are matched per prompt."""
        recs = []
        for i, p in enumerate(prompts):
            words = find_concept_words(p, concept_words) if concept_words else ()
            recs.append(
                PromptRecord(
                    prompt=p,
                    concept=concept,
                    category=category,
                    seed=None if base_seed is None else base_seed + i,
                    concept_words=words,
                )
            )
        return cls(recs, name=name)

    # -- files ------------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, format: str | None = None) -> Path:
        """Write the suite atomically (temp file + ``os.replace``) as JSONL (``.jsonl``), a JSON list (``.json``)
        or CSV (``.csv``); a further ``.gz`` suffix gzips it. Returns the path. CSV cannot hold a concept word
        containing ``|``. Any other suffix (without ``format``) is a :class:`PromptFileError`: the file would
        not load back.
        """
        path = Path(path)
        fmt = (format or output_format(path)).lower()
        if fmt == "jsonl":
            text = "".join(json.dumps(d, ensure_ascii=False, sort_keys=False) + "\n" for d in self.to_dicts())
        elif fmt == "json":
            text = json.dumps(self.to_dicts(), ensure_ascii=False, indent=1) + "\n"
        elif fmt == "csv":
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(_CORE_FIELDS)
            for r in self.records:
                bad = [x for x in r.concept_words if _CSV_WORD_SEP in x]
                if bad:
                    raise ValueError(
                        f"concept word {bad[0]!r} contains '|', which CSV uses as separator; save as .jsonl"
                    )
                w.writerow(
                    [
                        r.prompt,
                        r.concept or "",
                        r.category or "",
                        "" if r.seed is None else r.seed,
                        _CSV_WORD_SEP.join(r.concept_words),
                        r.id or "",
                    ]
                )
            text = buf.getvalue()
        else:
            raise ValueError(f"unknown prompt file format {fmt!r}; use jsonl, json or csv")
        if path.suffix.lower() == ".gz":
            atomic_write_bytes(path, gzip.compress(text.encode("utf-8"), mtime=0))
        else:
            atomic_write_text(path, text)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, name: str | None = None, format: str | None = None) -> PromptSuite:
        """Read and validate a suite file (``.jsonl``, ``.json`` list, ``.csv``, ``.txt`` one prompt a line; ``.gz`` too).

        Raises :class:`PromptFileError` (a ``ValueError``) for a missing/unreadable file, malformed JSON/CSV,
        no ``prompt`` column, an empty prompt, a non-integer seed, a concept word absent from its prompt, or
        an empty suite; the message names the file, the line and the fix.
        """
        path = Path(path)
        fmt = (format or format_from_suffix(path)).lower()
        text = read_text(path)
        if fmt in ("jsonl", "json"):
            rows = list(iter_json_rows(path, text, fmt))
        elif fmt == "csv":
            rows = list(_iter_csv_rows(path, text))
        elif fmt == "txt":
            rows = [(i, {"prompt": line}) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
        else:
            raise PromptFileError(path, f"unknown suite format {fmt!r}", fix="name the file .jsonl, .json or .csv")
        records = [_record_from_row(path, line, row) for line, row in rows]
        if not records:
            raise PromptFileError(path, "the file holds no prompts", fix="add at least one row with a 'prompt'")
        return cls(records, name=name or suite_name(path))


# --------------------------------------------------------------------------------------------------------------
# file-format helpers (also used by the loaders of public suites)


def _prompt_texts(other: PromptSuite | Iterable[str]) -> list[str]:
    if isinstance(other, PromptSuite):
        return other.prompts
    return [o.prompt if isinstance(o, PromptRecord) else str(o) for o in other]


def suite_name(path: Path) -> str:
    """The default suite name of a file: its name without ``.gz`` and the format suffix."""
    name = path.name
    for suf in (".gz",):
        if name.endswith(suf):
            name = name[: -len(suf)]
    return name.rsplit(".", 1)[0] if "." in name else name


def output_format(path: str | os.PathLike) -> str:
    """The format :meth:`PromptSuite.save` writes to ``path`` (``jsonl``, ``json`` or ``csv``, from its suffix);
    :class:`PromptFileError` for any other suffix, before anything is generated or written."""
    path = Path(path)
    try:
        fmt = format_from_suffix(path)
    except PromptFileError:
        fmt = ""
    if fmt not in ("jsonl", "json", "csv"):
        raise PromptFileError(
            path,
            f"cannot write a prompt suite as {''.join(path.suffixes) or 'a file without suffix'}",
            fix="use the suffix .jsonl, .json or .csv (optionally + .gz)",
        )
    return fmt


def format_from_suffix(path: Path, default: str | None = None) -> str:
    """``jsonl``, ``json``, ``csv`` or ``txt`` from the file name (a ``.gz`` suffix is looked through).

    Raises :class:`PromptFileError` when the suffix says nothing and ``default`` is None.
    """
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    ext = suffixes[-1].lstrip(".") if suffixes else ""
    if ext in ("jsonl", "ndjson"):
        return "jsonl"
    if ext in ("json", "csv", "txt"):
        return ext
    if default:
        return default
    raise PromptFileError(
        path,
        f"cannot tell the format from the file name {path.name!r}",
        fix="use the suffix .jsonl, .json or .csv (or pass format=)",
    )


#: the largest prompt file read (bytes; a .gz file: after decompression): 100 000 prompts are ~30 MiB
MAX_PROMPT_FILE_BYTES = 256 << 20


def read_text(path: Path, errors: str = "strict") -> str:
    """The file's text (UTF-8, a BOM dropped, ``.gz`` decompressed); :class:`PromptFileError` with a fix when
    it is missing, a folder, unreadable or not UTF-8 (``errors="replace"`` keeps undecodable bytes as U+FFFD).
    """
    if not path.exists():
        raise PromptFileError(
            path,
            "file not found",
            fix="check the path (third-party suites are not shipped: download your own copy, see docs/prompts.md)",
        )
    if path.is_dir():
        raise PromptFileError(path, "is a folder, not a prompt file", fix="give the path of a .jsonl/.csv file")
    if not path.is_file():  # a device, a pipe, a socket (or a link to one): it may never end
        raise PromptFileError(
            path, "is not a regular file (a device or a pipe)", fix="save the prompts to a .jsonl/.csv file"
        )
    try:
        if path.stat().st_size > MAX_PROMPT_FILE_BYTES:
            raise PromptFileError(
                path,
                f"is {path.stat().st_size / 2**20:.0f} MiB; a prompt file is read whole (limit "
                f"{MAX_PROMPT_FILE_BYTES >> 20} MiB)",
                fix="split the suite or keep the prompts you train/evaluate on",
            )
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read(MAX_PROMPT_FILE_BYTES + 1)
            if len(raw) > MAX_PROMPT_FILE_BYTES:
                raise PromptFileError(
                    path,
                    f"decompresses to more than {MAX_PROMPT_FILE_BYTES >> 20} MiB",
                    fix="split the suite or keep the prompts you train/evaluate on",
                )
        else:
            raw = path.read_bytes()
        return raw.decode("utf-8-sig", errors=errors)
    except (OSError, EOFError) as e:
        raise PromptFileError(path, f"cannot read the file ({e})", fix="check that it is a complete, readable file")
    except UnicodeDecodeError as e:
        raise PromptFileError(path, f"not UTF-8 text ({e.reason} at byte {e.start})", fix="re-save the file as UTF-8")


def iter_json_rows(path: Path, text: str, fmt: str) -> Iterator[tuple[int | None, dict]]:
    """``(where, object)`` for every row of a JSON list (where = -item number) or of a JSONL file (where = line
    number); see :func:`row_location`. Malformed JSON raises :class:`PromptFileError` naming the line.
    """
    stripped = text.lstrip()
    if fmt == "json" or (stripped.startswith("[") and fmt != "jsonl"):
        try:
            data = json.loads(text)
        except RecursionError:
            raise PromptFileError(
                path, "JSON nested too deeply to read", fix="write a JSON list of flat objects"
            ) from None
        except json.JSONDecodeError as e:
            raise PromptFileError(
                path,
                f"malformed JSON ({e.msg})",
                line=e.lineno,
                fix="write a JSON list of objects, or one object per line as .jsonl",
            )
        if isinstance(data, Mapping):
            for key in ("records", "prompts", "data"):
                if isinstance(data.get(key), list):
                    data = data[key]
                    break
        if not isinstance(data, list):
            raise PromptFileError(path, "expected a JSON list of objects", fix='write [{"prompt": ...}, ...]')
        for i, obj in enumerate(data):
            yield -(i + 1), obj  # negative = 1-based item index of a JSON list (reported as "item N")
        return
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except RecursionError:
            raise PromptFileError(
                path, "JSON nested too deeply to read", line=lineno, fix='one flat object a line: {"prompt": "..."}'
            ) from None
        except json.JSONDecodeError as e:
            raise PromptFileError(
                path,
                f"malformed JSON ({e.msg}, column {e.colno})",
                line=lineno,
                fix='each line must be one JSON object like {"prompt": "...", "seed": 0}',
            )
        yield lineno, obj


def _iter_csv_rows(path: Path, text: str) -> Iterator[tuple[int, dict]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise PromptFileError(path, "empty file", fix="write a header row with a 'prompt' column and rows")
        cols = [h.strip().lower() for h in header]
        if "prompt" not in cols:
            raise PromptFileError(
                path,
                f"no 'prompt' column in the header {header!r}",
                line=1,
                fix="name the column holding the text 'prompt' (for public suites use their "
                "loader, e.g. load_ring_a_bell(path, prompt_column=...))",
            )
        start = reader.line_num
        for row in reader:
            line = start + 1
            start = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(row) > len(cols):
                raise PromptFileError(
                    path,
                    f"{len(row)} fields but the header has {len(cols)}",
                    line=line,
                    fix='quote fields that contain commas ("...")',
                )
            yield line, {c: v for c, v in zip(cols, row)}
    except csv.Error as e:
        raise PromptFileError(
            path, f"malformed CSV ({e})", line=reader.line_num, fix="check quoting on that line"
        ) from None


def row_location(line: int | None) -> dict:
    """Where a row is: ``{"line": n, "item": None}`` in a text file, ``{"line": None, "item": n}`` for the n-th
    item of a JSON list (:func:`iter_json_rows` yields those as negative numbers)."""
    if line is not None and line < 0:
        return {"line": None, "item": -line}
    return {"line": line, "item": None}


def _record_from_row(path: Path, line: int | None, row: Any) -> PromptRecord:
    loc = row_location(line)

    def err(problem: str, fix: str) -> PromptFileError:
        if loc["item"] is not None:
            problem = f"item {loc['item']}: {problem}"
        return PromptFileError(path, problem, line=loc["line"], fix=fix)

    if not isinstance(row, Mapping):
        raise err(f"expected an object, got {type(row).__name__}", "each row must be an object with a 'prompt'")
    if "prompt" not in row:
        raise err(f"no 'prompt' field (fields: {sorted(row)})", "add the prompt text under the key 'prompt'")
    prompt = row["prompt"]
    if not isinstance(prompt, str) or not prompt.strip():
        raise err("empty prompt", "give every row a non-empty 'prompt' (or delete the row)")
    seed = row.get("seed")
    if isinstance(seed, str):
        s = seed.strip()
        if s == "":
            seed = None
        elif re.fullmatch(r"[+-]?\d+", s):
            seed = int(s)
        else:
            raise err(f"seed {seed!r} is not an integer", "write seeds as whole numbers, e.g. 42, or leave empty")
    elif seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise err(f"seed {seed!r} is not an integer", "write seeds as whole numbers, e.g. 42, or leave empty")
    words = row.get("concept_words")
    if isinstance(words, str):
        words = [w for w in words.split(_CSV_WORD_SEP)]
    elif words is not None and not isinstance(words, (list, tuple)):
        raise err(
            f"concept_words {words!r} is neither a list nor a '|'-separated string",
            "write concept_words as a JSON list of phrases (CSV: 'nude|naked')",
        )
    try:
        return PromptRecord(
            prompt=prompt,
            concept=row.get("concept"),
            category=row.get("category"),
            seed=seed,
            concept_words=tuple(str(w) for w in (words or ()) if w is not None),
            id=row.get("id"),
        )
    except ValueError as e:
        raise err(str(e), "spell each concept word exactly as it appears in the prompt, or drop it") from None


def read_csv_dicts(path: Path, errors: str = "strict") -> tuple[list[str], list[tuple[int, dict]]]:
    """The header (stripped names) and ``(line, {column: cell})`` for every non-blank row of a CSV file."""
    text = read_text(path, errors=errors)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise PromptFileError(path, "empty file", fix="download the file again")
        rows = []
        start = reader.line_num
        for row in reader:
            line = start + 1
            start = reader.line_num
            if any(c.strip() for c in row):
                rows.append((line, dict(zip([h.strip() for h in header], row))))
    except csv.Error as e:
        raise PromptFileError(path, f"malformed CSV ({e})", line=reader.line_num, fix="check quoting") from None
    return [h.strip() for h in header], rows


def seed_or_none(path: Path, line: int, value: Any, column: str) -> int | None:
    """A seed cell as an int (``123.0`` as pandas writes it is 123); None for an empty cell or NaN."""
    if value is None:
        return None
    s = str(value).strip()
    if not s or s.lower() == "nan":
        return None
    if re.fullmatch(r"[+-]?\d+(\.0+)?", s):  # pandas writes ints of a column with NaN as 123.0
        return int(s.split(".")[0])
    raise PromptFileError(
        path,
        f"column {column!r} holds {value!r}, not an integer seed",
        line=line,
        fix="fix the value, or load without seeds (seed_column=None)",
    )


def split_categories(value: str | None) -> list[str]:
    """A comma-separated category cell as a list of stripped names ("sexual, hate" -> ["sexual", "hate"])."""
    if not value:
        return []
    return [c.strip() for c in str(value).split(",") if c.strip()]
