"""T2VUnlearning as a LightningModule: adapters on a frozen backbone, ``L = L_unlearn + α L_loc + β L_pre``."""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states
from torch import Tensor

from backbones import PromptEmbedding, VideoBackbone, build_backbone

from .adapters import AdapterController
from .adversarial import worst_case_conditioning
from .data import batch_embedding
from .export import load_adapter_weights
from .losses import concept_mask, localization_loss, preservation_loss, unlearning_loss
from .pseudo_data import SamplerSettings, TrajectoryRequest, make_trajectories


class T2VUnlearning(pl.LightningModule):
    """Erase a concept from a text-to-video model by fine-tuning zero-initialised adapters.

    One copy of the backbone is loaded and frozen; adapters (Linear → GELU → Linear, ``Up`` zero-initialised)
    are added to the video tokens after every attention layer where text meets video. With the adapters off
    the model is the frozen one, which makes the pseudo data and the preservation targets.

    Args:
        backbone: registry name (``backbones.available_backbones()``), e.g. "cogvideox-2b".
        pretrained: hub id or local diffusers folder (None: the backbone's default hub id).
        tiny: build a tiny random model instead of loading weights (tests, CPU smoke runs).
        torch_dtype: dtype of the frozen backbone ("bfloat16", "float16", "float32").
        backbone_kwargs: family-specific loading options passed to the backbone's ``load`` (e.g.
            HunyuanVideo's ``embedded_guidance_scale``, ZeroScope's ``scheduler_class``).
        adapter_dim: inner width of each adapter.
        eta: η, strength of the negative guidance in the target ``v_neg``.
        alpha: α, weight of the localization loss (0 disables the concept mask).
        beta: β, weight of the preservation loss (0 disables it).
        mask_threshold: normalised attention above which a video token is inside the concept mask.
        mask_layers: build one mask, shared by every layer's L_loc, from the mean normalised map of these
            attention sites (None: each layer uses its own map). Use it where only some layers localise the
            concept (in the toy model only the first does); the sites must share a token grid.
        learning_rate: Adam learning rate for the adapters.
        weight_decay: AdamW weight decay.
        gradient_checkpointing: recompute the backbone's activations in backward to save memory.
        init_adapters: folder of adapters to start from (``unlearn export`` output / AdapterCheckpoint).
        adversarial_steps: adversarial training (AdvUnlearn-style; 0 = off, the paper's method): before each
            adapter step, this many PGD steps find the text conditioning within ``adversarial_epsilon`` of the
            batch's under which the adapted model best predicts the concept (the frozen model's conditional
            prediction); ``L_unlearn`` on that worst case is added to the loss. Each step then costs about
            ``adversarial_steps + 2`` times a plain one.
        adversarial_epsilon: radius of the perturbation per entry (L∞), in units of the conditioning's
            standard deviation.
        adversarial_weight: weight of the worst-case ``L_unlearn`` next to the clean one.

    Raises:
        UnknownBackboneError: unknown ``backbone`` name (the message lists the known ones).
        WeightsFolderError: ``pretrained`` folder missing or incomplete.
        FloatingPointError: the loss became NaN or infinite.
    """

    def __init__(
        self,
        backbone: str = "cogvideox-2b",
        pretrained: str | None = None,
        tiny: bool = False,
        torch_dtype: str = "bfloat16",
        backbone_kwargs: dict[str, Any] | None = None,
        adapter_dim: int = 128,
        eta: float = 7.0,
        alpha: float = 1.0,
        beta: float = 0.0,
        mask_threshold: float = 0.5,
        mask_layers: list[int] | None = None,
        learning_rate: float = 1e-4,
        weight_decay: float = 0.0,
        gradient_checkpointing: bool = False,
        init_adapters: str | None = None,
        adversarial_steps: int = 0,
        adversarial_epsilon: float = 1.0,
        adversarial_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if adversarial_steps < 0 or (adversarial_steps > 0 and adversarial_epsilon <= 0):
            raise ValueError(f"model.adversarial_steps={adversarial_steps}, model.adversarial_epsilon="
                             f"{adversarial_epsilon}: give steps >= 0 and, for adversarial training, epsilon > 0")
        self.save_hyperparameters()
        self.backbone: VideoBackbone = build_backbone(
            backbone, pretrained=pretrained, tiny=tiny, torch_dtype=torch_dtype, **(backbone_kwargs or {})
        )
        sites = self.backbone.attention_sites()
        self.controller = AdapterController([s.video_dim for s in sites], adapter_dim, [s.name for s in sites])
        self.backbone.attach_controller(self.controller)
        if gradient_checkpointing and hasattr(self.backbone.denoiser, "enable_gradient_checkpointing"):
            self.backbone.denoiser.enable_gradient_checkpointing()
        if init_adapters:
            load_adapter_weights(self.controller, init_adapters, expect_backbone=self.backbone.name)
        # checkpoints hold the adapters only (the backbone is rebuilt from its name and weights)
        self.strict_loading = False

    @property
    def eta(self) -> float:
        return float(self.hparams.eta)

    # ------------------------------------------------------------------ training
    def _regenerate(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Per-step regeneration (cache off): sample x_t with the frozen model now, ESD/Receler style."""
        dm = self.trainer.datamodule
        settings: SamplerSettings = dm.sampler_settings(self.backbone)
        out: dict[str, Any] = {}
        reqs, pre_reqs, stops = [], [], []
        for b in range(batch["regen_prompt_index"].shape[0]):
            p = dm.training_prompts[int(batch["regen_prompt_index"][b])]
            reqs.append(TrajectoryRequest("unlearn", p.prompt, int(batch["regen_seed"][b]), dm.loss_prompt(p)))
            stops.append(int(batch["regen_step"][b]))
            if "regen_pre_index" in batch:
                q = dm.preserve_prompts[int(batch["regen_pre_index"][b])]
                pre_reqs.append(TrajectoryRequest("preserve", q.prompt, int(batch["regen_seed"][b]) + 1, q.prompt))
        with self.controller.disabled():
            made, pre_made = [], []
            for i, r in enumerate(reqs):
                one = SamplerSettings(**{**settings.__dict__, "record_steps": (stops[i],)})
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
        return out

    def compute_losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """All loss terms for one batch of pseudo data."""
        hp = self.hparams
        bb = self.backbone
        cond = batch_embedding(batch, "cond.")
        tokens = batch.get("concept_tokens") if hp.alpha > 0 else None
        with self.controller.capturing(tokens):
            pred = bb.predict(batch["x_t"], batch["timesteps"], cond)
        outputs, maps = self.controller.take()
        losses = {"unlearn": unlearning_loss(pred, batch["target"])}
        loss = losses["unlearn"]
        if hp.adversarial_steps > 0:
            losses["adv_unlearn"] = self.adversarial_unlearning_loss(batch, cond)
            loss = loss + hp.adversarial_weight * losses["adv_unlearn"]
        if hp.alpha > 0:
            if tokens is None:
                raise ValueError("model.alpha > 0 needs concept token masks in the batch (the data module makes them)")
            masks = self.concept_masks(maps)
            losses["loc"] = localization_loss(outputs, masks)
            losses["mask_coverage"] = torch.stack([m.mean() for m in masks]).mean()
            loss = loss + hp.alpha * losses["loc"]
        if hp.beta > 0 and "pre_x_t" in batch:
            pre_cond = batch_embedding(batch, "pre_cond.")
            pred_pre = bb.predict(batch["pre_x_t"], batch["pre_timesteps"], pre_cond)
            losses["pre"] = preservation_loss(pred_pre, batch["pre_target"])
            loss = loss + hp.beta * losses["pre"]
        losses["total"] = loss
        return losses

    def adversarial_unlearning_loss(self, batch: dict[str, Any], cond: PromptEmbedding) -> Tensor:
        """``L_unlearn`` under the worst-case conditioning near ``cond`` (see ``adversarial_steps``)."""
        hp, bb = self.hparams, self.backbone
        x_t, t = batch["x_t"], batch["timesteps"]
        with torch.no_grad(), self.controller.disabled():
            concept = bb.predict(x_t, t, cond)  # what the frozen model draws for this conditioning
        worst = worst_case_conditioning(lambda c: bb.predict(x_t, t, c), cond, concept,
                                        hp.adversarial_steps, hp.adversarial_epsilon)
        return unlearning_loss(bb.predict(x_t, t, worst), batch["target"])

    def concept_masks(self, maps: list[Tensor]) -> list[Tensor]:
        """One concept mask per attention site, from the captured maps (see ``mask_layers``)."""
        hp = self.hparams
        if not hp.mask_layers:
            return [concept_mask(m, hp.mask_threshold)[1] for m in maps]
        bad = [i for i in hp.mask_layers if not 0 <= i < len(maps)]
        if bad:
            raise ValueError(f"model.mask_layers {bad} out of range: the backbone has {len(maps)} attention sites")
        chosen = [maps[i] for i in hp.mask_layers]
        if any(m.shape != maps[0].shape for m in chosen + maps):
            raise ValueError("model.mask_layers needs attention sites with one token grid; this backbone's sites "
                             "differ (e.g. a UNet's resolutions): leave mask_layers unset")
        soft = torch.stack([concept_mask(m, hp.mask_threshold)[0] for m in chosen]).mean(0)
        return [(soft >= hp.mask_threshold).float()] * len(maps)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        if "regen_prompt_index" in batch:
            batch = self._regenerate(batch)
        losses = self.compute_losses(batch)
        if not torch.isfinite(losses["total"]):
            raise FloatingPointError(
                f"loss is {losses['total'].item()} at step {self.global_step} "
                f"({ {k: float(v) for k, v in losses.items()} }). Fix: lower model.learning_rate, use "
                "torch_dtype float32 or precision bf16-mixed, or check the pseudo data for NaNs."
            )
        # Lightning writes step metrics every `log_every_n_steps`; logging only then keeps its per-call
        # bookkeeping (sizeable next to a small model's step) off the other steps
        if self.trainer is None or self.global_step % max(1, self.trainer.log_every_n_steps) == 0:
            logged = {"train/loss": losses["total"].detach()}
            logged.update({f"train/{k}": v.detach() for k, v in losses.items() if k != "total"})
            self.log_dict(logged, prog_bar=False, batch_size=batch["x_t"].shape[0])
        return losses["total"]

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # the adapters' weight and gradient norms (after DDP's all-reduce and AMP's unscale), on logging steps
        # only: one pass over the adapters, small next to the step
        if self.trainer is None or self.global_step % max(1, self.trainer.log_every_n_steps):
            return
        params = list(self.controller.parameters())
        grads = [p.grad.detach().float().norm() for p in params if p.grad is not None]
        norms = {"train/adapter_norm": torch.stack([p.detach().float().norm() for p in params]).norm()}
        if grads:
            norms["train/grad_norm"] = torch.stack(grads).norm()
        self.log_dict(norms, prog_bar=False)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.controller.parameters(), lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay)

    # ------------------------------------------------------------------ checkpoints: adapters only
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # the frozen backbone is rebuilt from its name and weights: a checkpoint is adapter-sized. The optimizer,
        # step, loops and the sampler position are Lightning's part; the RNG states are added here.
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith("controller.")}
        checkpoint["rng_states"] = _collect_rng_states(include_cuda=torch.cuda.is_available())

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._resumed_rng_states = checkpoint.get("rng_states")

    def on_train_start(self) -> None:
        # set last, once everything before the first resumed step (cache, dataloader) has run
        states = getattr(self, "_resumed_rng_states", None)
        if states:
            _set_rng_states(states)
            self._resumed_rng_states = None

    def adapter_state_dict(self) -> dict[str, Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.controller.state_dict().items()}

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, prompts: list[str], seeds: list[int], adapters: bool = True, **sampling: Any) -> Tensor:
        """Videos (uint8 ``[B, F, H, W, 3]``) with the adapters on (unlearned) or off (original)."""
        ctx = self.controller.scaled(1.0) if adapters else self.controller.disabled()
        with ctx:
            latents = self.backbone.sample(prompts, seeds, **sampling)
        return self.backbone.decode(latents)

    def adapter_norm(self) -> float:
        return math.sqrt(sum(float(p.detach().float().pow(2).sum()) for p in self.controller.parameters()))
