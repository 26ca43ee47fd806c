"""One default per concept across entry points, and the bugs a reader tripped on (issue #22)."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from unlearn.backbones import DEFAULT_BACKBONE, DEFAULT_TORCH_DTYPE, backbone_class, build_backbone


def _entry_points():
    from unlearn.attacks import AttackRun
    from unlearn.evaluation import EvaluationModule, EvaluationRunner
    from unlearn.methods.esd import ESDUnlearning
    from unlearn.methods.refusal import RefusalVectorUnlearning
    from unlearn.methods.t2vunlearning import T2VUnlearning
    from unlearn.methods.uce import UCEUnlearning

    return [
        T2VUnlearning,
        RefusalVectorUnlearning,
        UCEUnlearning,
        ESDUnlearning,
        EvaluationRunner,
        EvaluationModule,
        AttackRun,
    ]


@pytest.mark.parametrize("cls", _entry_points(), ids=lambda c: c.__name__)
def test_every_entry_point_defaults_to_the_same_backbone_and_dtype(cls):
    params = inspect.signature(cls).parameters
    assert params["backbone"].default == DEFAULT_BACKBONE
    assert params["torch_dtype"].default == DEFAULT_TORCH_DTYPE


@pytest.mark.parametrize("name", ["cogvideox-2b", "cogvideox-5b", "zeroscope", "wan2.1-t2v-1.3b", "toy-cogvideox"])
def test_backbone_class_carries_the_name_it_was_asked_for(name):
    cls = backbone_class(name)
    assert cls.name == name and backbone_class(name) is cls  # one class per name, made once


def test_a_class_serving_two_names_builds_each_under_its_own():
    two, five = backbone_class("cogvideox-2b"), backbone_class("cogvideox-5b")
    assert two is not five and issubclass(two, five.__mro__[1]) and two.__mro__[1] is five.__mro__[1]
    assert build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32").name == "cogvideox-2b"


def test_one_wilson_interval_and_it_is_scipys():
    from scipy.stats import binomtest

    import unlearn.attacks.base as attacks_base
    from unlearn.evaluation import intervals

    assert attacks_base.wilson_interval is intervals.wilson_interval
    z = intervals.normal_quantile(0.975)
    for n in (1, 2, 7, 16, 128, 1000):
        for k in range(0, n + 1, max(1, n // 20)):
            lo, hi = intervals.wilson_interval(k, n)
            ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
            assert (lo, hi) == (max(0.0, ci.low), min(1.0, ci.high))
            p, d = k / n, 1 + z * z / n  # the closed form the project used before: equal to rounding
            centre, half = (p + z * z / (2 * n)) / d, z / d * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
            assert lo == pytest.approx(max(0.0, centre - half), abs=1e-12)
            assert hi == pytest.approx(min(1.0, centre + half), abs=1e-12)
    assert all(math.isnan(x) for x in intervals.wilson_interval(0, 0))
    with pytest.raises(ValueError, match="counts"):
        intervals.wilson_interval(1.5, 4)


def test_guidance_is_combined_in_float32_as_diffusers_does():
    """diffusers/pipelines/cogvideo/pipeline_cogvideox.py casts the prediction to float before guidance."""
    from unlearn.backbones import PromptEmbedding

    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="bfloat16")
    cond, uncond = bb.encode_prompts(["a red ring"]), bb.encode_prompts([""])
    x = torch.randn(1, 2, bb.denoiser.config.in_channels, 8, 8, generator=torch.Generator().manual_seed(0))
    x = x.to(bb.dtype)
    t = torch.tensor([500])
    pu, pc, guided = bb.guided_prediction(x, t, PromptEmbedding.cat([cond]), uncond, 6.0)
    assert pu.dtype == pc.dtype == torch.bfloat16 and guided.dtype == torch.float32
    assert torch.equal(guided, pu.float() + 6.0 * (pc.float() - pu.float()))
    assert not torch.equal(guided.bfloat16(), pu + 6.0 * (pc - pu))  # what the model's dtype gave
    latents = bb.sample(["a red ring"], [0], num_inference_steps=2, num_frames=5, height=16, width=16)
    assert latents.dtype == torch.bfloat16


@pytest.mark.parametrize("alias", ["unlearned", "refusal", "negative_prompt"])
def test_an_old_row_name_reads_as_its_canonical_kind_and_is_never_written(alias, tmp_path):
    from unlearn.callbacks.evaluation import ErasureEvaluation
    from unlearn.evaluation.rows import ROW_KIND_ALIASES, ROW_KINDS, RowSpec, canonical_kind, parse_rows

    kind = ROW_KIND_ALIASES[alias]
    assert kind in ROW_KINDS and alias not in ROW_KINDS
    assert canonical_kind(alias) == kind and canonical_kind(kind) == kind
    assert (RowSpec(alias).kind, RowSpec(alias).name) == (kind, kind)  # the row is named canonically too
    assert [(s.name, s.kind) for s in parse_rows([f"mine:{alias}"])] == [("mine", kind)]
    if kind in ("t2vunlearning", "refusal_vector"):  # rows the evaluation callback offers
        assert ErasureEvaluation(rows=["original", alias], dirpath=str(tmp_path)).rows == ["original", kind]


def test_one_switch_type_for_adapters_and_weight_edits():
    from unlearn.backbones import Switch
    from unlearn.methods.t2vunlearning import AdapterSwitch
    from unlearn.methods.weight_edits import EditSwitch

    adapters = AdapterSwitch([8, 8], 4)
    assert isinstance(adapters, Switch) and issubclass(EditSwitch, Switch)
    with adapters.disabled():
        assert not adapters.enabled
    with adapters.scaled(0.5):
        assert adapters.scale == 0.5
    assert adapters.enabled and adapters.scale == 1.0


def test_one_sampling_settings_type():
    import dataclasses

    from unlearn.backbones import SamplingSettings
    from unlearn.evaluation.rows import SAMPLING_KEYS
    from unlearn.methods.t2vunlearning import PseudoDataSettings

    sampling = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32").defaults
    assert type(sampling) is SamplingSettings
    assert tuple(f.name for f in dataclasses.fields(SamplingSettings)) == SAMPLING_KEYS
    pseudo = PseudoDataSettings(sampling, record_steps=(1,))
    own = {f.name for f in dataclasses.fields(PseudoDataSettings)} - {"sampling"}
    assert not own & set(SAMPLING_KEYS)  # pseudo data adds fields, never spells a sampling key again
    assert pseudo.flat() == {**dataclasses.asdict(sampling), "negative_prompt": "", "record_steps": (1,)}


def test_a_checkpoint_written_before_the_switch_was_named_so_still_loads():
    """Lightning checkpoints of T2VUnlearning written before #22 (their adapter keys had another prefix) resume
    and export with the adapters read as ``switch.*``."""
    from types import SimpleNamespace

    from unlearn.methods.t2vunlearning import T2VUnlearning
    from unlearn.methods.t2vunlearning.export import checkpoint_adapter_state

    w = torch.ones(2)
    old = {"state_dict": {"controller.adapters.0.up.weight": w}, "rng_states": {"torch": 1}}  # rename: keep
    assert checkpoint_adapter_state(old["state_dict"]) == {"adapters.0.up.weight": w}
    assert checkpoint_adapter_state({"switch.adapters.0.up.weight": w, "backbone.x": w}) == {"adapters.0.up.weight": w}
    module = SimpleNamespace()
    T2VUnlearning.on_load_checkpoint(module, old)
    assert old["state_dict"] == {"switch.adapters.0.up.weight": w} and module._resumed_rng_states == {"torch": 1}
