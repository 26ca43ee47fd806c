"""What pseudo data and generation depend on: the pseudo-data cache key changes with everything that changes
x_t or the targets; per-step regeneration draws fresh recipes every epoch; CogVideoX's dynamic CFG is the stock
pipeline's."""

import dataclasses

import lightning.pytorch as pl
import pytest
import torch

from unlearn.backbones import SamplingSettings, build_backbone
from unlearn.methods.t2vunlearning import T2VUnlearning
from unlearn.methods.t2vunlearning.data import ConceptDataModule, RegenerationDataset, TrainingPrompt
from unlearn.methods.t2vunlearning.pseudo_data import PseudoDataSettings, TrajectoryRequest, sampler_identity

SETTINGS = PseudoDataSettings(
    SamplingSettings(num_frames=4, height=64, width=64, num_inference_steps=4, guidance_scale=9.0), record_steps=(1, 2)
)
SAMPLING_FIELDS = {f.name for f in dataclasses.fields(SamplingSettings)}
REQUEST = TrajectoryRequest("unlearn", "a naked person on the beach", 3, "a naked person on the beach")


def key(bb, settings=SETTINGS, eta=7.0, request=REQUEST):
    return request.key(sampler_identity(bb), settings, eta)


# ---------------------------------------------------------------------------------------------------- cache keys
def test_cache_key_changes_with_the_scheduler_class_and_so_does_x_t():
    ddim = build_backbone("zeroscope", tiny=True, torch_dtype="float32", scheduler_class="DDIMScheduler")
    dpm = build_backbone("zeroscope", tiny=True, torch_dtype="float32", scheduler_class="DPMSolverMultistepScheduler")
    assert ddim.fingerprint() == dpm.fingerprint()  # the same weights ...
    assert key(ddim) != key(dpm)  # ... sampled by another scheduler: another key
    again = build_backbone("zeroscope", tiny=True, torch_dtype="float32", scheduler_class="DDIMScheduler")
    assert key(again) == key(ddim)  # rebuilding the same model hits the cache
    with torch.no_grad():
        x1 = ddim.sample([REQUEST.prompt], [3], num_inference_steps=4, stop_at_step=3)
        x2 = dpm.sample([REQUEST.prompt], [3], num_inference_steps=4, stop_at_step=3)
    assert not torch.allclose(x1, x2)  # why the key must differ


def test_cache_key_changes_with_the_scheduler_config():
    bb = build_backbone("hunyuanvideo", tiny=True, torch_dtype="float32")
    before = key(bb)
    bb.scheduler = type(bb.scheduler).from_config(bb.scheduler.config, shift=5.0)
    assert key(bb) != before


def test_cache_key_changes_with_the_text_length():
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    before = key(bb)
    bb.max_text_length = 12
    assert key(bb) != before


def test_cache_key_changes_with_guidance_settings():
    hy = build_backbone("hunyuanvideo", tiny=True, torch_dtype="float32")
    before = key(hy)
    hy.embedded_guidance_scale = 4.0
    assert key(hy) != before
    cog = build_backbone("cogvideox-5b", tiny=True, torch_dtype="float32")
    dyn = build_backbone("cogvideox-5b", tiny=True, torch_dtype="float32", use_dynamic_cfg=True)
    assert key(cog) != key(dyn)


@pytest.mark.parametrize(
    "change",
    [
        dict(num_inference_steps=8),
        dict(guidance_scale=5.0),
        dict(negative_prompt="blurry"),
        dict(record_steps=(0, 1)),
        dict(num_frames=8),
        dict(height=32),
    ],
)
def test_cache_key_changes_with_sampler_settings(change):
    bb = build_backbone("zeroscope", tiny=True, torch_dtype="float32")
    sampling = {k: v for k, v in change.items() if k in SAMPLING_FIELDS}
    own = {k: v for k, v in change.items() if k not in SAMPLING_FIELDS}
    changed = dataclasses.replace(SETTINGS, sampling=dataclasses.replace(SETTINGS.sampling, **sampling), **own)
    assert key(bb, changed) != key(bb)


def test_cache_key_changes_with_eta_for_unlearning_targets_only():
    bb = build_backbone("zeroscope", tiny=True, torch_dtype="float32")
    assert key(bb, eta=3.0) != key(bb, eta=7.0)
    preserve = TrajectoryRequest("preserve", "a person on the beach", 3, "a person on the beach")
    assert key(bb, eta=3.0, request=preserve) == key(bb, eta=7.0, request=preserve)
    assert key(bb, request=dataclasses.replace(REQUEST, loss_prompt="nudity")) != key(bb)
    assert key(bb, request=dataclasses.replace(REQUEST, seed=4)) != key(bb)


# ---------------------------------------------------------------------------------------------------- regeneration
def _recipes(ds):
    return [tuple(sorted((k, int(v)) for k, v in ds[i].items() if k.startswith("regen"))) for i in range(len(ds))]


def test_regeneration_draws_fresh_seeded_recipes_every_epoch():
    prompts = [TrainingPrompt(f"prompt {i}", ["x"], i) for i in range(5)]
    ds = RegenerationDataset(prompts, [None] * 5, prompts[:2], steps=list(range(10)), samples_per_epoch=16, seed=0)
    first = _recipes(ds)
    assert _recipes(ds) == first  # seeded: the same epoch gives the same recipes
    ds.set_epoch(1)
    second = _recipes(ds)
    assert second != first and len(set(first) & set(second)) <= 1
    assert len({r[1] for r in first + second}) > 1  # several steps drawn ...
    assert {dict(r)["regen_step"] for r in first + second} <= set(range(10))  # ... from the recorded ones
    other = RegenerationDataset(prompts, [None] * 5, prompts[:2], steps=list(range(10)), samples_per_epoch=16, seed=1)
    assert _recipes(other) != first


def test_training_without_cache_sees_new_recipes_each_epoch(tmp_path):
    def run():
        seen: dict[int, list] = {}

        class Record(pl.Callback):
            def on_train_batch_start(self, trainer, module, batch, batch_idx):
                seen.setdefault(trainer.current_epoch, []).extend(
                    zip(
                        batch["regen_prompt_index"].tolist(), batch["regen_seed"].tolist(), batch["regen_step"].tolist()
                    )
                )

        pl.seed_everything(0)
        model = T2VUnlearning(backbone="cogvideox-2b", tiny=True, torch_dtype="float32", adapter_dim=4, alpha=0.0)
        dm = ConceptDataModule(
            concept="nudity",
            concept_synonyms=["naked", "nude"],
            prompts=["a naked person", "a nude woman in a room"],
            num_frames=9,
            height=32,
            width=32,
            num_inference_steps=2,
            use_cache=False,
            regeneration_samples_per_epoch=2,
            batch_size=2,
            cache_dir=str(tmp_path / "c"),
        )
        pl.Trainer(
            accelerator="cpu",
            max_epochs=2,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=str(tmp_path),
            callbacks=[Record()],
        ).fit(model, dm)
        return seen

    first = run()
    assert set(first) == {0, 1} and sorted(first[0]) != sorted(first[1])
    assert run() == first  # reproducible from the seed


# ---------------------------------------------------------------------------------------------------- dynamic CFG
@pytest.mark.parametrize("name", ["cogvideox-2b", "cogvideox-5b"])
def test_dynamic_cfg_is_the_stock_pipeline(name):
    bb = build_backbone(name, tiny=True, torch_dtype="float32", use_dynamic_cfg=True)
    assert bb.guidance_settings() == {"use_dynamic_cfg": True}
    d = bb.defaults
    prompt = "a golf ball rolls across the grass"
    with torch.no_grad():
        ours = bb.sample([prompt], [0], num_inference_steps=3)
        out = bb.as_pipeline()(
            prompt=prompt,
            negative_prompt="",
            num_frames=d.num_frames,
            height=d.height,
            width=d.width,
            num_inference_steps=3,
            guidance_scale=d.guidance_scale,
            use_dynamic_cfg=True,
            latents=bb.initial_noise([0], d.num_frames, d.height, d.width),
            max_sequence_length=bb.max_text_length,
            output_type="latent",
        )
        bb.use_dynamic_cfg = False
        static = bb.sample([prompt], [0], num_inference_steps=3)
    torch.testing.assert_close(ours, out.frames, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(ours, static)
    # the formula, for the record: 1 + g (1 − cos(π ((n − t)/n)^5)) / 2 at the timestep value t
    bb.use_dynamic_cfg = True
    assert bb.guidance_scale_at(6.0, 0, torch.tensor(999), 50) == pytest.approx(
        1 + 6.0 * (1 - torch.cos(torch.tensor(torch.pi * ((50 - 999) / 50) ** 5.0, dtype=torch.float64)).item()) / 2
    )
