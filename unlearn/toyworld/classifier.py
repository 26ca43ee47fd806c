"""Small CNN frame classifier over the toy world's 25 shape x colour classes.

Trained on freshly rendered frames of every background, motion, size and with/without the second object;
the label is the main object's ``"<colour> <shape>"`` (:func:`unlearn.toyworld.render.class_names`).
Saved as ``config.json`` (class names in order, input size) + ``model.safetensors``.

Use :meth:`ShapeColourClassifier.logits` / :meth:`ShapeColourClassifier.topk` on frames ``[N, H, W, 3]`` (uint8 0..255 or
float in [0, 1]); :meth:`ShapeColourClassifier.predict_video` classifies every frame of videos ``[B, F, H, W, 3]``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from unlearn.io import atomic_folder

from .render import class_names, random_scene, render_video


class ShapeColourClassifier(nn.Module):
    """3 conv blocks + linear head. ``forward`` takes float frames ``[N, 3, H, W]`` in [0, 1]."""

    config_name = "config.json"
    weights_name = "model.safetensors"

    def __init__(self, classes: Sequence[str] = (), height: int = 16, width: int = 16, width_mult: int = 32):
        super().__init__()
        classes = list(classes) or class_names()
        self.config = dict(classes=classes, height=height, width=width, width_mult=width_mult)
        c = width_mult
        self.net = nn.Sequential(
            nn.Conv2d(3, c, 3, padding=1), nn.GELU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.GELU(),
            nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.GELU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.GELU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(8 * c, 128), nn.GELU(),
            nn.Linear(128, len(classes)),
        )

    @property
    def classes(self) -> list[str]:
        return self.config["classes"]

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
        """Logits ``[N, 25]`` of frames ``[N, H, W, 3]`` (uint8 or float in [0, 1])."""
        x = self.to_input(frames).to(next(self.parameters()).device)
        return torch.cat([self(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]) if len(x) else x.new_zeros(0, len(self.classes))

    @torch.no_grad()
    def topk(self, frames, k: int = 5) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
        """``(values [N, k], indices [N, k], names)`` of the top-k logits of each frame."""
        v, i = self.logits(frames).topk(k, dim=-1)
        return v, i, [[self.classes[j] for j in row] for row in i.tolist()]

    @torch.no_grad()
    def predict(self, frames) -> list[str]:
        """Top-1 class name of each frame."""
        return [self.classes[j] for j in self.logits(frames).argmax(-1).tolist()]

    @torch.no_grad()
    def predict_video(self, videos) -> list[list[str]]:
        """Top-1 class names of every frame of videos ``[B, F, H, W, 3]``."""
        v = videos if isinstance(videos, torch.Tensor) else torch.as_tensor(np.asarray(videos))
        B, F = v.shape[:2]
        names = self.predict(v.reshape(B * F, *v.shape[2:]))
        return [names[b * F:(b + 1) * F] for b in range(B)]

    # ------------------------------------------------------------------ serialisation (safetensors + JSON)
    def save_pretrained(self, path: str | os.PathLike) -> None:
        from safetensors.torch import save_file

        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        (p / self.config_name).write_text(json.dumps({"class": "ShapeColourClassifier", **self.config}, indent=2))
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, str(p / self.weights_name))

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, map_location: str = "cpu") -> "ShapeColourClassifier":
        from safetensors.torch import load_file

        p = Path(path)
        cfg = json.loads((p / cls.config_name).read_text())
        cfg.pop("class", None)
        m = cls(**cfg)
        m.load_state_dict(load_file(str(p / cls.weights_name), device=map_location))
        return m.eval()


def rendered_frames(n_videos: int, seed: int, height: int = 16, width: int = 16, frames: int = 4,
                    second_prob: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """``(frames uint8 [n_videos*frames, H, W, 3], labels [n_videos*frames])`` of random scenes."""
    rng = np.random.default_rng(seed)
    names = class_names()
    xs, ys = [], []
    for _ in range(n_videos):
        s = random_scene(rng, second_prob=second_prob)
        xs.append(render_video(s, height, width, frames))
        ys += [names.index(s.label)] * frames
    return np.concatenate(xs), np.asarray(ys)


def accuracy(clf: ShapeColourClassifier, frames: np.ndarray, labels: np.ndarray) -> float:
    return float((clf.logits(frames).argmax(-1).numpy() == labels).mean())


def train_classifier(height: int = 16, width: int = 16, frames: int = 4, steps: int = 1200, batch_videos: int = 32,
                     lr: float = 2e-3, seed: int = 1, eval_videos: int = 1000, eval_seed: int = 987654,
                     log: Callable[[str], None] = print) -> tuple[ShapeColourClassifier, dict]:
    """Train on freshly rendered frames; measure top-1 on frames of a new seed. Returns (model, stats)."""
    torch.manual_seed(seed)
    rng_seed = seed * 1_000_003
    clf = ShapeColourClassifier(height=height, width=width)
    opt = torch.optim.AdamW(clf.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    t0 = time.time()
    clf.train()
    for step in range(steps):
        x, y = rendered_frames(batch_videos, rng_seed + step, height, width, frames)
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
    xe, ye = rendered_frames(eval_videos, eval_seed, height, width, frames)
    acc = accuracy(clf, xe, ye)
    log(f"[classifier] top-1 on {len(ye)} fresh frames (seed {eval_seed}): {acc:.4f}")
    stats = {"fresh_top1": acc, "fresh_frames": int(len(ye)), "fresh_seed": eval_seed, "steps": steps,
             "batch_videos": batch_videos, "lr": lr, "seed": seed, "train_wall_s": round(time.time() - t0, 1)}
    return clf, stats


def main(argv=None) -> int:
    """``python -m unlearn.toyworld.classifier --out DIR``: train and save the classifier alone."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m unlearn.toyworld.classifier")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--height", type=int, default=16)
    p.add_argument("--width", type=int, default=16)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    clf, stats = train_classifier(height=a.height, width=a.width, steps=a.steps, seed=a.seed)
    with atomic_folder(a.out) as tmp:
        clf.save_pretrained(tmp)
        (tmp / "train_stats.json").write_text(json.dumps(stats, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
