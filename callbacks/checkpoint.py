"""Checkpoint the adapters only, as safetensors + JSON (never a pickle), atomically."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl

from unlearn.checks import check_int
from unlearn.methods.t2vunlearning.export import save_adapters


class AdapterCheckpoint(pl.Callback):
    """Write ``adapters.safetensors`` + ``adapter_config.json`` every ``every_n_epochs`` and at the end of fit.

    Args:
        dirpath: output folder (default ``<trainer.default_root_dir>/adapters``); the latest adapters
            live there, earlier ones in ``epoch=N`` sub-folders when ``keep_every_epoch`` is set.
        every_n_epochs: save period in epochs (0: only at the end).
        keep_every_epoch: also keep a copy per saving epoch.
    """

    def __init__(self, dirpath: str | None = None, every_n_epochs: int = 1, keep_every_epoch: bool = False) -> None:
        check_int("AdapterCheckpoint.every_n_epochs", every_n_epochs, low=0, fix="0 saves only at the end of fit")
        self.dirpath = dirpath
        self.every_n_epochs = every_n_epochs
        self.keep_every_epoch = keep_every_epoch
        self.last_path: Path | None = None

    def _dir(self, trainer: pl.Trainer) -> Path:
        return Path(self.dirpath or Path(trainer.default_root_dir) / "adapters")

    def _save(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
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
        if self.keep_every_epoch:
            save_adapters(module.controller, name, self._dir(trainer) / f"epoch={trainer.current_epoch}", extra=extra)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._save(trainer, pl_module)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer, pl_module)
