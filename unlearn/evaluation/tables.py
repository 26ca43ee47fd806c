"""Markdown tables in the layouts of the T2VUnlearning paper.

* Table 1 — nudity rate (%) per prompt set (columns) and method (rows); with per-label frame counts (Figure 5).
* Table 2 — per erased ImageNet class: ESR-1, ESR-5, PSR-1, PSR-5 (%) per method.
* Table 3 — faces: ID similarity on the erased identity (lower is better) and on the preserved ones (higher).
* Table 6 — benign content: CLIPScore and subject consistency per method.
* ``metrics.json`` + ``metrics.md`` — the ESR/PSR table of one erased class (:func:`write_metrics`), written by
  the evaluation callback, the runner and the Lightning test loop alike.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unlearn.io import atomic_write_text


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "–"
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "–" if x != x else f"{x:.{digits}f}"


def by_section(rows: Mapping[str, Mapping[str, Any]], section: str) -> dict[str, Any]:
    """``{method: row[section]}`` for the methods that have the section."""
    return {m: r[section] for m, r in rows.items() if section in r}


def classification_by_class(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{erased class: {method: ESR/PSR row}}`` from the runner's ``{method: {"classification": {class: row}}}``."""
    out: dict[str, dict[str, Any]] = {}
    for method, r in rows.items():
        for cls, row in r.get("classification", {}).items():
            out.setdefault(cls, {})[method] = row
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
        lines.append(f"| {m} | " + " | ".join(_fmt(by_set[s].get(m, {}).get("nudity_rate")) for s in sets) + " |")
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
    """``{erased class: {method: row}}`` → ESR-1/5, PSR-1/5 (%)."""
    lines = ["| erased class | method | ESR-1 ↑ | ESR-5 ↑ | PSR-1 ↑ | PSR-5 ↑ |", "|---|---|---|---|---|---|"]
    for cls, methods in by_class.items():
        for m, r in methods.items():
            lines.append(f"| {cls} | {m} | {_fmt(r.get('esr@1'))} | {_fmt(r.get('esr@5'))} | "
                         f"{_fmt(r.get('psr@1'))} | {_fmt(r.get('psr@5'))} |")
    return "\n".join(lines) + "\n"


def table3_faces(by_identity: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """``{erased identity: {method: identity row}}`` → ID similarity erased ↓ / preserved ↑ (cosine)."""
    lines = ["| erased identity | method | ID sim. erased ↓ | ID sim. preserved ↑ | frames with a face |",
             "|---|---|---|---|---|"]
    for ident, methods in by_identity.items():
        for m, r in methods.items():
            lines.append(f"| {ident} | {m} | {_fmt(r.get('id_erased'), 3)} | {_fmt(r.get('id_preserved'), 3)} | "
                         f"{_fmt(None if r.get('face_rate') is None else 100 * r['face_rate'])} % |")
    return "\n".join(lines) + "\n"


def table6_benign(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """``{method: row}`` (with ``clip`` and/or ``consistency`` sections) → CLIPScore ↑, subject consistency ↑."""
    lines = ["| method | CLIPScore ↑ | Subject consistency ↑ |", "|---|---|---|"]
    for m, r in rows.items():
        lines.append(f"| {m} | {_fmt(r.get('clip', {}).get('clip_score'), 2)} | "
                     f"{_fmt(r.get('consistency', {}).get('subject_consistency'), 4)} |")
    return "\n".join(lines) + "\n"


def results_markdown(results: Mapping[str, Any]) -> str:
    """``results.md`` of one runner run: the provenance line, then one table per metric."""
    rows = results["rows"]
    suite, bb = results["suite"], results["backbone"]
    lines = [
        f"# Evaluation: {results.get('concept') or 'no concept'} on `{bb.get('name')}`",
        "",
        f"Suite **{suite['name']}** ({suite['num_prompts']} prompts, sha256 `{suite['sha256'][:12]}`), "
        f"backbone source `{bb.get('source') or bb.get('pretrained')}`, sampling "
        + ", ".join(f"{k}={'default' if v is None else v}" for k, v in results.get("sampling", {}).items()) + ".",
        "",
    ]
    ms = results.get("metrics", [])
    if "nudity" in ms:
        s = results["settings"].get("nudity", {})
        lines += ["## Nudity rate (%) (Table 1)", "",
                  f"NudeNet {s.get('evaluator', {}).get('version')}, threshold {s.get('threshold')}, labels "
                  f"{', '.join(s.get('labels', []))}.", "",
                  table1_nudity({suite["name"]: by_section(rows, "nudity")}),
                  "Frames per label (Figure 5):", "", nudity_label_table(by_section(rows, "nudity"))]
    if "classification" in ms:
        s = results["settings"].get("classification", {}).get("esr", {})
        ev = s.get("evaluator", {})
        lines += ["## Object erasure (Table 2)", "",
                  f"Classifier {ev.get('name')}" + (f" ({ev['version']})" if ev.get("version") else "")
                  + f", top-k {s.get('top_k')}, per frame.", "",
                  table2_objects(classification_by_class(rows))]
    if "identity" in ms:
        lines += ["## Faces (Table 3)", "",
                  table3_faces(identity_by_erased(rows))]
    if "clip" in ms or "consistency" in ms:
        lines += ["## Benign content (Table 6)", "", table6_benign(rows)]
    return "\n".join(lines)


def write_metrics(out_dir: str | os.PathLike, rows: dict[str, dict[str, Any]], meta: dict[str, Any]) -> Path:
    """``metrics.json`` and ``metrics.md`` in ``out_dir``, each written atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"rows": rows, **meta}
    atomic_write_text(out / "metrics.json", json.dumps(doc, indent=2, sort_keys=True))
    atomic_write_text(out / "metrics.md", markdown_table(rows, meta))
    return out / "metrics.json"


def markdown_table(rows: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [f"Concept erased: **{meta.get('concept')}** on `{meta.get('backbone')}`; "
             f"{meta.get('num_prompts')} held-out prompts, suite sha256 `{str(meta.get('prompt_suite_hash'))[:12]}`.", "",
             "| method | ESR-1 ↑ | ESR-5 ↑ | PSR-1 ↑ | PSR-5 ↑ |", "|---|---|---|---|---|"]
    for name, r in rows.items():
        if name == "unlearned":
            continue
        mean = " (mean)" if r.get("erased") else ""
        lines.append(f"| {name}{mean} | {r['esr@1']:.1f} | {r['esr@5']:.1f} | {r['psr@1']:.1f} | {r['psr@5']:.1f} |")
        for cls, e in (r.get("erased") or {}).items():  # several concepts erased together: each one's ESR
            lines.append(f"| {name}: {cls} | {e['esr@1']:.1f} | {e['esr@5']:.1f} | – | – |")
    if any(r.get("erased") for r in rows.values()):
        lines += ["", "PSR is over the classes none of the erased concepts names."]
    return "\n".join(lines) + "\n"
