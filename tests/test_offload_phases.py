"""The denoiser never shares the device with the text encoders or the VAE while it denoises (#21 point 3).

What keeps CogVideoX-5B's whole run under 24 GiB (docs/results/fullsize_cost.md): prompts encoded once with only
the text encoders on the device, pseudo data and sample videos denoised with every side module parked, samples
decoded with only the VAE on the device (tiled, one video at a time), and the training steps with the side
modules parked. Checked on tiny models through the real fit: hooks on the denoiser, the text encoder and the VAE
decoder record which side modules were resident (not parked) at each call.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from unlearn.backbones import build_backbone
from unlearn.callbacks import SampleVideoCallback
from unlearn.methods.t2vunlearning import ConceptDataModule, T2VUnlearning


def _record(bb) -> dict[str, list[tuple[bool, frozenset]]]:
    """Per part, one (grad enabled, resident side modules) entry per call."""
    calls: dict[str, list] = {"denoiser": [], "text_encoder": [], "vae": []}

    def hook(part):
        return lambda *a, **k: calls[part].append((torch.is_grad_enabled(), frozenset(bb.resident_side_modules())))

    bb.denoiser.register_forward_pre_hook(hook("denoiser"))
    bb.text_encoder.register_forward_pre_hook(hook("text_encoder"))
    bb.vae.decoder.register_forward_pre_hook(hook("vae"))
    return calls


def test_generate_offloaded_runs_each_phase_with_its_own_module_only():
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    assert bb.resident_side_modules() == {"text_encoder", "vae"}
    calls = _record(bb)
    videos = bb.generate_offloaded(["a red ball", "a blue cube"], [0, 1], num_inference_steps=2, num_frames=9)
    assert videos.dtype == torch.uint8 and videos.shape[0] == 2
    assert calls["text_encoder"] and all(res == {"text_encoder"} for _, res in calls["text_encoder"])
    assert len(calls["denoiser"]) == 2 and all(res == frozenset() for _, res in calls["denoiser"])
    assert calls["vae"] and all(res == {"vae"} for _, res in calls["vae"])
    assert bb.resident_side_modules() == {"text_encoder", "vae"}  # back where they were
    # encoded once: a second render of the same prompts does not run the text encoder again
    n = len(calls["text_encoder"])
    bb.generate_offloaded(["a red ball", "a blue cube"], [0, 1], num_inference_steps=2, num_frames=9)
    assert len(calls["text_encoder"]) == n


def test_a_fit_denoises_with_the_side_modules_parked(tmp_path):
    model = T2VUnlearning(backbone="cogvideox-2b", tiny=True, torch_dtype="float32", adapter_dim=4)
    calls = _record(model.backbone)
    data = ConceptDataModule(
        concept="nudity",
        concept_synonyms=["naked"],
        prompts=["a naked person walking on the beach", "a naked person in a room"],
        num_frames=9,
        height=32,
        width=32,
        num_inference_steps=2,
        generation_batch_size=1,
        cache_dir=str(tmp_path / "cache"),
    )
    samples = SampleVideoCallback(dirpath=str(tmp_path / "samples"), prompts=["a dog"], every_n_steps=1,
                                  every_n_epochs=0, num_inference_steps=2)  # fmt: skip
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[samples],
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=data)
    sampled = [res for grad, res in calls["denoiser"] if not grad]  # pseudo data + original and step-1 samples
    trained = [res for grad, res in calls["denoiser"] if grad]
    assert len(sampled) >= 2 * 2 + 2 * 2 and all(res == frozenset() for res in sampled)
    assert trained and all(res == frozenset() for res in trained)
    assert all("text_encoder" in res for _, res in calls["text_encoder"])  # never run while parked
    assert len(calls["vae"]) >= 2 and all(res == {"vae"} for _, res in calls["vae"])
    assert {p.name for p in (tmp_path / "samples").glob("*.mp4")} == {"original_0.mp4", "step=1_0.mp4"}
