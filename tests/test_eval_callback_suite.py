"""The evaluation callback reads suites through the runner's loader: same prompts, seeds and hash."""

import json

import pytest

from unlearn.evaluation.suites import load_suite


def test_toyworld_suite_is_stable():
    s = load_suite("toyworld", per_class=2, seed=7)
    assert len(s) == 50 and s.sha256() == load_suite("toyworld", per_class=2, seed=7).sha256()
    assert [it.seed for it in s] == list(range(7, 57))
    assert s.sha256() != load_suite("toyworld", per_class=2, seed=8).sha256()


def test_suite_file_seeds_and_missing_class(tmp_path):
    from callbacks import ErasureEvaluation

    good = tmp_path / "ok.jsonl"
    good.write_text("\n".join(json.dumps(r) for r in [
        {"prompt": "a golf ball on grass", "concept": "golf ball", "seed": 3},
        {"prompt": "a church at dusk", "concept": "church"},
    ]) + "\n")
    s = load_suite(str(good), per_class=1, seed=100)
    assert [(it.label, it.seed) for it in s] == [("golf ball", 3), ("church", 101)]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "a church at dusk", "concept": "church"}) + "\n"
                   + json.dumps({"prompt": "a quiet street"}) + "\n")

    class _DM:
        concept = "church"

    class _Trainer:
        datamodule = _DM()

    with pytest.raises(ValueError, match=r"prompt 1 \('a quiet street'\) names no class"):
        ErasureEvaluation(suite=str(bad), per_class=1, seed=0).evaluate(_Trainer(), None, final=False)
