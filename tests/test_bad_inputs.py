"""Bad input never costs a researcher a day (issue #15).

The catalogue (``tests/bad_input_catalogue.py``: every case is an ``unlearn`` command line, the exit status it must end
with, the key words of its last stderr line, and checks that no output of the failed command passes for a good
one and no earlier output was lost) runs here in one process, a few cases as real processes; then the pieces
behind it: the cache that cannot poison a run, run status, round trips, credentials, atomic writers.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

import bad_input_catalogue as B
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent

#: cases also run as real `unlearn` processes (exit status and stderr exactly as a user sees them)
AS_PROCESS = {"alpha_negative", "export_truncated_ckpt"}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return B.build_workspace(tmp_path_factory.mktemp("bad_inputs"))


def test_catalogue_has_at_least_110_distinct_cases():
    names = [c.name for c in B.CASES]
    assert len(names) >= 110 and len(set(names)) == len(names)


@pytest.mark.parametrize("case", B.CASES, ids=lambda c: c.name)
def test_bad_input(case, ws):
    out = B.run_case(case, ws, code=ROOT if case.name in AS_PROCESS else None)
    assert out.rc == case.code, (out.rc, out.last_line)
    assert out.outcome == "clear", (out.outcome, out.problem, out.last_line)
    assert not out.lost, "the earlier run's adapters in the folder were destroyed"
    if case.code:
        assert out.last_line.startswith(
            ("error:", "unlearn augment: error:", "unlearn push: error:", "python -m unlearn.evaluation: error:")
        ), out.last_line


def test_debug_flag_and_env_show_the_traceback(ws):
    case = next(c for c in B.CASES if c.name == "alpha_negative")
    root = ws / "cases" / "debug"
    argv = case.render(ws, root)
    rc, err = B.run_unlearn(argv)
    assert rc == 2 and "Traceback" not in err and "--debug" in err
    rc, err = B.run_unlearn([*argv, "--debug"])
    assert rc == 2 and "Traceback (most recent call last)" in err and "InputError" in err
    assert B.last_line(err).startswith("error: T2VUnlearning: model.alpha must be >= 0")
    rc, err = B.run_unlearn(argv, env={"UNLEARN_DEBUG": "1"})
    assert rc == 2 and "Traceback (most recent call last)" in err


# ------------------------------------------------------------------------------------------------ round trips
def test_export_output_loads_as_init_adapters(ws, tmp_path):
    from unlearn.methods.t2vunlearning import T2VUnlearning, load_adapters

    rc, err = B.run_unlearn(["export", "--ckpt", str(ws / "good.ckpt"), "--out", str(tmp_path / "exported")])
    assert rc == 0, err
    exported, cfg = load_adapters(tmp_path / "exported")
    good, _ = load_adapters(ws / "good" / "adapters")
    assert cfg["site_names"] == good.site_names
    for k, v in good.state_dict().items():
        assert torch.equal(exported.state_dict()[k], v)
    # through the command: a run that starts from the exported adapters
    rc, err = B.run_unlearn(
        B._fit_argv(
            ws, tmp_path / "run", f"--model.init_args.init_adapters={tmp_path / 'exported'}", "--trainer.max_steps=1"
        )
    )
    assert rc == 0, err
    model = T2VUnlearning(
        backbone="cogvideox-2b",
        tiny=True,
        torch_dtype="float32",
        adapter_dim=4,
        init_adapters=str(tmp_path / "exported"),
    )
    for k, v in good.state_dict().items():
        assert torch.equal(model.switch.state_dict()[k], v)


def test_export_of_a_checkpoint_without_stored_config_still_loads(ws, tmp_path):
    from unlearn.io import load_checkpoint_file, save_checkpoint_file
    from unlearn.methods.t2vunlearning import T2VUnlearning, read_adapter_config

    ckpt = load_checkpoint_file(ws / "good.ckpt")
    ckpt.pop("adapter_config")  # as written before the config was stored
    save_checkpoint_file(ckpt, tmp_path / "old.ckpt")
    rc, err = B.run_unlearn(["export", "--ckpt", str(tmp_path / "old.ckpt"), "--out", str(tmp_path / "ad")])
    assert rc == 0, err
    assert read_adapter_config(tmp_path / "ad")["site_names"] is None
    model = T2VUnlearning(
        backbone="cogvideox-2b", tiny=True, torch_dtype="float32", adapter_dim=4, init_adapters=str(tmp_path / "ad")
    )
    assert float(model.adapter_norm()) > 0


def test_attach_adapters_checks_every_site_before_changing_the_pipeline(ws, tmp_path):
    from diffusers import CogVideoXPipeline

    from unlearn.methods.t2vunlearning import (
        AdapterFileError,
        attach_adapters,
        check_adapter_sites,
        read_adapter_config,
    )

    pipe = CogVideoXPipeline.from_pretrained(str(ws / "weights" / "cogx2b"))
    before = {k: type(v) for k, v in pipe.transformer.attn_processors.items()}
    with pytest.raises(AdapterFileError, match=r"video-token width differs at 2 of 2 sites.*model 16, adapter 32"):
        attach_adapters(pipe, ws / "adapters_5b_named_2b")  # 5B adapters labelled 2B: same number of sites
    assert {k: type(v) for k, v in pipe.transformer.attn_processors.items()} == before
    assert not hasattr(pipe.transformer, "_t2v_unlearn_adapters")
    # the check is a function of its own (a hook-based attach can call it too)
    from unlearn.backbones import backbone_class

    sites = backbone_class("cogvideox-2b").attention_sites_of(pipe.transformer)
    check_adapter_sites(sites, read_adapter_config(ws / "good" / "adapters"))
    with pytest.raises(AdapterFileError, match="cover 3 attention sites; this model has 2"):
        check_adapter_sites(sites, {"dims": [16, 16, 16], "site_names": None, "backbone": "x"})
    attach_adapters(pipe, ws / "good" / "adapters")  # the right adapters still attach


# ------------------------------------------------------------------------------------------------ credentials
def test_url_credentials_never_reach_messages_or_the_cache(tmp_path):
    from fake_servers import ChatServer

    from unlearn.prompts.augment import OpenAIChatSource, PromptAugmenter
    from unlearn.prompts.augment.openai_chat import redact_url

    assert redact_url("http://bob:S3cret@h:1/v1?api_key=K3y&x=1") == "http://bob:***@h:1/v1?api_key=***&x=1"
    with ChatServer(["ok"]) as server:
        url = server.url.replace("http://", "http://bob:S3cret@") + "?api_key=K3y"
        src = OpenAIChatSource(url, "m", api_key_env=None, max_retries=0)
        assert "S3cret" not in src.model_id and "K3y" not in src.model_id
        suite = PromptAugmenter(src, cache_dir=tmp_path / "c").augment("golf ball", 2, style="zeroscope")
        assert len(suite) == 2 and server.requests[0]["headers"].get("Authorization", "").startswith("Basic ")
    cached = "".join(p.read_text() for p in (tmp_path / "c").glob("*.json"))
    assert cached and "S3cret" not in cached and "K3y" not in cached and "bob:***@" in cached


def test_cleartext_key_warning_only_for_remote_http(monkeypatch):
    from unlearn.prompts.augment import OpenAIChatSource

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    for url, warned in (
        ("http://example.org/v1", True),
        ("https://example.org/v1", False),
        ("http://127.0.0.1:8000/v1", False),
        ("http://localhost:8000/v1", False),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            OpenAIChatSource(url, "m")._warn_cleartext()
        assert any("cleartext" in str(w.message) for w in caught) == warned, url
    monkeypatch.delenv("OPENAI_API_KEY")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        OpenAIChatSource("http://u:p@example.org/v1", "m")._warn_cleartext()  # credentials in the URL count too
    assert any("credentials in the URL" in str(w.message) for w in caught)


# ------------------------------------------------------------------------------------------------ run status
def test_run_status_tells_finished_failed_interrupted_and_running(tmp_path):
    from unlearn.io import UnfinishedRunError, require_finished, run_problem, write_run_status

    out = tmp_path / "run"
    (out / "adapters").mkdir(parents=True)
    assert run_problem(out / "adapters") is None  # no status: not written by `unlearn fit`
    write_run_status(out, "finished", run_id="a")
    require_finished(out / "adapters", "adapters")
    write_run_status(out, "failed", run_id="b", error="DivergenceError: the loss diverged")
    with pytest.raises(UnfinishedRunError, match="failed.*DivergenceError"):
        require_finished(out / "adapters", "adapters")
    with pytest.warns(RuntimeWarning, match="failed"):
        require_finished(out / "adapters", "adapters", allow_unfinished=True)
    write_run_status(out, "running", run_id="c")  # this process: alive
    assert run_problem(out / "adapters")[1] is False
    doc = json.loads((out / "run_status.json").read_text())
    doc["pid"] = 2**22 + 12345  # a process that is gone (beyond the default pid_max)
    (out / "run_status.json").write_text(json.dumps(doc))
    reason, fatal = run_problem(out / "adapters")
    assert fatal and "interrupted" in reason


def test_fit_marks_its_folder_running_then_finished(ws, tmp_path):
    from unlearn.callbacks import RunStatus

    seen = []

    class Spy(RunStatus):
        def _write(self, status, **info):
            seen.append(status)
            super()._write(status, **info)

    status = Spy()
    import lightning.pytorch as pl

    from unlearn.methods.t2vunlearning import ConceptDataModule, T2VUnlearning

    model = T2VUnlearning(backbone="cogvideox-2b", tiny=True, torch_dtype="float32", adapter_dim=4)
    data = ConceptDataModule(
        "nudity",
        prompts=["a naked person walking"],
        concept_synonyms=["naked"],
        num_frames=9,
        height=32,
        width=32,
        num_inference_steps=2,
        cache_dir=str(tmp_path / "cache"),
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path / "r"),
        callbacks=[status],
    )
    trainer.fit(model, data)
    assert seen == ["running", "finished"]
    assert json.loads((tmp_path / "r" / "run_status.json").read_text())["status"] == "finished"


# ------------------------------------------------------------------------------------------------ writers
def test_replace_folder_swaps_in_one_step(tmp_path, monkeypatch):
    from unlearn import io

    dest = tmp_path / "adapters"
    with io.atomic_folder(dest) as t:
        (t / "w").write_text("old")
    calls = []
    real = io._exchange
    monkeypatch.setattr(io, "_exchange", lambda a, b: calls.append((a, b)) or real(a, b))

    def crash(*a, **k):  # the process dies right after the swap, before the old copy is removed
        raise KeyboardInterrupt

    monkeypatch.setattr(io.shutil, "rmtree", crash)
    tmp = tmp_path / ".new"
    tmp.mkdir()
    (tmp / "w").write_text("new")
    if sys.platform.startswith("linux"):
        with pytest.raises(KeyboardInterrupt):
            io.replace_folder(tmp, dest)
        assert calls and (dest / "w").read_text() == "new"  # dest existed at every instant
    monkeypatch.undo()
    # without the exchange (another OS / file system): two renames, same result
    monkeypatch.setattr(io, "_exchange", lambda a, b: False)
    tmp2 = tmp_path / ".newer"
    tmp2.mkdir()
    (tmp2 / "w").write_text("newer")
    io.replace_folder(tmp2, dest)
    assert (dest / "w").read_text() == "newer"


def test_metrics_pair_is_written_together_and_checked(tmp_path, monkeypatch):
    from unlearn import io
    from unlearn.evaluation.tables import read_metrics, write_metrics

    row = {"esr@1": 50.0, "esr@5": 40.0, "psr@1": 90.0, "psr@5": 95.0}
    write_metrics(tmp_path, {"original": row}, {"concept": "c"})
    doc, md = read_metrics(tmp_path)
    assert doc["rows"]["original"] == row and "| original | 50.0" in md
    real = os.replace
    calls = []

    def dies_on_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed between the two renames
        real(src, dst)

    monkeypatch.setattr(io.os, "replace", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        write_metrics(tmp_path, {"t2vunlearning": row}, {"concept": "c"})
    monkeypatch.undo()
    with pytest.raises(ValueError, match="metrics.md does not belong to metrics.json"):
        read_metrics(tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_atomic_path_keeps_the_old_file_on_error_and_cleans_orphans(tmp_path):
    from unlearn.io import atomic_path, clean_orphan_temps

    target = tmp_path / "masks.safetensors"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed while writing")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["masks.safetensors"]
    import socket

    host = "".join(c if c.isalnum() or c in "_." else "_" for c in socket.gethostname())
    dead = tmp_path / f".x.~{host}-{2**22 + 12345}~abc.tmp"
    alive = tmp_path / f".y.~{host}-{os.getpid()}~abc.tmp"
    dead.write_bytes(b"")
    alive.write_bytes(b"")
    assert clean_orphan_temps(tmp_path) == [dead] and alive.exists()


def test_mask_callback_writes_through_atomic_path(ws, tmp_path):
    rc, err = B.run_unlearn(
        B._fit_argv(ws, tmp_path, "--trainer.callbacks+=unlearn.callbacks.ConceptMaskCallback", "--trainer.max_steps=2")
    )
    assert rc == 0, err
    files = sorted(p.name for p in (tmp_path / "masks").iterdir())
    assert files == ["masks_epoch=0.png", "masks_epoch=0.safetensors"]
