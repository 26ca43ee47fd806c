"""A checkpoint must not steer a run (issue #27, point 1 and 3).

Malicious checkpoints are made the way an attacker would: a real checkpoint of a real tiny run, read and written
with the project's pickle-free format, its ``hyper_parameters`` changed to name other weights (a Hub repository
served by a local HTTP server that records every request, a local folder), a class to import (a module whose
import leaves a marker), or values the command line sets. Resuming from them with ``unlearn fit --ckpt_path``
must take the configuration from the config files and command line only: refuse the checkpoint of another
run with one line naming the keys, import and fetch nothing, and keep the command line's values.

These tests use only ``unlearn.cli.main`` and ``unlearn.io``, so they run against any checkout
(``PYTHONPATH=<checkout> pytest tests/test_resume_security.py``): on the code before #27 they fail.
"""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from unlearn.cli import main
from unlearn.io import load_checkpoint_file, save_checkpoint_file

ROOT = Path(__file__).resolve().parent.parent


def write_config(folder: Path, cache: Path) -> Path:
    """The tiny CogVideoX run (one epoch of 4 steps) with a last checkpoint, logger off."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "config": str(ROOT / "configs" / "tiny_cogvideox.yaml"),
        "trainer.max_epochs": 1,
        "trainer.enable_checkpointing": True,
        "trainer.enable_progress_bar": False,
        "trainer.logger": False,
        "trainer.callbacks": [
            {
                "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                "init_args": {
                    "dirpath": "${trainer.default_root_dir}/checkpoints",
                    "save_last": True,
                    "save_top_k": 0,
                },
            },
            {"class_path": "unlearn.callbacks.AdapterCheckpoint", "init_args": {"every_n_epochs": 0}},
        ],
        "data.init_args.cache_dir": str(cache),
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """One finished tiny run: its config and its last checkpoint."""
    base = tmp_path_factory.mktemp("resume_security")
    config = write_config(base / "cfg", base / "cache")
    assert main(["fit", "--config", str(config), "--trainer.default_root_dir", str(base / "good")]) == 0
    ckpt = base / "good" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    return {"base": base, "config": config, "ckpt": ckpt}


def malicious(good, path: Path, **hparams) -> Path:
    ck = load_checkpoint_file(good["ckpt"])
    ck["hyper_parameters"] = {**ck["hyper_parameters"], **hparams}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint_file(ck, path)
    return path


def resume(good, root: Path, ckpt: Path | str, *extra: str) -> list[str]:
    return ["fit", "--config", str(good["config"]), "--trainer.default_root_dir", str(root), "--ckpt_path", str(ckpt)]


def last_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def test_checkpoint_naming_a_local_weights_folder_is_refused(good, tmp_path, capsys):
    from unlearn.backbones import build_backbone

    weights = tmp_path / "attacker_weights"
    build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32").save_pretrained(str(weights))
    ckpt = malicious(good, tmp_path / "evil.ckpt", pretrained=str(weights), tiny=False)
    rc = main(resume(good, tmp_path / "run", ckpt))
    line = last_line(capsys.readouterr().err)
    assert rc == 2, line  # before #27: exit 0, trained on the attacker's weights
    assert line.startswith("error:") and "model.pretrained" in line and "another run" in line, line
    assert not (tmp_path / "run" / "adapters").exists()


def test_checkpoint_class_path_is_never_imported(good, tmp_path, monkeypatch, capsys):
    marker = tmp_path / "IMPORTED"
    (tmp_path / "evil_t2v_module.py").write_text(
        f"open({str(marker)!r}, 'w').write('import side effect ran')\n"
        "from unlearn.methods.t2vunlearning import T2VUnlearning as Evil\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ckpt = malicious(good, tmp_path / "evil.ckpt", _class_path="evil_t2v_module.Evil")
    rc = main(resume(good, tmp_path / "run", ckpt))
    line = last_line(capsys.readouterr().err)
    assert not marker.exists(), "a module named by the checkpoint was imported"
    assert rc == 2 and "model._class_path" in line, line
    sys.modules.pop("evil_t2v_module", None)


def test_command_line_values_win_over_the_checkpoint(good, tmp_path, capsys):
    ckpt = tmp_path / "same.ckpt"
    shutil.copy(good["ckpt"], ckpt)
    assert load_checkpoint_file(ckpt)["hyper_parameters"]["eta"] == 7.0
    rc = main([*resume(good, tmp_path / "run", ckpt), "--model.init_args.eta", "3.0", "--trainer.max_epochs", "2"])
    err = capsys.readouterr().err
    assert rc == 0, err[-2000:]
    after = load_checkpoint_file(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert after["hyper_parameters"]["eta"] == 3.0  # before #27: 7.0, the checkpoint's
    assert after["global_step"] == 8  # the state was restored: one more epoch of 4 steps
    assert "model.eta" in err  # said in one line


def test_checkpoint_of_another_concept_is_refused_unless_allowed(good, tmp_path, capsys):
    other = ["--data.init_args.concept", "gore", "--data.init_args.allow_prompts_without_concept", "true"]
    rc = main([*resume(good, tmp_path / "run", good["ckpt"]), *other])
    line = last_line(capsys.readouterr().err)
    assert rc == 2 and "data.concept" in line and "'nudity'" in line and "'gore'" in line, line
    rc = main([*resume(good, tmp_path / "run", good["ckpt"]), *other, "--allow_config_mismatch", "true"])
    assert rc == 0, last_line(capsys.readouterr().err)


def test_ckpt_path_last_with_nothing_to_resume_is_an_error(good, tmp_path, capsys):
    rc = main(resume(good, tmp_path / "fresh", "last"))
    line = last_line(capsys.readouterr().err)
    assert rc == 2, line  # before #27: Lightning's warning, then a run from scratch (exit 0)
    assert "nothing to resume" in line and str(tmp_path / "fresh" / "checkpoints") in line, line
    assert not (tmp_path / "fresh" / "adapters").exists()


def test_ckpt_path_last_without_checkpointing_names_the_reason(good, tmp_path, capsys):
    rc = main(
        [
            *resume(good, tmp_path / "fresh", "last"),
            "--trainer.enable_checkpointing",
            "false",
            "--trainer.callbacks",
            "unlearn.callbacks.AdapterCheckpoint",
        ]
    )
    line = last_line(capsys.readouterr().err)
    assert rc == 2 and "writes no checkpoint" in line and "nothing to resume" in line, line


HUB_RUN = """
import sys
from unlearn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_checkpoint_naming_a_hub_repository_fetches_nothing(good, tmp_path):
    ckpt = malicious(good, tmp_path / "evil.ckpt", pretrained="attacker/backdoored-cogvideox", tiny=False)
    requests: list[str] = []

    class Hub(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            requests.append(self.path)
            self.send_response(404)
            self.end_headers()

        do_HEAD = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "HF_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}",
            "HF_HUB_OFFLINE": "0",
            "HF_HOME": str(tmp_path / "hf_home"),
        }
        done = subprocess.run(
            [sys.executable, "-c", HUB_RUN, *resume(good, tmp_path / "run", ckpt)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert not [r for r in requests if "attacker" in r], requests  # before #27: the run asked the Hub for it
    assert done.returncode == 2 and "model.pretrained" in last_line(done.stderr), done.stderr[-2000:]
