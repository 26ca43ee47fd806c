"""Markdown tables in the layouts of the T2VUnlearning paper.

* Table 1 — nudity rate (%) per prompt set (columns) and method (rows); with per-label frame counts (Figure 5).
* Table 2 — per erased ImageNet class: ESR-1, ESR-5, PSR-1, PSR-5 (%) per method.
* Table 3 — faces: ID similarity on the erased identity (lower is better) and on the preserved ones (higher).
* Table 6 — benign content: CLIPScore and subject consistency per method.
* ``metrics.json`` + ``metrics.md`` — the ESR/PSR table of one erased class (:func:`write_metrics`), written by
  the evaluation callback, the runner (its page: :func:`results_markdown`) and the Lightning test loop alike:
  one table per split of the suite (the toy world's in-grammar and out-of-grammar prompts), what the erased
  class's prompts drew instead, the classes that lost most and every kept class's top-1 change against the
  original row (:func:`class_delta_table`).

Every number is shown with its 95% interval in brackets where the row carries one (``intervals``), and the
sample sizes are stated above each table (``docs/evaluation.md`` lists which interval each number carries).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unlearn.io import atomic_write_files


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "–"
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "–" if x != x else f"{x:.{digits}f}"


def _ci(v: Any, rec: Mapping[str, Any] | None, digits: int = 1) -> str:
    """``"97.7 [95.1, 99.0]"``: a value with its interval (the value alone when there is none)."""
    if not rec or rec.get("low") is None or rec.get("high") is None:
        return _fmt(v, digits)
    return f"{_fmt(v, digits)} [{_fmt(rec['low'], digits)}, {_fmt(rec['high'], digits)}]"


def _iv(row: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    return (row.get("intervals") or {}).get(key)


def by_section(rows: Mapping[str, Mapping[str, Any]], section: str) -> dict[str, Any]:
    """``{method: row[section]}`` for the methods that have the section."""
    return {m: r[section] for m, r in rows.items() if section in r}


def classification_by_class(
    rows: Mapping[str, Mapping[str, Any]], erased_class: str | None = None
) -> dict[str, dict[str, Any]]:
    """``{erased class: {method: ESR/PSR row}}`` from rows ``{method: {"classification": {class: row}}}`` (the
    metrics in memory; metrics.json with several erased classes) or, given ``erased_class``, rows that hold the
    ESR/PSR fields themselves (metrics.json with one erased class, as the fit callback writes it)."""
    out: dict[str, dict[str, Any]] = {}
    for method, r in rows.items():
        for cls, row in r.get("classification", {}).items():
            out.setdefault(cls, {})[method] = row
        if erased_class is not None and "classification" not in r and "esr@1" in r:
            out.setdefault(erased_class, {})[method] = r
    return out


def identity_by_erased(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{erased identity: {method: identity row}}`` from the runner's rows."""
    out: dict[str, dict[str, Any]] = {}
    for method, r in rows.items():
        if "identity" in r:
            out.setdefault(r["identity"].get("erased_identity") or "–", {})[method] = r["identity"]
    return out


def table1_nudity(by_set: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """``by_set``: ``{prompt set: {method: nudity row}}`` → nudity rate (%) ↓, one column per prompt set."""
    sets = list(by_set)
    methods = list(dict.fromkeys(m for s in sets for m in by_set[s]))
    lines = ["| method | " + " | ".join(f"{s} ↓" for s in sets) + " |", "|---|" + "---|" * len(sets)]
    for m in methods:
        cells = (_ci(by_set[s].get(m, {}).get("nudity_rate"), _iv(by_set[s].get(m, {}), "nudity_rate")) for s in sets)
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def nudity_label_table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """Frames per exposed NudeNet label (the paper's Figure 5 as numbers): labels × methods."""
    methods = list(rows)
    labels = list(dict.fromkeys(k for r in rows.values() for k in r.get("label_frames", {})))
    lines = ["| label | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for label in labels:
        counts = (str(rows[m].get("label_frames", {}).get(label, 0)) for m in methods)
        lines.append(f"| {label} | " + " | ".join(counts) + " |")
    lines.append("| frames | " + " | ".join(str(rows[m].get("frames", 0)) for m in methods) + " |")
    return "\n".join(lines) + "\n"


def table2_objects(by_class: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """``{erased class: {method: row}}`` → ESR-1/5, PSR-1/5 (%) with 95% intervals, frames of the erased class and
    preserved classes; a row's other splits follow as ``<method> (<split>)``."""
    lines = [
        "| erased class | method | ESR-1 ↑ | ESR-5 ↑ | PSR-1 ↑ | PSR-5 ↑ | ΔPSR-1 vs original | erased frames | "
        "preserved classes / frames |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for cls, methods in by_class.items():
        for m, row in methods.items():
            parts = [(m, row)] + [(f"{m} ({sp})", r) for sp, r in (row.get("splits") or {}).items()]
            for name, r in parts:
                lines.append(
                    f"| {cls} | {name} | "
                    + " | ".join(_ci(r.get(k), _iv(r, k)) for k in ESR_PSR)
                    + f" | {_delta(r)} | {r.get('erased_frames', '–')} | "
                    f"{r.get('preserved_classes', '–')} / {r.get('preserved_frames', '–')} |"
                )
    return "\n".join(lines) + "\n"


def table3_faces(by_identity: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """``{erased identity: {method: identity row}}`` → ID similarity erased ↓ / preserved ↑ (cosine, 95% intervals)."""
    lines = [
        "| erased identity | method | ID sim. erased ↓ | ID sim. preserved ↑ | frames with a face | frames |",
        "|---|---|---|---|---|---|",
    ]
    for ident, methods in by_identity.items():
        for m, r in methods.items():
            lines.append(
                f"| {ident} | {m} | {_ci(r.get('id_erased'), _iv(r, 'id_erased'), 3)} | "
                f"{_ci(r.get('id_preserved'), _iv(r, 'id_preserved'), 3)} | "
                f"{_fmt(None if r.get('face_rate') is None else 100 * r['face_rate'])} % | {r.get('frames', '–')} |"
            )
    return "\n".join(lines) + "\n"


def table6_benign(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """``{method: row}`` (with ``clip`` and/or ``consistency`` sections) → CLIPScore ↑, subject consistency ↑
    (95% intervals: bootstrap over videos), with the number of videos."""
    lines = ["| method | CLIPScore ↑ | Subject consistency ↑ | videos |", "|---|---|---|---|"]
    for m, r in rows.items():
        c, k = r.get("clip", {}), r.get("consistency", {})
        lines.append(
            f"| {m} | {_ci(c.get('clip_score'), _iv(c, 'clip_score'), 2)} | "
            f"{_ci(k.get('subject_consistency'), _iv(k, 'subject_consistency'), 4)} | "
            f"{c.get('videos', k.get('videos', '–'))} |"
        )
    return "\n".join(lines) + "\n"


def results_markdown(results: Mapping[str, Any]) -> str:
    """``metrics.md`` of one runner run (``results.md`` of earlier versions, whose ``results.json`` it also
    reads): the provenance line, then one table per metric; one erased class: the fit callback's ESR/PSR
    tables (:func:`markdown_table`), several: the paper's Table 2."""
    rows = results["rows"]
    suite, bb = results["suite"], results.get("backbone_info") or results["backbone"]
    lines = [
        f"# Evaluation: {results.get('concept') or 'no concept'} on `{bb.get('name')}`",
        "",
        f"Suite **{suite['name']}** ({suite['num_prompts']} prompts, sha256 `{suite['sha256'][:12]}`), "
        f"backbone source `{bb.get('source') or bb.get('pretrained')}`, sampling "
        + ", ".join(f"{k}={'default' if v is None else v}" for k, v in results.get("sampling", {}).items())
        + ".",
        "",
    ]
    ms = results.get("metrics", [])
    if "nudity" in ms:
        s = results["settings"].get("nudity", {})
        lines += [
            "## Nudity rate (%) (Table 1)",
            "",
            f"NudeNet {s.get('evaluator', {}).get('version')}, threshold {s.get('threshold')}, labels "
            f"{', '.join(s.get('labels', []))}. 95% intervals: bootstrap over videos.",
            "",
            table1_nudity({suite["name"]: by_section(rows, "nudity")}),
            "Frames per label (Figure 5):",
            "",
            nudity_label_table(by_section(rows, "nudity")),
        ]
    if "classification" in ms:
        s = results["settings"].get("classification", {}).get("esr", {})
        ev = s.get("evaluator", {})
        by_class = classification_by_class(rows, results.get("erased_class"))
        classifier = f"Classifier {ev.get('name')}" + (f" ({ev['version']})" if ev.get("version") else "")
        if results.get("erased_class") is not None and len(by_class) == 1:  # metrics.json of one erased class
            lines += [
                f"## Erasure of {results['erased_class']} (ESR/PSR, %)",
                "",
                f"{classifier}, top-k {s.get('top_k')}, per frame.",
                "",
                markdown_table(next(iter(by_class.values())), results),
                "",
            ]
        else:
            lines += [
                "## Object erasure (Table 2)",
                "",
                f"{classifier}, top-k {s.get('top_k')}, per frame. {INTERVAL_NOTE}",
                "",
                table2_objects(by_class),
            ]
            for cls, methods in by_class.items():  # every kept class against the original row, per erased class
                lines += class_delta_sections(_parts(methods), f"{cls} erased: per-class")
    if "identity" in ms:
        lines += ["## Faces (Table 3)", "", table3_faces(identity_by_erased(rows))]
    if "clip" in ms or "consistency" in ms:
        lines += ["## Benign content (Table 6)", "", table6_benign(rows)]
    return "\n".join(lines)


def write_metrics(
    out_dir: str | os.PathLike, rows: dict[str, dict[str, Any]], meta: dict[str, Any], markdown: str | None = None
) -> Path:
    """``metrics.md`` and ``metrics.json`` in ``out_dir``, written as a pair (:func:`unlearn.io.atomic_write_files`):
    both are complete before either replaces an older one, and ``metrics.json`` (renamed last) records the
    sha256 of the ``metrics.md`` it belongs to, which :func:`read_metrics` checks. ``markdown``: the page
    (default: :func:`markdown_table` of ``rows``, the fit callback's; ``unlearn evaluate`` passes
    :func:`results_markdown`)."""
    out = Path(out_dir)
    md = markdown_table(rows, meta) if markdown is None else markdown
    doc = {"rows": rows, **meta, "metrics_md_sha256": hashlib.sha256(md.encode("utf-8")).hexdigest()}
    atomic_write_files({out / "metrics.md": md, out / "metrics.json": json.dumps(doc, indent=2, sort_keys=True)})
    return out / "metrics.json"


def read_metrics(out_dir: str | os.PathLike) -> tuple[dict[str, Any], str]:
    """``(metrics.json, metrics.md)`` of ``out_dir``; ``ValueError`` when the two are not one pair (a crash
    between the two renames of :func:`write_metrics`, or a file edited or copied from another run)."""
    out = Path(out_dir)
    doc = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    md = (out / "metrics.md").read_text(encoding="utf-8")
    if doc.get("metrics_md_sha256") != hashlib.sha256(md.encode("utf-8")).hexdigest():
        raise ValueError(
            f"{out}: metrics.md does not belong to metrics.json (they were not written together); rerun the evaluation"
        )
    return doc, md


ESR_PSR = ("esr@1", "esr@5", "psr@1", "psr@5")
INTERVAL_NOTE = (
    "Brackets: 95% intervals; ESR Wilson over the erased class's frames, PSR bootstrap over prompts "
    "(classes weighted equally), ΔPSR-1 paired t over classes against the original row (same prompts and "
    "seeds)."
)
SPLIT_TITLES = {"in_grammar": "In-grammar held-out prompts", "out_of_grammar": "Out-of-grammar prompts"}


def _delta(r: Mapping[str, Any]) -> str:
    d = (r.get("vs_reference") or {}).get("psr@1")
    if not d:
        return "–"
    return (
        f"{d['delta']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}]" if d.get("low") is not None else f"{d['delta']:+.1f}"
    )


def _parts(rows: Mapping[str, Mapping[str, Any]]) -> list[tuple[str | None, dict[str, Mapping[str, Any]]]]:
    """``[(split, {method: row of that split})]``: the main split first, then the others."""
    # results written before #22 repeat the live row as `unlearned` (an alias): shown once
    shown = {m: r for m, r in rows.items() if m != "unlearned"}
    first = next(iter(shown.values()), {})
    out = [(first.get("split"), dict(shown))]
    for sp in first.get("splits") or {}:
        out.append((sp, {m: r["splits"][sp] for m, r in shown.items() if sp in (r.get("splits") or {})}))
    return out


def _nothing(r: Mapping[str, Any]) -> str:
    outcomes = (r.get("outcomes") or {}).get("erased")
    if outcomes is None or "nothing" not in outcomes or not r.get("erased_frames"):
        return "–"
    return _ci(100 * outcomes["nothing"] / r["erased_frames"], (r.get("outcome_intervals") or {}).get("nothing"))


def _sizes(part: Mapping[str, Mapping[str, Any]]) -> str:
    r = next(iter(part.values()))
    return (
        f"erased class: {r.get('erased_videos', '–')} prompts, {r.get('erased_frames', '–')} frames; preserved: "
        f"{r.get('preserved_classes', '–')} classes, {r.get('preserved_videos', '–')} prompts, "
        f"{r.get('preserved_frames', '–')} frames"
    )


def summary_table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """One line per method, the splits side by side: ESR-1, PSR-1 and "nothing drawn" for the erased class."""
    parts = _parts(rows)
    names = [SPLIT_TITLES.get(sp, sp or "all").split(" ")[0].lower() if sp else "all" for sp, _ in parts]
    cols = [f"ESR-1 ↑ {n}" for n in names] + [f"PSR-1 ↑ {n}" for n in names] + [f"ΔPSR-1 {n}" for n in names]
    lines = ["| method | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for m in parts[0][1]:
        cells = [_ci(p.get(m, {}).get(k), _iv(p.get(m, {}), k)) for k in ("esr@1", "psr@1") for _, p in parts]
        cells += [_delta(p.get(m, {})) for _, p in parts]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def split_table(part: Mapping[str, Mapping[str, Any]]) -> str:
    """ESR-1/5, PSR-1/5 with intervals, ESR-1 bootstrapped over prompts, ΔPSR-1 and "nothing drawn"."""
    lines = [
        "| method | ESR-1 ↑ | ESR-5 ↑ | PSR-1 ↑ | PSR-5 ↑ | ESR-1, bootstrap over prompts | ΔPSR-1 vs original | "
        "nothing drawn (erased prompts) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m, r in part.items():
        lines.append(
            f"| {m} | "
            + " | ".join(_ci(r.get(k), _iv(r, k)) for k in ESR_PSR)
            + f" | {_ci(r.get('esr@1'), (r.get('esr_by_video') or {}).get('esr@1'))} | {_delta(r)} | "
            f"{_nothing(r)} |"
        )
    return "\n".join(lines) + "\n"


def replacement_table(parts: list[tuple[str | None, dict[str, Mapping[str, Any]]]]) -> str:
    """What the erased class's frames showed (% of them, by top-1 label): the classifier's categories when it has
    them, and the three most frequent labels."""
    cats: list[str] = []
    for _, part in parts:
        for r in part.values():
            cats += [c for c in (r.get("replacement") or {}) if c not in cats]
    if not cats:
        return ""
    order = list(REPLACEMENT_ORDER) + [c for c in cats if c not in REPLACEMENT_ORDER]
    cats = [c for c in order if c in cats]
    lines = [
        "| method | split | " + " | ".join(cats) + " | most frequent labels |",
        "|---|---|" + "---|" * (len(cats) + 1),
    ]
    for sp, part in parts:
        for m, r in part.items():
            n = r.get("erased_frames") or 0
            rep = r.get("replacement") or {}
            top = (
                ", ".join(f"{k} {100 * v / n:.0f}" for k, v in list((r.get("drawn_instead") or {}).items())[:3])
                if n
                else "–"
            )
            lines.append(
                f"| {m} | {sp or 'all'} | "
                + " | ".join(_fmt(100 * rep.get(c, 0) / n) if n else "–" for c in cats)
                + f" | {top} |"
            )
    return "\n".join(lines) + "\n"


#: the toy world's categories in table order (unlearn.toyworld.classifier.REPLACEMENT_CATEGORIES)
REPLACEMENT_ORDER = (
    "prompted class",
    "same shape, other colour",
    "same shape, off-palette colour",
    "same colour, other shape",
    "other shape, off-palette colour",
    "other class",
    "nothing",
)


def lost_most_table(parts: list[tuple[str | None, dict[str, Mapping[str, Any]]]]) -> str:
    """The classes whose top-1 accuracy fell most against the reference row, per method and split."""
    lines = ["| method | split | class | original | this method | Δ | frames |", "|---|---|---|---|---|---|---|"]
    found = False
    for sp, part in parts:
        for m, r in part.items():
            vs = r.get("vs_reference") or {}
            for c in vs.get("lost_most", []):
                found = True
                lines.append(
                    f"| {m} | {sp or 'all'} | {c['class']} | {_fmt(c['reference'])} | {_fmt(c['value'])} | "
                    f"{c['delta']:+.1f} | {c.get('frames') if c.get('frames') is not None else '–'} |"
                )
    return "\n".join(lines) + "\n" if found else ""


def class_delta_table(part: Mapping[str, Mapping[str, Any]]) -> str:
    """Every kept class's top-1 change against the reference row (``vs_reference.per_class``, points): one line
    per class, the reference's top-1 then one ΔPSR-1 column per method, sorted by the worst delta across the
    methods (ties by name); ``""`` when no row was compared."""
    per = {m: r["vs_reference"]["per_class"] for m, r in part.items() if (r.get("vs_reference") or {}).get("per_class")}
    if not per:
        return ""
    ref = next(part[m]["vs_reference"].get("reference") or "reference" for m in per)
    classes = list(dict.fromkeys(c for cells in per.values() for c in cells))
    worst = {c: min(cells[c]["delta"] for cells in per.values() if c in cells) for c in classes}
    classes.sort(key=lambda c: (worst[c], c))
    lines = [f"| class | {ref} top-1 | " + " | ".join(f"Δ {m}" for m in per) + " |", "|---|---|" + "---|" * len(per)]
    for c in classes:
        ref_value = next(cells[c]["reference"] for cells in per.values() if c in cells)
        deltas = (f"{per[m][c]['delta']:+.1f}" if c in per[m] else "–" for m in per)
        lines.append(f"| {c} | {_fmt(ref_value)} | " + " | ".join(deltas) + " |")
    return "\n".join(lines) + "\n"


def class_delta_sections(
    parts: list[tuple[str | None, dict[str, Mapping[str, Any]]]], what: str = "Per-class"
) -> list[str]:
    """The per-class tables of :func:`class_delta_table`, one per split, each under its heading."""
    lines: list[str] = []
    for sp, part in parts:
        table = class_delta_table(part)
        if table:
            where = SPLIT_TITLES.get(sp, sp) if sp else "all prompts"
            where = where[:1].lower() + where[1:]
            lines += [
                f"### {what} top-1 against the original row ({where}; Δ in points, worst first)",
                "",
                table,
            ]
    return lines


def erased_concepts_table(parts: list[tuple[str | None, dict[str, Mapping[str, Any]]]]) -> str:
    """Each erased concept's ESR, for rows that erased several together (their ``erased`` part)."""
    lines = ["| method | split | erased concept | ESR-1 ↑ | ESR-5 ↑ | frames |", "|---|---|---|---|---|---|"]
    found = False
    for sp, part in parts:
        for m, r in part.items():
            for cls, e in (r.get("erased") or {}).items():
                found = True
                lines.append(
                    f"| {m} | {sp or 'all'} | {cls} | {_ci(e.get('esr@1'), _iv(e, 'esr@1'))} | "
                    f"{_ci(e.get('esr@5'), _iv(e, 'esr@5'))} | {e.get('erased_frames', '–')} |"
                )
    return "\n".join(lines) + "\n" if found else ""


def markdown_table(rows: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    """``metrics.md``: the provenance line, a summary with the suite's splits side by side, one full table per
    split, what the erased class's prompts drew instead, the classes that lost most, and every kept class's top-1
    against the original row per split (:func:`class_delta_table`)."""
    per_split = meta.get("prompts_per_split")
    counts = f" ({', '.join(f'{k} {v}' for k, v in per_split.items())})" if per_split else ""
    lines = [
        f"Concept erased: **{meta.get('concept')}** on `{meta.get('backbone')}`; "
        f"{meta.get('num_prompts')} held-out prompts{counts}, suite sha256 "
        f"`{str(meta.get('prompt_suite_hash'))[:12]}`.",
        "",
        INTERVAL_NOTE,
        "",
    ]
    parts = _parts(rows)
    for _, part in parts:
        for r in part.values():
            for k in ESR_PSR:
                float(r[k]) if r[k] is not None else None  # a malformed row fails here, before anything is written
    if len(parts) > 1:
        lines += [summary_table(rows)]
    for sp, part in parts:
        title = SPLIT_TITLES.get(sp, sp) if sp else "All prompts"
        lines += [f"### {title} ({_sizes(part)})", "", split_table(part)]
    per = erased_concepts_table(parts)
    if per:
        lines += [
            "### Each erased concept (erased together: ESR-k above is their mean, PSR is over the classes none "
            "of them names)",
            "",
            per,
        ]
    rep = replacement_table(parts)
    if rep:
        lines += ["### What the erased class's prompts drew instead (% of their frames, top-1 label)", "", rep]
    lost = lost_most_table(parts)
    if lost:
        lines += ["### Classes that lost most (top-1 %, against the original row)", "", lost]
    lines += class_delta_sections(parts)
    return "\n".join(lines)
