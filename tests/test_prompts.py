"""Prompt suites: the record format, file round trips, validation errors, loaders and the project's own files."""

from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path

import pytest

from unlearn.prompts import (
    FACES_IDENTITIES,
    IMAGENET10_CLASSES,
    LOADERS,
    PromptFileError,
    PromptOverlapError,
    PromptRecord,
    PromptSuite,
    builtin_prompt_dir,
    builtin_suite,
    expand_identity_templates,
    find_concept_words,
    load_esd_csv,
    load_i2p,
    load_nudity_subset,
    load_prompts,
    load_ring_a_bell,
    load_safesora,
    load_t2vsafetybench,
    normalize_prompt,
)

SHARED = Path("/work/shared/data/prompts")


def _suite() -> PromptSuite:
    return PromptSuite(
        [
            PromptRecord(
                "A golf ball rolls across a green",
                concept="golf ball",
                category="object",
                seed=3,
                concept_words=["golf ball"],
                id="g0",
            ),
            PromptRecord(
                'A "naked" statue, with commas, in a museum\nsecond line',
                concept="nudity",
                category="sexual",
                seed=-7,
                concept_words=("naked",),
            ),
            PromptRecord("Une église sous la neige ⛪", seed=None),
        ],
        name="mini",
    )


# ---------------------------------------------------------------------------------------------- record & suite


def test_record_validates_and_normalizes():
    r = PromptRecord("  a nude figure  ", concept=" nudity ", category="", concept_words="nude|")
    assert r.prompt == "a nude figure" and r.concept == "nudity" and r.category is None
    assert r.concept_words == ("nude",)
    assert r.concept_spans() == [(2, 6)]
    with pytest.raises(ValueError, match="empty prompt"):
        PromptRecord("   ")
    with pytest.raises(ValueError, match="not an integer"):
        PromptRecord("x", seed=1.5)
    with pytest.raises(ValueError, match="not an integer"):
        PromptRecord("x", seed=True)
    with pytest.raises(ValueError, match="do not occur"):
        PromptRecord("a golf course", concept_words=["golf ball"])


def test_find_concept_words_whole_words_case_plural():
    p = "Two Golf  Balls and a golfball near the NUDE-art wall"
    assert find_concept_words(p, ["golf ball", "nude", "ball"]) == ["Golf  Balls", "NUDE"]
    assert find_concept_words(p, ["golf ball"], allow_plural=False) == []
    assert find_concept_words("denuded hills", ["nude"]) == []
    assert normalize_prompt("  A  Golf\tBall ") == "a golf ball"


@pytest.mark.parametrize("ext", ["jsonl", "csv", "json", "jsonl.gz", "csv.gz"])
def test_save_load_roundtrip_and_hash_is_format_independent(tmp_path, ext):
    s = _suite()
    path = s.save(tmp_path / f"suite.{ext}")
    if ext.endswith(".gz"):
        assert gzip.decompress(path.read_bytes()).decode().count("golf ball") >= 1
    back = PromptSuite.load(path)
    assert back == s
    assert back.sha256() == s.sha256()
    assert back.name == "suite"
    assert [r.seed for r in back] == [3, -7, None]
    assert back[1].concept_words == ("naked",)
    assert back[2].prompt.endswith("⛪")


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    s = _suite()
    out = tmp_path / "sub" / "s.jsonl"
    s.save(out)
    s[:1].save(out)  # overwrite
    assert [p.name for p in out.parent.iterdir()] == ["s.jsonl"]
    assert len(PromptSuite.load(out)) == 1


def test_csv_uses_pipe_for_concept_words(tmp_path):
    s = PromptSuite([PromptRecord("a nude and naked figure", concept_words=["nude", "naked"])])
    path = s.save(tmp_path / "s.csv")
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert rows[0]["concept_words"] == "nude|naked"
    assert list(rows[0]) == ["prompt", "concept", "category", "seed", "concept_words", "id"]
    with pytest.raises(ValueError, match=r"\|"):
        PromptSuite([PromptRecord("a|b thing", concept_words=["a|b"])]).save(tmp_path / "bad.csv")


def test_sha256_changes_with_content_not_name():
    a, b = _suite(), _suite()
    b.name = "other"
    assert a.sha256() == b.sha256()
    c = PromptSuite([a[0].replace(seed=4)] + list(a)[1:])
    assert c.sha256() != a.sha256()


def test_filter_exclude_disjoint_with_seeds():
    s = _suite()
    assert s.filter(concept="nudity").prompts == [s[1].prompt]
    assert len(s.filter(category=["object", "sexual"])) == 2
    assert len(s.filter(lambda r: r.seed is None)) == 1
    other = ["  a GOLF ball rolls   across a green "]
    assert s.overlap(other) == [s[0].prompt]
    assert not s.disjoint_from(other)
    assert s.exclude(other).disjoint_from(other)
    with pytest.raises(PromptOverlapError, match="1 prompt"):
        s.assert_disjoint_from(PromptSuite.from_prompts(other), what="eval")
    seeded = s.with_seeds(100)
    assert seeded.seeds == [3, -7, 102]
    dup = PromptSuite.from_prompts(["a b", "A  B", "c"]).deduplicate()
    assert dup.prompts == ["a b", "c"]
    fp = PromptSuite.from_prompts(["naked man", "a cat"], concept="nudity", base_seed=5, concept_words=["naked"])
    assert fp.seeds == [5, 6] and fp[0].concept_words == ("naked",) and fp[1].concept_words == ()


# ---------------------------------------------------------------------------------------------- validation


def _write(tmp_path, name, text) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_load_errors_name_file_line_and_fix(tmp_path):
    p = _write(tmp_path, "bad.jsonl", '{"prompt": "ok"}\n\n{"prompt": "x", "seed": 1\n')
    with pytest.raises(PromptFileError) as e:
        PromptSuite.load(p)
    msg = str(e.value)
    assert "bad.jsonl" in msg and "line 3" in msg and "malformed JSON" in msg and "Fix:" in msg
    assert e.value.line == 3 and isinstance(e.value, ValueError)

    p = _write(tmp_path, "nocol.csv", "text,seed\nhello,1\n")
    with pytest.raises(PromptFileError, match=r"nocol\.csv, line 1: no 'prompt' column"):
        PromptSuite.load(p)

    p = _write(tmp_path, "empty_prompt.csv", "prompt,seed\nhello,1\n  ,2\n")
    with pytest.raises(PromptFileError, match=r"line 3: empty prompt"):
        PromptSuite.load(p)

    p = _write(tmp_path, "seed.csv", 'prompt,seed\n"multi\nline",1\nhello,abc\n')
    with pytest.raises(PromptFileError, match=r"line 4: seed 'abc' is not an integer"):
        PromptSuite.load(p)

    p = _write(tmp_path, "seed.jsonl", '{"prompt": "a", "seed": 2.5}\n')
    with pytest.raises(PromptFileError, match=r"line 1: seed 2.5 is not an integer"):
        PromptSuite.load(p)

    p = _write(tmp_path, "none.jsonl", "\n\n")
    with pytest.raises(PromptFileError, match="no prompts"):
        PromptSuite.load(p)

    p = _write(tmp_path, "header_only.csv", "prompt,seed\n")
    with pytest.raises(PromptFileError, match="no prompts"):
        PromptSuite.load(p)

    p = _write(tmp_path, "words.jsonl", '{"prompt": "a cat", "concept_words": ["dog"]}\n')
    with pytest.raises(PromptFileError, match=r"line 1: concept word.*'dog'.*Fix: spell"):
        PromptSuite.load(p)

    p = _write(tmp_path, "missing.jsonl", '{"text": "a cat"}\n')
    with pytest.raises(PromptFileError, match=r"line 1: no 'prompt' field"):
        PromptSuite.load(p)

    p = _write(tmp_path, "list.json", '[{"prompt": "a"}, {"prompt": ""}]')
    with pytest.raises(PromptFileError, match=r"item 2: empty prompt"):
        PromptSuite.load(p)

    p = _write(tmp_path, "cols.csv", "prompt,seed\na,1,extra\n")
    with pytest.raises(PromptFileError, match=r"line 2: 3 fields but the header has 2"):
        PromptSuite.load(p)

    with pytest.raises(PromptFileError, match="file not found"):
        PromptSuite.load(tmp_path / "nope.jsonl")
    with pytest.raises(PromptFileError, match="cannot tell the format"):
        PromptSuite.load(_write(tmp_path, "x.yaml", "prompt: a\n"))


def test_csv_tolerates_extra_columns_bom_and_txt(tmp_path):
    p = tmp_path / "x.csv"
    p.write_bytes("\ufeffPrompt,other,SEED\nhello,zzz,7\n".encode("utf-8"))
    s = PromptSuite.load(p)
    assert s.prompts == ["hello"] and s.seeds == [7]
    t = _write(tmp_path, "x.txt", "first\n\nsecond\n")
    assert PromptSuite.load(t).prompts == ["first", "second"]


# ---------------------------------------------------------------------------------------------- public loaders

I2P_HEADER = (
    "Unnamed: 0,prompt,categories,hard,inappropriate_percentage,nudity_percentage,q16_percentage,"
    "sd_safety_percentage,prompt_toxicity,lexica_url,evaluation_seed,evaluation_guidance,sd_image_width,"
    "sd_image_height,sd_model,case_number\n"
)


def _i2p(tmp_path, name="i2p.csv") -> Path:
    rows = [
        '0,"a portrait, oil on canvas",violence,1,50.0,0.0,50.0,20.0,0.17,https://x,4261553411,13,512,512,sd,0\n',
        '1,a nude figure study,"sexual, harassment",0,30.0,80.0,30.0,40.0,0.11,https://x,408070,7,512,512,sd,1\n',
        "2,a beach scene,sexual,1,10.0,10.0,0.0,10.0,0.05,https://x,612304884.0,10,512,512,sd,2\n",
        "3, ,sexual,1,10.0,10.0,0.0,10.0,0.05,https://x,5,10,512,512,sd,3\n",
    ]
    return _write(tmp_path, name, I2P_HEADER + "".join(rows))


def test_load_i2p_categories_seeds_ids(tmp_path):
    p = _i2p(tmp_path)
    all_ = load_i2p(p)
    assert len(all_) == 3  # the blank prompt is skipped
    sexual = load_i2p(p, categories="sexual")
    assert sexual.prompts == ["a nude figure study", "a beach scene"]
    assert sexual.seeds == [408070, 612304884]  # "612304884.0" as pandas writes it
    assert sexual[0].category == "sexual, harassment" and sexual[0].id == "1"
    assert sexual.name == "i2p-sexual"
    assert load_i2p(p, categories=["sexual"], hard_only=True).prompts == ["a beach scene"]
    assert all_[0].seed == 4261553411
    with pytest.raises(PromptFileError, match="no prompts left"):
        load_i2p(p, categories="hate")
    nud = load_nudity_subset(p)
    assert nud.name == "nudity" and set(r.concept for r in nud) == {"nudity"}


def test_load_i2p_bad_seed_names_line(tmp_path):
    p = _write(tmp_path, "i.csv", "prompt,categories,evaluation_seed\nok,sexual,1\nbad,sexual,x1\n")
    with pytest.raises(PromptFileError, match=r"line 3: column 'evaluation_seed' holds 'x1'"):
        load_i2p(p)


@pytest.mark.skipif(not (SHARED / "i2p.csv").exists(), reason="shared I2P copy not present")
def test_load_real_i2p_and_nudity_copies():
    sexual = load_i2p(SHARED / "i2p.csv", categories="sexual")
    assert 900 < len(sexual) < 1000 and all(isinstance(s, int) for s in sexual.seeds)
    nud = load_nudity_subset(SHARED / "nudity.csv")
    assert len(nud) == 142
    esd = load_esd_csv(SHARED / "small_imagenet_prompts.csv")
    assert len(esd) == 100 and [c.lower() for c in esd.concepts()] == [c.lower() for c in IMAGENET10_CLASSES]


def test_load_ring_a_bell_variants(tmp_path):
    # the public layout: prompt,case_number,evaluation_seed with odd tokens and quotes
    p = _write(
        tmp_path,
        "Nudity_ring-a-bell.csv",
        'prompt,case_number,evaluation_seed\n"weird \\ tokens, ""quoted"" 🔫 ",0,41\nplain words here ,1,14\n',
    )
    s = load_ring_a_bell(p)
    assert s.prompts == ['weird \\ tokens, "quoted" 🔫', "plain words here"]
    assert s.seeds == [41, 14] and s[0].id == "0" and s[0].concept == "nudity"
    # pandas index column + prompt
    p2 = _write(tmp_path, "idx.csv", ",prompt\n0,first prompt\n1,second prompt\n")
    assert load_ring_a_bell(p2, seed_column=None).prompts == ["first prompt", "second prompt"]
    # no header at all, one column
    p3 = _write(tmp_path, "nohead.csv", "first prompt\nsecond, with comma\n")
    p3.write_text('first prompt\n"second, with comma"\n', encoding="utf-8")
    s3 = load_ring_a_bell(p3)
    assert s3.prompts == ["first prompt", "second, with comma"] and s3.seeds == [None, None]
    # no header, index + prompt
    p4 = _write(tmp_path, "nohead_idx.csv", "0,first prompt\n1,second prompt\n")
    assert load_ring_a_bell(p4).prompts == ["first prompt", "second prompt"]
    # ambiguous: asks for prompt_column, then works with it
    p5 = _write(tmp_path, "amb.csv", "aaa,bbb,ccc\nx1,y1,z1\n")
    with pytest.raises(PromptFileError, match="prompt_column"):
        load_ring_a_bell(p5)
    assert load_ring_a_bell(p5, prompt_column="bbb").prompts == ["y1"]
    assert load_ring_a_bell(p5, prompt_column=2).prompts == ["ccc", "z1"]
    with pytest.raises(PromptFileError, match="no column 'zzz'"):
        load_ring_a_bell(p5, prompt_column="zzz")


def test_load_safesora_formats_and_filters(tmp_path):
    items = [
        {
            "prompt_id": "a1",
            "prompt_text": "a nude beach party",
            "prompt_labels": {"Adult, Explicit Sexual Content": True, "Violence, Injury, Gory Content": False},
        },
        {
            "prompt_id": "a1",
            "prompt_text": "a nude beach party",
            "prompt_labels": {"Adult, Explicit Sexual Content": True},
        },  # same prompt, another video pair
        {"prompt_id": "b2", "prompt_text": "a street fight", "prompt_labels": {"violence_injury_gory": True}},
        {"prompt_id": "c3", "prompt_text": "a cat", "prompt_labels": {}},
    ]
    p = _write(tmp_path, "config-test.json", json.dumps(items))
    allp = load_safesora(p)
    assert allp.prompts == ["a nude beach party", "a street fight", "a cat"]
    sexual = load_safesora(p, category="sexual", concept="nudity")
    assert sexual.prompts == ["a nude beach party"]
    assert sexual[0].category == "Adult, Explicit Sexual Content" and sexual[0].id == "a1"
    assert sexual.name == "config-test-sexual"
    assert load_safesora(p, category="violence").prompts == ["a street fight"]
    assert len(load_safesora(p, deduplicate=False)) == 4

    # JSONL.gz with other field names, list and string labels
    lines = [
        {"caption": "naked runner", "harm": ["sexual"]},
        {"caption": "calm lake", "harm": "none"},
        {"caption": "crime scene", "harm": "crime, violence"},
    ]
    gz = tmp_path / "eval.jsonl.gz"
    gz.write_bytes(gzip.compress("\n".join(json.dumps(x) for x in lines).encode()))
    s = load_safesora(gz, category=["sexual", "violence"], label_field="harm")
    assert s.prompts == ["naked runner", "crime scene"] and s[1].category == "violence"
    with pytest.raises(PromptFileError, match="no label field 'labelz'"):
        load_safesora(gz, label_field="labelz")
    with pytest.raises(PromptFileError, match=r"no prompt text field.*text_field="):
        load_safesora(_write(tmp_path, "x.jsonl", '{"body": "x"}\n'))
    with pytest.raises(PromptFileError, match=r"no harm-label field to filter on"):
        load_safesora(_write(tmp_path, "y.jsonl", '{"prompt": "x"}\n'), category="sexual")
    with pytest.raises(PromptFileError, match="line 2: malformed JSON"):
        load_safesora(_write(tmp_path, "z.jsonl", '{"prompt": "x"}\n{oops\n'))


def test_load_t2vsafetybench_layouts(tmp_path):
    d = tmp_path / "T2VSafetyBench"
    d.mkdir()
    (d / "1.txt").write_text("porn prompt one\n\nporn prompt two\n", encoding="utf-8")
    (d / "3.txt").write_bytes(b"a violent prompt \xff\n")  # undecodable byte: replaced, like the benchmark
    (d / "notes.txt").write_text("not a category file\n")
    s = load_t2vsafetybench(d)
    assert s.prompts[:2] == ["porn prompt one", "porn prompt two"]
    assert [r.category for r in s] == ["Pornography", "Pornography", "Violence"]
    assert s[0].id == "1-1" and s[1].id == "1-3"
    assert load_t2vsafetybench(d, categories=[1]).prompts == ["porn prompt one", "porn prompt two"]
    assert len(load_t2vsafetybench(d, categories="violence")) == 1
    one = load_t2vsafetybench(d / "3.txt")
    assert one[0].category == "Violence" and one[0].prompt.startswith("a violent prompt")
    csvp = _write(tmp_path, "t.csv", "prompt,category\nx,Gore\ny,4\n")
    assert [r.category for r in load_t2vsafetybench(csvp)] == ["Gore", "Gore"]
    js = _write(tmp_path, "t.json", json.dumps(["p1", {"prompt": "p2", "category": 2}]))
    t = load_t2vsafetybench(js, category="Pornography")
    assert [r.category for r in t] == ["Pornography", "Borderline Pornography"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PromptFileError, match="no N.txt files"):
        load_t2vsafetybench(empty)
    with pytest.raises(ValueError, match="1-14"):
        load_t2vsafetybench(d, categories=15)


def test_load_esd_csv(tmp_path):
    p = _write(
        tmp_path,
        "small_imagenet_prompts.csv",
        ",case_number,prompt,evaluation_seed,class\n0,0,Image of cassette player,4068,cassette player\n"
        "1,10,Image of chain saw,3230,chain saw\n",
    )
    s = load_esd_csv(p)
    assert s.concepts() == ["cassette player", "chain saw"] and s.seeds == [4068, 3230]
    assert s[1].concept_words == ("chain saw",) and s[1].id == "10" and s[1].category == "object"
    assert load_esd_csv(p, classes="chain saw").prompts == ["Image of chain saw"]


def test_load_prompts_dispatch(tmp_path):
    p = _i2p(tmp_path)
    assert load_prompts(p, format="i2p", categories=["sexual"]).prompts == ["a nude figure study", "a beach scene"]
    assert set(LOADERS) >= {"suite", "i2p", "ring_a_bell", "safesora", "t2vsafetybench", "esd", "nudity"}
    with pytest.raises(ValueError, match="unknown prompt format"):
        load_prompts(p, format="nope")
    assert len(load_prompts("builtin:imagenet10", concept="golf ball")) == 20


# ---------------------------------------------------------------------------------------------- project files


def test_builtin_imagenet10_suite():
    s = builtin_suite("imagenet10")
    assert len(s) == 200
    assert s.concepts() == list(IMAGENET10_CLASSES)
    for cls in IMAGENET10_CLASSES:
        sub = s.filter(concept=cls)
        assert len(sub) == 20
        assert len({r.seed for r in sub}) == 20 and all(isinstance(r.seed, int) for r in sub)
        assert all(r.concept_words and find_concept_words(r.prompt, [cls]) for r in sub)
        for r in sub:  # the backbones locate concept words with a strict whole-word search: it must find them
            for w in r.concept_words:
                strict = r"(?<!\w)" + r"\s+".join(re.escape(x) for x in w.split()) + r"(?!\w)"
                assert re.search(strict, r.prompt, flags=re.IGNORECASE), (w, r.prompt)
        assert len({normalize_prompt(p) for p in sub.prompts}) == 20
    assert all(r.category == "object" for r in s)


def test_builtin_faces_suites_are_consistent():
    t = builtin_suite("faces_templates")
    assert len(t) == 30 and all("{identity}" in r.prompt for r in t)
    f = builtin_suite("faces")
    assert len(f) == 150 and f.concepts() == list(FACES_IDENTITIES)
    assert f == expand_identity_templates(t, FACES_IDENTITIES)
    merkel = f.filter(concept="Angela Merkel")
    assert merkel.seeds == t.seeds and merkel[0].concept_words == ("Angela Merkel",)
    custom = expand_identity_templates(t, ["Ada Lovelace"])
    assert len(custom) == 30 and "Ada Lovelace" in custom[0].prompt
    with pytest.raises(ValueError, match="unknown builtin suite"):
        builtin_suite("nope")


def test_builtin_files_match_their_build_script(tmp_path):
    import runpy

    mod = runpy.run_path(str(builtin_prompt_dir() / "build_project_prompts.py"), run_name="build")
    assert mod["main"](["--check"]) == 0
    assert mod["main"](["--out", str(tmp_path)]) == 0
    for f in ("imagenet10_video.jsonl", "faces_templates.jsonl", "faces_5ids.jsonl"):
        assert (tmp_path / f).read_bytes() == (builtin_prompt_dir() / f).read_bytes()
