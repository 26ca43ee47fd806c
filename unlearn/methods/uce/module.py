"""UCE behind ``unlearn fit``: a LightningModule that edits at fit start (no training steps) and a data module
that names the concepts (erased, guide, preserved).

Config (``configs/toy_shapes_uce.yaml``, ``configs/cogx2b_uce_nudity.yaml``)::

    model:
      class_path: unlearn.methods.uce.UCEUnlearning
      init_args: {backbone: cogvideox-2b, lamb: 0.5}
    data:
      class_path: unlearn.methods.uce.UCEConceptsDataModule
      init_args: {concept: nudity}
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from unlearn.backbones import DEFAULT_BACKBONE, DEFAULT_TORCH_DTYPE
from unlearn.checks import InputError, check_choice, check_int, check_range
from unlearn.methods.weight_edits import ClosedFormEditModule, WeightEdit, check_edit_options

from .edit import EDIT_FILE, UCEConfig, apply_uce_edit, load_uce_edit

SUMMARY_FILE = "uce_edit.json"


class UCEConceptsDataModule(pl.LightningDataModule):
    """The concepts of a UCE edit (the authors' ``--edit_concepts``, ``--guide_concepts``,
    ``--preserve_concepts``; ``uce_sd_erase.py:97-99``).

    Args:
        concept: the concept to erase, or a list erased in one edit ("nudity").
        guide_concepts: what the erased concepts are mapped to: one for all or one per concept (default: the
            empty prompt, the authors' default for objects, ``uce_sd_erase.py:137-141``).
        preserve_concepts: concepts whose outputs are kept (default none, ``:148-149``).
        concept_synonyms: other words for the concept (the evaluation's negative-prompt/SAFREE keywords only).
    """

    def __init__(
        self,
        concept: str | list[str],
        guide_concepts: str | list[str] | None = None,
        preserve_concepts: list[str] | None = None,
        concept_synonyms: list[str] | None = None,
    ) -> None:
        super().__init__()
        concepts = [concept] if isinstance(concept, str) else list(concept)
        if not concepts or any(not str(c).strip() for c in concepts):
            raise InputError("data.concept is empty: name the concept to erase, e.g. --data.concept nudity")
        self.concepts = [str(c) for c in concepts]
        self.concept = ", ".join(self.concepts)
        self.guide_concepts = guide_concepts
        self.preserve_concepts = list(preserve_concepts or [])
        self.synonyms = list(concept_synonyms or [])

    def train_dataloader(self) -> DataLoader:
        # the edit needs no data loop; one placeholder batch lets the epoch-end callbacks run once
        return DataLoader([{"placeholder": torch.zeros(1)}], batch_size=1)


class UCEUnlearning(ClosedFormEditModule):
    """Unified Concept Editing (closed form) run by ``unlearn fit``: the edit at fit start, a placeholder step,
    and at fit end ``<output_dir>/uce_edit.safetensors`` (the new weights of the edited layers, safetensors +
    JSON summary as metadata), ``uce_edit.json`` and (``save_model``) the edited denoiser as a stock
    diffusers folder.

    Args:
        backbone: registry name, e.g. "cogvideox-2b".
        pretrained: hub id or local diffusers folder (None: the backbone's default hub id).
        tiny: build a tiny random model instead of loading weights (tests, CPU smoke runs).
        torch_dtype: dtype of the backbone.
        backbone_kwargs: family-specific loading options.
        layers: which layers to edit (:class:`unlearn.methods.uce.UCEConfig`; default ``"auto"``).
        lamb: λ, the weight of the original weights in the closed form (authors: 0.5, ``uce_sd_erase.py:107``).
        erase_scale: e, the weight of the erased concepts' terms (authors: 1, ``:105``).
        preserve_scale: p, the weight of the preserved concepts' terms (authors: 1, ``:106``).
        token: ``"last"`` (the authors') or ``"mean"``: the text position(s) that make ``c``.
        expand_prompts: the authors' templated variants of every concept (off by default, as theirs).
        concept_type: ``"object"`` or ``"art"`` (templates and default guide).
        batch_size: prompts per probe forward.
        output_dir: where the edit and the edited model go (default ``<default_root_dir>/uce``).
        save_model: also save the edited denoiser (``transformer/`` or ``unet/``).
        full_pipeline: save the whole diffusers pipeline instead.
        edit_file: apply a saved edit instead of computing one; a file of a failed run is refused unless
            ``allow_unfinished_edit``.
        allow_unfinished_edit: accept ``edit_file`` from a run whose ``run_status.json`` is not "finished".
    """

    output_folder = "uce"
    edit_name = "a UCE edit"
    checkpoint_key = "uce_edit"
    metrics_prefix = "uce"

    def __init__(
        self,
        backbone: str = DEFAULT_BACKBONE,
        pretrained: str | None = None,
        tiny: bool = False,
        torch_dtype: str = DEFAULT_TORCH_DTYPE,
        backbone_kwargs: dict[str, Any] | None = None,
        layers: str | list[str] = "auto",
        lamb: float = 0.5,
        erase_scale: float = 1.0,
        preserve_scale: float = 1.0,
        token: str = "last",
        expand_prompts: bool = False,
        concept_type: str = "object",
        batch_size: int = 4,
        output_dir: str | None = None,
        save_model: bool = True,
        full_pipeline: bool = False,
        edit_file: str | None = None,
        allow_unfinished_edit: bool = False,
    ) -> None:
        super().__init__()
        check_range("model.lamb", lamb, low=0, open_low=True, fix="λ weighs the original weights (authors: 0.5)")
        check_range("model.erase_scale", erase_scale, low=0)
        check_range("model.preserve_scale", preserve_scale, low=0)
        check_choice("model.token", token, ("last", "mean"))
        check_choice("model.concept_type", concept_type, ("object", "art"))
        check_int("model.batch_size", batch_size, low=1)
        # a missing or damaged edit file fails now, before the backbone is loaded
        check_edit_options(
            output_dir,
            edit_file,
            "model.edit_file",
            allow_unfinished_edit,
            "model.allow_unfinished_edit",
            load_uce_edit,
        )
        self.save_hyperparameters()
        self.uce_config = UCEConfig(
            layers=layers,
            lamb=lamb,
            erase_scale=erase_scale,
            preserve_scale=preserve_scale,
            token=token,  # type: ignore[arg-type]
            expand_prompts=expand_prompts,
            concept_type=concept_type,  # type: ignore[arg-type]
            batch_size=batch_size,
        )
        self.load_backbone(backbone, pretrained, tiny, torch_dtype, backbone_kwargs)
        self.edit: WeightEdit | None = None

    def perform_edit(self) -> WeightEdit:
        """Run the edit now (idempotent)."""
        if self.edit is not None:
            return self.edit
        if self.hparams.edit_file:
            t0 = time.perf_counter()
            self.edit = load_uce_edit(self.hparams.edit_file)
            self.edit.apply_to(self.backbone, keep_originals=True)
            self.edit.timings = {**self.edit.timings, "apply_loaded": time.perf_counter() - t0}
            return self.edit
        dm = self.trainer.datamodule if self._trainer is not None else None
        if dm is None or not hasattr(dm, "preserve_concepts"):
            raise InputError(
                "UCEUnlearning needs the concepts: use data.class_path: unlearn.methods.uce.UCEConceptsDataModule "
                "(or give model.edit_file)."
            )
        self.edit = apply_uce_edit(
            self.backbone,
            dm.concepts,
            dm.guide_concepts,
            dm.preserve_concepts,
            self.uce_config,
            progress=self.trainer.is_global_zero,
        )
        return self.edit

    def edit_metrics(self, edit: WeightEdit) -> dict[str, float]:
        return {"layers": float(len(edit.weights))}

    def export(self, folder: str | Path | None = None) -> Path:
        """Write the edit, its summary and (``save_model``) the edited model into ``folder``."""
        if self.edit is None:
            raise RuntimeError("no edit performed yet")
        return self.write_edit(
            Path(folder or self.output_dir()),
            self.edit,
            EDIT_FILE,
            SUMMARY_FILE,
            save_model=self.hparams.save_model,
            text_encoder=self.edit.touches_text_encoder,
            full_pipeline=self.hparams.full_pipeline,
        )
