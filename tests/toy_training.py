"""A tiny T2VUnlearning on the toy world and a quiet CPU trainer (shared by the training tests of the adversary
and of several concepts)."""

from __future__ import annotations

import lightning.pytorch as pl

from unlearn.methods.t2vunlearning import T2VUnlearning, ToyWorldDataModule


def quiet_trainer(tmp_path, callbacks=(), **kw) -> pl.Trainer:
    """A CPU trainer that writes nothing of its own (no logger, checkpoints, bars or summary)."""
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        callbacks=list(callbacks),
        **kw,
    )


def tiny_toy_model(**kw) -> T2VUnlearning:
    """T2VUnlearning on the tiny toy backbone: 8-wide adapters, η 3, no L_loc, β 1; ``kw`` overrides."""
    args = dict(
        backbone="toy-cogvideox",
        tiny=True,
        torch_dtype="float32",
        adapter_dim=8,
        eta=3.0,
        alpha=0.0,
        beta=1.0,
        learning_rate=1e-2,
    )
    return T2VUnlearning(**{**args, **kw})


def tiny_toy_data(tmp_path, **kw) -> ToyWorldDataModule:
    """ "red ring", 3 prompts, 4 sampler steps of which 2 recorded, batch 4, cache under ``tmp_path``; ``kw``
    overrides."""
    args = dict(
        concept="red ring",
        num_prompts=3,
        preserve_prompts_per_class=1,
        num_inference_steps=4,
        record_steps=[1, 2],
        cache_dir=str(tmp_path / "cache"),
        batch_size=4,
    )
    return ToyWorldDataModule(**{**args, **kw})
