"""Prompt augmentation for real configs: an LLM source named in the config (the paper's choice), one clear error when
none is reachable or none is named, the offline grammar only by the explicit switch ``augment_source: template``."""

import pytest

from unlearn.checks import InputError
from unlearn.methods.t2vunlearning.data import ConceptDataModule


def _dm(tmp_path, **kw):
    return ConceptDataModule(concept="nudity", concept_synonyms=["naked"], augment=3, cache_dir=str(tmp_path), **kw)


def test_no_source_named_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="augment_source names no source.*template"):
        _dm(tmp_path).setup("fit")


def test_unreachable_server_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("T2V_UNLEARN_CACHE", str(tmp_path / "c"))
    source = {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "timeout": 2, "max_retries": 1}
    with pytest.raises(InputError, match="could not write prompts.*augment_source: template"):
        _dm(tmp_path, augment_source=source).setup("fit")


def test_template_is_the_explicit_offline_switch_and_bad_values_are_named(tmp_path):
    dm = _dm(tmp_path, augment_source="template")
    dm.setup("fit")
    assert len(dm.training_prompts) == 3 and all("nud" in p.prompt or "naked" in p.prompt for p in dm.training_prompts)
    with pytest.raises(InputError, match="kind: openai"):
        _dm(tmp_path, augment_source={"kind": "gpt"})


def test_real_configs_name_an_llm_source():
    import yaml

    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    cfg = yaml.safe_load((root / "configs" / "base" / "t2vunlearning.yaml").read_text())
    assert cfg["data"]["init_args"]["augment_source"]["kind"] in ("openai", "transformers")
