"""Save and log the concept masks that the localization loss uses (per attention layer)."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from safetensors.torch import save_file

from unlearn.checks import check_range
from unlearn.evaluation.plots import _figure
from unlearn.io import atomic_path
from unlearn.methods.t2vunlearning import batch_embedding, concept_mask

from .periods import Period


class ConceptMaskCallback(pl.Callback):
    """Every ``every_n_steps`` optimizer steps (and/or ``every_n_epochs`` epochs), run the current model on the
    first training batch and save, per layer, the normalised concept attention map and its mask
    (``masks_step=N.safetensors`` / ``masks_epoch=N.safetensors`` and a PNG grid: rows = layers, labelled with
    their attention sites, columns = latent frames, labelled; per frame the map (green) then the mask (magenta);
    the title names the step and threshold, and the PNG's text chunks hold the same labels). The grid is logged
    as an image to wandb or TensorBoard when one is the logger. Both files are written atomically.

    Args:
        dirpath: output folder (default ``<default_root_dir>/masks``).
        every_n_steps: period in optimizer steps (0: off).
        every_n_epochs: period in epochs (0: off).
        threshold: mask threshold (None: the model's ``mask_threshold``).
    """

    def __init__(
        self,
        dirpath: str | None = None,
        every_n_steps: int = 0,
        every_n_epochs: int = 1,
        threshold: float | None = None,
    ) -> None:
        self.period = Period("ConceptMaskCallback", every_n_steps, every_n_epochs, acts_at_end=False)
        check_range(
            "ConceptMaskCallback.threshold", threshold, low=0, high=1, open_low=True, open_high=True, optional=True
        )
        self.dirpath = dirpath
        self.threshold = threshold
        self._batch = None
        self.last_files: list[Path] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        if self._batch is None and "x_t" in batch and "concept_tokens" in batch:
            self._batch = {k: v[:1] for k, v in batch.items()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if self.period.step_due(trainer):
            self._write(trainer, pl_module, f"step={trainer.global_step}")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.period.epoch_due(trainer):
            self._write(trainer, pl_module, f"epoch={trainer.current_epoch}")

    @torch.no_grad()
    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, tag: str) -> None:
        if self._batch is None or not trainer.is_global_zero:
            return
        b = self._batch
        switch = pl_module.switch
        hp = pl_module.hparams
        if hp.get("mask_source", "frozen") == "frozen" and "concept_maps.0" in b:
            # the frozen model's maps recorded with the pseudo data: the ones the localization loss uses
            maps = [b[f"concept_maps.{i}"] for i in range(len(switch.adapters))]
        else:
            with switch.capturing(b["concept_tokens"]):
                pl_module.backbone.predict(b["x_t"], b["timesteps"], batch_embedding(b, "cond."))
            _, maps = switch.take()
        thr = self.threshold if self.threshold is not None else hp.mask_threshold
        region = hp.get("mask_normalization", "frame")
        # the masks the loss uses (one averaged mask in mask_mode "averaged"), unless a threshold of its own is set
        used = pl_module.concept_masks(maps) if self.threshold is None and hasattr(pl_module, "concept_masks") else None
        tensors, rows = {}, []
        for i, m in enumerate(maps):
            soft, mask = concept_mask(m.float(), thr, region)
            if used is not None:
                mask = used[i]
            tensors[f"layer{i}.map"] = soft[0].cpu().contiguous()
            tensors[f"layer{i}.mask"] = mask[0].cpu().clone()  # an averaged mask is one tensor for every layer
            rows.append(self._row(soft[0], mask[0]))
        out = Path(self.dirpath or Path(trainer.default_root_dir) / "masks")
        st = out / f"masks_{tag}.safetensors"
        with atomic_path(st) as tmp:
            save_file(tensors, tmp)
        png = out / f"masks_{tag}.png"
        width = max(r.shape[1] for r in rows)
        grid = np.concatenate([np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0))) for r in rows])
        _labelled_grid(grid, rows, list(switch.site_names), maps[0].shape[1], thr, f"concept masks, {tag}", png)
        self.last_files = [st, png]
        _log_image(trainer, "masks/concept", grid, trainer.global_step)

    @staticmethod
    def _row(soft: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        """[F, S] map and mask → one RGB strip of F square tiles (map in green, mask in magenta)."""
        f, s = soft.shape
        side = int(round(s**0.5))
        h, w = (side, s // side) if side * (s // side) == s else (1, s)
        tiles = []
        for k in range(f):
            m = (soft[k].reshape(h, w).cpu().numpy() * 255).astype(np.uint8)
            k_mask = (mask[k].reshape(h, w).cpu().numpy() * 255).astype(np.uint8)
            tiles.append(np.stack([np.zeros_like(m), m, np.zeros_like(m)], -1))
            tiles.append(np.stack([k_mask, np.zeros_like(m), k_mask], -1))
            tiles.append(np.full((h, 1, 3), 80, np.uint8))
        return np.concatenate(tiles, 1)


def _log_image(trainer: pl.Trainer, key: str, image: np.ndarray, step: int) -> None:
    for logger in trainer.loggers:
        name = type(logger).__name__
        if name == "WandbLogger":
            logger.log_image(key=key, images=[image], step=step)
        elif name == "TensorBoardLogger":
            logger.experiment.add_image(key, image, step, dataformats="HWC")


def _labelled_grid(
    grid: np.ndarray, rows: list[np.ndarray], sites: list[str], frames: int, threshold: float, title: str, path: Path
) -> Path:
    """The grid as a PNG with the layers' site names beside their rows, the frame numbers above the columns, a
    title and a legend; the labels are also in the PNG's text chunks (``Rows``, ``Columns``, ``Legend``)."""

    dpi, left, top, bottom = 100, 260, 60, 40
    tile = (rows[0].shape[1] - frames) // (2 * frames) if frames else 1  # columns per tile (map, mask, gap)
    scale = max(8, -(-64 // (2 * tile + 1)))  # a frame's pair of tiles at least 64 px wide: room for its label
    h, w = grid.shape[0] * scale, grid.shape[1] * scale
    fig = _figure(w + left + 20, h + top + bottom, dpi)
    ax = fig.add_axes(
        ((left / (w + left + 20)), bottom / (h + top + bottom), w / (w + left + 20), h / (h + top + bottom))
    )
    ax.imshow(grid, interpolation="nearest", aspect="auto")
    centers, y = [], 0
    for r in rows:
        centers.append(y + (r.shape[0] - 1) / 2)
        y += r.shape[0] + 2
    ax.set_yticks(centers, [sites[i] if i < len(sites) else str(i) for i in range(len(rows))], fontsize=7)
    ax.set_xticks([k * (2 * tile + 1) + tile - 0.5 for k in range(frames)], [f"frame {k}" for k in range(frames)])
    ax.tick_params(axis="x", labelsize=7, top=True, labeltop=True, bottom=False, labelbottom=False)
    legend = f"per frame: attention on the concept (green), mask >= {threshold:g} (magenta)"
    fig.suptitle(title, fontsize=10)
    fig.text(0.01, 0.01, legend, fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "Title": title,
        "Rows": "; ".join(sites[: len(rows)]),
        "Columns": f"{frames} latent frames",
        "Legend": legend,
    }
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata=meta)
    return path
