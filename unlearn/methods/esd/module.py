"""Erasing Concepts from Diffusion Models (ESD; Gandikota et al., ICCV 2023), ESD-x: fine-tune the backbone's own
text-attention projections towards the negatively guided prediction, following the authors' code
(``rohitgandikota/erasing``, ``esd_sd.py``; line numbers below are of that file).

Objective (``esd_sd.py:191``)::

    L = ‖ v_θ'(x_t, c, t) − [ v_θ(x_t, c, t) − g · (v_θ(x_t, c, t) − v_θ(x_t, ∅, t)) ] ‖²

with θ the frozen model and g the negative guidance (2, ``:62``). ``v_θ(x_t,c) − g(v_θ(x_t,c) − v_θ(x_t,∅))``
is ``v_θ(x_t,∅) − (g − 1)(v_θ(x_t,c) − v_θ(x_t,∅))``: T2VUnlearning's target with ``η = g − 1``, so the
pseudo data of T2VUnlearning's data module (``unlearn.methods.t2vunlearning.ConceptDataModule`` /
``ToyWorldDataModule``, named by ``data.class_path`` in the config) serves as is: this module exposes
``hparams.eta = g − 1``, ``alpha = beta = 0`` (no localization, no preservation) and the on/off switch the
data module uses to make pseudo data with the frozen model.

Trained parameters (``esd_sd.py:24-49``): ``esd-x`` every ``nn.Linear`` of the attention layers where text
meets video (on cross-attention models the ``attn2`` layers, as the authors'; on joint-attention models the
joint attention layers, the only place text and video meet), ``esd-x-strict`` only the projections that read
the text (``attn2.to_k/to_v``; ``add_k_proj/add_v_proj`` on dual-stream blocks). Adam, lr 5e-5 (``:61``, ``:92``),
200 iterations (``:60``) of batch 1 (``:77``): ``trainer.max_steps: 200``, ``data.batch_size: 1``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from unlearn.backbones import DEFAULT_BACKBONE, DEFAULT_TORCH_DTYPE, PromptEmbedding
from unlearn.checks import InputError, check_choice, check_range
from unlearn.methods.weight_edits import (
    WeightEdit,
    WeightEditModule,
    attention_linears,
    check_edit_options,
    get_linear,
    linear_digest,
    load_weight_edit,
    text_only_kv,
)

#: file names inside the output folder
EDIT_FILE = "esd_edit.safetensors"
SUMMARY_FILE = "esd_edit.json"
TRAIN_METHODS = ("esd-x", "esd-x-strict")


def esd_layers(backbone: Any, train_method: str = "esd-x") -> list[str]:
    """The ``nn.Linear`` layers ESD trains (``esd_sd.py:24-49``)."""
    if train_method == "esd-x":
        return attention_linears(backbone)
    if train_method == "esd-x-strict":
        out = [f"{s.name}.{c}" for s in backbone.attention_sites() for c in text_only_kv(s.module)]
        if not out:
            raise InputError(
                f"{backbone.name} has no text-only key/value projections (joint attention): use "
                "model.train_method esd-x"
            )
        return out
    raise InputError(f"model.train_method must be one of {TRAIN_METHODS}; got {train_method!r}")


def load_esd_edit(path: str) -> WeightEdit:
    """An ESD edit file (or a folder holding ``esd_edit.safetensors``); ``.apply_to(model)`` re-does it."""
    p = Path(path)
    return load_weight_edit(p / EDIT_FILE if p.is_dir() else p, method="esd_x")


class _LiveESD(WeightEdit):
    """The edit while training: ``weights`` are the live parameters, ``originals`` the frozen copies."""


class ESDUnlearning(WeightEditModule):
    """ESD-x run by ``unlearn fit``: trains the backbone's text-attention projections in place.

    Pair it with T2VUnlearning's data module by class path (``unlearn.methods.t2vunlearning.ConceptDataModule``
    or ``ToyWorldDataModule``, ``use_cache: true``): it builds the pseudo data with this module's switch off
    (the original weights) and targets with ``η = negative_guidance − 1``. At fit end
    ``<output_dir>/esd_edit.safetensors`` holds the trained layers' weights (safetensors + JSON summary as
    metadata), ``esd_edit.json`` the summary, and (``save_model``) the fine-tuned denoiser a stock diffusers
    folder.

    Args:
        backbone: registry name, e.g. "cogvideox-2b".
        pretrained: hub id or local diffusers folder (None: the backbone's default hub id).
        tiny: build a tiny random model instead of loading weights (tests, CPU smoke runs).
        torch_dtype: dtype of the backbone (the trained layers train in it; the authors train in bfloat16).
        backbone_kwargs: family-specific loading options.
        train_method: ``"esd-x"`` (default) or ``"esd-x-strict"`` (see :func:`esd_layers`).
        negative_guidance: g in the target (authors: 2, ``esd_sd.py:62``).
        learning_rate: Adam learning rate (authors: 5e-5, ``esd_sd.py:61``).
        gradient_checkpointing: recompute the backbone's activations in backward to save memory.
        output_dir: where the edit goes (default ``<default_root_dir>/esd``).
        save_model: also save the fine-tuned denoiser.
        edit_file: apply a saved edit instead of training (then ``trainer.max_steps: 0``); a file of a failed
            run is refused unless ``allow_unfinished_edit``.
        allow_unfinished_edit: accept ``edit_file`` from a run whose ``run_status.json`` is not "finished".
    """

    output_folder = "esd"
    edit_name = "an ESD edit"

    def __init__(
        self,
        backbone: str = DEFAULT_BACKBONE,
        pretrained: str | None = None,
        tiny: bool = False,
        torch_dtype: str = DEFAULT_TORCH_DTYPE,
        backbone_kwargs: dict[str, Any] | None = None,
        train_method: str = "esd-x",
        negative_guidance: float = 2.0,
        learning_rate: float = 5e-5,
        gradient_checkpointing: bool = False,
        output_dir: str | None = None,
        save_model: bool = False,
        edit_file: str | None = None,
        allow_unfinished_edit: bool = False,
    ) -> None:
        super().__init__()
        check_choice("model.train_method", train_method, TRAIN_METHODS)
        check_range(
            "model.negative_guidance",
            negative_guidance,
            low=1,
            fix="g in v(c) − g·(v(c) − v(∅)); the authors use 2, and g ≤ 1 does not push away from the concept",
        )
        check_range("model.learning_rate", learning_rate, low=0, open_low=True)
        allow_key = "model.allow_unfinished_edit"
        check_edit_options(output_dir, edit_file, "model.edit_file", allow_unfinished_edit, allow_key, load_esd_edit)
        self.save_hyperparameters()
        # what T2VUnlearning's data module reads: the target's η, and no localization / preservation data
        self.hparams["eta"] = float(negative_guidance) - 1.0
        self.hparams["alpha"] = 0.0
        self.hparams["beta"] = 0.0
        self.load_backbone(backbone, pretrained, tiny, torch_dtype, backbone_kwargs)
        if gradient_checkpointing and hasattr(self.backbone.denoiser, "enable_gradient_checkpointing"):
            self.backbone.denoiser.enable_gradient_checkpointing()
        self.layers = esd_layers(self.backbone, train_method)
        self.edit: WeightEdit | None = None
        self._before: dict[str, str] = {}
        if edit_file:
            self.edit = load_esd_edit(edit_file)
            self.edit.apply_to(self.backbone, keep_originals=True)
        else:
            self._start_live_edit()
        self._train_time = 0.0

    def _start_live_edit(self) -> None:
        bb = self.backbone
        mods = {n: get_linear(n, bb.denoiser, None) for n in self.layers}
        self._before = {n: linear_digest(m) for n, m in mods.items()}
        originals = {
            n: (m.weight.detach().cpu().clone(), None if m.bias is None else m.bias.detach().cpu().clone())
            for n, m in mods.items()
        }
        self.edit = _LiveESD(
            weights={n: m.weight for n, m in mods.items()},
            biases={n: m.bias for n, m in mods.items() if m.bias is not None},
            method="esd_x",
            originals=originals,
            applied=True,
        )
        for m in mods.values():
            m.requires_grad_(True)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for n in self.layers for p in get_linear(n, self.backbone.denoiser, None).parameters()]

    # ------------------------------------------------------------------ training
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        if "regen_prompt_index" in batch:
            raise InputError(
                "ESDUnlearning trains on cached pseudo data: set data.use_cache: true (per-step regeneration "
                "is T2VUnlearning's)"
            )
        t0 = time.perf_counter()
        cond = PromptEmbedding.from_dict({k[5:]: v for k, v in batch.items() if k.startswith("cond.")})
        pred = self.backbone.predict(batch["x_t"], batch["timesteps"], cond)
        loss = torch.mean((pred.float() - batch["target"].float()) ** 2)  # esd_sd.py:85, :191 (MSELoss)
        if not math.isfinite(float(loss.detach())):
            raise FloatingPointError(
                f"the ESD loss became {float(loss)} at step {self.global_step}. Fix: lower model.learning_rate "
                f"(now {self.hparams.learning_rate:g}) or use torch_dtype float32"
            )
        self.log("train/loss", loss.detach(), prog_bar=False, batch_size=batch["x_t"].shape[0])
        self._train_time += time.perf_counter() - t0
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.trainable_parameters(), lr=self.hparams.learning_rate)  # esd_sd.py:92

    def on_train_start(self) -> None:
        if getattr(self.trainer.datamodule, "use_cache", True):
            self.backbone.park_side_modules()

    # ------------------------------------------------------------------ the result
    def final_edit(self) -> WeightEdit:
        """The trained layers' weights as a :class:`WeightEdit` (CPU copies), with digests and timings."""
        if self.edit is None:
            raise RuntimeError("no edit")
        if not isinstance(self.edit, _LiveESD):
            return self.edit
        hp = self.hparams
        edit = WeightEdit.capture(
            self.backbone,
            self.layers,
            method="esd_x",
            concepts=list(getattr(self.trainer.datamodule, "concepts", []) or []) if self._trainer else [],
            config={
                "train_method": hp.train_method,
                "negative_guidance": hp.negative_guidance,
                "learning_rate": hp.learning_rate,
                "steps": int(self.global_step) if self._trainer else 0,
            },
            backbone=getattr(self.backbone, "registry_name", "") or self.backbone.name,
            source=str(getattr(self.backbone, "source", "")),
            timings={"train_steps": self._train_time},
        )
        edit.record_digests(self.backbone, self._before)
        return edit

    def export(self, folder: str | Path | None = None) -> Path:
        """Write the edit, its summary and (``save_model``) the fine-tuned denoiser into ``folder``."""
        folder = Path(folder or self.output_dir())
        return self.write_edit(folder, self.final_edit(), EDIT_FILE, SUMMARY_FILE, save_model=self.hparams.save_model)

    # ------------------------------------------------------------------ checkpoints: the trained layers only
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        keep = {f"backbone.denoiser.{n}." for n in self.layers}
        checkpoint["state_dict"] = {
            k: v for k, v in checkpoint["state_dict"].items() if any(k.startswith(p) for p in keep)
        }
