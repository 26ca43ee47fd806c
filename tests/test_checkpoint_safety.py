"""Nothing executed from a download: `--ckpt_path` never unpickles a checkpoint (issue #15, point 5).

A checkpoint whose pickle runs code when loaded (the classic `__reduce__` payload) is served from a real HTTP
server on 127.0.0.1. A control shows the payload is live (plain `torch.load(weights_only=False)` runs it); the
`unlearn` command, the checkpoint reader and Lightning's trainer with the project's CheckpointIO do not.
"""

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from unlearn.callbacks.checkpoint import AdapterCheckpoint, SafeCheckpointIO
from unlearn.io import UnsafeCheckpointError, load_checkpoint_file

ROOT = Path(__file__).resolve().parent.parent


class Payload:
    """Pickled, it becomes a call of ``exec`` that writes the marker file when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('payload ran')",))


@pytest.fixture
def served_payload(tmp_path):
    marker = tmp_path / "PWNED"
    payload = tmp_path / "site" / "model.ckpt"
    payload.parent.mkdir()
    torch.save({"state_dict": {}, "hyper_parameters": {}, "x": Payload(marker)}, payload)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(payload.parent), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {
            "url": f"http://127.0.0.1:{server.server_address[1]}/model.ckpt",
            "marker": marker,
            "file": payload,
            "requests": requests,
        }
    finally:
        server.shutdown()
        server.server_close()


def _run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "unlearn.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_payload_is_live_control(served_payload, tmp_path):
    """The file really runs code when unpickled the unsafe way (so its absence below means something)."""
    code = f"import torch; torch.load({str(served_payload['file'])!r}, weights_only=False)"
    subprocess.run(
        [sys.executable, "-c", code], check=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path
    )
    assert served_payload["marker"].read_text() == "payload ran"


def test_fit_with_a_url_checkpoint_is_refused_and_nothing_runs(served_payload, tmp_path):
    done = _run_cli(
        [
            "fit",
            "--config",
            str(ROOT / "configs" / "tiny_cogvideox.yaml"),
            "--trainer.default_root_dir",
            str(tmp_path / "run"),
            "--ckpt_path",
            served_payload["url"],
        ],
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "is a URL" in done.stderr and "local path" in done.stderr, done.stderr[-2000:]
    assert not served_payload["marker"].exists()
    assert served_payload["requests"] == []  # refused before anything was downloaded
    assert not (tmp_path / "run").exists()  # and before the model was built


def test_fit_with_a_local_payload_checkpoint_is_refused_and_nothing_runs(served_payload, tmp_path, capsys):
    from unlearn.cli import main

    assert (
        main(
            [
                "fit",
                "--config",
                str(ROOT / "configs" / "tiny_cogvideox.yaml"),
                "--trainer.default_root_dir",
                str(tmp_path / "run"),
                "--ckpt_path",
                str(served_payload["file"]),
            ]
        )
        == 2
    )
    assert "would run code when loaded" in capsys.readouterr().err.splitlines()[-1]
    assert not served_payload["marker"].exists()


def test_reader_and_trainer_refuse_urls_and_pickled_code(served_payload, tmp_path):
    for reader in (load_checkpoint_file, SafeCheckpointIO().load_checkpoint):
        with pytest.raises(UnsafeCheckpointError, match="is a URL"):
            reader(served_payload["url"])
        with pytest.raises(UnsafeCheckpointError, match="would run code"):
            reader(served_payload["file"])
    # weights_only=False asked for explicitly changes nothing
    with pytest.raises(UnsafeCheckpointError):
        SafeCheckpointIO().load_checkpoint(served_payload["file"], weights_only=False)
    for url in ("https://example.org/x.ckpt", "s3://bucket/x.ckpt", "HF://a/b"):
        with pytest.raises(UnsafeCheckpointError):
            load_checkpoint_file(url)

    # a trainer built in Python with the project's callbacks gets the safe reader before it restores anything
    from unlearn.methods.t2vunlearning import ConceptDataModule, T2VUnlearning

    model = T2VUnlearning(backbone="cogvideox-2b", tiny=True, torch_dtype="float32", adapter_dim=4, alpha=0.0)
    data = ConceptDataModule(
        concept="nudity",
        prompts=["a naked person"],
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
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        callbacks=[AdapterCheckpoint(dirpath=str(tmp_path / "adapters"))],
    )
    with pytest.raises(UnsafeCheckpointError, match="is a URL"):
        trainer.fit(model, datamodule=data, ckpt_path=served_payload["url"])
    assert isinstance(trainer.strategy.checkpoint_io, SafeCheckpointIO)
    assert not served_payload["marker"].exists() and served_payload["requests"] == []
