"""Toy world prompts: concept words at recorded positions, synonyms, disjoint splits."""

import numpy as np
import pytest

from unlearn.toyworld import grammar as g
from unlearn.toyworld.render import COLOURS, SHAPES


def _records(n=400, seed=0, split="train"):
    rng = np.random.default_rng(seed)
    return [g.sample_prompt(rng, split=split) for _ in range(n)]


def test_concept_words_at_recorded_positions():
    for r in _records() + _records(split="heldout"):
        assert r.text.split() == list(r.words)
        assert r.words[r.shape_index] == r.shape_word
        assert r.words[r.colour_index] == r.colour_word
        assert g.canonical(r.shape_word) == r.scene.shape
        assert g.canonical(r.colour_word) == r.scene.colour
        assert r.concept_indices(f"{r.scene.colour} {r.scene.shape}") == sorted([r.shape_index, r.colour_index])
        if r.second_colour_word is not None:
            assert r.words[r.second_colour_index] == r.second_colour_word
            assert g.canonical(r.second_colour_word) == r.scene.second_colour != r.scene.colour
        assert len(r.words) <= g.max_prompt_words()


def test_bare_prompt():
    r = g.bare_prompt("ring", "red")
    assert r.text == "a red ring" and r.concept_indices("red ring") == [1, 2] and r.concept_indices("ring") == [2]
    assert g.bare_prompt("ring", "blue", colour_word="azure").text == "an azure ring"


def test_synonyms():
    assert g.synonyms("ring")[0] == "ring" and "hoop" in g.synonyms("ring")
    assert g.synonyms("crimson") == g.synonyms("red")
    assert g.parse_concept("Crimson hoop") == ["red", "ring"]
    assert g.concept_kind("ring") == {"shape": "ring", "colour": None}
    every = [w for v in g.concept_words().values() for w in v]
    assert len(every) == len(set(every)), "a word may express only one concept"
    assert not set(every) & set(g.SECOND_NOUNS)
    with pytest.raises(KeyError):
        g.canonical("triangle")


def test_splits_disjoint_and_share_vocabulary():
    train = _records(600, 1, "train")
    held = _records(600, 2, "heldout")
    assert all(r.split == "train" for r in train) and all(r.split == "heldout" for r in held)
    train_keys = {r.key for r in train if r.style == "rich"}
    held_keys = {r.key for r in held}
    assert not train_keys & held_keys
    assert {r.text for r in train}.isdisjoint({r.text for r in held})
    assert all(g.split_of_key(k) == "heldout" for k in held_keys)
    assert g.check_vocabulary_coverage(800) == set()


def test_deterministic_and_concept_prompts():
    assert [r.text for r in _records(20, 5)] == [r.text for r in _records(20, 5)]
    ps = g.prompts_for_concept("red ring", 10, split="heldout")
    assert all(p.scene.shape == "ring" and p.scene.colour == "red" and p.split == "heldout" for p in ps)
    bare = g.prompts_for_concept("ring", 8, style="bare")
    assert {p.shape_word for p in bare} == set(g.synonyms("ring"))
    ev = g.heldout_eval_prompts(per_class=1)
    assert len(ev) == 25 and {(r.scene.shape, r.scene.colour) for r in ev} == {(s, c) for s in SHAPES for c in COLOURS}
    assert all(r.scene.second_colour is None for r in ev)
