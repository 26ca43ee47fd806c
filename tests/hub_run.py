"""A training run's folder as `unlearn push` finds it (adapters + evaluation), from a backbone loaded out of a
Hugging Face cache snapshot (shared by the hub and model-card tests)."""

from __future__ import annotations

from pathlib import Path

from backbone_checks import random_adapters

from unlearn.backbones import build_backbone
from unlearn.evaluation.tables import write_metrics
from unlearn.methods.t2vunlearning.export import backbone_provenance, save_adapters

#: the snapshot revision of the cached base model
REVISION = "1f0e5c1a2b3c4d5e6f708192a3b4c5d6e7f80912"


def trained_run(tmp_path: Path):
    """An adapter folder and its evaluation as a training run leaves them (AdapterCheckpoint + ErasureEvaluation),
    trained from a backbone loaded out of the Hugging Face cache."""
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    switch = random_adapters(bb)
    source = str(tmp_path / "hf" / "models--THUDM--CogVideoX-2b" / "snapshots" / REVISION)
    extra = {
        "eta": 7.0,
        "alpha": 1.0,
        "beta": 0.5,
        "adapter_dim": 8,
        "mask_threshold": 0.5,
        "epoch": 299,
        "global_step": 30000,
        "concept": "golf ball",
        "preserve_concept": None,
        **backbone_provenance("cogvideox-2b", source),
    }
    save_adapters(switch, bb.name, tmp_path / "run" / "adapters", extra=extra)
    rows = {
        "original": {"esr@1": 12.5, "esr@5": 3.1, "psr@1": 81.0, "psr@5": 97.0},
        "t2vunlearning": {"esr@1": 93.8, "esr@5": 71.9, "psr@1": 77.5, "psr@5": 95.2},
    }
    meta = {
        "concept": "golf ball",
        "erased_class": "golf ball",
        "backbone": "cogvideox-2b",
        "num_prompts": 50,
        "prompt_suite": "builtin:imagenet10_video",
        "prompt_suite_hash": "ab" * 32,
        "global_step": 30000,
        "units": "percent",
        "evaluator": {
            "evaluator": {"name": "efficientnet-lite2", "version": "0.1.0", "weights_sha256": "cd" * 32},
            "top_k": [1, 5],
        },
    }
    write_metrics(tmp_path / "run" / "eval", rows, meta)
    return bb, switch
