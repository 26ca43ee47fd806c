"""SafeSora prompts (Dai et al., NeurIPS 2024 D&B): ``load_safesora`` reads your download (JSON/JSONL)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from unlearn.prompts.suite import (
    PromptFileError,
    PromptRecord,
    PromptSuite,
    format_from_suffix,
    iter_json_rows,
    normalize_prompt,
    read_text,
    row_location,
    split_categories,
    suite_name,
)

__all__ = ["load_safesora", "SAFESORA_CATEGORY_ALIASES"]

#: words that select a SafeSora harm label; ``category="sexual"`` keeps prompts whose true labels contain
#: any of these words (SafeSora's S1 is "Adult, Explicit Sexual Content")
SAFESORA_CATEGORY_ALIASES: dict[str, tuple[str, ...]] = {
    "sexual": ("sexual", "adult", "explicit", "nudity", "porn", "s1"),
    "violence": ("violence", "violent", "gory", "injury", "s8"),
}


_SAFESORA_TEXT_FIELDS = ("prompt_text", "prompt", "text", "caption")
_SAFESORA_LABEL_FIELDS = ("prompt_labels", "labels", "harm_labels", "categories", "category", "harm_label", "label")


def _true_labels(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [
            str(k)
            for k, v in value.items()
            if v is True
            or (isinstance(v, (int, float)) and v > 0.5)
            or (isinstance(v, str) and v.strip().lower() in ("true", "yes", "1"))
        ]
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            out += _true_labels(v) if isinstance(v, Mapping) else [str(v)]
        return out
    if isinstance(value, bool):
        return []
    return split_categories(str(value))


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


def load_safesora(
    path: str | os.PathLike,
    *,
    category: str | Iterable[str] | None = None,
    text_field: str | None = None,
    label_field: str | None = None,
    concept: str | None = None,
    deduplicate: bool = True,
    name: str | None = None,
) -> PromptSuite:
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
    text = read_text(path)
    fmt = format_from_suffix(path, default="json")
    if fmt not in ("json", "jsonl"):
        raise PromptFileError(
            path, f"expected .json or .jsonl, got {path.name!r}", fix="convert the SafeSora export to JSON/JSONL"
        )
    items = list(
        iter_json_rows(path, text, "jsonl" if fmt == "jsonl" and not text.lstrip().startswith("[") else "json")
    )
    wanted = None if category is None else ([category] if isinstance(category, str) else list(category))
    recs: list[PromptRecord] = []
    seen: set[str] = set()
    for line, obj in items:
        loc = row_location(line)
        item = f"item {loc['item']}: " if loc["item"] else ""
        if not isinstance(obj, Mapping):
            raise PromptFileError(
                path,
                f"{item}expected an object, got {type(obj).__name__}",
                line=loc["line"],
                fix="give SafeSora's JSON export (objects with prompt_text)",
            )
        tf = text_field or next((f for f in _SAFESORA_TEXT_FIELDS if f in obj), None)
        if tf is None or tf not in obj:
            raise PromptFileError(
                path,
                f"{item}no prompt text field (looked for "
                f"{[text_field] if text_field else list(_SAFESORA_TEXT_FIELDS)}; fields: "
                f"{sorted(obj)})",
                line=loc["line"],
                fix="pass text_field='<field name>'",
            )
        prompt = obj[tf]
        if not isinstance(prompt, str) or not prompt.strip():
            continue
        lf = label_field or next((f for f in _SAFESORA_LABEL_FIELDS if f in obj), None)
        if label_field and label_field not in obj:
            raise PromptFileError(
                path,
                f"{item}no label field {label_field!r} (fields: {sorted(obj)})",
                line=loc["line"],
                fix="pass the right label_field=",
            )
        labels = _true_labels(obj.get(lf)) if lf else []
        if wanted is not None:
            if lf is None:
                raise PromptFileError(
                    path,
                    f"{item}no harm-label field to filter on (looked for "
                    f"{list(_SAFESORA_LABEL_FIELDS)}; fields: {sorted(obj)})",
                    line=loc["line"],
                    fix="pass label_field='<field name>', or load without category=",
                )
            labels = [lab for lab in labels if any(_label_matches(lab, w) for w in wanted)]
            if not labels:
                continue
        key = normalize_prompt(prompt)
        if deduplicate and key in seen:
            continue
        seen.add(key)
        rid = obj.get("prompt_id", obj.get("id"))
        recs.append(
            PromptRecord(
                prompt=prompt, concept=concept, category=", ".join(labels) or None, id=None if rid is None else str(rid)
            )
        )
    if not recs:
        raise PromptFileError(
            path,
            f"no prompts left (category={wanted})",
            fix="check the category name and label_field; labels seen decide the filter",
        )
    suffix = "-" + "-".join(wanted) if wanted else ""
    return PromptSuite(recs, name=name or (suite_name(path) + suffix))
