"""The Lightning side every method that edits the backbone's own layers shares (refusal vector, UCE, ESD-x).

:class:`WeightEditModule` holds the backbone, the edit (``self.edit``, ``None`` until made or loaded) and its
:class:`~unlearn.methods.weight_edits.EditSwitch`; writes the edit at fit end into ``output_dir()``; generates
videos with the edit on or off. :class:`ClosedFormEditModule` adds what a training-free edit needs: the edit is
made at fit start (or loaded from a file), nothing is optimised, and a checkpoint holds only the edit's summary.
A method subclasses one of them and names its folder (``output_folder``), how its switch calls the edit
(``edit_name``) and, closed-form, ``perform_edit``/``export``/``edit_metrics``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import lightning.pytorch as pl
import torch
from torch import Tensor

from unlearn.backbones import build_backbone, check_pretrained
from unlearn.checks import InputError
from unlearn.io import atomic_entries, require_finished

from .delta import EditSwitch, WeightEdit, save_stock_model


def check_edit_options(
    output_dir: str | None, saved: str | None, key: str, allow_unfinished: bool, allow_key: str, load: Callable
) -> None:
    """Refuse, before any backbone is loaded, an ``output_dir`` that is a file and a saved edit (``saved``, the
    option ``key``) that is missing, damaged (``load`` fails) or from a run that did not finish (unless
    ``allow_unfinished``, the option ``allow_key``)."""
    if output_dir and Path(output_dir).expanduser().is_file():
        raise InputError(f"model.output_dir {output_dir!r} is a file; give a folder")
    if saved:
        require_finished(saved, key, allow_unfinished, flag=f"{allow_key}=true")
        load(saved)


class WeightEditModule(pl.LightningModule):
    """A method whose result is an edit of the backbone's own weights, switched off by :class:`EditSwitch`."""

    #: the default output folder, ``<default_root_dir>/<output_folder>``
    output_folder: ClassVar[str] = "edit"
    #: what the switch calls the edit in its messages ("a UCE edit")
    edit_name: ClassVar[str] = "an edit"

    def load_backbone(
        self,
        backbone: str,
        pretrained: str | None,
        tiny: bool,
        torch_dtype: str,
        backbone_kwargs: dict[str, Any] | None,
    ) -> None:
        """Build the backbone and the edit's empty slot and switch (``switch.disabled()`` = the original model)."""
        check_pretrained(backbone, pretrained)
        self.backbone = build_backbone(
            backbone, pretrained=pretrained, tiny=tiny, torch_dtype=torch_dtype, **(backbone_kwargs or {})
        )
        self.edit: Any = None
        self.switch = EditSwitch(self, self.edit_name)
        self.strict_loading = False

    def export(self, folder: str | Path | None = None) -> Path:
        raise NotImplementedError

    def on_fit_end(self) -> None:
        if self.edit is None or not self.trainer.is_global_zero:
            return
        self.export()

    def output_dir(self) -> Path:
        root = self.trainer.default_root_dir if self._trainer is not None else "."
        return Path(self.hparams.output_dir or Path(root) / self.output_folder)

    def write_edit(
        self,
        folder: Path,
        edit: WeightEdit,
        edit_file: str,
        summary_file: str,
        *,
        save_model: bool,
        text_encoder: bool = False,
        full_pipeline: bool = False,
    ) -> Path:
        """``edit`` (safetensors) and its summary (JSON, written last) into ``folder``, atomically; with
        ``save_model`` beside the edited model as stock diffusers folders."""
        files = {
            edit_file: edit.save,
            summary_file: lambda p: p.write_text(json.dumps(edit.summary(), indent=2, sort_keys=True)),
        }
        if save_model:
            return save_stock_model(
                self.backbone,
                folder,
                text_encoder=text_encoder,
                full_pipeline=full_pipeline,
                files=files,
                last=summary_file,
            )
        with atomic_entries(folder, last=summary_file) as tmp:
            for name, write in files.items():
                write(tmp / name)
        return folder

    @torch.no_grad()
    def generate(self, prompts: list[str], seeds: list[int], adapters: bool = True, **sampling: Any) -> Tensor:
        """Videos (uint8 ``[B, F, H, W, 3]``) of the edited model (``adapters=True``) or the original one."""
        sampling = {k: v for k, v in sampling.items() if v is not None}
        with self.switch.scaled(1.0 if adapters else 0.0), self.backbone.side_modules_on_device():
            return self.backbone.decode(self.backbone.sample(prompts, seeds, **sampling))


class ClosedFormEditModule(WeightEditModule):
    """A training-free edit run by ``unlearn fit``: made (or loaded) at fit start, written at fit end."""

    #: the checkpoint entry that holds the edit's summary (a checkpoint holds no weights)
    checkpoint_key: ClassVar[str] = "edit"
    #: the prefix of the metrics logged at fit start ("uce": ``uce/time_<phase>_s``, ``uce/layers``)
    metrics_prefix: ClassVar[str] = "edit"

    def __init__(self) -> None:
        super().__init__()
        # both are on purpose here: the edit is closed-form, there is nothing to optimise
        warnings.filterwarnings("ignore", message=r".*configure_optimizers` returned `None`.*")
        warnings.filterwarnings("ignore", message=r".*`training_step` returned `None`.*")

    def perform_edit(self) -> Any:
        """Make the edit now, or load it from the file the config names (idempotent)."""
        raise NotImplementedError

    def edit_metrics(self, edit: Any) -> dict[str, float]:
        """What is logged at fit start besides the phase timings (e.g. ``{"layers": 12.0}``)."""
        return {}

    def on_fit_start(self) -> None:
        edit = self.perform_edit()
        metrics = {f"time_{k}_s": float(v) for k, v in edit.timings.items()}
        metrics.update(self.edit_metrics(edit))
        for logger in self.loggers:
            logger.log_metrics({f"{self.metrics_prefix}/{k}": v for k, v in metrics.items()}, step=0)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        return None  # nothing to train: the edit is closed-form

    def configure_optimizers(self) -> None:
        return None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["state_dict"] = {}
        if self.edit is not None:
            checkpoint[self.checkpoint_key] = self.edit.summary()
