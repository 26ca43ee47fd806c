"""Checkpoint the adapters only, as safetensors + JSON (never a pickle), atomically."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl

from unlearn.methods.t2vunlearning.export import save_adapters

from .periods import Period


class AdapterCheckpoint(pl.Callback):
    """Write ``adapters.safetensors`` + ``adapter_config.json`` every ``every_n_steps`` optimizer steps (and/or
    every ``every_n_epochs`` epochs) and at the end of fit.

    Args:
        dirpath: output folder (default ``<trainer.default_root_dir>/adapters``); the latest adapters live
            there (each save replaces the folder atomically), and with ``keep_every_epoch`` every periodic save
            also in ``<dirpath>_history/step=N`` (or ``epoch=N``).
        every_n_steps: save period in optimizer steps (0: off).
        every_n_epochs: save period in epochs (0: off). With both 0, only at the end of fit.
        keep_every_epoch: also keep a copy of every periodic save.
    """

    def __init__(self, dirpath: str | None = None, every_n_steps: int = 0, every_n_epochs: int = 1,
                 keep_every_epoch: bool = False) -> None:
        self.dirpath = dirpath
        self.period = Period(every_n_steps, every_n_epochs)
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
        self.last_path = save_adapters(module.controller, name, self._dir(trainer), extra=extra)
        if copy and self.keep_every_epoch:
            folder = self._dir(trainer)
            save_adapters(module.controller, name, folder.with_name(f"{folder.name}_history") / copy, extra=extra)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if self.period.step_due(trainer):
            self._save(trainer, pl_module, f"step={trainer.global_step}")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.period.epoch_due(trainer):
            self._save(trainer, pl_module, f"epoch={trainer.current_epoch}")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer, pl_module)
