"""The T2VUnlearning authors' prompt sets by name, from a user's copy (files written here in their layout: their
prompts are not shipped, their repository has no licence)."""

import csv

import pytest

from unlearn.prompts.loaders import load_prompts
from unlearn.prompts.loaders.t2vunlearning import COUNTS, T2VUNLEARNING_SETS
from unlearn.prompts.suite import PromptFileError


def _write(folder, file, header, rows):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / file, "w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def test_sets_load_by_name_with_the_papers_counts(tmp_path):
    data = tmp_path / "T2VUnlearning" / "evaluation" / "data"
    _write(data, "nudity_cogvideox.csv", ["prompt", "seed", "concept", "concept_type"],
           [[f"a long prompt {i}", i, "nudity", "i2p"] for i in range(100)])  # fmt: skip
    _write(data, "face_cogvideox.csv", ["case_number", "prompt", "class", "evaluation_seed"],
           [[i, f"Angela Merkel walks {i}", "Angela Merkel", 3728] for i in range(150)])  # fmt: skip
    gen = load_prompts(tmp_path / "T2VUnlearning", format="t2vunlearning", set="gen_cogvideox")
    assert len(gen) == COUNTS["gen_cogvideox"] == 100 and gen[3].seed == 3 and gen[0].concept == "nudity"
    faces = load_prompts(data / "face_cogvideox.csv", format="t2vunlearning", set="faces_cogvideox")
    assert len(faces) == 150 and faces[0].concept == "Angela Merkel" and faces[0].seed == 3728
    assert set(T2VUNLEARNING_SETS) >= {"gen_cogvideox", "gen_hunyuan", "ring_a_bell", "safesora_sexual"}
    # a file with another count than the paper's is refused
    _write(data, "nudity_hunyuan.csv", ["prompt"], [[f"p {i}"] for i in range(49)])
    with pytest.raises(PromptFileError, match="has 50"):
        load_prompts(data, format="t2vunlearning", set="gen_hunyuan")
    with pytest.raises(FileNotFoundError, match="not shipped"):
        load_prompts(tmp_path, format="t2vunlearning", set="ring_a_bell")
    with pytest.raises(ValueError, match="unknown T2VUnlearning prompt set"):
        load_prompts(data, format="t2vunlearning", set="gen")
