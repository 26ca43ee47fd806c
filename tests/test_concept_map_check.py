"""The concept map's kernel path is guarded at run time (#21 point 4), on the paths the CPU has.

The fused route reads the attention kernel's log-sum-exp (on the CPU: the flash kernel for CPU); the check
compares one layer's fused map with the chunked recompute of the same call. A kernel whose log-sum-exp
convention differs (here: made so by shifting the kernel's returned log-sum-exp, as a log2-vs-ln or a padded-row
mix-up would) must stop a real training run with one clear error; ``model.concept_map_kernel: chunked`` is the
one-key fallback that then runs.
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch

from unlearn.backbones import attention
from unlearn.backbones.attention import (
    MAP_CHECK_ATOL,
    ConceptMapKernelError,
    attention_with_concept_map,
    checking_concept_map,
    concept_attention_probs,
    concept_map_route,
)
from unlearn.methods.t2vunlearning import ConceptDataModule, T2VUnlearning


def _inputs(seed: int = 0, b: int = 2, h: int = 2, n_text: int = 6, n_video: int = 40, d: int = 16):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, n_text + n_video, d, generator=g) for _ in range(3))
    concept = torch.zeros(b, n_text + n_video, dtype=torch.bool)
    concept[:, 2:4] = True
    return q, k, v, concept, slice(n_text, None)


@pytest.fixture
def shifted_lse(monkeypatch):
    """The fused kernel's log-sum-exp off by ln 2 (what a log2-domain value read as ln would give)."""
    real = attention._fused_attention

    def shifted(*args, **kwargs):
        out, lse = real(*args, **kwargs)
        return out, lse - math.log(2.0)

    monkeypatch.setattr(attention, "_fused_attention", shifted)


def test_the_cpu_fused_map_matches_the_chunked_recompute_and_is_checked():
    q, k, v, concept, rows = _inputs()
    assert attention._fused_kernel(q, k, v, None) is not None  # the CPU has a fused (flash) kernel
    with checking_concept_map() as check:
        out, probs = attention_with_concept_map(q, k, v, concept, query_rows=rows)
    (result,) = check.results
    assert result["kernel"] == "flash" and result["device"] == "cpu" and result["rows"] == 40
    assert result["max_abs"] < 1e-5
    check.verify()  # no error
    ref = concept_attention_probs(q[:, :, rows], k, concept)
    assert torch.allclose(probs, ref, atol=1e-5)
    assert torch.allclose(out, torch.nn.functional.scaled_dot_product_attention(q, k, v), atol=1e-5)


def test_only_the_requested_layers_are_compared_and_nothing_outside_the_block():
    q, k, v, concept, rows = _inputs()
    with checking_concept_map(layers=1) as check:
        attention_with_concept_map(q, k, v, concept, query_rows=rows)
        attention_with_concept_map(q, k, v, concept, query_rows=rows)
    assert len(check.results) == 1
    attention_with_concept_map(q, k, v, concept, query_rows=rows)
    assert len(check.results) == 1


def test_a_wrong_log_sum_exp_is_caught_and_the_chunked_route_is_the_fallback(shifted_lse):
    q, k, v, concept, rows = _inputs()
    with checking_concept_map() as check:
        _, wrong = attention_with_concept_map(q, k, v, concept, query_rows=rows)
    assert check.results[0]["max_abs"] > 10 * MAP_CHECK_ATOL
    with pytest.raises(ConceptMapKernelError, match=r"flash.*differs.*Fix: set model.concept_map_kernel: chunked"):
        check.verify()
    with concept_map_route("chunked"), checking_concept_map() as check:
        out, right = attention_with_concept_map(q, k, v, concept, query_rows=rows)
    assert check.results == []  # nothing fused to compare
    assert torch.allclose(right, concept_attention_probs(q[:, :, rows], k, concept), atol=1e-6)
    assert not torch.allclose(wrong, right, atol=MAP_CHECK_ATOL)
    with pytest.raises(ValueError, match="route"), concept_map_route("dense"):
        pass


def _fit(tmp_path, **model_kwargs) -> T2VUnlearning:
    model = T2VUnlearning(
        backbone="cogvideox-2b", tiny=True, torch_dtype="float32", adapter_dim=4, alpha=1.0, **model_kwargs
    )
    data = ConceptDataModule(
        concept="nudity",
        concept_synonyms=["naked"],
        prompts=["a naked person walking on the beach"],
        num_frames=9,
        height=32,
        width=32,
        num_inference_steps=2,
        cache_dir=str(tmp_path / "cache"),
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=data)
    return model


@pytest.mark.parametrize("mask_source", ["frozen", "adapted"])
def test_the_first_map_of_a_run_is_checked(tmp_path, mask_source):
    """frozen: the first map the pseudo data records; adapted: the first training step's."""
    model = _fit(tmp_path, mask_source=mask_source)
    (result,) = model.map_check
    assert result["kernel"] == "flash" and result["max_abs"] < MAP_CHECK_ATOL


def test_a_mismatch_stops_training_and_one_key_runs_the_chunked_route(tmp_path, shifted_lse):
    for source in ("frozen", "adapted"):
        with pytest.raises(ConceptMapKernelError, match="first concept map|first training step"):
            _fit(tmp_path / f"fused_{source}", mask_source=source)
    for source in ("frozen", "adapted"):
        model = _fit(tmp_path / f"chunked_{source}", concept_map_kernel="chunked", mask_source=source)
        assert model.map_check == []  # every map came from the chunked route: nothing fused to compare
    with pytest.raises(Exception, match="concept_map_kernel"):
        T2VUnlearning(backbone="cogvideox-2b", tiny=True, concept_map_kernel="cudnn")
