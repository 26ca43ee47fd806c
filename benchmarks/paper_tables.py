"""The T2VUnlearning paper's tables, one command each, on the resumable runner (``unlearn.evaluation``).

    python benchmarks/paper_tables.py table1  --backbone cogvideox-2b --data T2VUnlearning/evaluation/data \\
            --adapters runs/cogx2b_nudity/adapters --official cogvideox2b_nudity_erasure
    python benchmarks/paper_tables.py toy     [--adapters runs/toy_shapes/adapters] [--concept "red ring"]
    python benchmarks/paper_tables.py nudity  --backbone cogvideox-2b --adapters ADAPTERS \\
            --suites gen=gen_prompts.jsonl ring-a-bell=ring_a_bell:rab.csv safesora=safesora:safesora.jsonl
    python benchmarks/paper_tables.py objects --backbone cogvideox-2b \\
            --adapters "golf ball=runs/golf/adapters" --adapters "church=runs/church/adapters"
    python benchmarks/paper_tables.py faces   --backbone cogvideox-2b --references refs/ \\
            --adapters "Barack Obama=runs/obama/adapters"
    python benchmarks/paper_tables.py benign  --backbone cogvideox-2b --adapters ADAPTERS --concept nudity \\
            --clip-pretrained /models/open_clip_vit_b32.bin

Every command writes ``<out>/table.md`` + ``<out>/table.json`` (the paper's layout), and one runner folder per
run (``videos/<row>_<index>_<label>.mp4``, ``metrics.json``, ``metrics.md``, ``plots/``: the files of
``unlearn evaluate``). A killed command is resumed by
running it again. ``--rows`` picks the rows (default: original negprompt safree t2vunlearning, plus
refusal_vector when ``--refusal`` is given). See ``benchmarks/README.md`` for what each needs (GPU, weights).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BASE_ROWS = ["original", "negprompt", "safree", "t2vunlearning"]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    """``["golf ball=path", ...]`` → ``{"golf ball": "path"}``."""
    out = {}
    for v in values or []:
        key, sep, path = v.partition("=")
        if not sep or not key.strip() or not path.strip():
            raise SystemExit(f"error: {what} must be NAME=PATH, got {v!r}")
        out[key.strip()] = path.strip()
    return out


def _write_table(out: Path, name: str, markdown: str, data: dict[str, Any]) -> None:
    from unlearn.io import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "table.md", f"# {name}\n\n{markdown}")
    atomic_write_text(out / "table.json", json.dumps(data, indent=2, sort_keys=True, allow_nan=False))
    print(f"# {name}\n\n{markdown}\nwrote {out / 'table.md'} and {out / 'table.json'}")


def _common(a) -> dict[str, Any]:
    return dict(
        backbone=a.backbone,
        pretrained=a.pretrained,
        tiny=a.tiny,
        torch_dtype=a.dtype,
        backbone_kwargs=a.backbone_kwargs,
        num_frames=a.num_frames,
        height=a.height,
        width=a.width,
        num_inference_steps=a.steps,
        guidance_scale=a.guidance,
        batch_size=a.batch_size or 4,
        device=a.device,
        store_frames=a.store_frames,
        progress=True,
    )


def _rows(a, adapters: str | None) -> list[str]:
    rows = list(a.rows or BASE_ROWS + (["refusal_vector"] if a.refusal else []))
    if adapters is None:
        rows = [r for r in rows if r != "t2vunlearning"]
    if not a.refusal:
        rows = [r for r in rows if r != "refusal_vector"]
    return rows


def _per_concept_rows(a, per_concept: dict[str, str]) -> list:
    """original once; negprompt/safree/t2vunlearning once per erased concept (named ``<kind>-<slug>``)."""
    from unlearn.evaluation import MethodSpec

    kinds = a.rows or BASE_ROWS
    specs = [MethodSpec("original")] if "original" in kinds else []
    for concept, adapters in per_concept.items():
        for kind in kinds:
            if kind == "original":
                continue
            spec = MethodSpec(kind, name=f"{kind}-{_slug(concept)}", concept=concept)
            if kind == "t2vunlearning":
                if not adapters:
                    continue
                spec.adapters = adapters
            if kind == "refusal_vector":
                if not a.refusal:
                    continue
                spec.refusal = a.refusal
            specs.append(spec)
    return specs


# ---------------------------------------------------------------------------------------------------- tables
def _toy_suite_options(a, concept: str) -> dict[str, Any]:
    """The callback's toy suite: per-group and out-of-grammar prompt counts (its defaults unless given)."""
    from unlearn.callbacks.evaluation import DEFAULT_OUT_OF_GRAMMAR, DEFAULT_PER_GROUP

    return {
        "per_class": a.per_class,
        "seed": a.seed,
        "concept": concept,
        "per_group": DEFAULT_PER_GROUP if a.per_group is None else a.per_group,
        "out_of_grammar": DEFAULT_OUT_OF_GRAMMAR if a.out_of_grammar is None else a.out_of_grammar,
    }


def table_toy(a) -> int:
    """Toy world: rows original/negprompt/safree/t2vunlearning, ESR/PSR (%), metrics.json like the callback."""
    from unlearn.evaluation import run_evaluation

    out = Path(a.out or "runs/tables/toy")
    kw = _common(a)
    # the callback's evaluation: same held-out prompts, seeds and batches of 100, scored on the exact frames;
    # SAFREE's keywords are the concept and its synonyms, as the callback takes them from the data module
    concept = a.concept or "red ring"
    keywords = a.safree_keywords
    if keywords is None:
        try:
            from unlearn.toyworld.grammar import synonym_phrases

            keywords = [concept, *synonym_phrases(concept)]
        except ImportError:
            keywords = [concept]
    kw.update(
        safree_keywords=keywords,
        backbone=a.backbone or "toy-cogvideox",
        torch_dtype=a.dtype or "float32",
        store_frames=True,
        batch_size=a.batch_size or 100,
    )
    results = run_evaluation(
        out,
        "toyworld",
        _rows(a, a.adapters[0] if a.adapters else None),
        adapters=a.adapters[0] if a.adapters else None,
        refusal=a.refusal,
        concept=concept,
        metrics=["classification"],
        classifier=a.classifier or "toyworld",
        suite_options=_toy_suite_options(a, concept),
        **kw,
    )
    print((out / "metrics.md").read_text())
    print(f"wrote {out / 'metrics.json'} (rows: {', '.join(results['rows'])})")
    return 0


def table_nudity(a) -> int:
    """Table 1: nudity rate (%) per prompt set and method; Figure 5: frames per NudeNet label."""
    from unlearn.evaluation import plots, run_evaluation
    from unlearn.evaluation.tables import nudity_label_table, table1_nudity

    sets = _pairs(a.suites, "--suites")
    if not sets:
        raise SystemExit(
            "error: nudity needs --suites NAME=SUITE [...] (e.g. gen=prompts.jsonl ring-a-bell=ring_a_bell:rab.csv)"
        )
    out = Path(a.out or "runs/tables/nudity")
    adapters = a.adapters[0] if a.adapters else None
    by_set, labels = {}, {}
    for name, suite in sets.items():
        r = run_evaluation(
            out / _slug(name),
            suite,
            _rows(a, adapters),
            adapters=adapters,
            refusal=a.refusal,
            safree_keywords=a.safree_keywords,
            concept=a.concept or "nudity",
            metrics=["nudity"],
            nudity_threshold=a.nudity_threshold,
            nudity_protocol=a.nudity_protocol,
            suite_options={"limit": a.limit} if a.limit else None,
            **_common(a),
        )
        by_set[name] = {m: row["nudity"] for m, row in r["rows"].items()}
        labels[name] = r["settings"]["nudity"]
    fig_set = a.figure_set or list(sets)[-1]
    md = table1_nudity(by_set) + f"\nFrames per label, {fig_set} (Figure 5):\n\n" + nudity_label_table(by_set[fig_set])
    plots.nudity_label_histogram(
        {m: r["label_frames"] for m, r in by_set[fig_set].items()},
        out / "figure5.png",
        title=f"{fig_set}: frames per NudeNet label",
    )
    _write_table(out, "Table 1: nudity rate (%)", md, {"nudity_rate": by_set, "settings": labels})
    return 0


def table_objects(a) -> int:
    """Table 2: ESR-1/5, PSR-1/5 per erased ImageNet class (one adapters folder per class)."""
    from unlearn.evaluation import run_evaluation
    from unlearn.evaluation.tables import classification_by_class, table2_objects

    per_class = _pairs(a.adapters, "--adapters") if a.adapters and "=" in a.adapters[0] else {}
    classes = list(per_class) or list(a.classes or [])
    if not classes:
        raise SystemExit('error: objects needs --adapters "CLASS=FOLDER" (repeat per class) or --classes')
    for c in classes:
        per_class.setdefault(c, None)
    out = Path(a.out or "runs/tables/objects")
    r = run_evaluation(
        out,
        a.suite or "builtin:imagenet10",
        _per_concept_rows(a, per_class),
        metrics=["classification"],
        classifier=a.classifier or "efficientnet-lite2",
        erased_classes=classes,
        suite_options={"per_label": a.per_label} if a.per_label else None,
        **{**_common(a), "num_frames": a.num_frames or (None if a.tiny else 17)},
    )
    by_class = classification_by_class(r["rows"], r.get("erased_class"))
    table = {c: {r["methods"][m]["kind"]: row for m, row in rows.items()} for c, rows in by_class.items()}
    _write_table(out, "Table 2: object erasure (%)", table2_objects(table), {"rows": table, "settings": r["settings"]})
    return 0


def table_faces(a) -> int:
    """Table 3: ID similarity on the erased identity (↓) and on the preserved ones (↑)."""
    from unlearn.evaluation import run_evaluation
    from unlearn.evaluation.scoring import erased_vs_preserved
    from unlearn.evaluation.tables import table3_faces

    per_id = _pairs(a.adapters, "--adapters") if a.adapters and "=" in a.adapters[0] else {}
    idents = list(per_id) or list(a.classes or [])
    if not idents:
        raise SystemExit('error: faces needs --adapters "IDENTITY=FOLDER" (repeat per identity) or --classes')
    if not a.references:
        raise SystemExit("error: faces needs --references DIR (one sub-folder of face images per identity)")
    for i in idents:
        per_id.setdefault(i, None)
    out = Path(a.out or "runs/tables/faces")
    r = run_evaluation(
        out,
        a.suite or "builtin:faces",
        _per_concept_rows(a, per_id),
        metrics=["identity"],
        references=a.references,
        embedder=a.embedder,
        suite_options={"per_label": a.per_label} if a.per_label else None,
        **{**_common(a), "num_frames": a.num_frames or (None if a.tiny else 17)},
    )
    table: dict[str, dict[str, Any]] = {}
    for ident in idents:
        for m, row in r["rows"].items():
            spec = r["methods"][m]
            if spec["kind"] == "original" or spec.get("concept") == ident:
                per = row["identity"]["id_per_identity"]
                table.setdefault(ident, {})[spec["kind"]] = {
                    **erased_vs_preserved(per, ident),
                    "face_rate": row["identity"]["face_rate"],
                }
    _write_table(
        out, "Table 3: faces, ID similarity (cosine)", table3_faces(table), {"rows": table, "settings": r["settings"]}
    )
    return 0


def table_benign(a) -> int:
    """Table 6: benign content — CLIPScore and subject consistency per method."""
    from unlearn.evaluation import run_evaluation
    from unlearn.evaluation.tables import table6_benign

    out = Path(a.out or "runs/tables/benign")
    adapters = a.adapters[0] if a.adapters else None
    r = run_evaluation(
        out,
        a.suite or "builtin:imagenet10",
        _rows(a, adapters),
        adapters=adapters,
        refusal=a.refusal,
        safree_keywords=a.safree_keywords,
        concept=a.concept,
        metrics=["clip", "consistency"],
        clip_model=a.clip_model,
        clip_pretrained=a.clip_pretrained,
        suite_options={"per_label": a.per_label or 2},
        **_common(a),
    )
    _write_table(
        out,
        "Table 6: benign content",
        table6_benign(r["rows"]),
        {
            "rows": {m: {k: row[k] for k in ("clip", "consistency")} for m, row in r["rows"].items()},
            "settings": r["settings"],
        },
    )
    return 0


#: Table 1 of the paper (nudity rate %, per backbone and prompt set; "Ours" is the paper's T2VUnlearning), for the
#: ``table1`` command's "paper" and "difference" columns. Object Class / Subject Consistency (VBench, HunyuanVideo
#: only) are not measured here.
PAPER_TABLE1: dict[str, dict[str, dict[str, float]]] = {
    "cogvideox-2b": {
        "gen": {"original": 57.10, "negprompt": 36.00, "safree": 32.43, "ours": 19.73},
        "ring_a_bell": {"original": 30.25, "negprompt": 11.75, "safree": 14.23, "ours": 6.97},
    },
    "cogvideox-5b": {
        "gen": {"original": 61.80, "negprompt": 46.35, "safree": 35.12, "ours": 16.47},
        "ring_a_bell": {"original": 42.50, "negprompt": 14.91, "safree": 10.64, "ours": 2.74},
    },
    "hunyuanvideo": {
        "gen": {"original": 78.08, "negprompt": 55.35, "safree": 48.37, "ours": 12.73},
        "ring_a_bell": {"original": 69.85, "negprompt": 56.73, "safree": 50.48, "ours": 20.71},
    },
}
TABLE1_ROWS = ["original", "negprompt", "safree", "t2vunlearning", "t2vunlearning_official"]


def table1(a) -> int:
    """Table 1 as the paper lays it out for one backbone: nudity rate (%) on Gen and Ring-A-Bell for the rows
    original, negprompt, safree, t2vunlearning (ours, ``--adapters``) and t2vunlearning_official (the authors'
    released adapters, ``--official``), with the paper's number and the difference beside each. Prompt sets: the
    authors' ``evaluation/data`` (``--data``, your clone: Gen = ``gen_cogvideox`` or ``gen_hunyuan``); nudity counted
    as the authors do (``--nudity-protocol paper``)."""
    from unlearn.evaluation import run_evaluation

    if not a.data:
        raise SystemExit(
            "error: table1 needs --data: the authors' evaluation/data folder (clone "
            "github.com/TobisawaMisakii/T2VUnlearning; its prompts are not shipped)"
        )
    backbone = a.backbone
    family = "hunyuanvideo" if "hunyuan" in backbone else "cogvideox-5b" if backbone.endswith("5b") else "cogvideox-2b"
    paper = PAPER_TABLE1[family]
    sets = {"gen": "gen_hunyuan" if family == "hunyuanvideo" else "gen_cogvideox", "ring_a_bell": "ring_a_bell"}
    adapters = a.adapters[0] if a.adapters else None
    rows = [r for r in (a.rows or TABLE1_ROWS) if r in TABLE1_ROWS]
    if adapters is None:
        rows = [r for r in rows if r != "t2vunlearning"]
    rows = [
        r if r != "t2vunlearning_official" else f"t2vunlearning_official={a.official}"
        for r in rows
        if r != "t2vunlearning_official" or a.official
    ]
    out = Path(a.out or f"runs/tables/table1_{_slug(backbone)}")
    results: dict[str, dict[str, Any]] = {}
    settings: dict[str, Any] = {}
    for column, name in sets.items():
        options: dict[str, Any] = {"set": name}
        if a.limit:
            options["limit"] = a.limit
        r = run_evaluation(
            out / column,
            f"t2vunlearning:{a.data}",
            rows,
            adapters=adapters,
            safree_keywords=a.safree_keywords,
            concept="nudity",
            metrics=["nudity"],
            nudity_protocol=a.nudity_protocol,
            nudity_threshold=a.nudity_threshold,
            suite_options=options,
            **_common(a),
        )
        results[column] = {m: row["nudity"] for m, row in r["rows"].items()}
        settings[column] = r["settings"]["nudity"]
    head = ["method"]
    for column in sets:
        label = {"gen": "Gen", "ring_a_bell": "Ring-A-Bell"}[column]
        head += [f"{label} ours ↓", f"{label} paper", f"{label} Δ"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    data: dict[str, Any] = {}
    order = [r.split("=")[0] for r in rows]  # the paper's row order
    for method in sorted(dict.fromkeys(m for col in results.values() for m in col), key=order.index):
        cells, data[method] = [method], {}
        for column in sets:
            row = results[column].get(method, {})
            ours = row.get("nudity_rate")
            key = "ours" if method.startswith("t2vunlearning") else method
            ref = paper[column].get(key)
            diff = None if ours is None or ref is None else ours - ref
            cells += [
                "–" if ours is None else f"{ours:.2f}",
                "–" if ref is None else f"{ref:.2f}",
                "–" if diff is None else f"{diff:+.2f}",
            ]
            data[method][column] = {"ours": ours, "paper": ref, "difference": diff, "frames": row.get("frames")}
        lines.append("| " + " | ".join(cells) + " |")
    md = "\n".join(lines) + "\n"
    md += (
        f"\nBackbone {backbone}; prompt sets: the authors' {sets['gen']} and ring_a_bell (evaluation/data); "
        f"nudity rate = % of frames, protocol {a.nudity_protocol!r}. The paper's Object Class / Subject Consistency (VBench) are "
        "not measured here.\n"
    )
    _write_table(out, f"Table 1 ({backbone}): nudity rate (%)", md, {"table1": data, "settings": settings})
    return 0


TABLES = {
    "table1": table1,
    "toy": table_toy,
    "nudity": table_nudity,
    "objects": table_objects,
    "faces": table_faces,
    "benign": table_benign,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("table", choices=sorted(TABLES))
    p.add_argument("--out", help="output folder (default runs/tables/<table>)")
    p.add_argument("--backbone", help="registry name (default: toy-cogvideox for toy, else cogvideox-2b)")
    p.add_argument("--pretrained", help="hub id or local diffusers folder")
    p.add_argument("--tiny", action="store_true", help="tiny random backbone (smoke test)")
    p.add_argument("--dtype", help="torch dtype of the backbone (default bfloat16; float32 for toy)")
    p.add_argument("--backbone-kwargs", type=json.loads, help="family-specific loading options as JSON")
    p.add_argument(
        "--adapters",
        action="append",
        help="t2vunlearning adapters: FOLDER (toy/nudity/benign) or NAME=FOLDER, repeated (objects/faces)",
    )
    p.add_argument("--refusal", help="refusal-vector folder (adds the refusal_vector row)")
    p.add_argument(
        "--safree-keywords",
        nargs="+",
        help="toy/nudity/benign: SAFREE's concept keywords (default: "
        "the concept; toy: the concept and its synonyms; objects/faces: each erased class/identity)",
    )
    p.add_argument("--rows", nargs="+", help="rows to run (default: original negprompt safree t2vunlearning)")
    p.add_argument("--concept", help="erased concept (toy: red ring; nudity: nudity)")
    p.add_argument("--classes", nargs="+", help="objects/faces: erased classes/identities without adapters")
    p.add_argument("--suite", help="prompt suite (objects and benign: builtin:imagenet10; faces: builtin:faces)")
    p.add_argument("--suites", nargs="+", help="nudity: NAME=SUITE per prompt set (columns of Table 1)")
    p.add_argument("--figure-set", help="nudity: the prompt set of Figure 5 (default: the last)")
    p.add_argument("--classifier", help="toyworld | efficientnet-lite2 | resnet50:WEIGHTS")
    p.add_argument("--references", help="faces: folder with one sub-folder of face images per identity")
    p.add_argument("--embedder", default="sface", choices=["sface", "arcface"])
    p.add_argument("--clip-model", default="ViT-B-32")
    p.add_argument("--clip-pretrained", default="openai", help="open_clip tag or local checkpoint file")
    p.add_argument(
        "--nudity-protocol",
        default="paper",
        choices=["paper", "exposed9_0.6"],
        help="nudity count: paper = the authors' 8 labels at NudeNet's floor (Table 1); exposed9_0.6 the stricter",
    )
    p.add_argument("--nudity-threshold", type=float, default=None, help="score cut (default: the protocol's)")
    p.add_argument("--data", help="table1: the T2VUnlearning authors' evaluation/data folder (your clone)")
    p.add_argument("--official", help="table1: the authors' released adapters (eraser_weights.pt + eraser_config.json)")
    p.add_argument("--per-class", type=int, default=2, help="toy: in-grammar prompts per class outside --per-group")
    p.add_argument(
        "--per-group",
        type=json.loads,
        help="toy: in-grammar prompts per class of the concept's groups, "
        'JSON (default: the evaluation callback\'s, {"erased": 32, "neighbour": 4})',
    )
    p.add_argument(
        "--out-of-grammar",
        type=json.loads,
        help="toy: out-of-grammar prompts per class, JSON (default: "
        'the evaluation callback\'s, {"erased": 16, "neighbour": 2, "other": 1}; {} for none)',
    )
    p.add_argument("--per-label", type=int, help="keep the first N prompts of each class/identity")
    p.add_argument("--limit", type=int, help="nudity: keep the first N prompts of each set")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--num-frames", type=int, help="default: the backbone's (objects/faces: 17)")
    p.add_argument("--height", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--guidance", type=float)
    p.add_argument("--batch-size", type=int, help="videos generated together (default 4; toy: 100, as the callback)")
    p.add_argument("--device")
    p.add_argument("--store-frames", action="store_true", help="score exact frames instead of the mp4 files")
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if a.table != "toy":
        a.backbone = a.backbone or "cogvideox-2b"
        a.dtype = a.dtype or "bfloat16"
    try:
        return TABLES[a.table](a)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
