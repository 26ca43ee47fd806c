"""The refusal-vector edit through ``unlearn fit``: RefusalVectorUnlearning + RefusalPairsDataModule."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

warnings.filterwarnings("ignore", category=FutureWarning)

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "zeroscope_refusal_nudity.yaml"


def test_zeroscope_config_runs_tiny_through_the_cli(tmp_path):
    from diffusers import UNet3DConditionModel

    from unlearn.cli import main
    from unlearn.methods.refusal import load_delta

    out = tmp_path / "run"
    assert (
        main(
            [
                "fit",
                "--config",
                str(CONFIG),
                "--model.tiny",
                "true",
                "--model.torch_dtype",
                "float32",
                "--trainer.accelerator",
                "cpu",
                "--trainer.default_root_dir",
                str(out),
                "--trainer.logger.init_args.save_dir",
                str(out),
            ]
        )
        == 0
    )
    folder = out / "refusal"
    summary = json.loads((folder / "refusal_edit.json").read_text())
    assert summary["concepts"] == ["nudity"] and len(summary["pairs"]) == 5
    assert summary["config"]["rank"] == 2 and summary["timings_s"]["total"] > 0
    assert all(name.endswith(("attn2.to_k", "attn2.to_v")) for name in summary["layers"])
    unet = UNet3DConditionModel.from_pretrained(folder / "unet")
    delta = load_delta(folder / "refusal_delta.safetensors")
    assert delta.layers == list(summary["layers"])
    for name, basis in delta.bases.items():  # the saved UNet has the subspace removed from those layers
        w = unet.get_submodule(name).weight.detach().double()
        assert (basis.T @ w).abs().max() < 1e-5
    assert sorted(p.name for p in (out / "samples").glob("*.mp4")) == [
        "epoch=0_0.mp4",
        "epoch=0_1.mp4",
        "original_0.mp4",
        "original_1.mp4",
    ]
    metrics = (next((out / "logs").rglob("metrics.csv"))).read_text()
    assert "refusal/time_total_s" in metrics


def test_module_generates_original_and_edited(tmp_path):
    import lightning.pytorch as pl

    from unlearn.methods.refusal import RefusalPairsDataModule, RefusalVectorUnlearning

    model = RefusalVectorUnlearning(
        backbone="cogvideox-2b",
        tiny=True,
        torch_dtype="float32",
        layers="attn_kv",
        output_dir=str(tmp_path / "out"),
        save_model=False,
    )
    data = RefusalPairsDataModule(
        concept=["nudity", "golf ball"], pairs=[["a naked man in a room", "a clothed man in a room"]]
    )
    assert len(data.pairs_by_concept()["nudity"]) == 1 and len(data.pairs_by_concept()["golf ball"]) == 5
    kw = dict(num_inference_steps=2)
    before = model.generate(["a naked man in a room"], [0], **kw)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(model, datamodule=data)
    assert model.edit is not None and model.edit.concepts == ["nudity", "golf ball"]
    assert (tmp_path / "out" / "refusal_delta.safetensors").is_file() and not (
        tmp_path / "out" / "transformer"
    ).exists()
    after = model.generate(["a naked man in a room"], [0], **kw)
    original = model.generate(["a naked man in a room"], [0], adapters=False, **kw)
    assert torch.equal(original, before) and not torch.equal(after, before)
    with model.switch.disabled():  # the adapter-switch look-alike callbacks use
        assert torch.equal(model.generate(["a naked man in a room"], [0], **kw), before)
    assert torch.equal(model.generate(["a naked man in a room"], [0], **kw), after)


def test_module_applies_a_saved_delta(tmp_path):
    import lightning.pytorch as pl

    from unlearn.backbones import build_backbone
    from unlearn.methods.refusal import RefusalVectorUnlearning, apply_refusal_edit

    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    edit = apply_refusal_edit(bb, "nudity")
    edit.save_delta(tmp_path / "d.safetensors")
    model = RefusalVectorUnlearning(
        backbone="cogvideox-2b",
        tiny=True,
        torch_dtype="float32",
        delta_file=str(tmp_path / "d.safetensors"),
        output_dir=str(tmp_path / "out"),
    )
    model.perform_edit()  # no trainer, no pairs needed
    for n in edit.layers:
        assert torch.equal(model.backbone.denoiser.get_submodule(n).weight, bb.denoiser.get_submodule(n).weight)
    with pytest.raises(ValueError, match="RefusalPairsDataModule"):
        RefusalVectorUnlearning(backbone="cogvideox-2b", tiny=True, torch_dtype="float32").perform_edit()
    del pl
