"""Checkpoints without pickles.

* :class:`AdapterCheckpoint`: the adapters only, as safetensors + JSON (what ``attach_adapters`` and
  ``unlearn push`` read), atomically.
* :class:`SafeCheckpointIO`: Lightning's resumable checkpoints (adapters, optimizer, step, loops, sampler
  position, RNG states) as one safetensors file with JSON metadata, written atomically; reading one never
  unpickles anything, and URLs are refused. The ``unlearn`` command installs it on every trainer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.plugins.io import TorchCheckpointIO

from unlearn.io import load_checkpoint_file, save_checkpoint_file
from unlearn.methods.t2vunlearning.export import CONFIG_NAME, backbone_provenance, save_adapters

from .periods import Period


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning ``CheckpointIO`` that writes :func:`unlearn.io.save_checkpoint_file` files (safetensors +
    JSON, temp file + fsync + rename: a kill during a write leaves the previous checkpoint whole) and reads
    them, or Lightning's own ``.ckpt`` files, with :func:`unlearn.io.load_checkpoint_file` (never unpickling;
    a URL is refused). ``weights_only=False`` is not honoured: nothing is ever unpickled.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options (got {storage_options!r})")
        save_checkpoint_file(checkpoint, path)

    def load_checkpoint(
        self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_checkpoint_file(path, map_location=map_location)


def install_safe_checkpoint_io(trainer: pl.Trainer) -> None:
    """Give ``trainer``'s strategy a :class:`SafeCheckpointIO` unless one (or a user's own, non-default
    CheckpointIO) is there already."""
    strategy = trainer.strategy
    current = strategy.checkpoint_io
    if type(current) is TorchCheckpointIO:
        strategy.checkpoint_io = SafeCheckpointIO()
    elif type(getattr(current, "checkpoint_io", None)) is TorchCheckpointIO:  # e.g. AsyncCheckpointIO around it
        current.checkpoint_io = SafeCheckpointIO()


class AdapterCheckpoint(pl.Callback):
    """Write ``adapters.safetensors`` + ``t2v_adapter_config.json`` every ``every_n_steps`` optimizer steps (and/or
    every ``every_n_epochs`` epochs) and at the end of fit.

    Args:
        dirpath: output folder (default ``<trainer.default_root_dir>/adapters``); the latest adapters live
            there (each save replaces the folder atomically), and with ``keep_every_epoch`` every periodic save
            also in ``<dirpath>_history/step=N`` (or ``epoch=N``).
        every_n_steps: save period in optimizer steps (0: off).
        every_n_epochs: save period in epochs (0: off). With both 0, only at the end of fit.
        keep_every_epoch: also keep a copy of every periodic save.
    """

    def __init__(
        self,
        dirpath: str | None = None,
        every_n_steps: int = 0,
        every_n_epochs: int = 1,
        keep_every_epoch: bool = False,
    ) -> None:
        self.period = Period("AdapterCheckpoint", every_n_steps, every_n_epochs)
        self.dirpath = dirpath
        self.keep_every_epoch = keep_every_epoch
        self.last_path: Path | None = None

    def _dir(self, trainer: pl.Trainer) -> Path:
        return Path(self.dirpath or Path(trainer.default_root_dir) / "adapters")

    def _save(self, trainer: pl.Trainer, module: pl.LightningModule, copy: str | None = None) -> None:
        if not trainer.is_global_zero:
            return
        hp = dict(module.hparams)
        extra = {k: hp[k] for k in ("eta", "alpha", "beta", "adapter_dim", "mask_threshold") if k in hp}
        extra.update(epoch=trainer.current_epoch, global_step=trainer.global_step)
        dm = trainer.datamodule
        if dm is not None and hasattr(dm, "concept"):
            extra["concept"] = dm.concept
            extra["preserve_concept"] = getattr(dm, "preserve_concept", None)
        name = module.backbone.name
        extra.update(backbone_provenance(name, getattr(module.backbone, "source", None)))
        self.last_path = save_adapters(module.switch, name, self._dir(trainer), extra=extra)
        if copy and self.keep_every_epoch:
            folder = self._dir(trainer)
            save_adapters(module.switch, name, folder.with_name(f"{folder.name}_history") / copy, extra=extra)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if self.period.step_due(trainer):
            self._save(trainer, pl_module, f"step={trainer.global_step}")

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # runs before a checkpoint is restored: a trainer built in Python gets the safe reader too
        install_safe_checkpoint_io(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.period.epoch_due(trainer):
            self._save(trainer, pl_module, f"epoch={trainer.current_epoch}")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer, pl_module)
        if trainer.is_global_zero and self.last_path is not None:
            self._log_artifact(trainer)

    def _log_artifact(self, trainer: pl.Trainer) -> None:
        """The final adapters as a wandb artifact (type ``model``, the adapter config as its metadata, aliases
        ``latest`` and ``step-N``) when wandb is a logger: the run's page links to the files."""
        for logger in trainer.loggers:
            if type(logger).__name__ != "WandbLogger":
                continue
            import wandb

            run = logger.experiment
            config = json.loads((self.last_path / CONFIG_NAME).read_text(encoding="utf-8"))
            artifact = wandb.Artifact(f"adapters-{run.id}", type="model", metadata=config)
            artifact.add_dir(str(self.last_path))
            run.log_artifact(artifact, aliases=["latest", f"step-{trainer.global_step}"])
