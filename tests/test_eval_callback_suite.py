"""The evaluation callback and the runner read suites through one loader: same prompts, seeds and hash."""

import json

import pytest

from callbacks.evaluation import resolve_suite
from unlearn.benchmark.suites import load_suite
from unlearn.evaluation import suite_hash


def test_toyworld_suite_matches_the_runner():
    cb = resolve_suite("toyworld", per_class=2, seed=7)
    runner = load_suite("toyworld", per_class=2, seed=7)
    assert len(cb) == 50 and suite_hash(cb) == runner.sha256()
    assert [p.class_name for p in cb] == [it.label for it in runner]


def test_suite_file_seeds_and_missing_class(tmp_path):
    good = tmp_path / "ok.jsonl"
    good.write_text("\n".join(json.dumps(r) for r in [
        {"prompt": "a golf ball on grass", "concept": "golf ball", "seed": 3},
        {"prompt": "a church at dusk", "concept": "church"},
    ]) + "\n")
    cb = resolve_suite(str(good), per_class=1, seed=100)
    assert [(p.class_name, p.seed) for p in cb] == [("golf ball", 3), ("church", 101)]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "a church at dusk", "concept": "church"}) + "\n"
                   + json.dumps({"prompt": "a quiet street"}) + "\n")
    with pytest.raises(ValueError, match=r"prompt 1 \('a quiet street'\) names no class"):
        resolve_suite(str(bad), per_class=1, seed=0)
