"""Evaluate a pretrained toy model: generate videos for prompts and classify every frame.

``unlearn toyworld evaluate DIR [--per_class 4 --steps 30 --guidance 5 --threads 2]``
evaluates the weights folder ``DIR`` (written by ``pretrain``; it must hold ``classifier/``, or pass
``--classifier``) and prints the accuracies. ``--write_record true`` stores them in ``DIR``'s
``pretrain_record.json``/``PRETRAIN_RECORD.md``; ``--finalize_to OUT`` then renames ``DIR`` to ``OUT``
(used to finish a pretraining whose own evaluation failed).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from unlearn.io import atomic_path, atomic_write_text, dir_size

from .backbone import ToyCogVideoXBackbone
from .classifier import ShapeColourClassifier, label_parts
from .grammar import bare_prompt, heldout_eval_prompts
from .render import COLOURS, SHAPES


def generate(
    backbone,
    prompts: Sequence[str],
    num_inference_steps: int = 30,
    guidance_scale: float = 5.0,
    seed: int = 0,
    batch_size: int = 64,
) -> torch.Tensor:
    """uint8 videos ``[N, F, H, W, 3]`` for ``prompts`` with the backbone's own sampler (CFG against the empty
    prompt); prompt ``i`` gets noise seed ``seed + i``."""
    out = []
    for i in range(0, len(prompts), batch_size):
        chunk = list(prompts[i : i + batch_size])
        lat = backbone.sample(
            chunk,
            [seed + i + k for k in range(len(chunk))],
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
        )
        out.append(backbone.decode(lat))
    return torch.cat(out)


def score_frames(clf, videos: torch.Tensor, labels: Sequence[str]) -> dict:
    """Top-1 accuracy of the classifier on every frame: shape x colour, shape only, colour only."""
    B, F = videos.shape[:2]
    pred = clf.predict(videos.reshape(B * F, *videos.shape[2:]))  # a class, "nothing" or "off-palette <shape>"
    truth = [label for label in labels for _ in range(F)]
    sc = np.mean([p == t for p, t in zip(pred, truth)])
    sh = np.mean([label_parts(p)[1] == label_parts(t)[1] for p, t in zip(pred, truth)])
    co = np.mean([label_parts(p)[0] == label_parts(t)[0] for p, t in zip(pred, truth)])
    per_class: dict[str, list[bool]] = {}
    for p, t in zip(pred, truth):
        per_class.setdefault(t, []).append(p == t)
    outcomes = {o: int(sum(p == o for p in pred)) for o in getattr(clf, "outcomes", [])}
    return {
        "top1_shape_colour": float(sc),
        "top1_shape": float(sh),
        "top1_colour": float(co),
        "frames": int(B * F),
        "prompts": int(B),
        "outcome_frames": {o: n for o, n in outcomes.items() if n},
        "per_class": {k: round(float(np.mean(v)), 3) for k, v in sorted(per_class.items())},
    }


def save_grid(videos: torch.Tensor, path, scale: int = 4, per_row: int = 5) -> None:
    """PNG of videos ``[N, F, H, W, 3]``: each video's frames side by side, ``per_row`` videos per row."""
    from PIL import Image

    v = videos.numpy()
    N, F, H, W, _ = v.shape
    tiles = [np.pad(np.concatenate(list(x), axis=1), ((1, 1), (1, 3), (0, 0)), constant_values=128) for x in v]
    while len(tiles) % per_row:
        tiles.append(np.full_like(tiles[0], 128))
    rows = [np.concatenate(tiles[i : i + per_row], axis=1) for i in range(0, len(tiles), per_row)]
    img = np.concatenate(rows, axis=0)
    with atomic_path(path, suffix=Path(path).suffix or ".png") as tmp:
        Image.fromarray(img).resize((img.shape[1] * scale, img.shape[0] * scale), Image.NEAREST).save(tmp, format="PNG")


def evaluate_generation(
    backbone,
    clf,
    per_class: int = 4,
    num_inference_steps: int = 30,
    guidance_scale: float = 5.0,
    seed: int = 2,
    include_bare: bool = True,
    prompt_seed: int = 1234,
    grid_path=None,
) -> dict:
    """Held-out rich prompts (``per_class`` per shape x colour class, no second object) and, optionally, the 25
    bare prompts; returns accuracies and a few examples."""
    recs = heldout_eval_prompts(per_class=per_class, seed=prompt_seed)
    vids = generate(backbone, [r.text for r in recs], num_inference_steps, guidance_scale, seed)
    res = score_frames(clf, vids, [r.scene.label for r in recs])
    if grid_path:
        save_grid(vids, grid_path)
    res.update(
        num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale,
        seed=seed,
        prompt_seed=prompt_seed,
        examples=[r.text for r in recs[:: max(1, len(recs) // 8)]],
    )
    if include_bare:
        bare = [bare_prompt(s, c) for c in COLOURS for s in SHAPES]
        bv = generate(backbone, [r.text for r in bare], num_inference_steps, guidance_scale, seed + 100_000)
        b = score_frames(clf, bv, [r.scene.label for r in bare])
        b.pop("per_class")
        res["bare"] = b
    return res


def write_record(folder: Path, record: dict) -> None:
    """``pretrain_record.json`` and a human-readable ``PRETRAIN_RECORD.md``."""
    atomic_write_text(folder / "pretrain_record.json", json.dumps(record, indent=2))
    lines = ["# Toy world pretraining record", "", "```", record["command"], "```", ""]
    lines += [
        f"- seed {record['seed']}, steps {record['steps']}, batch {record['batch_size']}, lr {record['lr']}, "
        f"threads {record['threads']}, torch {record['torch']}"
    ]
    tr = record["train"]
    lines += [
        f"- denoiser training: {tr['train_wall_s'] / 60:.1f} min wall, final loss (ema) {tr['final_loss_ema']}, "
        f"{tr['parameters'] / 1e6:.3f} M parameters (transformer + text encoder)"
    ]
    if "classifier" in record:
        c = record["classifier"]
        if "fresh_top1" in c:
            lines += [
                f"- classifier: top-1 {c['fresh_top1']:.4f} on {c['fresh_frames']} freshly rendered frames "
                f"(seed {c['fresh_seed']}), {c.get('wall_s', 0) / 60:.1f} min"
                + (f" (`{c['command']}`)" if c.get("command") else "")
            ]
        if "negatives" in c:
            n = c["negatives"]
            lines += [
                f"- classifier outcomes (`nothing`, `off-palette <shape>`, trained on rendered negatives): blank "
                f"frames called `nothing` {n['blank_nothing']:.4f} (called a class {n['blank_called_a_class']:.4f}) "
                f"of {n['blank_frames']}; off-palette objects called off-palette {n['off_palette_any']:.4f}, with "
                f"their shape {n['off_palette_shape']:.4f} of {n['off_palette_frames']}; palette colours jittered "
                f"by up to {c['negative_shares']['palette_jitter']:.0f}: top-1 {c['fresh_jittered_top1']:.4f}"
            ]
    if "generation_eval" in record:
        g = record["generation_eval"]
        lines += [
            f"- generated frames, held-out rich prompts ({g['prompts']} prompts, {g['frames']} frames, "
            f"{g['num_inference_steps']} steps, CFG {g['guidance_scale']}): shape x colour "
            f"**{g['top1_shape_colour']:.3f}**, shape {g['top1_shape']:.3f}, colour {g['top1_colour']:.3f}"
            + (f"; frames classified as outcomes: {g['outcome_frames']}" if g.get("outcome_frames") else "")
        ]
        if g.get("note"):
            lines += [f"  ({g['note']})"]
        if "bare" in g:
            b = g["bare"]
            lines += [
                f"- generated frames, bare prompts: shape x colour {b['top1_shape_colour']:.3f}, "
                f"shape {b['top1_shape']:.3f}, colour {b['top1_colour']:.3f}"
            ]
    if "total_wall_s" in record:
        lines += [
            f"- total wall time {record['total_wall_s'] / 60:.1f} min; weights "
            f"{record.get('weights_bytes', 0) / 1e6:.2f} MB"
        ]
    lines += ["", "Full numbers: `pretrain_record.json`."]
    atomic_write_text(folder / "PRETRAIN_RECORD.md", "\n".join(lines) + "\n")


def evaluate_pretrained(
    weights: str,
    classifier: str | None = None,
    per_class: int = 4,
    steps: int | None = None,
    guidance: float | None = None,
    seed: int = 2,
    threads: int = 2,
    grid: str | None = None,
    write_record: bool = False,
    finalize_to: str | None = None,
) -> int:
    """Generate held-out prompts with a pretrained toy model and classify every frame
    (``unlearn toyworld evaluate WEIGHTS``).

    Args:
        weights: weights folder written by ``unlearn toyworld pretrain``.
        classifier: classifier folder (default: ``WEIGHTS/classifier``).
        per_class: held-out prompts per class.
        steps: sampling steps (default: world.json).
        guidance: CFG scale (default: world.json).
        seed: base seed of the videos.
        threads: torch CPU threads.
        grid: also write a PNG of the generated held-out videos here.
        write_record: store the accuracies in the folder's ``pretrain_record.json`` / ``PRETRAIN_RECORD.md``.
        finalize_to: then rename the folder to this path.
    """
    a = argparse.Namespace(**locals())
    torch.set_num_threads(a.threads)
    d = Path(a.weights)
    backbone = ToyCogVideoXBackbone.load(str(d))
    world = backbone.world
    clf = ShapeColourClassifier.from_pretrained(a.classifier or d / "classifier")
    t0 = time.time()
    res = evaluate_generation(
        backbone,
        clf,
        per_class=a.per_class,
        num_inference_steps=a.steps or world.num_inference_steps,
        guidance_scale=a.guidance if a.guidance is not None else world.guidance_scale,
        seed=a.seed,
        grid_path=a.grid,
    )
    res["wall_s"] = round(time.time() - t0, 1)
    print(json.dumps({k: v for k, v in res.items() if k != "per_class"}, indent=2))
    print("per class:", res["per_class"])
    if a.write_record:
        rec_path = d / "pretrain_record.json"
        record = json.loads(rec_path.read_text()) if rec_path.exists() else {}
        record.pop("error", None)
        record["generation_eval"] = res
        if a.classifier:
            clf.save_pretrained(d / "classifier")
            stats = Path(a.classifier) / "train_stats.json"  # written by `unlearn toyworld classifier`
            if stats.is_file():
                record["classifier"] = {
                    **json.loads(stats.read_text()),
                    "note": "trained separately and attached with `unlearn toyworld evaluate <weights> "
                    "--classifier <dir> --write_record true`",
                }
        record["weights_bytes"] = dir_size(d)
        _write_record(d, record)
    if a.finalize_to:
        out = Path(a.finalize_to)
        if out.exists():
            raise SystemExit(f"{out} exists; move it away first")
        d.rename(out)
        print(f"moved {d} -> {out}")
    return 0


_write_record = write_record  # the parameter of evaluate_pretrained shadows the name
