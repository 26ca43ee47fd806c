"""Generated videos on disk, written so that a killed run resumes and a half-written video is never read.

Layout: ``<root>/videos/<row>_<index>_<label>.mp4`` (H.264, for viewing and for evaluation; the names of the
``ErasureEvaluation`` callback's sample videos, :func:`video_stem`), ``<row>_<index>_<label>.json`` (the
manifest, written *after* the video) and, with ``store_frames``, ``<row>_<index>_<label>.npz`` (lossless
frames). Folders of earlier versions (``videos/<row>/<index>.*``) are moved to these names when a run resumes.
Every file is written to a temporary name in the same folder and renamed into place, so a file that exists
is complete. A video counts as done only when its manifest exists, names the same *key* (prompt, seed,
method, backbone, sampling settings) and the video file (and the frames file, if kept) still has the sha256
recorded in it; anything else is regenerated (a same-size file with other bytes too). Reading checks the
content hash and the decoded frame count against the manifest.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unlearn.io import atomic_write_bytes, atomic_write_text, file_sha256
from unlearn.video import write_mp4

MANIFEST_FORMAT = "t2v-unlearn-video/1"


def video_stem(row: str, index: int, label: str | None) -> str:
    """``<row>_<index>_<label>`` (spaces and other characters a file name should not hold → ``_``;
    ``<row>_<index>`` for an unlabelled prompt): the name of a video in ``videos/``, shared by
    ``unlearn evaluate`` and the ``ErasureEvaluation`` callback of ``unlearn fit``."""
    slug = re.sub(r"[^\w.-]+", "_", str(label).strip()) if label else ""
    return f"{row}_{int(index)}_{slug}" if slug else f"{row}_{int(index)}"


class VideoFileError(ValueError):
    """A stored video is missing, incomplete, corrupt or has zero frames."""


def generation_key(**parts: Any) -> str:
    """sha256 of the canonical JSON of what a video depends on."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@contextlib.contextmanager
def _cheap_gc():
    """Inside, ``gc.collect()`` skips the objects that exist now (``gc.freeze``; O(1) in and out).

    imageio's pyav plugin, which ``unlearn.video.write_mp4`` uses, calls ``gc.collect()`` twice per file: with
    a video model in memory that is 0.3-1 s per video, more than writing the video takes."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def video_key(
    backbone: dict[str, Any], method: dict[str, Any], sampling: dict[str, Any], prompt: str, seed: int
) -> str:
    """The key of one video: backbone identity, method fingerprint, sampling settings, prompt and seed."""
    return generation_key(backbone=backbone, method=method, sampling=sampling, prompt=prompt, seed=int(seed))


class VideoStore:
    """The videos of one evaluation run.

    Args:
        root: the run's output folder (videos go to ``root/videos/``, named by :func:`video_stem`).
        store_frames: also keep the exact frames (``.npz``) and evaluate those instead of the decoded mp4
            (H.264 is lossy: the published protocols score saved videos, which is the default here).
        fps: frame rate of the mp4 files.
        labels: ``{prompt index: label}`` of the suite (the file names carry the label; the runner sets it
            from its suite). An index without a label gets ``<row>_<index>``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        store_frames: bool = False,
        fps: int = 8,
        labels: Mapping[int, str | None] | None = None,
    ) -> None:
        self.root = Path(root)
        self.store_frames = bool(store_frames)
        self.fps = int(fps)
        self.labels: dict[int, str | None] = dict(labels or {})

    def method_dir(self, method: str) -> Path:
        """The folder of the row's videos (one folder for every row: the file names carry the row)."""
        return self.root / "videos"

    def paths(self, method: str, index: int) -> dict[str, Path]:
        d, stem = self.root / "videos", video_stem(method, index, self.labels.get(int(index)))
        return {"mp4": d / f"{stem}.mp4", "manifest": d / f"{stem}.json", "frames": d / f"{stem}.npz"}

    def adopt_legacy(self, method: str, index: int) -> bool:
        """Move a video of the earlier layout (``videos/<row>/<index>.*``) to its name here, so that a folder
        written by an older version resumes instead of regenerating; True when one was moved. The manifest
        moves last (a video counts as done only with its manifest); the key check still decides reuse."""
        old = self.root / "videos" / method
        new = self.paths(method, index)
        if not (old / f"{index}.json").is_file() or new["manifest"].exists():
            return False
        for kind, suffix in (("mp4", ".mp4"), ("frames", ".npz"), ("manifest", ".json")):
            if (old / f"{index}{suffix}").is_file():
                os.replace(old / f"{index}{suffix}", new[kind])
        m = self.manifest(method, index)
        if m is not None:  # the manifest names its files
            m["mp4"] = new["mp4"].name
            if "frames_file" in m:
                m["frames_file"] = new["frames"].name
            atomic_write_text(new["manifest"], json.dumps(m, indent=1, sort_keys=True))
        with contextlib.suppress(OSError):
            old.rmdir()  # once empty
        return True

    def manifest(self, method: str, index: int) -> dict[str, Any] | None:
        path = self.paths(method, index)["manifest"]
        try:
            doc = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return doc if isinstance(doc, dict) and doc.get("format") == MANIFEST_FORMAT else None

    def _content_problem(self, method: str, index: int, m: dict[str, Any]) -> str | None:
        """Why the stored files do not hold the bytes the manifest recorded (None: they do)."""
        p = self.paths(method, index)
        wanted = [("mp4", "mp4_sha256")] + ([("frames", "frames_sha256")] if self.store_frames else [])
        for kind, field in wanted:
            if not m.get(field):
                return f"{p['manifest'].name} records no {field} (written by an older version)"
            try:
                if file_sha256(p[kind]) != m[field]:
                    return f"{p[kind].name} does not have the sha256 recorded in {p['manifest'].name}"
            except FileNotFoundError:
                return f"{p[kind].name} is missing"
        return None

    def is_complete(self, method: str, index: int, key: str) -> bool:
        """Done = manifest with this key, video file with the recorded sha256 (and the frames file if kept)."""
        self.adopt_legacy(method, index)
        m = self.manifest(method, index)
        if m is None or m.get("key") != key:
            return False
        return self._content_problem(method, index, m) is None

    def write(
        self, method: str, index: int, video: torch.Tensor | np.ndarray, key: str, info: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Write one video (uint8 ``[F, H, W, 3]``): the mp4, the frames if kept, then the manifest."""
        arr = video.detach().cpu().numpy() if isinstance(video, torch.Tensor) else np.asarray(video)
        if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
            raise VideoFileError(
                f"method {method!r}, prompt {index}: the generator returned "
                f"{arr.dtype} {list(arr.shape)}; expected uint8 [F, H, W, 3]"
            )
        if arr.shape[0] == 0:
            raise VideoFileError(
                f"method {method!r}, prompt {index}: the generator returned a video with zero "
                "frames; check num_frames and the backbone's decode"
            )
        p = self.paths(method, index)
        p["manifest"].unlink(missing_ok=True)  # from here on the video counts as not done
        with _cheap_gc():
            write_mp4(arr, p["mp4"], fps=self.fps)
        doc: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "key": key,
            "method": method,
            "index": index,
            "frames": int(arr.shape[0]),
            "height": int(arr.shape[1]),
            "width": int(arr.shape[2]),
            "mp4": p["mp4"].name,
            "mp4_bytes": p["mp4"].stat().st_size,
            "mp4_sha256": file_sha256(p["mp4"]),
            **(info or {}),
        }
        if self.store_frames:
            buf = io.BytesIO()
            np.savez_compressed(buf, frames=arr)
            atomic_write_bytes(p["frames"], buf.getvalue())
            doc["frames_file"], doc["frames_bytes"] = p["frames"].name, p["frames"].stat().st_size
            doc["frames_sha256"] = file_sha256(p["frames"])
        atomic_write_text(p["manifest"], json.dumps(doc, indent=1, sort_keys=True))
        return doc

    def read(self, method: str, index: int) -> np.ndarray:
        """The video's frames, uint8 ``[F, H, W, 3]`` at the generated size, after checking it is complete."""
        p = self.paths(method, index)
        m = self.manifest(method, index)
        if m is None:
            raise VideoFileError(
                f"{p['mp4']}: no manifest ({p['manifest'].name}): the video was never finished. "
                "Fix: rerun the generation (it resumes and regenerates unfinished videos)"
            )
        expected = int(m.get("frames", -1))
        problem = self._content_problem(method, index, m)
        if problem:
            raise VideoFileError(
                f"{p['mp4']}: {problem}: the file was changed after it was written. Fix: rerun the "
                "generation (it regenerates videos whose content does not match their manifest)"
            )
        if self.store_frames and m.get("frames_file"):
            try:
                with np.load(p["frames"]) as z:
                    arr = z["frames"]
            except Exception as e:  # noqa: BLE001 - any decode failure is a corrupt file
                raise VideoFileError(
                    f"{p['frames']}: cannot read the stored frames ({e}). Fix: delete it and "
                    f"{p['manifest'].name}, then rerun to regenerate"
                ) from e
        else:
            arr = self._decode_mp4(p["mp4"], int(m["height"]), int(m["width"]))
        if arr.shape[0] == 0 or expected <= 0:
            raise VideoFileError(
                f"{p['mp4']}: the video has zero frames (manifest: {expected}). Fix: delete it "
                f"and {p['manifest'].name}, then rerun to regenerate it"
            )
        if arr.shape[0] != expected:
            raise VideoFileError(
                f"{p['mp4']}: decoded {arr.shape[0]} frames, the manifest says {expected}: the file "
                f"is incomplete or was replaced. Fix: delete it and {p['manifest'].name}, then rerun"
            )
        return arr

    @staticmethod
    def _decode_mp4(path: Path, height: int, width: int) -> np.ndarray:
        # PyAV directly (the library unlearn.video.read_video uses through imageio): imageio's plugin runs
        # gc.collect() twice per file, 0.1-0.3 s in a process that holds a video model
        try:
            import av

            with av.open(str(path)) as container:
                frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
            arr = np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)
        except Exception as e:  # noqa: BLE001 - any decode failure is a corrupt file
            raise VideoFileError(
                f"{path}: cannot decode the video ({type(e).__name__}: {e}). Fix: delete it and its "
                ".json, then rerun to regenerate it"
            ) from e
        if arr.ndim != 4 or arr.shape[0] == 0:
            return np.zeros((0, height, width, 3), np.uint8)
        # write_mp4 enlarges tiny videos by an integer factor (nearest) and pads odd sizes: undo both
        fh, fw = arr.shape[1] // height, arr.shape[2] // width
        if fh < 1 or fw < 1 or fh != fw:
            raise VideoFileError(
                f"{path}: decoded size {arr.shape[1]}x{arr.shape[2]} does not fit the generated "
                f"size {height}x{width} in the manifest"
            )
        arr = arr[:, : height * fh, : width * fw]
        if fh > 1:
            blocks = arr.reshape(arr.shape[0], height, fh, width, fw, 3).astype(np.float32)
            arr = np.clip(np.rint(blocks.mean(axis=(2, 4))), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(arr)
