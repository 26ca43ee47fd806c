"""Prompt suites: one record format for training and evaluation prompts, and loaders for public suites.

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
:meth:`PromptSuite.load` validates everything and raises one :class:`PromptFileError` naming the file,
the line and the fix.

Third-party suites (Ring-A-Bell, SafeSora, T2VSafetyBench, I2P, the I2P nudity subset, ESD's ImageNet
prompts) are **not shipped** with this project: download them from their authors and point the loaders at
your copy. Their licences differ (SafeSora: CC BY-NC 4.0, non-commercial; T2VSafetyBench: no licence file;
I2P and UnlearnDiffAtk's nudity subset: MIT); see ``docs/prompts.md``.

The project's own prompt files (``unlearn/prompts/builtin/``, written by this project, CC0) are reachable through
:func:`builtin_suite`: ``"imagenet10"`` (10 ImageNet classes x 20 video prompts with seeds),
``"faces"`` (5 public figures x 30 prompts) and ``"faces_templates"`` (30 templates with ``{identity}``).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, overload

from unlearn.io import atomic_write_bytes, atomic_write_text

__all__ = [
    "PromptFileError",
    "PromptOverlapError",
    "PromptRecord",
    "PromptSuite",
    "find_concept_words",
    "normalize_prompt",
    "output_format",
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

#: T2VSafetyBench's 14 aspects; file ``N.txt`` holds the prompts of aspect N (README of the benchmark)
T2VSAFETYBENCH_CATEGORIES: dict[int, str] = {
    1: "Pornography",
    2: "Borderline Pornography",
    3: "Violence",
    4: "Gore",
    5: "Disturbing Content",
    6: "Public Figures",
    7: "Discrimination",
    8: "Political Sensitivity",
    9: "Copyright and Trademark",
    10: "Illegal Activities",
    11: "Misinformation",
    12: "Sequential Action Risk",
    13: "Dynamic Variation Risk",
    14: "Coherent Contextual Risk",
}

#: words that select a SafeSora harm label; ``category="sexual"`` keeps prompts whose true labels contain
#: any of these words (SafeSora's S1 is "Adult, Explicit Sexual Content")
SAFESORA_CATEGORY_ALIASES: dict[str, tuple[str, ...]] = {
    "sexual": ("sexual", "adult", "explicit", "nudity", "porn", "s1"),
    "violence": ("violence", "violent", "gory", "injury", "s8"),
}

_CSV_WORD_SEP = "|"
_CORE_FIELDS = ("prompt", "concept", "category", "seed", "concept_words", "id")


# --------------------------------------------------------------------------------------------------------------
# errors


class PromptFileError(ValueError):
    """A prompt file cannot be read as a suite. The message names the file, the line (when known) and a fix."""

    def __init__(self, path: str | os.PathLike | None, problem: str, *, line: int | None = None,
                 fix: str | None = None):
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


def _opt_str(value: Any) -> str | None:
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
            object.__setattr__(self, name, _opt_str(getattr(self, name)))
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

    def replace(self, **changes: Any) -> "PromptRecord":
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
    def __getitem__(self, i: slice) -> "PromptSuite": ...
    def __getitem__(self, i):
        if isinstance(i, slice):
            return PromptSuite(self.records[i], name=self.name)
        return self.records[i]

    def __iter__(self) -> Iterator[PromptRecord]:
        return iter(self.records)

    def __add__(self, other: "PromptSuite") -> "PromptSuite":
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
    def filter(self, predicate: Callable[[PromptRecord], bool] | None = None, *,
               concept: str | Iterable[str] | None = None, category: str | Iterable[str] | None = None,
               name: str | None = None) -> "PromptSuite":
        """Records matching all given conditions (``concept``/``category``: one value or several, exact)."""

        def as_set(v):
            return None if v is None else ({v} if isinstance(v, str) else set(v))

        concepts, categories = as_set(concept), as_set(category)
        out = [
            r for r in self.records
            if (concepts is None or r.concept in concepts)
            and (categories is None or r.category in categories)
            and (predicate is None or predicate(r))
        ]
        return PromptSuite(out, name=name or self.name)

    def with_seeds(self, base_seed: int = 0) -> "PromptSuite":
        """Fill missing seeds with ``base_seed + index``; records that have a seed keep it."""
        return PromptSuite(
            [r if r.seed is not None else r.replace(seed=base_seed + i) for i, r in enumerate(self.records)],
            name=self.name,
        )

    def deduplicate(self) -> "PromptSuite":
        """Drop records whose normalized prompt occurred earlier."""
        seen: set[str] = set()
        out = []
        for r in self.records:
            k = normalize_prompt(r.prompt)
            if k not in seen:
                seen.add(k)
                out.append(r)
        return PromptSuite(out, name=self.name)

    def overlap(self, other: "PromptSuite | Iterable[str]") -> list[str]:
        """Prompts of this suite that also occur in ``other`` (case/whitespace-normalized comparison)."""
        others = {normalize_prompt(p) for p in _prompt_texts(other)}
        return [r.prompt for r in self.records if normalize_prompt(r.prompt) in others]

    def disjoint_from(self, other: "PromptSuite | Iterable[str]") -> bool:
        """True when no prompt of this suite occurs in ``other`` (normalized comparison)."""
        return not self.overlap(other)

    def assert_disjoint_from(self, other: "PromptSuite | Iterable[str]", what: str = "the evaluation suite") -> None:
        """Raise :class:`PromptOverlapError` listing shared prompts, e.g. training prompts that leak into eval."""
        shared = self.overlap(other)
        if shared:
            shown = "; ".join(repr(s[:80]) for s in shared[:3])
            raise PromptOverlapError(
                f"{len(shared)} prompt(s) of suite {self.name!r} also occur in {what}, e.g. {shown}. Fix: drop "
                "them with suite.exclude(other) (CLI: --exclude) so training and evaluation prompts stay disjoint"
            )

    def exclude(self, other: "PromptSuite | Iterable[str]") -> "PromptSuite":
        """This suite without the prompts that occur in ``other``."""
        others = {normalize_prompt(p) for p in _prompt_texts(other)}
        return PromptSuite([r for r in self.records if normalize_prompt(r.prompt) not in others], name=self.name)

    @classmethod
    def from_prompts(cls, prompts: Iterable[str], *, name: str = "prompts", concept: str | None = None,
                     category: str | None = None, base_seed: int | None = None,
                     concept_words: Sequence[str] | None = None) -> "PromptSuite":
        """Wrap plain strings; ``concept_words`` (candidate phrases) are matched per prompt."""
        recs = []
        for i, p in enumerate(prompts):
            words = find_concept_words(p, concept_words) if concept_words else ()
            recs.append(PromptRecord(prompt=p, concept=concept, category=category,
                                     seed=None if base_seed is None else base_seed + i, concept_words=words))
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
                    raise ValueError(f"concept word {bad[0]!r} contains '|', which CSV uses as separator; save as .jsonl")
                w.writerow([r.prompt, r.concept or "", r.category or "", "" if r.seed is None else r.seed,
                            _CSV_WORD_SEP.join(r.concept_words), r.id or ""])
            text = buf.getvalue()
        else:
            raise ValueError(f"unknown prompt file format {fmt!r}; use jsonl, json or csv")
        if path.suffix.lower() == ".gz":
            atomic_write_bytes(path, gzip.compress(text.encode("utf-8"), mtime=0))
        else:
            atomic_write_text(path, text)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, name: str | None = None, format: str | None = None) -> "PromptSuite":
        """Read and validate a suite file (``.jsonl``, ``.json`` list, ``.csv``, ``.txt`` one prompt a line; ``.gz`` too).

        Raises :class:`PromptFileError` (a ``ValueError``) for a missing/unreadable file, malformed JSON/CSV,
        no ``prompt`` column, an empty prompt, a non-integer seed, a concept word absent from its prompt, or
        an empty suite; the message names the file, the line and the fix.
        """
        path = Path(path)
        fmt = (format or _format_from_suffix(path)).lower()
        text = _read_text(path)
        if fmt in ("jsonl", "json"):
            rows = list(_iter_json_rows(path, text, fmt))
        elif fmt == "csv":
            rows = list(_iter_csv_rows(path, text))
        elif fmt == "txt":
            rows = [(i, {"prompt": line}) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
        else:
            raise PromptFileError(path, f"unknown suite format {fmt!r}", fix="name the file .jsonl, .json or .csv")
        records = [_record_from_row(path, line, row) for line, row in rows]
        if not records:
            raise PromptFileError(path, "the file holds no prompts", fix="add at least one row with a 'prompt'")
        return cls(records, name=name or _stem(path))


def _prompt_texts(other: "PromptSuite | Iterable[str]") -> list[str]:
    if isinstance(other, PromptSuite):
        return other.prompts
    return [o.prompt if isinstance(o, PromptRecord) else str(o) for o in other]


def _stem(path: Path) -> str:
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
        fmt = _format_from_suffix(path)
    except PromptFileError:
        fmt = ""
    if fmt not in ("jsonl", "json", "csv"):
        raise PromptFileError(path, f"cannot write a prompt suite as {''.join(path.suffixes) or 'a file without suffix'}",
                              fix="use the suffix .jsonl, .json or .csv (optionally + .gz)")
    return fmt


def _format_from_suffix(path: Path, default: str | None = None) -> str:
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
    raise PromptFileError(path, f"cannot tell the format from the file name {path.name!r}",
                          fix="use the suffix .jsonl, .json or .csv (or pass format=)")


def _read_text(path: Path, errors: str = "strict") -> str:
    if not path.exists():
        raise PromptFileError(path, "file not found", fix="check the path (third-party suites are not shipped: "
                              "download your own copy, see docs/prompts.md)")
    if path.is_dir():
        raise PromptFileError(path, "is a folder, not a prompt file", fix="give the path of a .jsonl/.csv file")
    try:
        raw = path.read_bytes()
        if path.suffix.lower() == ".gz":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8-sig", errors=errors)
    except (OSError, EOFError) as e:
        raise PromptFileError(path, f"cannot read the file ({e})", fix="check that it is a complete, readable file")
    except UnicodeDecodeError as e:
        raise PromptFileError(path, f"not UTF-8 text ({e.reason} at byte {e.start})",
                              fix="re-save the file as UTF-8")


def _iter_json_rows(path: Path, text: str, fmt: str) -> Iterator[tuple[int | None, dict]]:
    stripped = text.lstrip()
    if fmt == "json" or (stripped.startswith("[") and fmt != "jsonl"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise PromptFileError(path, f"malformed JSON ({e.msg})", line=e.lineno,
                                  fix="write a JSON list of objects, or one object per line as .jsonl")
        if isinstance(data, Mapping):
            for key in ("records", "prompts", "data"):
                if isinstance(data.get(key), list):
                    data = data[key]
                    break
        if not isinstance(data, list):
            raise PromptFileError(path, "expected a JSON list of objects", fix="write [{\"prompt\": ...}, ...]")
        for i, obj in enumerate(data):
            yield -(i + 1), obj  # negative = 1-based item index of a JSON list (reported as "item N")
        return
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise PromptFileError(path, f"malformed JSON ({e.msg}, column {e.colno})", line=lineno,
                                  fix="each line must be one JSON object like {\"prompt\": \"...\", \"seed\": 0}")
        yield lineno, obj


def _iter_csv_rows(path: Path, text: str) -> Iterator[tuple[int, dict]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise PromptFileError(path, "empty file", fix="write a header row with a 'prompt' column and rows")
        cols = [h.strip().lower() for h in header]
        if "prompt" not in cols:
            raise PromptFileError(path, f"no 'prompt' column in the header {header!r}", line=1,
                                  fix="name the column holding the text 'prompt' (for public suites use their "
                                      "loader, e.g. load_ring_a_bell(path, prompt_column=...))")
        start = reader.line_num
        for row in reader:
            line = start + 1
            start = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(row) > len(cols):
                raise PromptFileError(path, f"{len(row)} fields but the header has {len(cols)}", line=line,
                                      fix="quote fields that contain commas (\"...\")")
            yield line, {c: v for c, v in zip(cols, row)}
    except csv.Error as e:
        raise PromptFileError(path, f"malformed CSV ({e})", line=reader.line_num,
                              fix="check quoting on that line") from None


def _where(path: Path, line: int | None) -> dict:
    if line is not None and line < 0:
        return {"line": None, "item": -line}
    return {"line": line, "item": None}


def _record_from_row(path: Path, line: int | None, row: Any) -> PromptRecord:
    loc = _where(path, line)

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
        raise err(f"concept_words {words!r} is neither a list nor a '|'-separated string",
                  "write concept_words as a JSON list of phrases (CSV: 'nude|naked')")
    try:
        return PromptRecord(
            prompt=prompt, concept=row.get("concept"), category=row.get("category"), seed=seed,
            concept_words=tuple(str(w) for w in (words or ()) if w is not None), id=row.get("id"),
        )
    except ValueError as e:
        raise err(str(e), "spell each concept word exactly as it appears in the prompt, or drop it") from None


# --------------------------------------------------------------------------------------------------------------
# loaders for public suites (the user's own copies)


def _read_csv_dicts(path: Path, errors: str = "strict") -> tuple[list[str], list[tuple[int, dict]]]:
    text = _read_text(path, errors=errors)
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


def _int_or_none(path: Path, line: int, value: Any, column: str) -> int | None:
    if value is None:
        return None
    s = str(value).strip()
    if not s or s.lower() == "nan":
        return None
    if re.fullmatch(r"[+-]?\d+(\.0+)?", s):  # pandas writes ints of a column with NaN as 123.0
        return int(s.split(".")[0])
    raise PromptFileError(path, f"column {column!r} holds {value!r}, not an integer seed", line=line,
                          fix="fix the value, or load without seeds (seed_column=None)")


def _split_categories(value: str | None) -> list[str]:
    if not value:
        return []
    return [c.strip() for c in str(value).split(",") if c.strip()]


def load_i2p(path: str | os.PathLike, categories: str | Iterable[str] | None = None, *,
             hard_only: bool = False, concept: str | None = None, name: str | None = None) -> PromptSuite:
    """I2P (Inappropriate Image Prompts; Schramowski et al., CVPR 2023) from **your copy** of ``i2p.csv``.

    Not shipped with this project (MIT, but it is the user's download). Expected columns: ``prompt``,
    ``categories`` (comma-separated, e.g. ``"sexual, harassment"``), ``evaluation_seed``, optionally ``hard``
    and ``case_number`` (kept as the record id). ``categories`` keeps rows having any of the given categories
    ("sexual" for the nudity protocol). The record's category is the row's category string.
    """
    path = Path(path)
    header, rows = _read_csv_dicts(path)
    if "prompt" not in header:
        raise PromptFileError(path, f"no 'prompt' column in the header {header!r}", line=1,
                              fix="give the I2P CSV (columns prompt, categories, evaluation_seed, ...)")
    wanted = None if categories is None else ({categories} if isinstance(categories, str) else set(categories))
    if wanted is not None and "categories" not in header:
        raise PromptFileError(path, "no 'categories' column to filter on", line=1,
                              fix="load without categories=, or give the full I2P CSV")
    recs = []
    for line, row in rows:
        cats = _split_categories(row.get("categories"))
        if wanted is not None and not (set(cats) & wanted):
            continue
        if hard_only and str(row.get("hard", "")).strip() not in ("1", "1.0", "True", "true"):
            continue
        prompt = (row.get("prompt") or "").strip()
        if not prompt:
            continue  # I2P has a handful of blank prompts; they cannot be generated
        recs.append(PromptRecord(
            prompt=prompt, concept=concept, category=", ".join(cats) or None,
            seed=_int_or_none(path, line, row.get("evaluation_seed"), "evaluation_seed"),
            id=_opt_str(row.get("case_number")),
        ))
    if not recs:
        raise PromptFileError(path, f"no prompts left after filtering (categories={sorted(wanted or [])})",
                              fix="check the category names (I2P: sexual, violence, self-harm, shocking, hate, "
                                  "harassment, illegal activity)")
    return PromptSuite(recs, name=name or (_stem(path) + ("-" + "-".join(sorted(wanted)) if wanted else "")))


def load_nudity_subset(path: str | os.PathLike, *, name: str = "nudity") -> PromptSuite:
    """The I2P nudity subset used by UnlearnDiffAtk (``nudity.csv``, same columns as I2P), from **your copy**.

    Not shipped (MIT, UnlearnDiffAtk). Every record gets ``concept="nudity"``.
    """
    return load_i2p(path, concept="nudity", name=name)


_RAB_PROMPT_NAMES = ("prompt", "prompts", "sensitive prompt", "sensitive_prompt", "text", "caption", "adv_prompt",
                     "adversarial prompt", "inv_prompt")
_RAB_SEED_NAMES = ("evaluation_seed", "seed", "seeds")
_INDEX_NAMES = ("", "unnamed: 0", "index", "idx")


def load_ring_a_bell(path: str | os.PathLike, *, prompt_column: str | int | None = None,
                     seed_column: str | None = "auto", concept: str | None = "nudity",
                     category: str | None = None, name: str | None = None) -> PromptSuite:
    """Ring-A-Bell adversarial prompts (Tsai et al., ICLR 2024) from **your download** of their CSV.

    Not shipped: download the CSVs from the authors' repository (chiayi-hsu/Ring-A-Bell, ``data/InvPrompt``)
    and mind its licence. The public files have a header such as ``prompt,case_number,evaluation_seed`` (or
    a pandas index column ``,prompt``); some copies have no header at all. This loader:

    - uses ``prompt_column`` when given (a header name, or a 0-based column index for header-less files);
    - else finds a header column named ``prompt`` (or ``prompts``, ``sensitive prompt``, ``text``, ...);
    - else, when the first row is no header and the file has one column (or one besides an index), takes
      that column as prompts (no header row);
    - else raises :class:`PromptFileError` showing the first row and asking for ``prompt_column``.

    Seeds come from ``evaluation_seed``/``seed`` when present (``seed_column="auto"``), a named column, or
    none (``seed_column=None``; assign later with :meth:`PromptSuite.with_seeds`). The prompts contain
    unusual tokens and symbols on purpose; they are kept byte for byte (only surrounding whitespace is cut).
    """
    path = Path(path)
    text = _read_text(path, errors="replace")
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as e:
        raise PromptFileError(path, f"malformed CSV ({e})", fix="check quoting") from None
    rows = [(i + 1, r) for i, r in enumerate(rows) if any(c.strip() for c in r)]
    if not rows:
        raise PromptFileError(path, "empty file", fix="download the Ring-A-Bell CSV again")
    first = [c.strip().lower() for c in rows[0][1]]
    has_header, col, seed_col = False, None, None
    if isinstance(prompt_column, str):
        if prompt_column.strip().lower() not in first:
            raise PromptFileError(path, f"no column {prompt_column!r} in the header {rows[0][1]!r}", line=1,
                                  fix="pass one of the header names as prompt_column")
        has_header, col = True, first.index(prompt_column.strip().lower())
    elif isinstance(prompt_column, int):
        col = prompt_column
        has_header = any(c in _RAB_PROMPT_NAMES for c in first)
    else:
        hits = [i for i, c in enumerate(first) if c in _RAB_PROMPT_NAMES]
        if hits:
            has_header, col = True, hits[0]
        else:
            non_index = [i for i, c in enumerate(rows[0][1]) if not _looks_like_index(c)]
            if len(rows[0][1]) == 1 or len(non_index) == 1:
                col = 0 if len(rows[0][1]) == 1 else non_index[0]
            else:
                raise PromptFileError(
                    path, f"cannot tell which column holds the prompts; first row: {rows[0][1][:4]!r}", line=1,
                    fix="pass prompt_column='<header name>' or prompt_column=<0-based index>")
    if has_header:
        if seed_column == "auto":
            seed_col = next((first.index(s) for s in _RAB_SEED_NAMES if s in first), None)
        elif seed_column is not None:
            if seed_column.lower() not in first:
                raise PromptFileError(path, f"no seed column {seed_column!r} in {rows[0][1]!r}", line=1,
                                      fix="pass seed_column=None to load without seeds")
            seed_col = first.index(seed_column.lower())
        ids_col = first.index("case_number") if "case_number" in first else None
        body = rows[1:]
    else:
        ids_col = None
        body = rows
    recs = []
    for line, row in body:
        if col >= len(row):
            raise PromptFileError(path, f"row has {len(row)} column(s), no column {col}", line=line,
                                  fix="check the prompt_column index")
        prompt = row[col].strip()
        if not prompt:
            continue
        seed = _int_or_none(path, line, row[seed_col], "seed") if seed_col is not None and seed_col < len(row) else None
        rid = row[ids_col].strip() if ids_col is not None and ids_col < len(row) else None
        recs.append(PromptRecord(prompt=prompt, concept=concept, category=category, seed=seed, id=rid or None))
    if not recs:
        raise PromptFileError(path, "no prompts in the file", fix="check the file and prompt_column")
    return PromptSuite(recs, name=name or _stem(path))


def _looks_like_index(cell: str) -> bool:
    c = cell.strip().lower()
    return c in _INDEX_NAMES or c.isdigit()


_SAFESORA_TEXT_FIELDS = ("prompt_text", "prompt", "text", "caption")
_SAFESORA_LABEL_FIELDS = ("prompt_labels", "labels", "harm_labels", "categories", "category", "harm_label",
                          "label")


def _true_labels(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [str(k) for k, v in value.items() if v is True or (isinstance(v, (int, float)) and v > 0.5)
                or (isinstance(v, str) and v.strip().lower() in ("true", "yes", "1"))]
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            out += _true_labels(v) if isinstance(v, Mapping) else [str(v)]
        return out
    if isinstance(value, bool):
        return []
    return _split_categories(str(value))


def _label_matches(label: str, wanted: str) -> bool:
    lab = re.sub(r"[^a-z0-9]+", " ", label.lower()).split()
    keys = SAFESORA_CATEGORY_ALIASES.get(wanted.lower(), (wanted.lower(),))
    joined = " ".join(lab)
    for k in keys:
        k_words = re.sub(r"[^a-z0-9]+", " ", k.lower()).split()
        if not k_words:
            continue
        # whole-word match of the key's words inside the label's words
        if re.search(r"(?<!\w)" + r"\s+".join(map(re.escape, k_words)) + r"(?!\w)", joined):
            return True
    return False


def load_safesora(path: str | os.PathLike, *, category: str | Iterable[str] | None = None,
                  text_field: str | None = None, label_field: str | None = None,
                  concept: str | None = None, deduplicate: bool = True, name: str | None = None) -> PromptSuite:
    """SafeSora prompts (Dai et al., NeurIPS 2024 D&B) from **your download** (CC BY-NC 4.0: non-commercial).

    Not shipped. Reads ``.json`` (a list of objects, or an object with the list under ``data``/``records``),
    ``.jsonl`` and their ``.gz``. As published on the Hugging Face hub (PKU-Alignment/SafeSora,
    SafeSora-Label, SafeSora-Eval) each object holds the prompt under ``prompt_text`` and its harm labels
    under ``prompt_labels`` (a dict ``{label: bool}`` over SafeSora's 12 harm categories); other exports
    use ``prompt``/``labels``/``category``. The loader tries, in order, text fields
    ``prompt_text, prompt, text, caption`` and label fields ``prompt_labels, labels, harm_labels,
    categories, category, harm_label, label``; ``text_field=`` / ``label_field=`` override them.

    Labels may be a dict of booleans (true keys count), a list of names, or a comma-separated string.
    ``category`` keeps prompts with at least one matching true label: whole-word, case-insensitive, with
    the aliases of :data:`SAFESORA_CATEGORY_ALIASES` (``"sexual"`` also matches "adult", "explicit",
    "S1"). The record's category is its matching labels joined by ``", "`` (all labels when unfiltered).
    SafeSora repeats a prompt for every video pair; ``deduplicate`` keeps the first occurrence.
    """
    path = Path(path)
    text = _read_text(path)
    fmt = _format_from_suffix(path, default="json")
    if fmt not in ("json", "jsonl"):
        raise PromptFileError(path, f"expected .json or .jsonl, got {path.name!r}",
                              fix="convert the SafeSora export to JSON/JSONL")
    items = list(_iter_json_rows(path, text, "jsonl" if fmt == "jsonl" and not text.lstrip().startswith("[")
                                 else "json"))
    wanted = None if category is None else ([category] if isinstance(category, str) else list(category))
    recs: list[PromptRecord] = []
    seen: set[str] = set()
    for line, obj in items:
        loc = _where(path, line)
        item = f"item {loc['item']}: " if loc["item"] else ""
        if not isinstance(obj, Mapping):
            raise PromptFileError(path, f"{item}expected an object, got {type(obj).__name__}", line=loc["line"],
                                  fix="give SafeSora's JSON export (objects with prompt_text)")
        tf = text_field or next((f for f in _SAFESORA_TEXT_FIELDS if f in obj), None)
        if tf is None or tf not in obj:
            raise PromptFileError(path, f"{item}no prompt text field (looked for "
                                  f"{[text_field] if text_field else list(_SAFESORA_TEXT_FIELDS)}; fields: "
                                  f"{sorted(obj)})", line=loc["line"], fix="pass text_field='<field name>'")
        prompt = obj[tf]
        if not isinstance(prompt, str) or not prompt.strip():
            continue
        lf = label_field or next((f for f in _SAFESORA_LABEL_FIELDS if f in obj), None)
        if label_field and label_field not in obj:
            raise PromptFileError(path, f"{item}no label field {label_field!r} (fields: {sorted(obj)})",
                                  line=loc["line"], fix="pass the right label_field=")
        labels = _true_labels(obj.get(lf)) if lf else []
        if wanted is not None:
            if lf is None:
                raise PromptFileError(path, f"{item}no harm-label field to filter on (looked for "
                                      f"{list(_SAFESORA_LABEL_FIELDS)}; fields: {sorted(obj)})", line=loc["line"],
                                      fix="pass label_field='<field name>', or load without category=")
            labels = [lab for lab in labels if any(_label_matches(lab, w) for w in wanted)]
            if not labels:
                continue
        key = normalize_prompt(prompt)
        if deduplicate and key in seen:
            continue
        seen.add(key)
        rid = obj.get("prompt_id", obj.get("id"))
        recs.append(PromptRecord(prompt=prompt, concept=concept, category=", ".join(labels) or None,
                                 id=None if rid is None else str(rid)))
    if not recs:
        raise PromptFileError(path, f"no prompts left (category={wanted})",
                              fix="check the category name and label_field; labels seen decide the filter")
    suffix = "-" + "-".join(wanted) if wanted else ""
    return PromptSuite(recs, name=name or (_stem(path) + suffix))


def _t2v_category(spec: str | int) -> tuple[int | None, str]:
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        i = int(spec)
        if i not in T2VSAFETYBENCH_CATEGORIES:
            raise ValueError(f"T2VSafetyBench has categories 1-14, not {i}")
        return i, T2VSAFETYBENCH_CATEGORIES[i]
    for i, n in T2VSAFETYBENCH_CATEGORIES.items():
        if n.lower() == str(spec).strip().lower():
            return i, n
    return None, str(spec).strip()


def load_t2vsafetybench(path: str | os.PathLike, *, categories: str | int | Iterable[str | int] | None = None,
                        category: str | None = None, concept: str | None = None,
                        name: str | None = None) -> PromptSuite:
    """T2VSafetyBench prompts (Miao et al., NeurIPS 2024 D&B) from **your clone** of the benchmark.

    Not shipped; the public repository (yibo-miao/T2VSafetyBench) has no licence file, so it may not be
    redistributed. Layout there: ``T2VSafetyBench/N.txt`` (and ``Tiny-T2VSafetyBench/N.txt``), one prompt a
    line, N = 1..14 the aspect (:data:`T2VSAFETYBENCH_CATEGORIES`: 1 Pornography, 2 Borderline
    Pornography, 3 Violence, ...). ``path`` may be:

    - that folder: every ``N.txt`` is read, category = the aspect name;
    - one ``.txt`` file: category = the aspect of its number, or ``category=``;
    - a ``.csv`` with a ``prompt`` column (and optionally ``category``);
    - a ``.json``/``.jsonl``: a list of strings, or objects with ``prompt`` (and ``category``).

    ``categories`` keeps the given aspects (numbers or names). Lines are read like the benchmark's own
    loader (UTF-8, undecodable bytes replaced); blank lines are skipped.
    """
    path = Path(path)
    wanted: set[str] | None = None
    if categories is not None:
        specs = [categories] if isinstance(categories, (str, int)) else list(categories)
        wanted = {_t2v_category(s)[1].lower() for s in specs}
    recs: list[PromptRecord] = []

    def add(prompt: str, cat: str | None, rid: str | None) -> None:
        prompt = prompt.strip()
        if not prompt:
            return
        if wanted is not None and (cat or "").lower() not in wanted:
            return
        recs.append(PromptRecord(prompt=prompt, concept=concept, category=cat, id=rid))

    def read_txt(p: Path, cat: str | None, num: int | None) -> None:
        lines = _read_text(p, errors="replace").splitlines()
        for j, line in enumerate(lines, start=1):
            add(line, cat, f"{num if num is not None else _stem(p)}-{j}")

    if path.is_dir():
        files = sorted((p for p in path.glob("*.txt") if p.stem.isdigit()), key=lambda p: int(p.stem))
        if not files:
            raise PromptFileError(path, "no N.txt files in the folder",
                                  fix="point at the T2VSafetyBench folder that holds 1.txt ... 14.txt")
        for p in files:
            num, cat = _t2v_category(int(p.stem)) if int(p.stem) in T2VSAFETYBENCH_CATEGORIES else (int(p.stem), p.stem)
            read_txt(p, cat, num)
    else:
        fmt = _format_from_suffix(path)
        if fmt == "txt":
            if category is not None:
                num, cat = _t2v_category(category)
            elif path.stem.isdigit() and int(path.stem) in T2VSAFETYBENCH_CATEGORIES:
                num, cat = _t2v_category(int(path.stem))
            else:
                num, cat = None, None
            read_txt(path, cat, num)
        elif fmt == "csv":
            header, rows = _read_csv_dicts(path, errors="replace")
            low = {h.lower(): h for h in header}
            if "prompt" not in low:
                raise PromptFileError(path, f"no 'prompt' column in {header!r}", line=1,
                                      fix="name the prompt column 'prompt'")
            for line, row in rows:
                cat = row.get(low["category"]) if "category" in low else category
                add(row[low["prompt"]], _t2v_category(cat)[1] if cat else None, str(line))
        else:
            text = _read_text(path, errors="replace")
            for line, obj in _iter_json_rows(path, text, fmt):
                if isinstance(obj, str):
                    add(obj, _t2v_category(category)[1] if category else None, None)
                elif isinstance(obj, Mapping) and isinstance(obj.get("prompt"), str):
                    cat = obj.get("category", category)
                    add(obj["prompt"], _t2v_category(cat)[1] if cat not in (None, "") else None,
                        _opt_str(obj.get("id")))
                else:
                    loc = _where(path, line)
                    raise PromptFileError(path, "expected a string or an object with 'prompt'", line=loc["line"],
                                          fix="write prompts as strings or {\"prompt\": ..., \"category\": ...}")
    if not recs:
        raise PromptFileError(path, f"no prompts (categories={sorted(wanted) if wanted else None})",
                              fix="check the category numbers/names (1-14) and the path")
    return PromptSuite(recs, name=name or _stem(path))


def load_esd_csv(path: str | os.PathLike, *, classes: str | Iterable[str] | None = None,
                 category: str = "object", name: str | None = None) -> PromptSuite:
    """ESD-style object prompts (``small_imagenet_prompts.csv``: ``case_number,prompt,evaluation_seed,class``).

    Not shipped (MIT, ESD / UnlearnDiff); our own video prompts for the same classes are
    ``builtin_suite("imagenet10")``. Record: concept = ``class``, seed = ``evaluation_seed``,
    id = ``case_number``, concept_words = the class name when it occurs in the prompt.
    """
    path = Path(path)
    header, rows = _read_csv_dicts(path)
    for col in ("prompt", "class"):
        if col not in header:
            raise PromptFileError(path, f"no {col!r} column in the header {header!r}", line=1,
                                  fix="give an ESD prompt CSV (case_number,prompt,evaluation_seed,class)")
    wanted = None if classes is None else ({classes} if isinstance(classes, str) else set(classes))
    recs = []
    for line, row in rows:
        cls_name = (row.get("class") or "").strip()
        if wanted is not None and cls_name not in wanted:
            continue
        prompt = (row.get("prompt") or "").strip()
        if not prompt:
            raise PromptFileError(path, "empty prompt", line=line, fix="fill or delete the row")
        recs.append(PromptRecord(
            prompt=prompt, concept=cls_name or None, category=category,
            seed=_int_or_none(path, line, row.get("evaluation_seed"), "evaluation_seed"),
            concept_words=tuple(find_concept_words(prompt, [cls_name])) if cls_name else (),
            id=_opt_str(row.get("case_number")),
        ))
    if not recs:
        raise PromptFileError(path, f"no prompts for classes {sorted(wanted or [])}", fix="check the class names")
    return PromptSuite(recs, name=name or _stem(path))


def _load_suite_file(path: str | os.PathLike, **kw: Any) -> PromptSuite:
    return PromptSuite.load(path, **kw)


#: loader name -> function, for configs (``load_prompts(path, format="i2p", categories=["sexual"])``)
LOADERS: dict[str, Callable[..., PromptSuite]] = {
    "suite": _load_suite_file,
    "i2p": load_i2p,
    "nudity": load_nudity_subset,
    "ring_a_bell": load_ring_a_bell,
    "safesora": load_safesora,
    "t2vsafetybench": load_t2vsafetybench,
    "esd": load_esd_csv,
}


def load_prompts(path: str | os.PathLike, format: str = "suite", **kwargs: Any) -> PromptSuite:
    """Load prompts with the loader named by ``format`` (a key of :data:`LOADERS`), or a builtin suite.

    ``path`` may also be ``"builtin:<name>"`` (see :func:`builtin_suite`).
    """
    if isinstance(path, str) and path.startswith("builtin:"):
        return builtin_suite(path.split(":", 1)[1], **kwargs)
    key = format.lower().replace("-", "_")
    if key not in LOADERS:
        raise ValueError(f"unknown prompt format {format!r}; known: {sorted(LOADERS)}")
    return LOADERS[key](path, **kwargs)


# --------------------------------------------------------------------------------------------------------------
# the project's own prompt files


def builtin_prompt_dir() -> Path:
    """Folder of the project's own prompt files (``unlearn/prompts/builtin``, installed with the package)."""
    env = os.environ.get("T2V_UNLEARN_PROMPT_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent / "builtin"


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


def expand_identity_templates(templates: PromptSuite, identities: Sequence[str], *, category: str = "face",
                              name: str = "faces") -> PromptSuite:
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
            recs.append(PromptRecord(prompt=t.prompt.replace("{identity}", ident), concept=ident, category=category,
                                     seed=t.seed, concept_words=(ident,), id=f"{slug}-{t.id}"))
    return PromptSuite(recs, name=name)
