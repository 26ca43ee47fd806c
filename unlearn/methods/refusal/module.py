"""The refusal-vector edit behind ``unlearn fit``: a LightningModule that edits at fit start (no training
steps) and a data module that holds the prompt pairs. Import them from :mod:`unlearn.methods.refusal.edit`.

Config (``configs/zeroscope_refusal_nudity.yaml``)::

    model:
      class_path: unlearn.methods.refusal.RefusalVectorUnlearning
      init_args: {backbone: zeroscope, rank: 2, cpca_weight: 1.0}
    data:
      class_path: unlearn.methods.refusal.RefusalPairsDataModule
      init_args: {concept: nudity, num_pairs: 5}
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from unlearn.backbones import DEFAULT_BACKBONE, DEFAULT_TORCH_DTYPE
from unlearn.checks import InputError, check_choice, check_int, check_range
from unlearn.io import atomic_entries
from unlearn.methods.weight_edits import ClosedFormEditModule, check_edit_options
from unlearn.toyworld.grammar import class_contains, class_names, prompts_for_concept

from .edit import (
    RefusalEdit,
    RefusalVectorConfig,
    apply_refusal_edit,
    load_delta,
    save_edited_model,
)
from .keep import COMBINE_MODES
from .pairs import PromptPair, as_pairs, load_pairs, make_pairs, toyworld_pairs


class RefusalPairsDataModule(pl.LightningDataModule):
    """The unsafe/safe prompt pairs of the concept(s) to remove.

    Args:
        concept: the concept to remove, or a list of concepts removed in one edit ("nudity").
        pairs: explicit pairs, ``[{unsafe: ..., safe: ...}, ...]`` or ``[[unsafe, safe], ...]``; a
            ``concept`` key per pair assigns it to one of several concepts.
        pairs_file: a JSON / JSONL / YAML / CSV file of pairs (``unsafe``, ``safe`` columns).
        num_pairs: pairs per concept (the first N of a file, or N generated).
        concept_text: for generated pairs, the words put in the template slot (default per concept, e.g.
            "nude" for "nudity"; else the concept name).
        substitute: for generated pairs, the neutral words of the safe prompt ("" drops the concept word).
        templates: for generated pairs, a template set ("person", "object") or a list of templates with "{}".
        source: how missing pairs are generated: "templates" (:func:`unlearn.methods.refusal.pairs.make_pairs`) or
            "toyworld" (the toy world's grammar, :func:`unlearn.methods.refusal.pairs.toyworld_pairs`; ``substitute``
            is then "neighbours" by default or a class such as "green square").
        seed: seed of the toy-world grammar.
        kept_prompts: prompts the edit should leave alone (``model.combine: kept_whitened`` only), beside the
            pairs' safe prompts.
        kept_per_class: toy world only: also keep this many TRAIN-split prompts of every class that shows none of
            the erased concepts (``model.combine: kept_whitened`` only; 0 = the safe prompts alone).
    """

    def __init__(
        self,
        concept: str | list[str],
        pairs: list[Any] | None = None,
        pairs_file: str | None = None,
        num_pairs: int = 5,
        concept_text: str | None = None,
        substitute: str | None = None,
        templates: str | list[str] | None = None,
        source: str = "templates",
        seed: int = 0,
        kept_prompts: list[str] | None = None,
        kept_per_class: int = 0,
    ) -> None:
        super().__init__()
        check_int("data.num_pairs", num_pairs, low=1)
        check_int("data.kept_per_class", kept_per_class, low=0)
        if kept_per_class and source != "toyworld":
            raise InputError("data.kept_per_class needs data.source=toyworld; give data.kept_prompts otherwise")
        self._kept = [str(p) for p in (kept_prompts or [])]
        if any(not p.strip() for p in self._kept):
            raise InputError("data.kept_prompts holds an empty prompt; remove it")
        self.kept_per_class = kept_per_class
        if source not in ("templates", "toyworld"):
            raise ValueError(f"data.source must be 'templates' or 'toyworld'; got {source!r}")
        self.source, self.seed = source, seed
        concepts = [concept] if isinstance(concept, str) else list(concept)
        if not concepts or any(not c or not str(c).strip() for c in concepts):
            raise ValueError("data.concept is empty: name the concept to remove, e.g. --data.concept nudity")
        self.concepts = [str(c) for c in concepts]
        self.concept = self.concepts[0] if len(self.concepts) == 1 else ", ".join(self.concepts)
        self.num_pairs = num_pairs
        self._groups = self._build(pairs, pairs_file, concept_text, substitute, templates)

    def _build(
        self,
        pairs: list[Any] | None,
        pairs_file: str | None,
        concept_text: str | None,
        substitute: str | None,
        templates: str | list[str] | None,
    ) -> dict[str, list[PromptPair]]:
        default = self.concepts[0]
        given: list[PromptPair] = []
        if pairs_file:
            given += load_pairs(pairs_file, default, self.num_pairs)
        if pairs:
            given += as_pairs(pairs, default, "data.pairs")
        groups: dict[str, list[PromptPair]] = {}
        for p in given:
            groups.setdefault(p.concept or default, []).append(p)
        for c in self.concepts:
            if c not in groups and self.source == "toyworld":
                groups[c] = toyworld_pairs(c, self.num_pairs, self.seed, substitute or "neighbours")
            elif c not in groups:
                groups[c] = make_pairs(
                    c,
                    self.num_pairs,
                    concept_text=concept_text if len(self.concepts) == 1 else None,
                    substitute=substitute,
                    templates=templates,
                )
        return {c: ps[: self.num_pairs] for c, ps in groups.items()}

    def pairs_by_concept(self) -> dict[str, list[PromptPair]]:
        return {c: list(ps) for c, ps in self._groups.items()}

    def kept_prompts(self) -> list[str]:
        """Prompts whose outputs ``combine="kept_whitened"`` protects, beside the pairs' safe prompts."""
        out = list(self._kept)
        if self.kept_per_class:
            for k, cls in enumerate(class_names()):
                if any(class_contains(cls, c) for c in self.concepts):
                    continue
                recs = prompts_for_concept(
                    cls, self.kept_per_class, split="train", style="rich", seed=self.seed + 100 + k
                )
                out += [r.text for r in recs]
        return out

    def train_dataloader(self) -> DataLoader:
        # the edit needs no data loop; one placeholder batch lets the epoch-end callbacks run once
        return DataLoader([{"placeholder": torch.zeros(1)}], batch_size=1)


class RefusalVectorUnlearning(ClosedFormEditModule):
    """Training-free concept removal: the low-rank refusal-vector weight edit, run by ``unlearn fit``.

    At fit start the module collects activations for the data module's prompt pairs, computes the
    refusal subspaces and edits the backbone's weights (timed); the single placeholder training step does
    nothing. At fit end it writes ``<output_dir>/refusal_delta.safetensors``, ``refusal_edit.json`` and (with
    ``save_model``) the edited denoiser as a stock diffusers folder.

    Args:
        backbone: registry name (``unlearn.backbones.available_backbones()``), e.g. "zeroscope".
        pretrained: hub id or local diffusers folder (None: the backbone's default hub id).
        tiny: build a tiny random model instead of loading weights (tests, CPU smoke runs).
        torch_dtype: dtype of the backbone ("bfloat16", "float16", "float32").
        backbone_kwargs: family-specific loading options passed to the backbone's ``load``.
        layers: which layers to edit: ``"auto"``, ``"text_kv"``, ``"text_input"``, ``"attn_kv"`` or module-name
            glob patterns (:class:`unlearn.methods.refusal.RefusalVectorConfig`).
        rank: k, columns of the basis per concept and layer (1 = the plain refusal vector).
        cpca_weight: w in ``Cov(unsafe) − w·Cov(safe)`` (0 = plain PCA of the unsafe set).
        strength: s in ``W' = (I − s·UUᵀ)W`` (1 = remove the subspace fully; 0 = no edit).
        token_reduce: how a prompt's text tokens become samples: ``"mean"``, ``"concept"`` or ``"tokens"``.
        basis: ``"mean_cpca"`` (mean difference first, then cPCA directions) or ``"cpca"``.
        combine: how the concepts' bases become one: ``"stack"`` (orthonormalised union) or ``"kept_whitened"``
            (each basis times ``(S + λI)⁻¹``, ``S`` the kept prompts' output second moment; issue #28,
            :mod:`unlearn.methods.refusal.keep`).
        kept_ridge: ``λ`` of ``"kept_whitened"`` relative to the mean eigenvalue of ``S``.
        probe_size: ``(frames, height, width)`` of the probe latents (None: the backbone's default size).
        probe_timestep: timestep of the probe forward (None: the middle of the default schedule).
        batch_size: prompts per probe forward.
        output_dir: where the delta and the edited model go (default ``<default_root_dir>/refusal``).
        save_model: also save the edited denoiser (``transformer/`` or ``unet/``; + ``text_encoder/`` if edited).
        full_pipeline: save the whole diffusers pipeline instead of the edited components.
        delta_file: apply a saved delta instead of computing one (the pairs are then not used); the delta of
            a run that failed or was interrupted is refused unless ``allow_unfinished_delta``.
        allow_unfinished_delta: accept ``delta_file`` from a run whose ``run_status.json`` is not "finished".
    """

    output_folder = "refusal"
    edit_name = "a refusal edit"
    checkpoint_key = "refusal_edit"
    metrics_prefix = "refusal"

    def __init__(
        self,
        backbone: str = DEFAULT_BACKBONE,
        pretrained: str | None = None,
        tiny: bool = False,
        torch_dtype: str = DEFAULT_TORCH_DTYPE,
        backbone_kwargs: dict[str, Any] | None = None,
        layers: str | list[str] = "auto",
        rank: int = 2,
        cpca_weight: float = 1.0,
        strength: float = 1.0,
        token_reduce: str = "mean",
        basis: str = "mean_cpca",
        combine: str = "stack",
        kept_ridge: float = 0.1,
        probe_size: list[int] | None = None,
        probe_timestep: int | None = None,
        batch_size: int = 4,
        output_dir: str | None = None,
        save_model: bool = True,
        full_pipeline: bool = False,
        delta_file: str | None = None,
        allow_unfinished_delta: bool = False,
    ) -> None:
        super().__init__()
        check_int("model.rank", rank, low=1)
        check_choice("model.combine", combine, COMBINE_MODES)
        check_range("model.kept_ridge", kept_ridge, low=0, open_low=True)
        check_range("model.cpca_weight", cpca_weight, low=0)
        check_range(
            "model.strength",
            strength,
            low=0,
            open_low=True,
            fix="1 removes the refusal subspace fully; 0 would leave the model unchanged",
        )
        check_int("model.batch_size", batch_size, low=1)
        check_int("model.probe_timestep", probe_timestep, low=0, optional=True)
        if probe_size is not None and (
            len(probe_size) != 3 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in probe_size)
        ):
            raise InputError(f"model.probe_size must be [num_frames, height, width], each >= 1; got {probe_size!r}")
        # a missing or damaged delta file fails now, before the backbone is loaded
        allow_key = "model.allow_unfinished_delta"
        check_edit_options(output_dir, delta_file, "model.delta_file", allow_unfinished_delta, allow_key, load_delta)
        self.save_hyperparameters()
        self.refusal_config = RefusalVectorConfig(
            layers=layers,
            rank=rank,
            cpca_weight=cpca_weight,
            strength=strength,
            token_reduce=token_reduce,  # type: ignore[arg-type]
            basis=basis,
            combine=combine,
            kept_ridge=kept_ridge,
            probe_size=tuple(probe_size) if probe_size else None,  # type: ignore[arg-type]
            probe_timestep=probe_timestep,
            batch_size=batch_size,
        )
        self.load_backbone(backbone, pretrained, tiny, torch_dtype, backbone_kwargs)
        self.edit: RefusalEdit | None = None

    # ------------------------------------------------------------------ the edit
    def perform_edit(self) -> RefusalEdit:
        """Run the edit now (idempotent: a second call returns the first edit)."""
        if self.edit is not None:
            return self.edit
        if self.hparams.delta_file:
            t0 = time.perf_counter()
            self.edit = load_delta(self.hparams.delta_file).apply_to(self.backbone, keep_originals=True)
            self.edit.timings = {**self.edit.timings, "apply_loaded": time.perf_counter() - t0}
            return self.edit
        dm = self.trainer.datamodule if self._trainer is not None else None
        if dm is None or not hasattr(dm, "pairs_by_concept"):
            raise ValueError(
                "RefusalVectorUnlearning needs the prompt pairs: use data.class_path: "
                "unlearn.methods.refusal.RefusalPairsDataModule (or give model.delta_file)."
            )
        self.edit = apply_refusal_edit(
            self.backbone,
            dm.pairs_by_concept(),
            self.refusal_config,
            progress=self.trainer.is_global_zero,
            kept_prompts=dm.kept_prompts() if hasattr(dm, "kept_prompts") else (),
        )
        return self.edit

    def edit_metrics(self, edit: RefusalEdit) -> dict[str, float]:
        return {
            "layers": float(len(edit.bases)),
            "mean_rank": sum(b.shape[1] for b in edit.bases.values()) / max(1, len(edit.bases)),
        }

    def export(self, folder: str | Path | None = None) -> Path:
        """Write the delta, the edit summary and (``save_model``) the edited model into ``folder``."""
        if self.edit is None:
            raise RuntimeError("no edit performed yet")
        folder = Path(folder or self.output_dir())
        if self.hparams.save_model:
            save_edited_model(self.backbone, folder, self.edit, full_pipeline=self.hparams.full_pipeline)
        else:
            with atomic_entries(folder, last="refusal_edit.json") as tmp:
                self.edit.save_delta(tmp / "refusal_delta.safetensors")
                (tmp / "refusal_edit.json").write_text(json.dumps(self.edit.summary(), indent=2, sort_keys=True))
        return folder
