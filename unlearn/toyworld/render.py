"""Deterministic procedural renderer of the toy world's short videos.

A :class:`SceneSpec` says what is in the video (shape, colour, motion, background, size, optional second
object); :func:`render_video` turns it into ``uint8`` frames of shape ``[F, H, W, 3]``. The only randomness
(sub-pixel start position, slight background tint) comes from ``SceneSpec.seed``, so the same spec always gives
the same frames.

Geometry is defined for a 16-pixel canvas and scaled with the resolution. Shapes are rasterised with 4x4
supersampling (anti-aliased edges), which keeps them distinguishable at 16x16.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

SHAPES: tuple[str, ...] = ("ring", "square", "cross", "bar", "dot")
COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow", "white")
MOTIONS: tuple[str, ...] = ("left", "right", "up", "down", "still")
BACKGROUNDS: tuple[str, ...] = ("dark", "light", "striped", "gradient")
SIZES: tuple[str, ...] = ("small", "medium", "large")

COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (225, 35, 35),
    "green": (40, 205, 40),
    "blue": (50, 90, 245),
    "yellow": (235, 225, 35),
    "white": (240, 240, 240),
}
# Multiplier of the base radius (5 px at 16 px resolution): a modest change.
SIZE_SCALE: dict[str, float] = {"small": 0.85, "medium": 1.0, "large": 1.15}
# Displacement per frame in pixels at 16 px resolution.
MOTION_VECTOR: dict[str, tuple[float, float]] = {  # (dx, dy), image coordinates (y down)
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
    "still": (0.0, 0.0),
}
BASE_RADIUS_16 = 5.0
SECOND_RADIUS_16 = 1.7
SUPERSAMPLE = 4


@dataclass(frozen=True)
class SceneSpec:
    """What one toy video shows. ``second_colour`` set means a small dot of that colour sits in a corner."""

    shape: str
    colour: str
    motion: str = "still"
    background: str = "dark"
    size: str = "medium"
    second_colour: str | None = None
    second_corner: int = 0  # 0..3: top-left, top-right, bottom-left, bottom-right
    seed: int = 0

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; expected one of {SHAPES}")
        if self.colour not in COLOURS:
            raise ValueError(f"unknown colour {self.colour!r}; expected one of {COLOURS}")
        if self.motion not in MOTIONS:
            raise ValueError(f"unknown motion {self.motion!r}; expected one of {MOTIONS}")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"unknown background {self.background!r}; expected one of {BACKGROUNDS}")
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}; expected one of {SIZES}")
        if self.second_colour is not None and self.second_colour not in COLOURS:
            raise ValueError(f"unknown second colour {self.second_colour!r}")
        if not 0 <= self.second_corner <= 3:
            raise ValueError("second_corner must be in 0..3")

    @property
    def label(self) -> str:
        """Class name of the main object, as the classifier names it: ``"<colour> <shape>"``."""
        return f"{self.colour} {self.shape}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SceneSpec:
        return cls(**d)


def class_names() -> list[str]:
    """The 25 shape x colour classes in a fixed order (colour-major): ``"red ring", "red square", ...``."""
    return [f"{c} {s}" for c in COLOURS for s in SHAPES]


def _coverage(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Boolean inside-mask of ``shape`` of radius ``r`` at offsets (dx, dy) from its centre."""
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == "ring":
        d = np.sqrt(dx * dx + dy * dy)
        return (d <= r) & (d >= 0.52 * r)
    if shape == "square":
        h = 0.8 * r
        return (ax <= h) & (ay <= h)
    if shape == "cross":
        w = 0.3 * r
        return ((ax <= r) & (ay <= w)) | ((ay <= r) & (ax <= w))
    if shape == "bar":
        return (ax <= r) & (ay <= 0.32 * r)
    if shape == "dot":
        return dx * dx + dy * dy <= (0.55 * r) ** 2
    raise ValueError(shape)


def _shape_alpha(shape: str, cx: float, cy: float, r: float, h: int, w: int) -> np.ndarray:
    """Anti-aliased alpha map [H, W] in [0, 1] of a shape centred at pixel coordinates (cx, cy)."""
    s = SUPERSAMPLE
    ys = (np.arange(h * s) + 0.5) / s
    xs = (np.arange(w * s) + 0.5) / s
    dy = ys[:, None] - cy
    dx = xs[None, :] - cx
    m = _coverage(shape, dx, dy, r).astype(np.float32)
    return m.reshape(h, s, w, s).mean(axis=(1, 3))


def _background(kind: str, h: int, w: int, tint: float) -> np.ndarray:
    """Float RGB background [H, W, 3] in 0..255. Contrast is kept low so every colour stays recognisable."""
    if kind == "dark":
        img = np.full((h, w), 22.0 + tint)
    elif kind == "light":  # "light" is mid-grey on purpose: white objects must stay visible on it
        img = np.full((h, w), 105.0 + tint)
    elif kind == "striped":
        period = max(2, round(4 * h / 16))
        rows = (np.arange(h) // (period // 2)) % 2
        img = np.where(rows[:, None] == 0, 28.0 + tint, 78.0 + tint) * np.ones((1, w))
    elif kind == "gradient":
        img = np.linspace(15.0, 100.0, h)[:, None] + tint + np.zeros((1, w))
    else:
        raise ValueError(kind)
    rgb = np.repeat(img[:, :, None], 3, axis=2)
    rgb[..., 2] += 4.0  # a faint cool cast, same for all backgrounds
    return rgb


def render_video(
    spec: SceneSpec,
    height: int = 16,
    width: int = 16,
    frames: int = 4,
    colour_rgb: tuple[float, float, float] | None = None,
    draw_object: bool = True,
) -> np.ndarray:
    """Render ``spec`` as ``uint8`` frames ``[frames, height, width, 3]``; deterministic given ``spec.seed``.

    ``colour_rgb`` paints the main object in that RGB instead of its palette colour (the classifier's
    off-palette and colour-jitter training frames); ``draw_object=False`` leaves the main object out (the
    classifier's "nothing" frames: background, and the second object if the spec has one)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(spec.seed) & 0xFFFFFFFF, 0x70F]))
    scale = min(height, width) / 16.0
    r = BASE_RADIUS_16 * scale * SIZE_SCALE[spec.size]
    vx, vy = MOTION_VECTOR[spec.motion]
    speed = scale
    jitter = 1.5 * scale
    cx0 = width / 2 + rng.uniform(-jitter, jitter)
    cy0 = height / 2 + rng.uniform(-jitter, jitter)
    tint = rng.uniform(-8.0, 8.0)
    bg = _background(spec.background, height, width, tint)
    colour = np.asarray(COLOUR_RGB[spec.colour] if colour_rgb is None else colour_rgb, dtype=np.float32)

    second = None
    if spec.second_colour is not None:
        r2 = SECOND_RADIUS_16 * scale
        margin = 2.2 * scale
        sx = margin if spec.second_corner in (0, 2) else width - margin
        sy = margin if spec.second_corner in (0, 1) else height - margin
        a2 = _shape_alpha("dot", sx, sy, r2 / 0.55, height, width)
        second = (a2, np.asarray(COLOUR_RGB[spec.second_colour], dtype=np.float32))

    out = np.empty((frames, height, width, 3), dtype=np.uint8)
    for k in range(frames):
        off = k - (frames - 1) / 2.0
        cx = cx0 + off * speed * vx
        cy = cy0 + off * speed * vy
        img = bg.copy()
        if second is not None:
            a2, c2 = second
            img = img * (1 - a2[..., None]) + c2 * a2[..., None]
        if draw_object:
            a = _shape_alpha(spec.shape, cx, cy, r, height, width)
            img = img * (1 - a[..., None]) + colour * a[..., None]
        out[k] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out


def render_batch(specs, height: int = 16, width: int = 16, frames: int = 4) -> np.ndarray:
    """Render several specs: ``uint8 [N, frames, height, width, 3]``."""
    return np.stack([render_video(s, height, width, frames) for s in specs])


def random_scene(rng: np.random.Generator, second_prob: float = 0.15, **fixed) -> SceneSpec:
    """A uniformly random scene; keyword arguments pin fields (e.g. ``shape="ring"``)."""
    d = dict(
        shape=SHAPES[rng.integers(len(SHAPES))],
        colour=COLOURS[rng.integers(len(COLOURS))],
        motion=MOTIONS[rng.integers(len(MOTIONS))],
        background=BACKGROUNDS[rng.integers(len(BACKGROUNDS))],
        size=SIZES[rng.integers(len(SIZES))],
        second_corner=int(rng.integers(4)),
        seed=int(rng.integers(2**31 - 1)),
    )
    d.update(fixed)
    if "second_colour" not in fixed:
        if rng.random() < second_prob:
            others = [c for c in COLOURS if c != d["colour"]]
            d["second_colour"] = others[rng.integers(len(others))]
        else:
            d["second_colour"] = None
    return SceneSpec(**d)


def frames_to_latents(frames):
    """uint8 ``[..., F, H, W, 3]`` (numpy or torch) -> float torch ``[..., F, 3, H, W]`` in [-1, 1]."""
    import torch

    x = torch.as_tensor(np.asarray(frames) if not isinstance(frames, torch.Tensor) else frames)
    x = x.float() / 127.5 - 1.0
    return x.movedim(-1, -3).contiguous()


def latents_to_frames(latents):
    """float ``[..., F, 3, H, W]`` in [-1, 1] -> uint8 torch ``[..., F, H, W, 3]``."""
    import torch

    x = ((latents.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return x.movedim(-3, -1).contiguous()
