"""Small CNN frame classifier over the toy world's 25 shape x colour classes, plus explicit outcomes.

Trained on freshly rendered frames of every background, motion, size and with/without the second object;
the label is the main object's ``"<colour> <shape>"`` (:func:`unlearn.toyworld.render.class_names`).

Outcomes (columns after the 25 classes, :func:`outcome_names`): ``"nothing"`` (no main object: background
only, perhaps with the small second object, or a plain grey frame) and ``"off-palette <shape>"`` (an object
whose colour is none of the five palette colours: at least :data:`OFF_PALETTE_MIN_DISTANCE` from each in
RGB). They are learned from rendered negatives, so a blank frame is never forced into a class and a
recoloured ring is reported as a ring of another colour rather than as the nearest palette colour.
Palette colours are jittered by up to :data:`PALETTE_JITTER` in training, so slightly-off generated colours
keep their class; colours between the two distances are not trained on (the network decides).

Saved as ``config.json`` (class names and outcomes in order, input size) + ``model.safetensors``. A
classifier saved before outcomes existed loads with none (25 columns).

Use :meth:`ShapeColourClassifier.logits` / :meth:`ShapeColourClassifier.topk` on frames ``[N, H, W, 3]`` (uint8 0..255
or
float in [0, 1]); :meth:`ShapeColourClassifier.predict_video` classifies every frame of videos ``[B, F, H, W, 3]``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from unlearn.io import atomic_folder, atomic_path, atomic_write_text

from .render import BACKGROUNDS, COLOUR_RGB, SHAPES, class_names, random_scene, render_video

NOTHING = "nothing"
OFF_PALETTE = "off-palette"
#: RGB distance from every palette colour at which a colour counts as off-palette (training negatives)
OFF_PALETTE_MIN_DISTANCE = 70.0
#: largest RGB offset of a palette colour that still trains as that colour
PALETTE_JITTER = 35.0
#: an off-palette training colour is at least this far from every grey 0..125 (the backgrounds' range), so
#: the object stays visible; a grey object on a grey background would be a "nothing" frame with a wrong label
OFF_PALETTE_MIN_CONTRAST = 60.0


def outcome_names() -> list[str]:
    """The classifier's outcomes after the 25 classes: ``"nothing"``, then ``"off-palette <shape>"`` per shape."""
    return [NOTHING] + [f"{OFF_PALETTE} {s}" for s in SHAPES]


def label_parts(name: str) -> tuple[str | None, str | None]:
    """``(colour, shape)`` of a column name: ``"red ring"`` -> ``("red", "ring")``, ``"off-palette ring"`` ->
    ``("off-palette", "ring")``, ``"nothing"`` -> ``(None, None)``."""
    if name == NOTHING:
        return None, None
    colour, _, shape = name.partition(" ")
    return colour, shape


#: categories of :func:`replacement_category`, in table order
REPLACEMENT_CATEGORIES: tuple[str, ...] = (
    "prompted class",
    "same shape, other colour",
    "same shape, off-palette colour",
    "same colour, other shape",
    "other shape, off-palette colour",
    "other class",
    "nothing",
)


def replacement_category(prompted: str, predicted: str) -> str:
    """What a frame prompted for class ``prompted`` shows instead, from the classifier's top-1 ``predicted``
    (one of :data:`REPLACEMENT_CATEGORIES`)."""
    if predicted == prompted:
        return "prompted class"
    if predicted == NOTHING:
        return "nothing"
    colour, shape = label_parts(prompted)
    p_colour, p_shape = label_parts(predicted)
    if p_colour == OFF_PALETTE:
        return "same shape, off-palette colour" if p_shape == shape else "other shape, off-palette colour"
    if p_shape == shape:
        return "same shape, other colour"
    if p_colour == colour:
        return "same colour, other shape"
    return "other class"


def colour_distance_to_palette(rgb) -> float:
    """Smallest RGB distance from ``rgb`` to a palette colour."""
    c = np.asarray(rgb, dtype=np.float64)
    return float(min(np.linalg.norm(c - np.asarray(p, dtype=np.float64)) for p in COLOUR_RGB.values()))


def is_off_palette(rgb) -> bool:
    """Whether ``rgb`` is an off-palette colour in the classifier's training sense."""
    return colour_distance_to_palette(rgb) >= OFF_PALETTE_MIN_DISTANCE


def _distance_to_greys(rgb: np.ndarray) -> float:
    v = float(np.clip(rgb.mean(), 0.0, 125.0))  # nearest grey level within the backgrounds' range
    return float(np.linalg.norm(rgb - v))


def off_palette_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """A random visible off-palette RGB (uniform in the cube, rejected near the palette and near dark greys)."""
    while True:
        c = rng.uniform(0, 255, size=3)
        if is_off_palette(c) and _distance_to_greys(c) >= OFF_PALETTE_MIN_CONTRAST:
            return tuple(float(x) for x in c)


def jittered_palette_colour(rng: np.random.Generator, colour: str) -> tuple[float, float, float]:
    """The palette colour of ``colour`` moved by a random offset of length <= :data:`PALETTE_JITTER`."""
    d = rng.normal(size=3)
    d *= PALETTE_JITTER * rng.uniform() ** (1 / 3) / np.linalg.norm(d)  # uniform in the ball
    return tuple(float(x) for x in np.clip(np.asarray(COLOUR_RGB[colour], dtype=np.float64) + d, 0, 255))


class ShapeColourClassifier(nn.Module):
    """3 conv blocks + linear head. ``forward`` takes float frames ``[N, 3, H, W]`` in [0, 1] and returns one
    logit per class, then one per outcome (``labels`` = ``classes`` + ``outcomes``).

    Args:
        classes: class names, one per output (empty: the toy world's 25 shape x colour classes).
        height: frame height the classifier is trained at (recorded in its config).
        width: frame width the classifier is trained at (recorded in its config).
        width_mult: channels of the first conv block (the others are multiples of it).
        outcomes: columns after the classes that are no class (:func:`outcome_names`: ``"nothing"``,
            ``"off-palette <shape>"``); default none (the layout of classifiers saved before outcomes).
    """

    config_name = "config.json"
    weights_name = "model.safetensors"

    def __init__(
        self,
        classes: Sequence[str] = (),
        height: int = 16,
        width: int = 16,
        width_mult: int = 32,
        outcomes: Sequence[str] = (),
    ):
        super().__init__()
        classes = list(classes) or class_names()
        outcomes = list(outcomes)
        overlap = set(classes) & set(outcomes)
        if overlap:
            raise ValueError(f"outcomes {sorted(overlap)} are also classes; an outcome is what is no class")
        self.config = dict(classes=classes, height=height, width=width, width_mult=width_mult, outcomes=outcomes)
        c = width_mult
        self.net = nn.Sequential(
            nn.Conv2d(3, c, 3, padding=1),
            nn.GELU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(2 * c, 2 * c, 3, padding=1),
            nn.GELU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * c, 2 * c, 3, padding=1),
            nn.GELU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(8 * c, 128),
            nn.GELU(),
            nn.Linear(128, len(classes) + len(outcomes)),
        )

    @property
    def classes(self) -> list[str]:
        return self.config["classes"]

    @property
    def outcomes(self) -> list[str]:
        return self.config["outcomes"]

    @property
    def labels(self) -> list[str]:
        """Names of the logit columns: the classes, then the outcomes."""
        return self.classes + self.outcomes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - 0.35) / 0.3)

    @staticmethod
    def to_input(frames) -> torch.Tensor:
        """Frames ``[N, H, W, 3]`` (uint8, or float in [0, 1]) -> float ``[N, 3, H, W]`` in [0, 1]."""
        x = frames if isinstance(frames, torch.Tensor) else torch.as_tensor(np.asarray(frames))
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return x.movedim(-1, -3)

    @torch.no_grad()
    def logits(self, frames, batch_size: int = 1024) -> torch.Tensor:
        """Logits ``[N, len(labels)]`` of frames ``[N, H, W, 3]`` (uint8 or float in [0, 1])."""
        x = self.to_input(frames).to(next(self.parameters()).device)
        return (
            torch.cat([self(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
            if len(x)
            else x.new_zeros(0, len(self.labels))
        )

    @torch.no_grad()
    def topk(self, frames, k: int = 5) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
        """``(values [N, k], indices [N, k], names)`` of the top-k logits of each frame."""
        v, i = self.logits(frames).topk(k, dim=-1)
        return v, i, [[self.labels[j] for j in row] for row in i.tolist()]

    @torch.no_grad()
    def predict(self, frames) -> list[str]:
        """Top-1 label of each frame (a class or an outcome such as ``"nothing"``)."""
        return [self.labels[j] for j in self.logits(frames).argmax(-1).tolist()]

    @torch.no_grad()
    def predict_video(self, videos) -> list[list[str]]:
        """Top-1 class names of every frame of videos ``[B, F, H, W, 3]``."""
        v = videos if isinstance(videos, torch.Tensor) else torch.as_tensor(np.asarray(videos))
        B, F = v.shape[:2]
        names = self.predict(v.reshape(B * F, *v.shape[2:]))
        return [names[b * F : (b + 1) * F] for b in range(B)]

    # ------------------------------------------------------------------ serialisation (safetensors + JSON)
    def save_pretrained(self, path: str | os.PathLike) -> None:
        from safetensors.torch import save_file

        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        with atomic_path(p / self.weights_name) as tmp:
            save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, str(tmp))
        atomic_write_text(p / self.config_name, json.dumps({"class": "ShapeColourClassifier", **self.config}, indent=2))

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, map_location: str = "cpu") -> ShapeColourClassifier:
        from safetensors.torch import load_file

        p = Path(path)
        cfg = json.loads((p / cls.config_name).read_text())
        cfg.pop("class", None)
        cfg.setdefault("outcomes", [])  # saved before outcomes existed
        m = cls(**cfg)
        m.load_state_dict(load_file(str(p / cls.weights_name), device=map_location))
        return m.eval()


def rendered_frames(
    n_videos: int,
    seed: int,
    height: int = 16,
    width: int = 16,
    frames: int = 4,
    second_prob: float = 0.2,
    nothing_prob: float = 0.0,
    off_palette_prob: float = 0.0,
    jitter: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """``(frames uint8 [n_videos*frames, H, W, 3], labels [n_videos*frames])`` of random scenes.

    Labels index ``class_names() + outcome_names()``. ``nothing_prob``: share of videos without the main
    object (background only, or one flat grey frame in a fifth of them), labelled ``"nothing"``;
    ``off_palette_prob``: share whose main object has a random off-palette colour, labelled
    ``"off-palette <shape>"``; ``jitter``: palette colours get a random offset up to :data:`PALETTE_JITTER`."""
    rng = np.random.default_rng(seed)
    names = class_names() + outcome_names()
    xs, ys = [], []
    for _ in range(n_videos):
        s = random_scene(rng, second_prob=second_prob)
        u = rng.random()
        if u < nothing_prob:
            if rng.random() < 0.2:
                grey = rng.uniform(0, 130)
                xs.append(np.full((frames, height, width, 3), round(grey), dtype=np.uint8))
            else:
                xs.append(render_video(s, height, width, frames, draw_object=False))
            label = NOTHING
        elif u < nothing_prob + off_palette_prob:
            xs.append(render_video(s, height, width, frames, colour_rgb=off_palette_colour(rng)))
            label = f"{OFF_PALETTE} {s.shape}"
        else:
            rgb = jittered_palette_colour(rng, s.colour) if jitter else None
            xs.append(render_video(s, height, width, frames, colour_rgb=rgb))
            label = s.label
        ys += [names.index(label)] * frames
    return np.concatenate(xs), np.asarray(ys)


def blank_frames(seed: int = 0, height: int = 16, width: int = 16) -> np.ndarray:
    """One background-only frame of every background (uint8 ``[len(BACKGROUNDS), H, W, 3]``)."""
    rng = np.random.default_rng(seed)
    return np.stack(
        [
            render_video(random_scene(rng, background=b, second_colour=None), height, width, 1, draw_object=False)[0]
            for b in BACKGROUNDS
        ]
    )


def accuracy(clf: ShapeColourClassifier, frames: np.ndarray, labels: np.ndarray) -> float:
    return float((clf.logits(frames).argmax(-1).numpy() == labels).mean())


#: shares of "nothing" and off-palette videos in the classifier's training batches
NOTHING_PROB = 0.1
OFF_PALETTE_PROB = 0.12


def outcome_accuracy(
    clf: ShapeColourClassifier, n_videos: int, seed: int, height: int = 16, width: int = 16, frames: int = 4
) -> dict:
    """Accuracy on fresh negatives: blank frames called ``"nothing"``, off-palette objects called
    ``"off-palette <their shape>"`` (and called off-palette at all), and blank frames ever called a class."""
    xb, yb = rendered_frames(n_videos, seed, height, width, frames, nothing_prob=1.0)
    xo, yo = rendered_frames(n_videos, seed + 1, height, width, frames, off_palette_prob=1.0)
    pb = clf.logits(xb).argmax(-1).numpy()
    po = clf.logits(xo).argmax(-1).numpy()
    n_classes = len(clf.classes)
    off = [i for i, name in enumerate(clf.labels) if name.startswith(OFF_PALETTE)]
    return {
        "blank_nothing": float((pb == yb).mean()),
        "blank_frames": int(len(yb)),
        "blank_called_a_class": float((pb < n_classes).mean()),
        "off_palette_shape": float((po == yo).mean()),
        "off_palette_any": float(np.isin(po, off).mean()),
        "off_palette_frames": int(len(yo)),
        "seed": seed,
    }


def train_classifier(
    height: int = 16,
    width: int = 16,
    frames: int = 4,
    steps: int = 1200,
    batch_videos: int = 32,
    lr: float = 2e-3,
    seed: int = 1,
    eval_videos: int = 1000,
    eval_seed: int = 987654,
    negatives: bool = True,
    log: Callable[[str], None] = print,
) -> tuple[ShapeColourClassifier, dict]:
    """Train on freshly rendered frames; measure top-1 on frames of a new seed. Returns (model, stats).

    ``negatives``: also learn the outcomes (:func:`outcome_names`) from rendered blank and off-palette frames,
    with palette colours jittered (the shipped classifier); ``False`` gives the 25-class classifier of old."""
    torch.manual_seed(seed)
    rng_seed = seed * 1_000_003
    clf = ShapeColourClassifier(height=height, width=width, outcomes=outcome_names() if negatives else ())
    opt = torch.optim.AdamW(clf.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    neg = dict(nothing_prob=NOTHING_PROB, off_palette_prob=OFF_PALETTE_PROB, jitter=True) if negatives else {}
    t0 = time.time()
    clf.train()
    for step in range(steps):
        x, y = rendered_frames(batch_videos, rng_seed + step, height, width, frames, **neg)
        # photometric noise so the classifier tolerates generated frames (slight blur/noise/colour shift)
        xt = ShapeColourClassifier.to_input(x)
        xt = (xt + 0.03 * torch.randn_like(xt) + 0.03 * torch.randn(len(xt), 3, 1, 1)).clamp(0, 1)
        loss = nn.functional.cross_entropy(clf(xt), torch.as_tensor(y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 250 == 0:
            log(f"[classifier] step {step + 1}/{steps} loss {loss.item():.4f} ({time.time() - t0:.0f} s)")
    clf.eval()
    train_wall = round(time.time() - t0, 1)
    xe, ye = rendered_frames(eval_videos, eval_seed, height, width, frames)
    acc = accuracy(clf, xe, ye)
    log(f"[classifier] top-1 on {len(ye)} fresh frames (seed {eval_seed}): {acc:.4f}")
    stats = {
        "fresh_top1": acc,
        "fresh_frames": int(len(ye)),
        "fresh_seed": eval_seed,
        "steps": steps,
        "batch_videos": batch_videos,
        "lr": lr,
        "seed": seed,
        "train_wall_s": train_wall,
        "outcomes": list(clf.outcomes),
    }
    if negatives:
        xj, yj = rendered_frames(eval_videos, eval_seed + 7, height, width, frames, jitter=True)
        stats["fresh_jittered_top1"] = accuracy(clf, xj, yj)
        stats["negatives"] = outcome_accuracy(clf, eval_videos // 4, eval_seed + 11, height, width, frames)
        stats["negative_shares"] = {
            "nothing": NOTHING_PROB,
            "off_palette": OFF_PALETTE_PROB,
            "off_palette_min_distance": OFF_PALETTE_MIN_DISTANCE,
            "palette_jitter": PALETTE_JITTER,
        }
        log(f"[classifier] jittered palette {stats['fresh_jittered_top1']:.4f}; negatives {stats['negatives']}")
    return clf, stats


def train_classifier_command(
    out: str,
    steps: int = 1200,
    seed: int = 1,
    threads: int = 1,
    height: int = 16,
    width: int = 16,
    no_negatives: bool = False,
) -> int:
    """Train the shape x colour frame classifier alone and save it (``unlearn toyworld classifier --out DIR``).

    Args:
        out: output folder (replaced atomically).
        steps: training steps.
        seed: seed of the rendered training frames.
        threads: torch CPU threads.
        height: frame height.
        width: frame width.
        no_negatives: 25 classes only: no 'nothing' / 'off-palette' outcomes (the classifier of old).
    """
    a = argparse.Namespace(**locals())
    torch.set_num_threads(a.threads)
    t0 = time.time()
    clf, stats = train_classifier(
        height=a.height, width=a.width, steps=a.steps, seed=a.seed, negatives=not a.no_negatives
    )
    stats["wall_s"] = round(time.time() - t0, 1)
    defaults = {k: v.default for k, v in inspect.signature(train_classifier_command).parameters.items()}
    given = [f"--{k} {v}" for k, v in vars(a).items() if v != defaults[k]]
    stats["command"] = " ".join(["unlearn toyworld classifier", *given])
    stats["torch"] = torch.__version__
    with atomic_folder(a.out) as tmp:
        clf.save_pretrained(tmp)
        (tmp / "train_stats.json").write_text(json.dumps(stats, indent=2))
    return 0
