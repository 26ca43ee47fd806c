"""Prompt augmentation: list parsing, the template source, the augmenter (cache, concept check) and the CLI."""

from __future__ import annotations

import json
import random
import re

import pytest

from unlearn.cli import main as unlearn_main
from unlearn.prompts import PromptSuite, find_concept_words
from unlearn.prompts.augment import (
    DEFAULT_GRAMMAR,
    AugmentationError,
    AugmentationSource,
    PromptAugmenter,
    TemplateGrammar,
    TemplateSource,
    build_messages,
    build_plain_prompt,
    build_source,
    get_style,
    parse_prompt_list,
)

# ---------------------------------------------------------------------------------------------- parsing


def augment_main(argv: list[str]) -> int:
    return unlearn_main(["augment", *argv])


def test_parse_numbered_list_with_preamble_and_wrapped_lines():
    text = (
        "Here are 3 prompts:\n\n"
        "1. A golf ball rolls across the green,\n   slowly.\n"
        '2) "A golf ball in the rain."\n'
        "(3) **Prompt 3:** A golf ball at dusk.\n\n"
        "I hope these help!"
    )
    assert parse_prompt_list(text) == [
        "A golf ball rolls across the green, slowly.",
        "A golf ball in the rain.",
        "A golf ball at dusk.",
    ]


def test_parse_bullets_and_plain_lines():
    assert parse_prompt_list("- one thing\n* two things\n\u2022 three\n") == ["one thing", "two things", "three"]
    assert parse_prompt_list("Sure, here you go:\nfirst line\n\nsecond line\n") == ["first line", "second line"]
    assert parse_prompt_list("") == [] and parse_prompt_list("1.   \n2. ok") == ["ok"]


def test_messages_and_plain_prompt_carry_style_and_concept():
    msgs = build_messages("golf ball", 4, "hunyuanvideo", ["golfball"])
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert "HunyuanVideo" in msgs[0]["content"]
    assert "Write 4 different prompts about: golf ball." in msgs[3]["content"] and '"golfball"' in msgs[3]["content"]
    assert msgs[2]["content"].startswith("1. ") and "vintage bicycle" in msgs[2]["content"]
    plain = build_plain_prompt("golf ball", 2, "cogvideox")
    assert plain.endswith("Prompts:\n1.") and "CogVideoX" in plain
    with pytest.raises(ValueError, match="unknown prompt style"):
        get_style("sdxl")
    assert get_style("hunyuan").name == "hunyuanvideo"


# ---------------------------------------------------------------------------------------------- template source


@pytest.mark.parametrize("style", ["cogvideox", "hunyuanvideo", "zeroscope", "plain"])
def test_template_source_is_deterministic_and_mentions_concept(style):
    src = TemplateSource()
    a = src.generate("golf ball", 8, style, seed=1, synonyms=["golfball"])
    b = TemplateSource().generate("golf ball", 8, style, seed=1, synonyms=["golfball"])
    c = src.generate("golf ball", 8, style, seed=2, synonyms=["golfball"])
    assert a == b and a != c
    assert len(set(a)) == len(a) >= 5
    assert all(find_concept_words(p, ["golf ball", "golfball"]) for p in a)
    assert src.calls == 2


def test_template_styles_differ_in_length():
    src = TemplateSource()
    cog = src.generate("nudity", 10, "cogvideox", 0)
    hun = src.generate("nudity", 10, "hunyuanvideo", 0)
    zs = src.generate("nudity", 10, "zeroscope", 0)
    words = lambda ps: sum(len(p.split()) for p in ps) / len(ps)  # noqa: E731
    assert words(cog) > 40 > words(hun) > words(zs)
    assert all(re.search(r"\.\s*[A-Z][\w -]+, [A-Z][\w -]+(, [A-Z][\w -]+)?\.$", p) for p in hun)


def test_custom_grammar_and_callable_are_pluggable():
    g = TemplateGrammar(
        "toy",
        {"toy": ["a {colour} {concept} {motion}"]},
        {"colour": ["red", "blue"], "motion": ["moves {dir}", "stays still"], "dir": ["left", "up"]},
    )
    src = TemplateSource(g)
    out = src.generate("ring", 6, "toy", seed=0)
    assert all(re.fullmatch(r"A (red|blue) ring (moves (left|up)|stays still)", p) for p in out)
    assert src.model_id.startswith("grammar:toy@")
    with pytest.raises(AugmentationError, match="no templates for style 'cogvideox'"):
        src.generate("ring", 2, "cogvideox", 0)
    with pytest.raises(ValueError, match=r"slots \['nope'\] are used but not defined"):
        TemplateGrammar("bad", {"s": ["{concept} {nope}"]})
    with pytest.raises(ValueError, match="no {concept} field"):
        TemplateGrammar("bad", {"s": ["nothing here"]})

    def fn(concept, synonyms, style, rng: random.Random):
        return f"{concept} number {rng.randint(0, 10**6)}"

    out = TemplateSource(fn).generate("dot", 3, "anything", seed=5)
    assert len(out) == 3 and all(p.startswith("dot number") for p in out)


def test_default_grammar_fingerprint_is_stable():
    assert DEFAULT_GRAMMAR.fingerprint() == DEFAULT_GRAMMAR.fingerprint()
    other = TemplateGrammar("default", {"plain": ["{concept}"]})
    assert other.fingerprint() != DEFAULT_GRAMMAR.fingerprint()


# ---------------------------------------------------------------------------------------------- augmenter


class CountingTemplateSource(TemplateSource):
    """A real TemplateSource that also records the requests it served."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.requests: list[tuple] = []

    def generate(self, concept, n, style, seed, synonyms=()):
        self.requests.append((concept, n, style, seed, tuple(synonyms)))
        return super().generate(concept, n, style, seed, synonyms)


class ScriptedSource(AugmentationSource):
    """Returns scripted batches in order (a stand-in for an LLM that misbehaves in known ways)."""

    kind = "scripted"

    def __init__(self, batches):
        super().__init__()
        self.batches = list(batches)

    def generate(self, concept, n, style, seed, synonyms=()):
        self.calls += 1
        return self.batches.pop(0) if self.batches else []


def test_augmenter_returns_suite_with_concept_words_and_caches(tmp_path):
    src = CountingTemplateSource()
    aug = PromptAugmenter(src, cache_dir=tmp_path / "cache")
    s1 = aug.augment("nudity", 12, "hunyuanvideo", seed=3, synonyms=["naked", "nude"])
    assert isinstance(s1, PromptSuite) and len(s1) == 12
    assert not aug.last_cache_hit and len(src.requests) == 1
    assert s1.seeds == list(range(3, 15))
    for r in s1:
        assert r.concept == "nudity" and r.category == "augmented"
        assert r.concept_words and all(w.lower() in ("nudity", "naked", "nude") for w in r.concept_words)
    files = list((tmp_path / "cache").glob("*.json"))
    assert len(files) == 1
    payload = json.loads(files[0].read_text())
    assert payload["fields"]["concept"] == "nudity" and len(payload["prompts"]) == 12

    s2 = PromptAugmenter(src, cache_dir=tmp_path / "cache").augment(
        "nudity", 12, "hunyuanvideo", seed=3, synonyms=["naked", "nude"]
    )
    assert s2 == s1 and s2.sha256() == s1.sha256()
    assert len(src.requests) == 1  # served from the cache: the source was not called again

    s3 = aug.augment("nudity", 12, "Hunyuan", seed=3, synonyms=["naked", "nude"])  # alias: same request
    assert s3 == s1 and aug.last_cache_hit and len(src.requests) == 1
    aug.augment("nudity", 12, "hunyuanvideo", seed=4, synonyms=["naked", "nude"])  # another seed: new entry
    assert len(src.requests) == 2 and len(list((tmp_path / "cache").glob("*.json"))) == 2
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "cache").iterdir())


def test_cache_key_covers_every_input(tmp_path):
    aug = PromptAugmenter(TemplateSource(), cache_dir=tmp_path)
    base = dict(concept="nudity", n=5, style="cogvideox", seed=0, synonyms=["nude"])
    k0 = aug.cache_key(**base)
    variants = [
        dict(base, concept="golf ball"),
        dict(base, n=6),
        dict(base, style="zeroscope"),
        dict(base, seed=1),
        dict(base, synonyms=["naked"]),
        dict(base, exclude_sha256="abc"),
    ]
    keys = {aug.cache_key(**v) for v in variants}
    assert k0 not in keys and len(keys) == len(variants)
    g = TemplateGrammar("g", {"cogvideox": ["{concept} here"]})
    assert PromptAugmenter(TemplateSource(g)).cache_key(**base) != k0  # another grammar / model id


def test_concept_check_drops_lines_and_reasks_until_enough():
    src = ScriptedSource(
        [
            ["A golf ball on grass", "a tennis racket", "", "A GOLF  BALL on grass"],  # 1 ok, 1 off-concept, 1 dup
            ["golfball in the rain", "balls of yarn"],  # synonym ok, "balls" alone is not the concept
            ["Golf balls at dusk", "more golf ball"],
        ]
    )
    aug = PromptAugmenter(src, max_rounds=5)
    s = aug.augment("golf ball", 3, "zeroscope", synonyms=["golfball"])
    assert s.prompts == ["A golf ball on grass", "golfball in the rain", "Golf balls at dusk"]
    assert [r.concept_words for r in s] == [("golf ball",), ("golfball",), ("Golf balls",)]
    st = aug.last_stats
    assert st.rounds == 3 and st.source_calls == 3 and st.dropped_no_concept == 2 and st.dropped_duplicate == 1


def test_too_few_valid_prompts_is_a_clear_error_after_bounded_rounds(tmp_path):
    src = ScriptedSource([["garbage 1", "garbage 2"], ["a golf ball"], ["junk"]] + [["x"]] * 10)
    aug = PromptAugmenter(src, cache_dir=tmp_path, max_rounds=3)
    with pytest.raises(AugmentationError) as e:
        aug.augment("golf ball", 4, "plain")
    msg = str(e.value)
    assert "only 1 valid prompts of 4" in msg and "after 3 round(s)" in msg and "'garbage 1'" in msg
    assert "--synonyms" in msg
    assert src.calls == 3
    assert list(tmp_path.iterdir()) == []  # failures are not cached


def test_exclusion_suite_is_respected(tmp_path):
    first = PromptAugmenter(TemplateSource()).augment("golf ball", 6, "zeroscope", seed=0)
    evaluation = first[:3]
    s = PromptAugmenter(TemplateSource(), max_rounds=10).augment(
        "golf ball", 6, "zeroscope", seed=0, exclude=evaluation
    )
    assert s.disjoint_from(evaluation) and len(s) == 6
    assert s.prompts[:3] == first.prompts[3:6]


def test_corrupt_cache_is_ignored_with_a_warning(tmp_path):
    src = CountingTemplateSource()
    aug = PromptAugmenter(src, cache_dir=tmp_path)
    s = aug.augment("nudity", 4, "plain", seed=0)
    f = next(tmp_path.glob("*.json"))
    f.write_text("{not json")
    with pytest.warns(UserWarning, match="unreadable augmentation cache"):
        s2 = aug.augment("nudity", 4, "plain", seed=0)
    assert s2 == s and len(src.requests) == 2
    json.loads(f.read_text())  # rewritten


def test_hand_edited_cache_cannot_smuggle_a_prompt_without_concept(tmp_path):
    aug = PromptAugmenter(TemplateSource(), cache_dir=tmp_path)
    aug.augment("nudity", 2, "plain", seed=0)
    f = next(tmp_path.glob("*.json"))
    data = json.loads(f.read_text())
    data["prompts"][0]["prompt"] = "a peaceful lake"
    f.write_text(json.dumps(data))
    with pytest.raises(AugmentationError, match="does not mention"):
        aug.augment("nudity", 2, "plain", seed=0)


def test_build_source_by_name():
    assert isinstance(build_source("template"), TemplateSource)
    with pytest.raises(ValueError, match="unknown augmentation source"):
        build_source("gpt")


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_writes_suite_and_second_run_reads_cache(tmp_path, capsys):
    out, cache = tmp_path / "train.jsonl", tmp_path / "cache"
    args = [
        "--concept",
        "nudity",
        "--n",
        "20",
        "--style",
        "cogvideox",
        "--out",
        str(out),
        "--synonyms",
        "naked,nude",
        "--seed",
        "7",
        "--cache-dir",
        str(cache),
    ]
    assert augment_main(args) == 0
    err = capsys.readouterr().err
    assert "wrote 20 prompts" in err and "generated in 1 round(s)" in err
    s1 = PromptSuite.load(out)
    assert len(s1) == 20 and s1.seeds[0] == 7 and all(r.concept_words for r in s1)
    assert all(len(p.split()) > 40 for p in s1.prompts)  # CogVideoX style: paragraphs
    cached = sorted(cache.glob("*.json"))
    mtime = cached[0].stat().st_mtime_ns

    out2 = tmp_path / "train.csv"
    assert augment_main(args[:7] + [str(out2)] + args[8:]) == 0
    assert "cache hit" in capsys.readouterr().err
    assert PromptSuite.load(out2).sha256() == s1.sha256()
    assert sorted(cache.glob("*.json")) == cached and cached[0].stat().st_mtime_ns == mtime


def test_cli_exclude_keeps_training_disjoint_from_eval(tmp_path, capsys):
    cache = tmp_path / "c"
    base = ["--concept", "golf ball", "--n", "8", "--style", "zeroscope", "--cache-dir", str(cache)]
    assert augment_main(base + ["--out", str(tmp_path / "eval.jsonl")]) == 0
    ev = PromptSuite.load(tmp_path / "eval.jsonl")
    assert augment_main(base + ["--out", str(tmp_path / "train.jsonl"), "--exclude", str(tmp_path / "eval.jsonl")]) == 0
    tr = PromptSuite.load(tmp_path / "train.jsonl")
    assert len(tr) == 8 and tr.disjoint_from(ev)


def test_cli_errors_return_nonzero_with_message(tmp_path, capsys):
    assert augment_main(["--concept", "x"]) == 2  # argparse usage error
    assert "required" in capsys.readouterr().err
    assert augment_main(["--help"]) == 0
    capsys.readouterr()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    rc = augment_main(
        ["--concept", "nudity", "--n", "2", "--out", str(tmp_path / "o.jsonl"), "--no-cache", "--exclude", str(bad)]
    )
    assert rc == 2 and "bad.jsonl, line 1" in capsys.readouterr().err
    rc = augment_main(["--concept", "nudity", "--n", "2", "--out", str(tmp_path / "o.jsonl"), "--source", "openai"])
    assert rc == 2 and "--url" in capsys.readouterr().err
    rc = augment_main(
        [
            "--concept",
            "nudity",
            "--n",
            "500",
            "--style",
            "plain",
            "--out",
            str(tmp_path / "o.jsonl"),
            "--no-cache",
            "--max-rounds",
            "2",
        ]
    )
    assert rc == 1 and "valid prompts of 500" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()
