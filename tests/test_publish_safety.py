"""What `unlearn push` publishes (issue #27, points 2 and 5): text from files is escaped in the model card and
quoted in its loading snippet; adapters of a failed or interrupted run, NaN adapters and an earlier run's
results are not published; ``--repo`` is checked in a dry run as in a real one.

The adapters are real adapter folders (``save_adapters`` of a real controller on the tiny CogVideoX); the
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
from unlearn.methods.t2vunlearning import AdapterController, save_adapters

EVIL_SOURCE = 'x", trust_remote_code=True, custom_pipeline="evil/pipe'


def adapter_folder(tmp_path, **extra):
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    sites = bb.attention_sites()
    ctl = AdapterController([s.video_dim for s in sites], 4, [s.name for s in sites])
    folder = tmp_path / "run" / "adapters"
    info = {"concept": "golf ball", "eta": 7.0, "backbone_source": "THUDM/CogVideoX-2b", **extra}
    save_adapters(ctl, "cogvideox-2b", folder, extra=info)
    return folder, ctl


def dry_run(capsys, folder, *extra):
    rc = main(["push", str(folder), "--repo", "alice/x", "--dry-run", *extra])
    out = capsys.readouterr()
    return rc, out.out, out.err


def snippet_calls(card: str) -> dict[str, ast.Call]:
    code = card.split("```python", 1)[1].split("```", 1)[0]
    tree = ast.parse(code)  # the snippet is one valid Python program
    calls = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name)):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            calls[name] = node
    return calls


def test_file_text_cannot_add_arguments_to_the_loading_snippet(tmp_path, capsys):
    folder, _ = adapter_folder(tmp_path, backbone_source=EVIL_SOURCE, backbone_hub_id=None, backbone_revision=None)
    rc, card, err = dry_run(capsys, folder)
    assert rc == 0, err
    call = snippet_calls(card)["from_pretrained"]
    assert [kw.arg for kw in call.keywords] == ["torch_dtype"]  # before #27: trust_remote_code, custom_pipeline too
    assert len(call.args) == 1 and isinstance(call.args[0], ast.Constant)
    assert "trust_remote_code" in call.args[0].value  # the whole value stays one string argument


def test_file_text_cannot_break_the_card_markup(tmp_path, capsys):
    concept = "golf ball\n## Injected\n<script>alert(1)</script> | x | ```"
    folder, _ = adapter_folder(tmp_path, concept=concept, preserve_concept="a`b")
    rc, card, err = dry_run(capsys, folder)
    assert rc == 0, err
    assert "<script>" not in card and "\n## Injected" not in card
    assert card.count("```") == 2  # the snippet's own fence only
    rows = [ln for ln in card.splitlines() if ln.startswith("| concept erased")]
    assert len(rows) == 1 and rows[0].count("|") == 3, rows  # one row of two cells


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
    folder, ctl = adapter_folder(tmp_path)
    ctl.adapters[0].up.weight.data[0, 0] = float("nan")
    save_adapters(ctl, "cogvideox-2b", folder, extra={"concept": "golf ball"})
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
    with pytest.raises(SystemExit) as e:  # argparse's usage error, as in a real push
        main(["push", str(folder), "--repo", repo, "--dry-run"])
    assert e.value.code == 2
    assert re.search(r"--repo .* is not a Hub repository id", capsys.readouterr().err)


def test_adapters_with_nan_are_refused_as_init_adapters(tmp_path):
    from unlearn.methods.t2vunlearning import AdapterFileError, load_adapters

    folder, ctl = adapter_folder(tmp_path)
    ctl.adapters[-1].down.weight.data.fill_(float("inf"))
    save_adapters(ctl, "cogvideox-2b", folder)
    with pytest.raises(AdapterFileError, match="NaN or infinite.*learning_rate"):
        load_adapters(folder)
    assert torch.isinf(ctl.adapters[-1].down.weight).all()
