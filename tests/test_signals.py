"""Stopping a run (issue #27, point 4): SIGTERM and SIGINT end `unlearn fit` with a documented exit status (143 /
130) and one line, ``run_status.json`` says "interrupted", and ``--ckpt_path last`` continues the run to the
end an uninterrupted run reaches. A status that cannot be written (the disk full) is said on stderr.

The runs are real `unlearn fit` processes on the tiny CogVideoX, the signals real signals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from unlearn.cli import main
from unlearn.io import load_checkpoint_file

ROOT = Path(__file__).resolve().parent.parent

SLOW_STEPS = """
import time

import lightning.pytorch as pl


class SlowSteps(pl.Callback):
    '''Stretches each step so that the parent can signal the run part-way.'''

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        time.sleep(0.3)
"""


def write_config(folder: Path, cache: Path) -> Path:
    """The shipped tiny config (3 epochs of 4 steps; its last checkpoint every epoch), logger off."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "config": str(ROOT / "configs" / "tiny_cogvideox.yaml"),
        "trainer.max_epochs": 3,
        "trainer.enable_progress_bar": False,
        "trainer.logger": False,
        "trainer.default_root_dir": str(folder),
        "data.init_args.cache_dir": str(cache),
    }
    path = folder.parent / f"{folder.name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def interrupt(tmp_path: Path, signum: int) -> tuple[Path, Path, subprocess.CompletedProcess]:
    (tmp_path / "slow_steps.py").write_text(SLOW_STEPS)
    run = tmp_path / "run"
    config = write_config(run, tmp_path / "cache")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    env.pop("UNLEARN_DEBUG", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "unlearn.cli",
            "fit",
            "--config",
            str(config),
            "--trainer.callbacks+=slow_steps.SlowSteps",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    last = run / "checkpoints" / "last.ckpt"
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None and not last.is_file():
            time.sleep(0.05)
        time.sleep(0.5)  # part-way through the second epoch
        os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return run, config, subprocess.CompletedProcess(proc.args, proc.returncode, "", err)


def check_interrupted(run: Path, done: subprocess.CompletedProcess, name: str, code: int) -> None:
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert done.returncode == code, done.stderr[-3000:]  # before #27: SIGTERM 0, SIGINT 1
    assert lines[-1].startswith(f"error: interrupted by {name}") and "--ckpt_path last" in lines[-1], lines[-1]
    assert "Traceback" not in done.stderr and "Detected KeyboardInterrupt" not in done.stderr
    status = json.loads((run / "run_status.json").read_text())
    assert status["status"] == "interrupted" and status["signal"] == name, status
    assert not (run / "adapters").exists()  # the end-of-fit adapters were never written


def test_sigterm_exits_143_with_one_line_and_status_interrupted(tmp_path):
    run, _, done = interrupt(tmp_path, signal.SIGTERM)
    check_interrupted(run, done, "SIGTERM", 143)


@pytest.mark.slow
def test_sigint_exits_130_and_ckpt_path_last_resumes_exactly(tmp_path, monkeypatch):
    reference_cfg = write_config(tmp_path / "reference", tmp_path / "cache")
    assert main(["fit", "--config", str(reference_cfg)]) == 0
    run, config, done = interrupt(tmp_path, signal.SIGINT)
    check_interrupted(run, done, "SIGINT", 130)
    stopped_at = load_checkpoint_file(run / "checkpoints" / "last.ckpt")["global_step"]
    assert 2 <= stopped_at < 12  # part-way: 3 epochs x 4 steps
    monkeypatch.syspath_prepend(str(tmp_path))  # the same command line, SlowSteps included, resumes in this process
    assert (
        main(["fit", "--config", str(config), "--trainer.callbacks+=slow_steps.SlowSteps", "--ckpt_path", "last"]) == 0
    )
    assert json.loads((run / "run_status.json").read_text())["status"] == "finished"
    a, b = (
        load_file(run / "adapters" / "adapters.safetensors"),
        load_file(tmp_path / "reference" / "adapters" / "adapters.safetensors"),
    )
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6


FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # writes past the limit fail with EFBIG, as on a full disk
from unlearn.callbacks.status import RunStatus
status = RunStatus()
status.run_id, status.folders = "r", [__import__("pathlib").Path(sys.argv[1])]
resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
status._write("finished")
print("ended", file=sys.stderr)
"""


def test_a_status_that_cannot_be_written_is_said_on_stderr(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "could not write" in done.stderr and "run_status.json" in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "run_status.json").exists()
