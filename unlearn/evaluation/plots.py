"""Figures of an evaluation run, drawn with matplotlib's Agg canvas (no display, no pyplot global state).

* :func:`classification_bars` — ESR-1/5 and PSR-1/5 per method, one panel per erased class (Table 2).
* :func:`nudity_label_histogram` — frames per exposed NudeNet label per method (the paper's Figure 5).
* :func:`frame_grid` — one frame of each video, methods (rows) × prompts (columns).
* :func:`class_delta_bars` — every kept class's top-1 change against the original row, one bar per method
  (:func:`class_delta_panels` reads it from rows that :func:`unlearn.evaluation.scoring.compare_rows` compared).

Each writes a PNG atomically (temporary file + rename) of an exact pixel size and returns its path.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unlearn.io import atomic_path

ROW_KEYS = ("esr@1", "esr@5", "psr@1", "psr@5")


def _figure(width: int, height: int, dpi: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if width < 16 or height < 16:
        raise ValueError(f"figure size {width}x{height} px is too small")
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | os.PathLike, dpi: int) -> Path:
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)  # no bbox_inches: the PNG has exactly the figure's pixel size
    return path


def classification_bars(
    rows: Mapping[str, Mapping[str, Any]],
    path: str | os.PathLike,
    *,
    keys: Sequence[str] = ROW_KEYS,
    size: tuple[int, int] = (960, 540),
    dpi: int = 100,
    title: str | None = None,
) -> Path:
    """Grouped bars of ``keys`` (percent) per method, each with its 95% interval (the row's ``intervals``) as an
    error bar.

    ``rows``: ``{method: row}`` for one erased class, or ``{erased class: {method: row}}`` (one panel per
    class, five panels a line). ``size``: PNG width × height in pixels.
    """
    if not rows:
        raise ValueError("classification_bars got no rows")
    first = next(iter(rows.values()))
    panels = {"": rows} if any(k in first for k in keys) else dict(rows)
    methods = list(dict.fromkeys(m for p in panels.values() for m in p))
    fig = _figure(size[0], size[1], dpi)
    ncols = min(len(panels), 5)
    nrows = math.ceil(len(panels) / ncols)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    width = 0.8 / max(1, len(methods))
    cmap = [f"C{i % 10}" for i in range(len(methods))]
    for ax, (cls, panel) in zip(axes.flat, panels.items()):
        x = np.arange(len(keys))
        for j, m in enumerate(methods):
            row = panel.get(m, {})
            vals = [float(row.get(k) or 0.0) for k in keys]
            # the 95% interval of each number (row["intervals"]) as an error bar; none where a row has none
            ivs = [(row.get("intervals") or {}).get(k) or {} for k in keys]
            err = np.array(
                [
                    [
                        max(0.0, v - float(iv["low"])) if iv.get("low") is not None else 0.0,
                        max(0.0, float(iv["high"]) - v) if iv.get("high") is not None else 0.0,
                    ]
                    for v, iv in zip(vals, ivs, strict=True)
                ]
            ).T
            ax.bar(
                x + (j - (len(methods) - 1) / 2) * width,
                vals,
                width,
                label=m,
                color=cmap[j],
                yerr=err if err.any() else None,
                capsize=2,
                error_kw={"elinewidth": 0.8},
            )
        ax.set_xticks(x, [k.upper().replace("@", "-") for k in keys], fontsize=8)
        ax.set_ylim(0, 100)
        if cls:
            ax.set_title(cls, fontsize=9)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_axis_off()
    axes.flat[0].set_ylabel("%")
    axes.flat[0].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.set_layout_engine("constrained")
    return _save(fig, path, dpi)


def class_delta_panels(
    rows: Mapping[str, Mapping[str, Any]], erased_class: str | None = None
) -> dict[str, dict[str, dict[str, float]]]:
    """``{panel title: {method: {class: Δ top-1}}}`` from rows that carry ``vs_reference.per_class``: one panel
    per split (``"<split>"``, or ``"<erased class>, <split>"`` when ``rows`` is ``{erased class: {method: row}}``
    with several classes). Methods without ``vs_reference`` (the reference itself) are left out, and so are the
    erased classes (``compare_rows`` never compares them); panels without a compared method too."""
    first = next(iter(rows.values()), {})
    by_class = {erased_class or "": rows} if any(k in first for k in (*ROW_KEYS, "per_class_top1")) else dict(rows)
    panels: dict[str, dict[str, dict[str, float]]] = {}
    for cls, methods in by_class.items():
        parts: dict[str | None, dict[str, Mapping[str, Any]]] = {}
        for m, r in methods.items():
            parts.setdefault(r.get("split"), {})[m] = r
            for sp, sr in (r.get("splits") or {}).items():
                parts.setdefault(sp, {})[m] = sr
        for sp, part in parts.items():
            deltas = {
                m: {c: float(v["delta"]) for c, v in r["vs_reference"]["per_class"].items()}
                for m, r in part.items()
                if (r.get("vs_reference") or {}).get("per_class")
            }
            if deltas:
                where = (sp or "all prompts").replace("_", "-")
                panels[f"{cls}, {where}" if cls and len(by_class) > 1 else where] = deltas
    return panels


def class_delta_bars(
    panels: Mapping[str, Mapping[str, Mapping[str, float]]],
    path: str | os.PathLike,
    *,
    reference: str = "original",
    colors: Mapping[str, str] | None = None,
    size: tuple[int, int] | None = None,
    dpi: int = 100,
    title: str | None = None,
) -> Path:
    """Per-class top-1 change (points) against ``reference``: one bar group per class, one bar (colour) per method,
    a line at zero; classes sorted by their worst change across methods, worst first. One panel per entry of
    ``panels`` ``{panel title: {method: {class: Δ}}}`` (:func:`class_delta_panels`), stacked vertically, each titled
    "<panel>: Δ top-1 vs <reference>". ``colors``: ``{method: matplotlib colour}`` (default ``C0``, ``C1``, ... in
    order of first appearance); give the rows' order with the reference first to match :func:`classification_bars`'
    colours. ``size``: PNG width × height in pixels (default 1200 × max(540, 320 · panels))."""
    panels = {k: v for k, v in panels.items() if v}
    if not panels:
        raise ValueError("class_delta_bars got no per-class deltas (no row was compared with a reference row)")
    methods = list(dict.fromkeys(m for p in panels.values() for m in p))
    colors = dict(colors or {})
    for j, m in enumerate(methods):
        colors.setdefault(m, f"C{j % 10}")
    size = size or (1200, max(540, 320 * len(panels)))
    fig = _figure(size[0], size[1], dpi)
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (name, deltas) in zip(axes, panels.items()):
        classes = list(dict.fromkeys(c for d in deltas.values() for c in d))
        worst = {c: min(d[c] for d in deltas.values() if c in d) for c in classes}
        classes.sort(key=lambda c: (worst[c], c))
        x = np.arange(len(classes))
        width = 0.8 / len(deltas)
        for j, (m, d) in enumerate(deltas.items()):
            vals = [d.get(c, np.nan) for c in classes]
            ax.bar(x + (j - (len(deltas) - 1) / 2) * width, vals, width, label=m, color=colors[m])
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(x, classes, rotation=60, ha="right", fontsize=7)
        ax.set_xlim(-0.6, len(classes) - 0.4)
        ax.set_ylabel("Δ top-1 (points)", fontsize=8)
        ax.set_title(f"{name}: Δ top-1 vs {reference}", fontsize=9)
        ax.legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.set_layout_engine("constrained")
    return _save(fig, path, dpi)


def nudity_label_histogram(
    label_frames: Mapping[str, Mapping[str, int]],
    path: str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
    size: tuple[int, int] = (960, 540),
    dpi: int = 100,
    title: str | None = None,
) -> Path:
    """Horizontal grouped bars: frames in which NudeNet finds each label, per method (Figure 5).

    ``label_frames``: ``{method: {label: frames}}`` (``results["rows"][m]["nudity"]["label_frames"]``).
    """
    if not label_frames:
        raise ValueError("nudity_label_histogram got no methods")
    methods = list(label_frames)
    labels = list(labels or dict.fromkeys(lab for d in label_frames.values() for lab in d))
    if not labels:
        raise ValueError("nudity_label_histogram got no labels")
    fig = _figure(size[0], size[1], dpi)
    ax = fig.subplots()
    y = np.arange(len(labels))
    h = 0.8 / len(methods)
    for j, m in enumerate(methods):
        vals = [int(label_frames[m].get(lab, 0)) for lab in labels]
        ax.barh(y + (j - (len(methods) - 1) / 2) * h, vals, h, label=m, color=f"C{j % 10}")
    ax.set_yticks(y, [lab.replace("_EXPOSED", "").replace("_", " ").lower() for lab in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("frames")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.set_layout_engine("constrained")
    return _save(fig, path, dpi)


def frame_grid(
    videos: Mapping[str, Sequence[Any]],
    path: str | os.PathLike,
    *,
    prompts: Sequence[str] | None = None,
    frame: int | str = "middle",
    cell: int = 128,
    label_width: int = 160,
    header_height: int = 48,
    dpi: int = 100,
) -> Path:
    """Grid of frames: one row per method, one column per prompt.

    ``videos``: ``{method: [video, ...]}``, each video ``[F, H, W, 3]`` uint8 (or float in [0, 1]).
    ``frame``: ``"middle"``, ``"first"``, ``"last"`` or an index. Each cell is ``cell`` px wide and
    ``round(cell · H / W)`` px high (H, W of the first video); the PNG is
    ``label_width + columns · cell`` × ``header_height + rows · cell_height`` pixels.
    """
    if not videos or not any(len(v) for v in videos.values()):
        raise ValueError("frame_grid got no videos")
    methods = list(videos)
    cols = max(len(v) for v in videos.values())
    first = np.asarray(next(v for vs in videos.values() for v in vs))
    if first.ndim != 4 or first.shape[0] == 0:
        raise ValueError(f"frame_grid needs videos [F, H, W, 3] with F > 0; got shape {list(first.shape)}")
    cell_w, cell_h = int(cell), max(1, round(cell * first.shape[1] / first.shape[2]))
    width, height = label_width + cols * cell_w, header_height + len(methods) * cell_h
    fig = _figure(width, height, dpi)
    for r, m in enumerate(methods):
        y0 = header_height + r * cell_h
        fig.text(6 / width, 1 - (y0 + cell_h / 2) / height, m, ha="left", va="center", fontsize=9)
        for c, video in enumerate(videos[m]):
            v = np.asarray(video)
            if v.ndim != 4 or v.shape[0] == 0:
                raise ValueError(
                    f"frame_grid: video {c} of {m!r} has shape {list(v.shape)}; expected [F, H, W, 3], F > 0"
                )
            i = {"middle": v.shape[0] // 2, "first": 0, "last": v.shape[0] - 1}.get(frame, frame)
            img = v[min(int(i), v.shape[0] - 1)]
            if img.dtype != np.uint8:
                img = np.clip(np.rint(img.astype(np.float32) * 255), 0, 255).astype(np.uint8)
            x0 = label_width + c * cell_w
            ax = fig.add_axes((x0 / width, 1 - (y0 + cell_h) / height, cell_w / width, cell_h / height))
            ax.imshow(img, interpolation="nearest", aspect="auto")
            ax.set_axis_off()
    for c, prompt in enumerate((prompts or [])[:cols]):
        chars = max(8, cell_w // 6)
        text = "\n".join(textwrap.wrap(prompt, chars)[:3])
        fig.text(
            (label_width + (c + 0.5) * cell_w) / width,
            1 - (header_height / 2) / height,
            text,
            ha="center",
            va="center",
            fontsize=6,
        )
    return _save(fig, path, dpi)
