"""``run_status.json``: every output folder of a fit says whether the run that writes it finished."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities.exceptions import SIGTERMException

from unlearn.io import write_run_status
from unlearn.signals import Interrupted


class RunStatus(pl.Callback):
    """Write ``run_status.json`` into the run's output folders: ``"running"`` before anything else of the fit
    is written, ``"finished"`` after the last callback's ``on_fit_end``, ``"failed"`` (with the error) when the
    fit raises, ``"interrupted"`` (with the signal) after SIGTERM/SIGINT. A status that cannot be written (a
    full disk) is said on stderr. ``unlearn evaluate``, ``unlearn export`` and ``model.init_adapters`` refuse
    files under a folder whose run failed or was killed (:func:`unlearn.io.require_finished`), so the
    adapters or metrics of an earlier run in the same folder are never mistaken for this run's.

    The folders: ``trainer.default_root_dir`` and every callback ``dirpath`` or model ``output_dir`` outside
    it. ``unlearn fit`` adds this callback by itself; add it to a ``Trainer`` you build in code.

    Args:
        folders: more folders to mark (besides the ones found on the trainer).
    """

    def __init__(self, folders: list[str] | None = None) -> None:
        self.extra = [Path(f) for f in folders or []]
        self.run_id: str | None = None
        self.folders: list[Path] = []

    def output_folders(self, trainer: pl.Trainer, module: pl.LightningModule | None = None) -> list[Path]:
        root = Path(trainer.default_root_dir).absolute()
        found = [root, *(p.absolute() for p in self.extra)]
        hp = getattr(module, "hparams", {}) if module is not None else {}
        for cand in [getattr(cb, "dirpath", None) for cb in trainer.callbacks] + [hp.get("output_dir")]:
            if cand:
                found.append(Path(cand).absolute())
        out: list[Path] = []
        for f in found:  # one status per tree: a folder inside another marked one is covered by it
            if not any(f == o or o in f.parents for o in out):
                out = [o for o in out if f not in o.parents] + [f]
        return out

    def start(self, trainer: pl.Trainer, module: pl.LightningModule | None = None) -> None:
        """Mark the folders "running" (idempotent; ``unlearn fit`` calls it before the trainer starts)."""
        if self.run_id is not None or not trainer.is_global_zero:
            return
        self.run_id = uuid.uuid4().hex
        self.folders = self.output_folders(trainer, module)
        self._write("running")

    def _write(self, status: str, **info: Any) -> None:
        for f in self.folders:
            try:
                write_run_status(f, status, run_id=self.run_id, **info)
            except OSError as e:  # a full disk, a read-only folder: the old status stays; say so, once per folder
                print(
                    f"unlearn: could not write {Path(f) / 'run_status.json'} ({status!r}): {e.strerror or e}. Readers "
                    "treat the folder as not finished (the writer's process is gone); free space and rerun",
                    file=sys.stderr,
                )

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.start(trainer, pl_module)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # called after every callback's and the module's on_fit_end: every output is written
        if stage == "fit" and self.run_id is not None and trainer.is_global_zero:
            self._write("finished", global_step=trainer.global_step, epoch=trainer.current_epoch)
            self.run_id = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if not trainer.is_global_zero:
            return
        if self.run_id is None:
            self.start(trainer, pl_module)
        error = " ".join(f"{type(exception).__name__}: {exception}".split())
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)):  # SIGINT / SIGTERM (unlearn.signals)
            signal_name = str(exception) if isinstance(exception, Interrupted) else type(exception).__name__
            self._write("interrupted", signal=signal_name, global_step=trainer.global_step)
        else:
            self._write("failed", error=error[:2000], global_step=trainer.global_step)
        self.run_id = None
