"""What `unlearn push` publishes (issue #27, points 2 and 5): text from files is escaped in the model card and
quoted in its loading snippet; adapters of a failed or interrupted run, NaN adapters and an earlier run's
results are not published; ``--repo`` is checked in a dry run as in a real one.

The adapters are real adapter folders (``save_adapters`` of a real switch on the tiny CogVideoX); the
malicious values are written into their ``adapter_config.json`` / ``metrics.json`` as an attacker would. Only
``unlearn.cli.main`` and the adapter writer are used, so the tests run against any checkout.
"""

from __future__ import annotations

import ast
import json
import os
import re
import time

import pytest
import torch

from unlearn.backbones import build_backbone
from unlearn.cli import main
from unlearn.evaluation.tables import write_metrics
from unlearn.methods.t2vunlearning import AdapterSwitch, save_adapters

EVIL_SOURCE = 'x", trust_remote_code=True, custom_pipeline="evil/pipe'


def adapter_folder(tmp_path, **extra):
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    sites = bb.attention_sites()
    switch = AdapterSwitch([s.video_dim for s in sites], 4, [s.name for s in sites])
    folder = tmp_path / "run" / "adapters"
    info = {"concept": "golf ball", "eta": 7.0, "backbone_source": "THUDM/CogVideoX-2b", **extra}
    save_adapters(switch, "cogvideox-2b", folder, extra=info)
    return folder, switch


def dry_run(capsys, folder, *extra):
    rc = main(["push", str(folder), "--repo", "alice/x", "--dry-run", *extra])
    out = capsys.readouterr()
    return rc, out.out, out.err


def snippet_keywords(card: str) -> tuple[list[str], list[str]]:
    """Keyword argument names of every call in the card's Python snippets, and their string constants."""
    keywords, strings = [], []
    for block in card.split("```python")[1:]:
        tree = ast.parse(block.split("```", 1)[0])  # each snippet is one valid Python program
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                keywords += [kw.arg for kw in node.keywords]
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                strings.append(node.value)
    return keywords, strings


@pytest.mark.parametrize(
    "fields",
    [
        {"backbone_source": EVIL_SOURCE, "backbone_hub_id": None, "backbone_revision": None},
        {"backbone_source": "x", "backbone_hub_id": EVIL_SOURCE, "backbone_revision": None},
        {"backbone_hub_id": "THUDM/CogVideoX-2b", "backbone_revision": EVIL_SOURCE},
    ],
    ids=["source", "hub_id", "revision"],
)
def test_file_text_cannot_add_arguments_to_the_loading_snippet(tmp_path, capsys, fields):
    folder, _ = adapter_folder(tmp_path, **fields)
    rc, card, err = dry_run(capsys, folder)
    assert rc == 0, err
    keywords, strings = snippet_keywords(card)
    assert keywords and not {"trust_remote_code", "custom_pipeline"} & set(keywords), keywords
    if EVIL_SOURCE in card.split("```python", 1)[-1].split("```", 1)[0]:
        assert EVIL_SOURCE in strings  # the whole value stays one string argument


def card_shape(card: str) -> tuple:
    """Headings, table rows (cells per row, escaped pipes not counted) and code fences of a card."""
    lines = card.splitlines()
    return (
        [ln for ln in lines if ln.startswith("#")],
        [ln.count("|") - ln.count("\\|") for ln in lines if ln.startswith("|")],
        card.count("```"),
    )


def test_file_text_cannot_break_the_card_markup(tmp_path, capsys):
    benign, _ = adapter_folder(tmp_path / "benign", concept="golf ball", preserve_concept="ab")
    _, reference, _ = dry_run(capsys, benign)
    concept = "golf ball\n## Injected\n<script>alert(1)</script> | x | ```"
    folder, _ = adapter_folder(tmp_path, concept=concept, preserve_concept="a`b")
    rc, card, err = dry_run(capsys, folder)
    assert rc == 0, err
    assert "<script>" not in card and "\n## Injected" not in card
    shape, ref = card_shape(card), card_shape(reference)
    assert shape[1:] == ref[1:], (shape, ref)  # the same table rows and cells, the same fences
    assert len(shape[0]) == len(ref[0])  # no heading added


def test_push_refuses_a_failed_or_interrupted_run(tmp_path, capsys):
    folder, _ = adapter_folder(tmp_path)
    for status in ("failed", "interrupted"):
        (folder.parent / "run_status.json").write_text(json.dumps({"status": status, "error": "DivergenceError"}))
        rc, _, err = dry_run(capsys, folder)
        last = err.strip().splitlines()[-1]
        assert rc == 2 and status in last and "--allow-unfinished" in last, (status, last)  # before #27: 0
    rc, card, err = dry_run(capsys, folder, "--allow-unfinished")
    assert rc == 0 and "golf ball" in card


def test_push_refuses_nan_adapters(tmp_path, capsys):
    folder, switch = adapter_folder(tmp_path)
    switch.adapters[0].up.weight.data[0, 0] = float("nan")
    save_adapters(switch, "cogvideox-2b", folder, extra={"concept": "golf ball"})
    rc, _, err = dry_run(capsys, folder)
    last = err.strip().splitlines()[-1]
    assert rc == 2 and "NaN" in last and "adapters.safetensors" in last, last


def test_an_earlier_runs_metrics_are_not_attached(tmp_path, capsys):
    run = tmp_path / "run"
    rows = {"t2vunlearning": {"esr@1": 99.0, "esr@5": 98.0, "psr@1": 90.0, "psr@5": 91.0}}
    write_metrics(run / "eval", rows, {"concept": "chain saw", "units": "percent"})  # a run of another concept
    old = time.time() - 3600
    for f in (run / "eval").iterdir():
        os.utime(f, (old, old))
    folder, _ = adapter_folder(tmp_path)  # this run: "golf ball", started now
    started = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    (run / "run_status.json").write_text(json.dumps({"status": "finished", "started": started}))
    rc, card, err = dry_run(capsys, folder)
    assert rc == 0, err
    assert "99.0" not in card and "chain saw" not in card  # before #27: the other run's table was attached
    assert "metrics.json not attached" in err
    # the same run's evaluation is attached
    write_metrics(run / "eval", rows, {"concept": "golf ball", "units": "percent"})
    rc, card, err = dry_run(capsys, folder)
    assert rc == 0 and "99.0" in card, err


@pytest.mark.parametrize("repo", ["../..", "alice/../..", "a/b/c", "alice/x y", "alice--x/y"])
def test_push_dry_run_checks_the_repo_id(tmp_path, capsys, repo):
    folder, _ = adapter_folder(tmp_path)
    # input refused (exit 2) with one line, before anything is uploaded, as in a real push
    assert main(["push", str(folder), "--repo", repo, "--dry-run"]) == 2
    assert re.search(r"--repo .* is not a Hub repository id", capsys.readouterr().err)


def test_adapters_with_nan_are_refused_as_init_adapters(tmp_path):
    from unlearn.methods.t2vunlearning import AdapterFileError, load_adapters

    folder, switch = adapter_folder(tmp_path)
    switch.adapters[-1].down.weight.data.fill_(float("inf"))
    save_adapters(switch, "cogvideox-2b", folder)
    with pytest.raises(AdapterFileError, match="NaN or infinite.*learning_rate"):
        load_adapters(folder)
    assert torch.isinf(switch.adapters[-1].down.weight).all()
