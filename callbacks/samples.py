"""Periodic sample videos: mp4 files (real encoder), logged to the active logger."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import lightning.pytorch as pl

from unlearn.checks import InputError, check_int, check_range
from unlearn.io import atomic_write_text
from unlearn.limits import check_video_size
from unlearn.video import write_mp4

from .periods import Period

#: the index of the videos in a samples folder (prompt, seed, step of each)
INDEX_NAME = "samples.json"


class SampleVideoCallback(pl.Callback):
    """Generate videos for ``prompts`` with the adapters on, every ``every_n_steps`` optimizer steps (and/or
    ``every_n_epochs`` epochs), plus the original model's videos once at the start of fit (``original_*.mp4``)
    for comparison. The module's ``generate`` brings the text encoders and the VAE back to the training device
    for the duration (T2VUnlearning parks them after the pseudo-data cache is built) and decodes with VAE
    tiling and slicing.

    Videos go to ``dirpath`` as ``step=N_<i>.mp4`` / ``epoch=N_<i>.mp4``, listed with their prompts in
    ``samples.json`` (the model card's gallery), and to wandb (``WandbLogger.log_video``) or TensorBoard (``add_video``)
    when one is the logger.

    Args:
        prompts: prompts to sample.
        dirpath: output folder (default ``<default_root_dir>/samples``).
        every_n_steps: period in optimizer steps (0: off).
        every_n_epochs: period in epochs (0: off).
        seed: noise seed (same for every epoch, so videos are comparable).
        num_inference_steps: sampler steps (None: the backbone's default).
        guidance_scale: CFG scale (None: the backbone's default).
        num_frames: video frames (None: the data module's pseudo-data size).
        height: video height in pixels (None: the data module's pseudo-data size).
        width: video width in pixels (None: the data module's pseudo-data size).
        fps: frame rate of the written mp4.
    """

    def __init__(
        self,
        prompts: list[str],
        dirpath: str | None = None,
        every_n_steps: int = 0,
        every_n_epochs: int = 1,
        seed: int = 0,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        fps: int = 8,
    ) -> None:
        if not prompts or any(not isinstance(p, str) or not p.strip() for p in prompts):
            raise InputError("SampleVideoCallback.prompts must list at least one non-empty prompt")
        self.period = Period("SampleVideoCallback", every_n_steps, every_n_epochs, acts_at_end=False)
        for key, value in (
            ("num_inference_steps", num_inference_steps),
            ("num_frames", num_frames),
            ("height", height),
            ("width", width),
        ):
            check_int(f"SampleVideoCallback.{key}", value, low=1, optional=True)
        check_range("SampleVideoCallback.guidance_scale", guidance_scale, low=0, optional=True)
        check_int("SampleVideoCallback.fps", fps, low=1)
        check_video_size("SampleVideoCallback", num_frames, height, width)
        self.prompts = prompts
        self.dirpath = dirpath
        self.seed = seed
        self.sampling = dict(
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            num_frames=num_frames,
            height=height,
            width=width,
        )
        self.fps = fps
        self.written: list[Path] = []

    def _dir(self, trainer: pl.Trainer) -> Path:
        return Path(self.dirpath or Path(trainer.default_root_dir) / "samples")

    def _settings(self, trainer: pl.Trainer, module: pl.LightningModule) -> dict:
        s = dict(self.sampling)
        dm = trainer.datamodule
        if dm is not None and hasattr(dm, "pseudo_data_settings"):
            d = dataclasses.asdict(dm.pseudo_data_settings(module.backbone).sampling)
            s = {k: d[k] if v is None and k in d else v for k, v in s.items()}
        return s

    def _render(self, trainer: pl.Trainer, module: pl.LightningModule, tag: str, adapters: bool) -> None:
        if not trainer.is_global_zero:
            return
        from tqdm.auto import tqdm

        settings = self._settings(trainer, module)
        steps = settings["num_inference_steps"] or module.backbone.defaults.num_inference_steps
        # full-size sample videos take minutes: a bar over the sampler's steps, with its ETA
        with tqdm(total=steps, desc=f"sample videos {tag} ({len(self.prompts)} prompts)", unit="step") as bar:
            videos = module.generate(
                self.prompts,
                [self.seed + i for i in range(len(self.prompts))],
                adapters=adapters,
                on_step=lambda *args: bar.update(1),
                **settings,
            )
        for i, v in enumerate(videos):
            path = write_mp4(v, self._dir(trainer) / f"{tag}_{i}.mp4", fps=self.fps)
            self.written.append(path)
            self._index(path, tag, i, adapters, trainer.global_step)
            for logger in trainer.loggers:
                name = type(logger).__name__
                if name == "WandbLogger":
                    logger.log_video(
                        key=f"samples/{i}",
                        videos=[str(path)],
                        step=trainer.global_step,
                        caption=[f"{tag}: {self.prompts[i]}"],
                        format=["mp4"],
                    )
                elif name == "TensorBoardLogger":
                    logger.experiment.add_video(
                        f"samples/{i}", v.permute(0, 3, 1, 2)[None], trainer.global_step, fps=self.fps
                    )

    def _index(self, path: Path, tag: str, i: int, adapters: bool, step: int) -> None:
        """Record the video in ``samples.json`` beside it (its prompt, seed and step): the model card's gallery
        (``unlearn push``) reads the prompts from there."""
        index_file = path.parent / INDEX_NAME
        try:
            index = json.loads(index_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            index = {}
        videos = [v for v in index.get("videos", []) if isinstance(v, dict) and v.get("file") != path.name]
        videos.append(
            {
                "file": path.name,
                "tag": tag,
                "prompt": self.prompts[i],
                "seed": self.seed + i,
                "adapters": adapters,
                "global_step": step,
            }
        )
        atomic_write_text(index_file, json.dumps({"fps": self.fps, "videos": videos}, indent=2))

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # a size the backbone cannot generate fails now, not after the first epoch of training
        bb = getattr(pl_module, "backbone", None)
        if bb is not None and hasattr(bb, "check_video_size"):
            s = self._settings(trainer, pl_module)
            d = bb.defaults
            size = [s[k] or getattr(d, k) for k in ("num_frames", "height", "width")]
            try:
                bb.check_video_size(
                    *size, keys=tuple(f"SampleVideoCallback.{k}" for k in ("num_frames", "height", "width"))
                )
            except ValueError as e:
                raise InputError(str(e)) from None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._render(trainer, pl_module, "original", adapters=False)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if self.period.step_due(trainer):
            self._render(trainer, pl_module, f"step={trainer.global_step}", adapters=True)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.period.epoch_due(trainer):
            self._render(trainer, pl_module, f"epoch={trainer.current_epoch}", adapters=True)
