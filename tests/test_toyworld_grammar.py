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


def test_out_of_grammar_prompts_cannot_come_out_of_the_grammar():
    # in_grammar matches a pattern wider than the grammar (every slot takes any phrase of its kind, every
    # optional slot may be absent in every template), so a text it rejects cannot be produced by any template
    rng = np.random.default_rng(3)
    inside = _records(300, 4) + _records(300, 5, "heldout")
    assert all(g.in_grammar(r.text) for r in inside)
    assert g.in_grammar("a crimson hoop") and g.in_grammar("an azure ring")
    vocab = set(g.vocabulary())
    oog = [
        g.out_of_grammar_prompt(rng, template_id=t, second_prob=p)
        for t in range(len(g.OUT_OF_GRAMMAR_TEMPLATES))
        for p in (0.0, 1.0)
        for _ in range(60)
    ]
    for r in oog:
        assert not g.in_grammar(r.text), r.text
        assert set(r.words) <= vocab, r.text  # new word orders, not new words
        assert r.split == "out_of_grammar" and len(r.words) <= 24
        assert r.words[r.shape_index] == r.shape_word and g.canonical(r.shape_word) == r.scene.shape
        assert r.words[r.colour_index] == r.colour_word and g.canonical(r.colour_word) == r.scene.colour
    first = [r for r in oog if r.template_id == 0]
    assert all(r.scene.second_colour is not None and r.second_colour_index < r.colour_index for r in first)


def test_evaluation_prompts_weigh_the_erased_class_and_keep_the_plain_suite():
    assert [r.text for r in g.evaluation_prompts(per_class=3)] == [r.text for r in g.heldout_eval_prompts(per_class=3)]
    ev = g.evaluation_prompts(
        "red ring",
        per_class=2,
        per_group={"erased": 32, "neighbour": 4},
        out_of_grammar={"erased": 16, "neighbour": 2, "other": 1},
    )
    held = [r for r in ev if r.split == "heldout"]
    oog = [r for r in ev if r.split == "out_of_grammar"]
    assert sum(r.scene.label == "red ring" for r in held) == 32 and sum(r.scene.label == "red ring" for r in oog) == 16
    assert sum(r.scene.label == "red square" for r in held) == 4 and sum(r.scene.label == "blue bar" for r in oog) == 1
    assert len(held) == 32 + 8 * 4 + 16 * 2 and len(oog) == 16 + 8 * 2 + 16
    # the in-grammar part does not depend on the out-of-grammar counts
    again = g.evaluation_prompts("red ring", per_class=2, per_group={"erased": 32, "neighbour": 4})
    assert [r.text for r in again] == [r.text for r in held]
    with pytest.raises(ValueError, match="unknown class groups"):
        g.evaluation_prompts("red ring", per_group={"erasd": 3})
