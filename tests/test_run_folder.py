"""One run folder, one run configuration, one fit at a time (issue #27, point 6).

``unlearn fit`` records what made a folder (``run_record.json``: config sha256, code version) and holds a lock
on it while it runs. Real tiny fits: a second fit into the folder while the first runs (a real second process)
is refused; a later fit with another config into a finished run's folder is refused with the differing keys;
the same config may run again, and a failed run's folder may take a fixed config.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from unlearn.cli import main

ROOT = Path(__file__).resolve().parent.parent

SLOW_STEPS = """
import time

import lightning.pytorch as pl


class SlowSteps(pl.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        time.sleep(1.0)
"""


def fit_argv(root: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "fit",
        "--config",
        str(ROOT / "configs" / "tiny_cogvideox.yaml"),
        "--trainer.default_root_dir",
        str(root),
        "--trainer.max_epochs",
        "1",
        "--trainer.logger",
        "false",
        "--trainer.enable_progress_bar",
        "false",
        "--data.init_args.cache_dir",
        str(cache),
        *extra,
    ]


def last_line(err: str) -> str:
    return [ln for ln in err.splitlines() if ln.strip()][-1]


def test_a_second_config_into_a_finished_runs_folder_is_refused(tmp_path, capsys, monkeypatch):
    root, cache = tmp_path / "run", tmp_path / "cache"
    assert main(fit_argv(root, cache)) == 0
    record = json.loads((root / "run_record.json").read_text())
    assert len(record["config_sha256"]) == 64 and record["code_version"].startswith("t2v-unlearn")
    assert record["config"]["trainer"]["callbacks"][0]["init_args"]["dirpath"] == "<root>/checkpoints"
    before = (root / "adapters" / "adapters.safetensors").read_bytes()

    rc = main(fit_argv(root, cache, "--model.init_args.eta", "3.0"))
    line = last_line(capsys.readouterr().err)
    assert rc == 2 and str(root) in line and "another config" in line and "model.init_args.eta" in line, line
    assert (root / "adapters" / "adapters.safetensors").read_bytes() == before  # untouched
    assert json.loads((root / "run_status.json").read_text())["status"] == "finished"

    # the same config again: allowed (its files are replaced by the same run's); a relative path to the same
    # folder is the same config
    monkeypatch.chdir(tmp_path)
    assert main(fit_argv(Path("run"), cache)) == 0
    assert len(json.loads((root / "run_record.json").read_text())["runs"]) == 2


def test_a_failed_runs_folder_takes_a_fixed_config(tmp_path, capsys):
    root, cache = tmp_path / "run", tmp_path / "cache"
    assert main(fit_argv(root, cache)) == 0
    status = json.loads((root / "run_status.json").read_text())
    (root / "run_status.json").write_text(json.dumps({**status, "status": "failed", "error": "DivergenceError"}))
    assert main(fit_argv(root, cache, "--model.init_args.learning_rate", "1e-4")) == 0, capsys.readouterr().err


def test_two_fits_in_one_folder_at_once(tmp_path, capsys, monkeypatch):
    root, cache = tmp_path / "run", tmp_path / "cache"
    (tmp_path / "slow_steps.py").write_text(SLOW_STEPS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    first = subprocess.Popen(
        [sys.executable, "-m", "unlearn.cli", *fit_argv(root, cache, "--trainer.callbacks+=slow_steps.SlowSteps")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 180
        while time.time() < deadline and first.poll() is None:
            status = root / "run_status.json"
            if status.is_file() and json.loads(status.read_text()).get("status") == "running":
                break
            time.sleep(0.1)
        assert first.poll() is None, first.stderr.read()[-2000:]
        rc = main(fit_argv(root, cache))
        line = last_line(capsys.readouterr().err)
        assert rc == 2 and "in use by another `unlearn fit`" in line and f"pid {first.pid}" in line, line
        assert first.poll() is None  # the first run goes on
        _, err = first.communicate(timeout=180)
        assert first.returncode == 0, err[-2000:]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert json.loads((root / "run_status.json").read_text())["status"] == "finished"
    # the lock went with the first process: the same command runs now
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(fit_argv(root, cache, "--trainer.callbacks+=slow_steps.SlowSteps")) == 0
