"""Erase a *shape* in every colour ("ring"): the toy-world case where prompt augmentation matters.

The class concept of the main config ("red ring") looks the same whatever the prompt says, and training on its
name alone erases the held-out rich prompts fully (``docs/results/toy_ablation.md``). A one-word concept covers
several looks: "ring" is a ring in any of five colours. Its bare name does not show them: the shipped model
draws "a ring" as a yellow ring every time (and "a hoop" as a white one), so pseudo data from the name alone
covers one colour, while augmented prompts ("a small crimson hoop drifts left ...") cover all five. That is
the paper's premise for prompt augmentation (a bare "nudity" shows a narrow slice of what rich prompts produce).

For each variant this trains adapters with ``unlearn fit`` on ``configs/toy_shapes.yaml`` with the concept set
to ``--concept`` (the ErasureEvaluation callback is left out: its ESR is per class), then evaluates all
variants on the same held-out rich prompts and seeds:

- ``ESR-1`` (shape level): share of frames generated for "<colour> <concept>" whose top-1 class is not any
  "<...> <concept>" class, over all colours and per colour (the colour the bare name produces first),
- ``PSR-1`` / ``PSR-5``: :class:`unlearn.evaluation.metrics.PreservationSuccessRate` over the classes that do not
express
  the concept (top-k of the exact class),
- the original model (adapters off) as the first row.

Usage: python benchmarks/toy_shape_concept.py [--concept ring] [--out runs/toy_shape_concept]
       [--only V ...] [--seeds 0 1 2] [--reuse] [--per-colour 12] [--per-class 4] [--name-samples 24] [--plan FILE]
       (2 CPU cores: ~1.5 min per training run, ~1 min per scored row; all variants × 3 seeds ~65 min.
       Scored rows are cached in each run folder, keyed by the prompts and the adapter weights)
Writes ``OUT/shape_concept.md`` and ``.json``; the committed copy is ``docs/results/toy_shape_concept.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toy_ablation import VARIANTS as ABLATION_VARIANTS  # noqa: E402  (one definition of each variant's overrides)

VARIANTS: dict[str, list[str]] = {
    name: ABLATION_VARIANTS[name]
    for name in (
        "full",
        "no_augmentation",
        "bare_synonyms",
        "no_localization",
        "no_preservation",
        "eta_low",
        "eta_high",
        "no_augmentation_eta_low",
    )
}


def concept_config(base: str, concept: str, out: Path) -> Path:
    """``base`` with the concept replaced and only the adapter checkpoint callback kept (written to ``out``)."""
    import yaml

    cfg = yaml.safe_load(Path(base).read_text())
    cfg["data"]["init_args"]["concept"] = concept
    cfg["trainer"]["callbacks"] = [
        c for c in cfg["trainer"]["callbacks"] if c["class_path"].endswith("AdapterCheckpoint")
    ]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def eval_prompts(concept: str, per_colour: int, per_class: int, seed: int = 4321):
    """Held-out rich prompts: ``per_colour`` for each colour of the concept, ``per_class`` for every other
    class. Returns ``[(prompt, class name, seed)]``."""
    import numpy as np

    from unlearn.toyworld.grammar import COLOURS, SHAPES, class_contains, rich_prompt

    rng = np.random.default_rng(seed)
    out = []
    for colour in COLOURS:
        for shape in SHAPES:
            for _ in range(per_colour if class_contains(f"{colour} {shape}", concept) else per_class):
                r = rich_prompt(rng, split="heldout", shape=shape, colour=colour, second_prob=0.0)
                out.append((r.text, f"{colour} {shape}", seed + len(out)))
    return out


def evaluate(
    run_dirs: dict[str, Path], concept: str, prompts: list, batch: int = 50, name_samples: int = 24
) -> dict[str, dict]:
    import torch

    from unlearn.backbones import build_backbone
    from unlearn.evaluation.evaluators import toyworld_classifier
    from unlearn.evaluation.metrics import PreservationSuccessRate, top1_columns
    from unlearn.evaluation.metrics.frames import to_float
    from unlearn.methods.t2vunlearning.export import load_adapters
    from unlearn.toyworld.grammar import class_contains, concept_kind

    kind = concept_kind(concept)
    clf = toyworld_classifier()
    names = list(clf.class_names)

    # the classifier's outcomes ("nothing", "off-palette <shape>") are never the concept: such a frame is erased
    outcomes = len(getattr(clf, "outcome_names", ()))
    concept_idx = torch.tensor([class_contains(c, concept) for c in names] + [False] * outcomes)
    kept = [c for c in names if not class_contains(c, concept)]
    bb = build_backbone("toy-cogvideox")

    def score(generate) -> dict:
        psr = PreservationSuccessRate(preserved_classes=kept, classifier=clf, top_k=(1, 5))
        erased: dict[str, list[bool]] = {}
        for s in range(0, len(prompts), batch):
            chunk = prompts[s : s + batch]
            with torch.no_grad():
                videos = bb.decode(generate([p for p, _, _ in chunk], [sd for _, _, sd in chunk]))
            for video, (_, cls, _) in zip(videos, chunk):
                if class_contains(cls, concept):
                    top1 = top1_columns(clf.logits(to_float(video)), outcomes)
                    erased.setdefault(cls.split()[0] if kind["shape"] else cls.split()[1], []).extend(
                        (~concept_idx[top1]).tolist()
                    )
                else:
                    psr.update(video[None], cls)
        p = psr.compute()
        every = [x for v in erased.values() for x in v]
        return {
            "esr@1": 100 * statistics.mean(every),
            "esr@1_by": {k: 100 * statistics.mean(v) for k, v in erased.items()},
            "psr@1": 100 * float(p["psr@1"]),
            "psr@5": 100 * float(p["psr@5"]),
            "erased_frames": len(every),
            "preserved_frames": int(p["frames"]),
            "per_class_top1": {k: 100 * v["top1"] for k, v in psr.per_class().items()},
        }

    # what pseudo data from the name alone can show: the classes the original model draws for it
    from collections import Counter

    from unlearn.toyworld.grammar import concept_name_prompt

    bare = " ".join(concept_name_prompt(concept))
    with torch.no_grad():
        frames = bb.decode(bb.sample([bare] * name_samples, list(range(name_samples)))).flatten(0, 1)
    drawn = Counter(names[i] for i in clf.logits(to_float(frames)).argmax(-1).tolist())
    print(f"'{bare}' is drawn as {dict(drawn)}", flush=True)

    # each row is cached next to its adapters, keyed by the prompts and the adapter weights, so that adding a
    # variant (or resuming) scores only what is new
    key = hashlib.sha256(json.dumps([concept, prompts]).encode()).hexdigest()[:16]
    rows = {}
    for name, run in run_dirs.items():
        adapters_sha = hashlib.sha256((run / "adapters" / "adapters.safetensors").read_bytes()).hexdigest()[:16]
        cached = run / "shape_eval.json"
        if cached.is_file():
            c = json.loads(cached.read_text())
            if c.get("prompts") == key and c.get("adapters") == adapters_sha:
                rows.setdefault("original model", c["original"])
                rows[name] = c["row"]
                print(f"[{name}] cached: ESR-1 {rows[name]['esr@1']:.1f}  PSR-1 {rows[name]['psr@1']:.1f}", flush=True)
                continue
        switch, _ = load_adapters(run / "adapters")
        bb.attach_switch(switch)
        if "original model" not in rows:
            with switch.disabled():
                rows["original model"] = score(bb.sample)
        rows[name] = score(bb.sample)
        cached.write_text(
            json.dumps(
                {"prompts": key, "adapters": adapters_sha, "row": rows[name], "original": rows["original model"]}
            )
        )
        print(f"[{name}] ESR-1 {rows[name]['esr@1']:.1f}  PSR-1 {rows[name]['psr@1']:.1f}", flush=True)
    return {"rows": rows, "concept_name_drawn_as": dict(drawn.most_common()), "kept_classes": kept}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/toy_shapes.yaml")
    ap.add_argument("--concept", default="ring", help="a one-word concept: a shape or a colour of the toy world")
    ap.add_argument("--out", default="runs/toy_shape_concept")
    ap.add_argument("--only", nargs="*", default=None, help="run only these variants")
    ap.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0],
        help="training seeds (seed_everything and the data seed: prompts drawn and pseudo-data noise)",
    )
    ap.add_argument("--reuse", action="store_true", help="keep runs whose folder already holds adapters/")
    ap.add_argument("--per-colour", type=int, default=12, help="held-out prompts per look of the concept")
    ap.add_argument("--per-class", type=int, default=4, help="held-out prompts per kept class (PSR)")
    ap.add_argument("--name-samples", type=int, default=24, help="videos of the concept's name alone (what it draws)")
    ap.add_argument(
        "--plan", default=None, help="write the held-out prompts and the training config to this JSON and stop"
    )
    args = ap.parse_args()
    from unlearn.toyworld.grammar import concept_name_prompt, parse_concept

    if len(parse_concept(args.concept)) != 1:
        sys.exit(
            f"--concept must be one shape or colour word (got {args.concept!r}); "
            "class concepts are benchmarks/toy_ablation.py's job"
        )
    out = Path(args.out)
    config = concept_config(args.config, args.concept, out)
    if args.plan:  # what every variant and run is trained with and scored on; nothing is trained
        plan = {"config": str(config), "prompts": eval_prompts(args.concept, args.per_colour, args.per_class)}
        Path(args.plan).write_text(json.dumps(plan, indent=1))
        return
    names = args.only or list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    runs: dict[str, Path] = {}
    seconds = {}
    for name in names:
        for seed in args.seeds:
            key, run_dir = f"{name}/seed{seed}", out / name / f"seed{seed}"
            runs[key] = run_dir
            start = time.perf_counter()
            if args.reuse and (run_dir / "adapters").is_dir():
                print(f"[{key}] reusing {run_dir / 'adapters'}", flush=True)
            else:
                cmd = [
                    sys.executable,
                    "-m",
                    "unlearn.cli",
                    "fit",
                    "--config",
                    str(config),
                    "--trainer.default_root_dir",
                    str(run_dir),
                    "--trainer.logger.init_args.save_dir",
                    str(run_dir),
                    "--seed_everything",
                    str(seed),
                    "--data.init_args.seed",
                    str(seed),
                    *VARIANTS[name],
                ]
                print(f"[{key}] {' '.join(cmd[2:])}", flush=True)
                subprocess.run(cmd, check=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
            seconds[key] = round(time.perf_counter() - start, 1)
    prompts = eval_prompts(args.concept, args.per_colour, args.per_class)
    result = evaluate(runs, args.concept, prompts, name_samples=args.name_samples)
    rows, drawn = result["rows"], result["concept_name_drawn_as"]
    looks = list(rows["original model"]["esr@1_by"])
    bare = " ".join(concept_name_prompt(args.concept))

    def mean(values: list[float]) -> str:
        return f"{statistics.mean(values):.1f}"

    lines = [
        f"Concept erased: **{args.concept}** (every class that contains it); {len(prompts)} held-out rich "
        f"prompts × 4 frames, the same for every row. ESR-1 = share of the concept's frames whose top-1 class "
        f"does not contain it; PSR-k over the {len(result['kept_classes'])} classes without it. Means over training "
        "seeds "
        f"{args.seeds}; per-seed ESR-1 in the last column. The original model draws the concept's name "
        f"alone, '{bare}' (the no-augmentation training prompt), as "
        + ", ".join(f"{k} ({v} of {sum(drawn.values())} frames)" for k, v in drawn.items())
        + ".",
        "",
        "| variant | ESR-1 | "
        + " | ".join(f"ESR-1 {k}" for k in looks)
        + " | PSR-1 | PSR-5 | ESR-1 per seed | overrides |",
        "|---|---|" + "---|" * len(looks) + "---|---|---|---|",
    ]
    o = rows["original model"]
    lines.append(
        f"| original model | {o['esr@1']:.1f} | "
        + " | ".join(f"{o['esr@1_by'][k]:.1f}" for k in looks)
        + f" | {o['psr@1']:.1f} | {o['psr@5']:.1f} | – | – |"
    )
    for name in names:
        rs = [rows[f"{name}/seed{s}"] for s in args.seeds]
        lines.append(
            f"| {name} | {mean([r['esr@1'] for r in rs])} | "
            + " | ".join(mean([r["esr@1_by"][k] for r in rs]) for k in looks)
            + f" | {mean([r['psr@1'] for r in rs])} | {mean([r['psr@5'] for r in rs])} | "
            + " / ".join(f"{r['esr@1']:.1f}" for r in rs)
            + f" | {' '.join(VARIANTS[name]) or 'config with the concept set'} |"
        )
    (out / "shape_concept.json").write_text(
        json.dumps(
            {
                "concept": args.concept,
                "concept_name_prompt": bare,
                "concept_name_drawn_as": drawn,
                "prompts": len(prompts),
                "kept_classes": result["kept_classes"],
                "seeds": args.seeds,
                "rows": rows,
                "seconds": seconds,
                "overrides": {n: VARIANTS[n] for n in names},
            },
            indent=2,
        )
    )
    (out / "shape_concept.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
