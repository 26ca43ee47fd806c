"""T2VUnlearning as a LightningModule: adapters on a frozen backbone, ``L = L_unlearn + α L_loc + β L_pre``."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import grad_norm
from torch import Tensor

import unlearn.compat as compat
from unlearn.backbones import (
    DEFAULT_BACKBONE,
    DEFAULT_TORCH_DTYPE,
    PromptEmbedding,
    VideoBackbone,
    build_backbone,
    check_pretrained,
)
from unlearn.backbones.attention import CONCEPT_MAP_ROUTES, MAP_CHECK_ATOL, checking_concept_map
from unlearn.checks import InputError, check_choice, check_int, check_range

from .adapters import AdapterSwitch
from .adversarial import (
    RECELER_ADVERSARY_LR,
    ConditioningBank,
    bank_conditioning,
    persistent_adversary_steps,
    worst_case_conditioning,
)
from .data import batch_embedding
from .export import CHECKPOINT_PREFIX, adapter_config, checkpoint_adapter_state, load_adapter_weights
from .losses import RECELER_MASK_THRESHOLD, concept_mask, localization_loss, preservation_loss, unlearning_loss
from .official import author_sites
from .pseudo_data import PseudoDataSettings, TrajectoryRequest, make_trajectories


def frozen_concept_maps(batch: dict[str, Any], num_sites: int) -> list[Tensor]:
    """The frozen model's concept maps of a batch (``concept_maps.<l>`` ``[B, F, N_l]``, recorded with the pseudo
    data), in site order; a clear error when the batch has none (``mask_source: frozen`` needs them)."""
    maps = [batch.get(f"concept_maps.{i}") for i in range(num_sites)]
    if any(m is None for m in maps):
        raise ValueError(
            "model.mask_source 'frozen' needs the frozen model's concept maps in the batch (concept_maps.<site>, "
            f"{num_sites} sites; the data module records them with the pseudo data when α > 0); this batch has "
            f"{sorted(k for k in batch if k.startswith('concept_maps.'))}. Fix: use the data module's loader, or "
            "set model.mask_source: adapted"
        )
    return maps


def _sum_grads(a: list[tuple[Tensor, Tensor]], b: list[tuple[Tensor, Tensor]]) -> list[tuple[Tensor, Tensor]]:
    """Two lists of ``(parameter, gradient)`` as one, the gradients of a parameter in both added."""
    out = {id(p): (p, g) for p, g in a}
    for p, g in b:
        out[id(p)] = (p, out[id(p)][1] + g) if id(p) in out else (p, g)
    return list(out.values())


#: the persistent adversary's bank in a checkpoint's ``state_dict`` (``T2VUnlearning.adversary``)
BANK_PREFIX = "adversary."


class DivergenceError(FloatingPointError):
    """The training loss became NaN/infinite or grew past ``divergence_factor`` × its first value."""


class T2VUnlearning(pl.LightningModule):
    """Erase a concept from a text-to-video model by fine-tuning zero-initialised adapters.

    One copy of the backbone is loaded and frozen; adapters (Linear → GELU → Linear, ``Up`` zero-initialised)
    are added to the video tokens after every attention layer where text meets video. With the adapters off
    the model is the frozen one, which makes the pseudo data and the preservation targets.

    Args:
        backbone: registry name (``unlearn.backbones.available_backbones()``), e.g. "cogvideox-2b".
        pretrained: hub id or local diffusers folder (None: the backbone's default hub id).
        tiny: build a tiny random model instead of loading weights (tests, CPU smoke runs).
        torch_dtype: dtype of the frozen backbone ("bfloat16", "float16", "float32").
        backbone_kwargs: family-specific loading options passed to the backbone's ``load`` (e.g.
            HunyuanVideo's ``embedded_guidance_scale``, ZeroScope's ``scheduler_class``).
        adapter_dim: inner width of each adapter.
        adapter_sites: ``"authors"`` (default): train adapters where the authors' released code injects them
            (CogVideoX: every block's ``attn1``, ``receler/erasers/cogvideo_erasers.py:76-85``; HunyuanVideo: the
            single-stream blocks only, ``hunyuan_erasers.py:59-68``); the other sites keep zero adapters (output 0)
            and ``L_loc`` averages over the trained ones. ``"all"``: every attention where text meets video (the
            paper's "after each full-attention layer", §3.4; the earlier default, HunyuanVideo's dual-stream
            blocks too). Other families: every site either way.
        eta: η, strength of the negative guidance in the target ``v_neg``.
        alpha: α, weight of the localization loss (0 disables the concept mask).
        loc_normalization: ``"masked_mean"`` (default): each layer's ``‖o^l ⊙ (1 − M)‖²`` divided by its number
            of masked-out entries, averaged over layers: Receler's regularizer (``train_receler.py:184-185``,
            ``((e_out * flip_mask) ** 2).mean(1).sum() / flip_mask.sum()``, then ``/= reg_count``), the lineage
            the paper names for its localization (§3.4). ``"paper"``: Eq. (7)'s squared norm divided by the
            prediction's element count (the divisor of ``L_unlearn``'s mean, the earlier default); its ``L_loc`` is
            larger by masked-out adapter entries / prediction elements, K·(1 − coverage) with K = 30 on
            CogVideoX-2B at 49×480×720 and 48 on CogVideoX-5B and HunyuanVideo (``benchmarks/loc_scale.py``), so
            the same α localizes K·(1 − coverage) times more than under ``masked_mean``.
        beta: β, weight of the preservation loss (0 disables it).
        mask_source: ``"frozen"`` (default): the concept maps come from the frozen model (adapters off) on the
            loss prompt at ``x_t``, recorded with the pseudo data (Receler ``train_receler.py:138-143``: the maps
            are captured under ``DisableEraser`` in the frozen forward that makes ``e_p``). ``"adapted"``: from
            the adapted forward of the training step itself (the earlier default).
        mask_mode: ``"averaged"`` (default): one mask shared by every layer, thresholded from the mean of the
            chosen sites' normalised maps (Receler ``concept_reg.py:29-34`` averages the chosen layers' maps into
            one mask; the paper's Eq. (7) writes one ``M`` for every layer; the authors' ``get_mask`` keeps the
            average of the normalised per-layer maps, ``receler/concept_reg_cogvideo.py:109-121``).
            ``"per_layer"``: each layer's own map (the earlier default).
        mask_normalization: ``"frame"`` (default): min-max per frame (the authors'
            ``receler/concept_reg_cogvideo.py:82-85``); ``"video"``: over the whole video.
        mask_threshold: normalised attention at or above which a video token is inside the concept mask
            (default 0.1: Receler ``train_receler.py:241``; the paper states no value).
        mask_layers: the attention sites averaged in ``"averaged"`` mode (None: the backbone's
            ``concept_map_sites``: every site for CogVideoX, the single-stream blocks for HunyuanVideo as the
            authors' ``receler/concept_reg_hunyuan.py:134`` hooks). Sites of different token grids (a UNet's
            resolutions) each get the mean of the chosen sites of their own grid.
        learning_rate: Adam learning rate for the adapters.
        weight_decay: AdamW weight decay.
        gradient_checkpointing: recompute the backbone's activations in backward to save memory.
        init_adapters: folder of adapters to start from (``unlearn export`` output / AdapterCheckpoint); the
            folder of a run that failed or was interrupted is refused (see ``allow_unfinished_init``).
        allow_unfinished_init: accept ``init_adapters`` from a run whose ``run_status.json`` is not "finished".
        divergence_factor: stop with :class:`DivergenceError` when the loss exceeds this multiple of the
            first step's loss (None: never; the loss of a healthy run falls or stays within a few times its
            start).
        adversarial_steps: adversarial training (0 = off, the paper's method): before each adapter step, this
            many inner steps of the adversary (``adversary``) on the text conditioning, towards the conditioning
            under which the adapted model best predicts the concept (the frozen model's conditional prediction);
            ``L_unlearn`` under the adversary's conditioning (same target ``v_neg``) is added to the loss with
            weight ``adversarial_weight``. Each step then costs about ``adversarial_steps + 2`` times a plain one.
        adversarial_epsilon: ``adversary: pgd`` only: radius of the perturbation per entry (L∞), in units of the
            conditioning's standard deviation.
        adversarial_weight: weight of ``L_unlearn`` under the adversary's conditioning next to the clean one.
        adversary: ``"pgd"`` (default, AdvUnlearn-style): a fresh perturbation in every batch, random start in the
            ``adversarial_epsilon`` ball, signed steps. ``"persistent"`` (after Receler, ``train_receler.py:
            104-168``): a bank of unbounded perturbations (every token state, in units of the conditioning's
            standard deviation: the space of ``unlearn.attacks.EmbeddingAttack``), one per training prompt
            (``adversary_bank``), warm-started across steps with its own Adam state (Receler keeps its adversarial
            embeddings and their optimiser for the whole run, lines 104-107; AdvUnlearn's ``--attack_init latest``,
            ``train-scripts/AdvUnlearn.py:257``), saved in checkpoints (``adversary.*``). Entries start at the
            clean conditioning (Receler: uniform random tokens, line 104: there the tokens are *added* to the
            prompt, here the perturbation is added to it). Unlike Receler the clean ``L_unlearn`` is kept next to
            the adversarial one (Receler's erase loss is the adversarial one only, line 168). Receler's released
            line 149 writes its adversarial embeddings through an advanced-indexing copy and so never feeds them
            to the model; here they are fed. With data-parallel training each process keeps its own bank.
        adversary_lr: ``persistent``: Adam's learning rate of the bank, in conditioning standard deviations
            (Receler: 0.1, ``train_receler.py:106``).
        adversary_weight_decay: ``persistent``: Adam's (coupled, L2) weight decay of the bank, the only pull back
            towards the clean conditioning (no ε ball). Default 0: unbounded, like the ``embedding`` attack it
            should close. Receler's 0.1 (same line, ``RECELER_ADVERSARY_WEIGHT_DECAY``) pins the bank near the clean
            conditioning here: Adam normalises the gradient (~1e-6 per entry) but not the decay.
        adversary_bank: ``persistent``: ``"prompt"`` (default): one perturbation per training prompt (the batch's
            ``prompt_index``); ``"shared"``: one perturbation for every prompt (Receler keeps one set per erased
            word, lines 104-105; here one per run).
        concept_map_kernel: where the concept maps come from: ``"fused"`` (default) takes the per-row
            log-sum-exp of the attention kernel the layer runs anyway (CPU flash; CUDA flash, memory-efficient or
            cuDNN) and adds only the concept columns' logits; ``"chunked"`` recomputes every key's logits in
            query chunks (exact, one more pass over the keys per mapped layer). The fallback when the check
            below fails.
        check_concept_map: where a run first makes concept maps (α > 0: the pseudo data with ``mask_source:
            frozen``, else the first training step), compare the first mapped layer's fused-kernel map with the
            chunked recompute of the same call; a difference above
            ``unlearn.backbones.attention.MAP_CHECK_ATOL`` stops the run with
            :class:`~unlearn.backbones.attention.ConceptMapKernelError` (the result is logged as
            ``train/map_check_max_abs`` and kept in ``map_check``).

    Raises:
        UnknownBackboneError: unknown ``backbone`` name (the message lists the known ones).
        WeightsFolderError: ``pretrained`` folder missing or incomplete.
        InputError: a hyperparameter outside its domain (α, β ≥ 0; η > 0; adapter_dim ≥ 1;
            0 < mask_threshold < 1; learning_rate > 0; weight_decay ≥ 0; divergence_factor > 1).
        DivergenceError: the loss became NaN or infinite, or grew past ``divergence_factor`` × its start.
    """

    def __init__(
        self,
        backbone: str = DEFAULT_BACKBONE,
        pretrained: str | None = None,
        tiny: bool = False,
        torch_dtype: str = DEFAULT_TORCH_DTYPE,
        backbone_kwargs: dict[str, Any] | None = None,
        adapter_dim: int = 128,
        adapter_sites: Literal["authors", "all"] = "authors",
        eta: float = 7.0,
        alpha: float = 1.0,
        loc_normalization: Literal["masked_mean", "paper"] = "masked_mean",
        beta: float = 0.0,
        mask_source: Literal["frozen", "adapted"] = "frozen",
        mask_mode: Literal["averaged", "per_layer"] = "averaged",
        mask_normalization: Literal["frame", "video"] = "frame",
        mask_threshold: float = RECELER_MASK_THRESHOLD,
        mask_layers: list[int] | None = None,
        learning_rate: float = 1e-4,
        weight_decay: float = 0.0,
        gradient_checkpointing: bool = False,
        init_adapters: str | None = None,
        allow_unfinished_init: bool = False,
        divergence_factor: float | None = 1000.0,
        adversarial_steps: int = 0,
        adversarial_epsilon: float = 1.0,
        adversarial_weight: float = 1.0,
        adversary: Literal["pgd", "persistent"] = "pgd",
        adversary_lr: float = RECELER_ADVERSARY_LR,
        adversary_weight_decay: float = 0.0,
        adversary_bank: Literal["prompt", "shared"] = "prompt",
        concept_map_kernel: Literal["fused", "chunked"] = "fused",
        check_concept_map: bool = True,
    ) -> None:
        super().__init__()
        check_choice(
            "model.concept_map_kernel",
            concept_map_kernel,
            CONCEPT_MAP_ROUTES,
            fix="'fused' reads the attention kernel's log-sum-exp; 'chunked' recomputes the map exactly (slower)",
        )
        check_int("model.adapter_dim", adapter_dim, low=1)
        check_range(
            "model.eta",
            eta,
            low=0,
            open_low=True,
            fix="η is the strength of the negative guidance that makes the unlearning target (paper: 7)",
        )
        check_range("model.alpha", alpha, low=0, fix="0 disables the localization loss")
        check_range("model.beta", beta, low=0, fix="0 disables the preservation loss")
        check_range(
            "model.mask_threshold",
            mask_threshold,
            low=0,
            high=1,
            open_low=True,
            open_high=True,
            fix="The mask keeps video tokens whose normalised concept attention is at least it (Receler: 0.1)",
        )
        check_range("model.learning_rate", learning_rate, low=0, open_low=True)
        check_range("model.weight_decay", weight_decay, low=0)
        check_range(
            "model.divergence_factor",
            divergence_factor,
            low=1,
            open_low=True,
            optional=True,
            fix="Use null to turn the divergence check off",
        )
        if mask_layers is not None and any(not isinstance(i, int) or i < 0 for i in mask_layers):
            raise InputError(f"model.mask_layers must list attention-site indices >= 0; got {mask_layers!r}")
        check_choice(
            "model.loc_normalization",
            loc_normalization,
            ("masked_mean", "paper"),
            fix="'masked_mean' is Receler's per-entry mean; 'paper' Eq. (7) over the unlearning loss's divisor",
        )
        check_choice("model.mask_source", mask_source, ("frozen", "adapted"), fix="'frozen' is Receler's choice")
        check_choice(
            "model.adapter_sites", adapter_sites, ("authors", "all"), fix="'authors' is where their code puts them"
        )
        check_choice("model.mask_mode", mask_mode, ("averaged", "per_layer"), fix="'averaged' is Receler's choice")
        check_choice(
            "model.mask_normalization", mask_normalization, ("frame", "video"), fix="'frame' is the authors' choice"
        )
        if mask_mode == "per_layer" and mask_layers:
            raise InputError(
                f"model.mask_layers {mask_layers!r} chooses the sites of an averaged mask, but model.mask_mode is "
                "'per_layer' (each layer its own map). Fix: drop mask_layers or set mask_mode: averaged"
            )
        check_int(
            "model.adversarial_steps", adversarial_steps, low=0, fix="0 is the paper's method (no adversarial training)"
        )
        check_choice(
            "model.adversary",
            adversary,
            ("pgd", "persistent"),
            fix="'pgd' is a fresh ε-ball attack per batch; 'persistent' a bank of unbounded perturbations (Receler)",
        )
        check_range(
            "model.adversary_lr",
            adversary_lr,
            low=0,
            open_low=True,
            fix="Adam's learning rate of the persistent adversary, in conditioning std (Receler: 0.1)",
        )
        check_range("model.adversary_weight_decay", adversary_weight_decay, low=0, fix="0 = unbounded (the default)")
        check_choice(
            "model.adversary_bank",
            adversary_bank,
            ("prompt", "shared"),
            fix="'prompt' keeps one perturbation per training prompt, 'shared' one for all",
        )
        if adversarial_steps > 0 and adversary == "pgd":
            check_range(
                "model.adversarial_epsilon",
                adversarial_epsilon,
                low=0,
                open_low=True,
                fix="The L∞ radius of the conditioning perturbation, in its standard deviations",
            )
        check_range("model.adversarial_weight", adversarial_weight, low=0)
        self.save_hyperparameters()
        check_pretrained(backbone, pretrained)
        self.backbone: VideoBackbone = build_backbone(
            backbone, pretrained=pretrained, tiny=tiny, torch_dtype=torch_dtype, **(backbone_kwargs or {})
        )
        sites = self.backbone.attention_sites()
        self.switch = AdapterSwitch([s.video_dim for s in sites], adapter_dim, [s.name for s in sites])
        self.switch.concept_map_route = concept_map_kernel
        self.backbone.attach_switch(self.switch)
        #: indices of the sites whose adapters train (``adapter_sites``); the others stay exactly zero
        self.trained_sites = list(range(len(sites)))
        if adapter_sites == "authors":
            self.trained_sites = author_sites(self.backbone.name, [s.name for s in sites])
        for i, adapter in enumerate(self.switch.adapters):
            if i not in self.trained_sites:
                adapter.requires_grad_(False)
        if gradient_checkpointing and hasattr(self.backbone.denoiser, "enable_gradient_checkpointing"):
            self.backbone.denoiser.enable_gradient_checkpointing()
        if mask_layers:
            bad = [i for i in mask_layers if i >= len(sites)]
            if bad:
                raise InputError(
                    f"model.mask_layers {bad} out of range: {backbone} has {len(sites)} attention sites "
                    f"(0..{len(sites) - 1})"
                )
        if init_adapters:
            load_adapter_weights(
                self.switch,
                init_adapters,
                expect_backbone=self.backbone.name,
                allow_unfinished=allow_unfinished_init,
                key="model.init_adapters",
            )
        # checkpoints hold the adapters only (the backbone is rebuilt from its name and weights)
        self.strict_loading = False
        #: loss of the first training step of this fit (the divergence check's reference)
        self._first_loss: float | None = None
        #: the first training step's concept-map check (``check_concept_map``): one dict per compared layer
        self.map_check: list[dict[str, Any]] | None = None
        #: the persistent adversary's bank (``adversary: persistent``), saved in checkpoints as ``adversary.*``
        self.adversary: ConditioningBank | None = None
        if adversary == "persistent" and adversarial_steps > 0:
            self.adversary = ConditioningBank()

    @property
    def eta(self) -> float:
        return float(self.hparams.eta)

    # ------------------------------------------------------------------ training
    def _regenerate(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Per-step regeneration (cache off): sample x_t with the frozen model now, ESD/Receler style."""
        dm = self.trainer.datamodule
        settings: PseudoDataSettings = dm.pseudo_data_settings(self.backbone)
        out: dict[str, Any] = {}
        reqs, pre_reqs, stops = [], [], []
        frozen_maps = "concept_tokens" in batch and self.hparams.get("mask_source", "frozen") == "frozen"
        for b in range(batch["regen_prompt_index"].shape[0]):
            p = dm.training_prompts[int(batch["regen_prompt_index"][b])]
            tokens = tuple(bool(x) for x in batch["concept_tokens"][b].tolist()) if frozen_maps else None
            reqs.append(TrajectoryRequest("unlearn", p.prompt, int(batch["regen_seed"][b]), dm.loss_prompt(p), tokens))
            stops.append(int(batch["regen_step"][b]))
            if "regen_pre_index" in batch:
                q = dm.preserve_prompts[int(batch["regen_pre_index"][b])]
                pre_reqs.append(TrajectoryRequest("preserve", q.prompt, int(batch["regen_seed"][b]) + 1, q.prompt))
        with self.switch.disabled():
            made, pre_made = [], []
            for i, r in enumerate(reqs):
                one = dataclasses.replace(settings, record_steps=(stops[i],))
                made.append(make_trajectories(self.backbone, [r], one, self.eta)[0])
                if pre_reqs:
                    pre_made.append(make_trajectories(self.backbone, [pre_reqs[i]], one, self.eta)[0])
        for prefix, entries in (("", made), ("pre_", pre_made)):
            if not entries:
                continue
            for k in entries[0]:
                # each entry holds one recorded step (or one prompt's embedding): drop that leading axis
                out[prefix + k] = torch.stack([e[k][0] for e in entries]).to(self.device)
        if "concept_tokens" in batch:
            out["concept_tokens"] = batch["concept_tokens"]
        out["prompt_index"] = batch["regen_prompt_index"]  # the persistent adversary's bank row
        return out

    def compute_losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """All loss terms for one batch of pseudo data; ``total`` backpropagates to the gradient of
        ``L_unlearn + α·L_loc + β·L_pre``.

        With β > 0 the preservation term runs first and, when gradients are on, is differentiated at once
        (``torch.autograd.grad``): its graph is freed before the unlearning forward builds the next one, so the
        two forwards never hold activations together. Its gradient reaches the adapters through the one
        backward of ``total`` (a term ``Σ p·g − Σ p·g|detached``: value 0, gradient ``g``), so Lightning's
        backward, gradient accumulation, clipping and strategies see an ordinary loss.
        """
        hp = self.hparams
        bb = self.backbone
        losses: dict[str, Tensor] = {}
        pre_grads: list[tuple[Tensor, Tensor]] = []
        if hp.beta > 0 and "pre_x_t" in batch:
            pred_pre = bb.predict(batch["pre_x_t"], batch["pre_timesteps"], batch_embedding(batch, "pre_cond."))
            losses["pre"] = preservation_loss(pred_pre, batch["pre_target"])
            grads = self.adapter_grads(hp.beta * losses["pre"])
            if grads is not None:
                pre_grads = grads
                losses["pre"] = losses["pre"].detach()
            del pred_pre
        cond = batch_embedding(batch, "cond.")
        if self.adversary is not None:
            # before the clean forward: the inner steps' graphs and the adversarial forward's are freed (its
            # gradient taken at once, like L_pre's) before the clean forward builds the graph of `total`
            adv_losses, adv_grads = self.persistent_adversary_losses(batch, cond)
            losses.update(adv_losses)
            pre_grads = _sum_grads(pre_grads, adv_grads)
        tokens = batch.get("concept_tokens") if hp.alpha > 0 else None
        frozen = hp.get("mask_source", "frozen") == "frozen"
        # the adapted forward records the concept maps only when the mask comes from it (mask_source: adapted)
        with self.switch.capturing(None if frozen else tokens):
            pred = bb.predict(batch["x_t"], batch["timesteps"], cond)
        squares, maps = self.switch.take()
        if hp.alpha > 0 and frozen:
            maps = frozen_concept_maps(batch, len(self.switch.adapters))
            maps = [m.to(pred.device) for m in maps]
        losses["unlearn"] = unlearning_loss(pred, batch["target"])
        loss = losses["unlearn"]
        if hp.adversarial_steps > 0 and self.adversary is None:
            losses["adv_unlearn"] = self.adversarial_unlearning_loss(batch, cond)
            loss = loss + hp.adversarial_weight * losses["adv_unlearn"]
        if hp.alpha > 0:
            if tokens is None and not frozen:
                raise ValueError("model.alpha > 0 needs concept token masks in the batch (the data module makes them)")
            masks = self.concept_masks(maps)
            trained = getattr(self, "trained_sites", None) or list(range(len(squares)))
            if len(trained) < len(squares):  # L_loc over the adapters that train (adapter_sites: authors)
                squares, masks = [squares[i] for i in trained], [masks[i] for i in trained]
            per_sample = pred[0].numel() if hp.get("loc_normalization", "paper") == "paper" else None
            widths = [self.switch.adapters[i].up.out_features for i in trained]  # every site records
            losses["loc"] = localization_loss(squares, masks, per_sample_elements=per_sample, channels=widths)
            losses["mask_coverage"] = torch.stack([m.mean() for m in masks]).mean()
            loss = loss + hp.alpha * losses["loc"]
        if "pre" in losses:
            loss = loss + hp.beta * losses["pre"]
        if self.adversary is not None:
            loss = loss + hp.adversarial_weight * losses["adv_unlearn"]  # its gradient comes with pre_grads
        if pre_grads:
            injected = sum((p * g).sum() for p, g in pre_grads)
            loss = loss + (injected - injected.detach())
        losses["total"] = loss
        return losses

    def adversarial_unlearning_loss(self, batch: dict[str, Any], cond: PromptEmbedding) -> Tensor:
        """``L_unlearn`` under the worst-case conditioning near ``cond`` (see ``adversarial_steps``)."""
        hp, bb = self.hparams, self.backbone
        x_t, t = batch["x_t"], batch["timesteps"]
        with torch.no_grad(), self.switch.disabled():
            concept = bb.predict(x_t, t, cond)  # what the frozen model draws for this conditioning
        worst = worst_case_conditioning(
            lambda c: bb.predict(x_t, t, c), cond, concept, hp.adversarial_steps, hp.adversarial_epsilon
        )
        return unlearning_loss(bb.predict(x_t, t, worst), batch["target"])

    def bank_rows(self, batch: dict[str, Any]) -> Tensor:
        """The persistent adversary's bank entry of every video of the batch (``adversary_bank``)."""
        n = batch["x_t"].shape[0]
        if self.hparams.get("adversary_bank", "prompt") == "shared":
            return torch.zeros(n, dtype=torch.long, device=batch["x_t"].device)
        rows = batch.get("prompt_index")
        if rows is None:
            raise ValueError(
                "model.adversary 'persistent' with adversary_bank 'prompt' needs each sample's training prompt "
                "(prompt_index) in the batch: the data module's loaders give it. Fix: use them, or set "
                "model.adversary_bank: shared"
            )
        return torch.as_tensor(rows, dtype=torch.long).reshape(n).to(batch["x_t"].device)

    def persistent_adversary_losses(
        self, batch: dict[str, Any], cond: PromptEmbedding
    ) -> tuple[dict[str, Tensor], list[tuple[Tensor, Tensor]]]:
        """``adversary: persistent``: ``adversarial_steps`` Adam steps of the batch's bank entries, then
        ``L_unlearn`` under the perturbed conditioning, differentiated at once (its gradient, times
        ``adversarial_weight``, is returned for injection into ``total``; the loss value comes back detached).
        Also logged: the inner objective before the first and after the last step (``adv_inner_first``,
        ``adv_inner_last``: the latter measured in the adversarial forward itself) and the bank's RMS."""
        hp, bb = self.hparams, self.backbone
        x_t, t = batch["x_t"], batch["timesteps"]
        rows = self.bank_rows(batch)
        entries = None
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if hp.get("adversary_bank", "prompt") == "prompt" and dm is not None:
            entries = len(getattr(dm, "training_prompts", []) or [])
        self.adversary.ensure(rows, cond.hidden_states, entries)
        with torch.no_grad(), self.switch.disabled():
            concept = bb.predict(x_t, t, cond)  # what the frozen model draws for this conditioning (Receler's e_p)
        inner = persistent_adversary_steps(
            lambda c: bb.predict(x_t, t, c),
            cond,
            concept,
            self.adversary,
            rows,
            hp.adversarial_steps,
            hp.adversary_lr,
            hp.adversary_weight_decay,
        )
        pred = bb.predict(x_t, t, bank_conditioning(cond, self.adversary, rows))
        adv = unlearning_loss(pred, batch["target"])
        out = {
            "adv_inner_first": inner[0],
            "adv_inner_last": torch.mean((pred.detach().float() - concept.float()) ** 2),
            "adv_delta_rms": self.adversary.delta[rows].pow(2).mean().sqrt(),
        }
        grads = self.adapter_grads(hp.adversarial_weight * adv) if hp.adversarial_weight > 0 else None
        out["adv_unlearn"] = adv.detach()
        return out, grads or []

    def adapter_grads(self, loss: Tensor) -> list[tuple[Tensor, Tensor]] | None:
        """``(parameter, gradient)`` of ``loss`` for every trainable adapter it reaches, taken now so that its
        graph is freed before the next forward (the gradient is injected into the step's loss later); None when
        ``loss`` has no graph or no adapter trains."""
        params = [p for p in self.switch.parameters() if p.requires_grad]
        if not (loss.requires_grad and params):
            return None
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        return [(p, g) for p, g in zip(params, grads) if g is not None]

    def mask_sites(self, num_sites: int) -> list[int]:
        """The attention sites whose maps an averaged mask is built from (``mask_layers``, or the backbone's
        ``concept_map_sites``: a site-name prefix; None = every site)."""
        if self.hparams.mask_layers:
            bad = [i for i in self.hparams.mask_layers if not 0 <= i < num_sites]
            if bad:
                raise ValueError(f"model.mask_layers {bad} out of range: the backbone has {num_sites} attention sites")
            return list(self.hparams.mask_layers)
        prefix = getattr(self.backbone, "concept_map_sites", None)
        names = self.switch.site_names
        chosen = [i for i in range(num_sites) if prefix is None or names[i].startswith(prefix)]
        return chosen or list(range(num_sites))

    def concept_masks(self, maps: list[Tensor]) -> list[Tensor]:
        """One concept mask per attention site, from the captured maps (``mask_mode``, ``mask_layers``,
        ``mask_normalization``, ``mask_threshold``)."""
        hp = self.hparams
        thr = hp.mask_threshold
        region = hp.get("mask_normalization", "frame")
        if hp.get("mask_mode", "per_layer" if not hp.mask_layers else "averaged") == "per_layer":
            return [concept_mask(m, thr, region)[1] for m in maps]
        chosen = self.mask_sites(len(maps))
        by_grid: dict[tuple[int, ...], list[Tensor]] = {}
        for i in chosen:
            by_grid.setdefault(tuple(maps[i].shape), []).append(concept_mask(maps[i], thr, region)[0])
        masks = {g: (torch.stack(soft).mean(0) >= thr).float() for g, soft in by_grid.items()}
        missing = sorted({tuple(m.shape) for m in maps} - set(masks))
        if missing:
            raise ValueError(
                f"model.mask_layers {chosen} has no site with the token grid {missing[0]} of other attention sites "
                "(e.g. a UNet's resolutions): add one site of every grid, or leave mask_layers unset"
            )
        return [masks[tuple(m.shape)] for m in maps]

    def on_train_epoch_start(self) -> None:
        # per-step regeneration (data.use_cache: false) draws fresh (prompt, seed, step) recipes every epoch
        dataset = getattr(self.trainer.train_dataloader, "dataset", None)
        if callable(getattr(dataset, "set_epoch", None)):
            dataset.set_epoch(self.current_epoch)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        if "regen_prompt_index" in batch:
            batch = self._regenerate(batch)
        if self.map_check is None and self.hparams.get("check_concept_map", True) and self.hparams.alpha > 0:
            losses = self._checked_first_step(batch)
        else:
            losses = self.compute_losses(batch)
        self.check_divergence(losses)
        # Lightning writes step metrics every `log_every_n_steps`; logging only then keeps its per-call
        # bookkeeping (sizeable next to a small model's step) off the other steps
        if self.trainer is None or self.global_step % max(1, self.trainer.log_every_n_steps) == 0:
            logged = {"train/loss": losses["total"].detach()}
            logged.update({f"train/{k}": v.detach() for k, v in losses.items() if k != "total"})
            self.log_dict(logged, prog_bar=False, batch_size=batch["x_t"].shape[0])
        return losses["total"]

    @contextlib.contextmanager
    def guarded_concept_maps(self) -> Iterator[None]:
        """Around the first concept maps a run makes (the data module's pseudo-data build: ``mask_source: frozen``
        records them there): the first mapped layer's fused-kernel map is compared with the chunked recompute of
        the same call and a mismatch stops the run (``check_concept_map``). Nothing is checked when no map is made
        inside (a full cache): the first training step then checks its own maps, if it makes any."""
        hp = self.hparams
        if self.map_check is not None or not hp.get("check_concept_map", True) or hp.alpha <= 0:
            yield
            return
        with checking_concept_map(layers=1, atol=MAP_CHECK_ATOL) as check:
            yield
        if check.results:
            self.map_check = check.results
            check.verify(
                what=f"model: {self.backbone.name}'s first concept map (pseudo data)",
                fix="set model.concept_map_kernel: chunked",
            )

    def _checked_first_step(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """The first training step with its concept-map kernel guarded (``check_concept_map``): the first mapped
        layer's fused-kernel map against the chunked recompute of the same call; a mismatch stops the run."""
        with checking_concept_map(layers=1, atol=MAP_CHECK_ATOL) as check:
            losses = self.compute_losses(batch)
        self.map_check = check.results
        check.verify(
            what=f"model: at the first training step, {self.backbone.name}'s concept map",
            fix="set model.concept_map_kernel: chunked",
        )
        if check.results:
            self.log("train/map_check_max_abs", float(check.max_abs), batch_size=batch["x_t"].shape[0])
        return losses

    def check_divergence(self, losses: dict[str, Tensor]) -> None:
        """Raise :class:`DivergenceError` when the loss is not finite or exceeds ``divergence_factor`` × the first
        step's loss (every rank takes the same decision, so no rank waits for another one that stopped)."""
        total = float(losses["total"].detach())
        factor = self.hparams.get("divergence_factor")
        if self._first_loss is None and math.isfinite(total):
            self._first_loss = total
        first = self._first_loss
        bad = not math.isfinite(total) or (
            factor is not None and first is not None and first > 0 and total > factor * first
        )
        if self._trainer is not None:
            bad = self.trainer.strategy.reduce_boolean_decision(bad, all=False)
        if not bad:
            return
        terms = ", ".join(f"{k}={float(v):.4g}" for k, v in losses.items())
        lr = self.hparams.learning_rate
        if not math.isfinite(total):
            raise DivergenceError(
                f"the loss became {total} at step {self.global_step} ({terms}). Fix: lower model.learning_rate "
                f"(now {lr:g}), use torch_dtype float32 or precision bf16-mixed, or check the pseudo data for NaNs"
            )
        raise DivergenceError(
            f"the loss diverged: {total:.4g} at step {self.global_step} is more than model.divergence_factor="
            f"{factor:g} times the first step's {first:.4g} ({terms}). Fix: lower model.learning_rate (now {lr:g}); "
            "set model.divergence_factor higher, or null to turn the check off"
        )

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # the adapters' weight and gradient norms (after DDP's all-reduce and AMP's unscale), on logging steps
        # only: one pass over the adapters, small next to the step
        if self.trainer is None or self.global_step % max(1, self.trainer.log_every_n_steps):
            return
        params = list(self.switch.parameters())
        norms = {"train/adapter_norm": torch.stack([p.detach().float().norm() for p in params]).norm()}
        # Lightning's own: the 2-norm of all the adapters' gradients as one vector
        total = grad_norm(self.switch, 2).get("grad_2.0_norm_total")
        if total is not None:
            norms["train/grad_norm"] = total
        self.log_dict(norms, prog_bar=False)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            [p for p in self.switch.parameters() if p.requires_grad],
            lr=self.hparams.learning_rate,
            weight_decay=self.hparams.weight_decay,
        )

    # ------------------------------------------------------------------ checkpoints: adapters only
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # the frozen backbone is rebuilt from its name and weights: a checkpoint is adapter-sized. The optimizer,
        # step, loops and the sampler position are Lightning's part; the RNG states are added here.
        # (and the persistent adversary's bank, `adversary.*`, which a resumed run continues from)
        state = checkpoint["state_dict"]
        checkpoint["state_dict"] = {k: v for k, v in state.items() if k.startswith((CHECKPOINT_PREFIX, BANK_PREFIX))}
        # what `unlearn export` needs to write an adapter folder that loads back as model.init_adapters
        checkpoint["adapter_config"] = adapter_config(self.switch, self.backbone.name)
        checkpoint["rng_states"] = compat.collect_rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # checkpoints written before the adapters' attribute was named `switch` (#22) resume too
        adapters = checkpoint_adapter_state(checkpoint["state_dict"])
        bank_state = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith(BANK_PREFIX)}
        checkpoint["state_dict"] = {**{CHECKPOINT_PREFIX + k: v for k, v in adapters.items()}, **bank_state}
        self._resumed_rng_states = checkpoint.get("rng_states")
        # Lightning loads the state dict after this hook: size the bank's buffers (they grow on first use) to the
        # checkpoint's, so that they load instead of failing on a shape mismatch
        bank = getattr(self, "adversary", None)
        delta = bank_state.get(BANK_PREFIX + "delta")
        if bank is not None and delta is not None:
            bank.resize(int(delta.shape[0]), tuple(delta.shape[1:]), bank.delta.device)

    def on_train_start(self) -> None:
        # with the pseudo-data cache the text encoders and the VAE have done their work (the cache holds the
        # conditioning): off the training device until a sampling callback brings them back
        # (`VideoBackbone.side_modules_on_device`). Per-step regeneration encodes prompts in every step: they stay.
        if getattr(self.trainer.datamodule, "use_cache", True):
            self.backbone.park_side_modules()
        # set last, once everything before the first resumed step (cache, dataloader) has run
        states = getattr(self, "_resumed_rng_states", None)
        if states:
            compat.set_rng_states(states)
            self._resumed_rng_states = None

    def adapter_state_dict(self) -> dict[str, Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.switch.state_dict().items()}

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, prompts: list[str], seeds: list[int], adapters: bool = True, **sampling: Any) -> Tensor:
        """Videos (uint8 ``[B, F, H, W, 3]``) with the adapters on (unlearned) or off (original)."""
        ctx = self.switch.scaled(1.0) if adapters else self.switch.disabled()
        with ctx:
            # phase by phase (VideoBackbone.generate_offloaded): prompts encoded once with only the text encoders on
            # the device, denoising with the denoiser alone, decoding with only the VAE (tiled, one video at a time)
            return self.backbone.generate_offloaded(prompts, seeds, **sampling)

    def adapter_norm(self) -> float:
        return math.sqrt(sum(float(p.detach().float().pow(2).sum()) for p in self.switch.parameters()))
