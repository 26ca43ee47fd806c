"""Resume: a killed `unlearn fit` continues from its last checkpoint and ends where an uninterrupted run ends.

The runs are real `unlearn fit` runs (LightningCLI, ModelCheckpoint, the safe checkpoint format) on the tiny
CogVideoX; the kill is a real SIGKILL of a real process.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from unlearn.cli import main
from unlearn.io import CHECKPOINT_FORMAT, load_checkpoint_file, save_checkpoint_file

ROOT = Path(__file__).resolve().parent.parent


def write_config(
    folder: Path,
    cache: Path,
    max_epochs: int = 2,
    every_n_train_steps: int = 1,
    save_top_k: int = -1,
    extra_callbacks: list | None = None,
) -> Path:
    """The tiny CogVideoX config (2 prompts x 4 recorded steps, batch 2: 4 steps per epoch) with Lightning's
    ModelCheckpoint switched on, as the README tells a researcher to set it: a file that includes the shipped
    config and overrides keys of it."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "config": str(ROOT / "configs" / "tiny_cogvideox.yaml"),
        "trainer.max_epochs": max_epochs,
        "trainer.enable_checkpointing": True,
        "trainer.enable_progress_bar": False,
        "trainer.logger": False,
        "trainer.default_root_dir": str(folder),
        "trainer.callbacks": [
            {
                "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                "init_args": {
                    "dirpath": str(folder / "checkpoints"),
                    "save_last": True,
                    "save_top_k": save_top_k,
                    "every_n_train_steps": every_n_train_steps,
                },
            },
            {
                "class_path": "unlearn.callbacks.AdapterCheckpoint",
                "init_args": {"dirpath": str(folder / "adapters"), "every_n_epochs": 0},
            },
            *(extra_callbacks or []),
        ],
        "data.init_args.cache_dir": str(cache),
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def adapters(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "adapters" / "adapters.safetensors")


def max_abs_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def test_resume_mid_epoch_and_at_epoch_end_equals_the_uninterrupted_run(tmp_path):
    cache = tmp_path / "cache"
    full = write_config(tmp_path / "full", cache)
    assert main(["fit", "--config", str(full)]) == 0
    reference = adapters(tmp_path / "full")
    ckpts = tmp_path / "full" / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("epoch=*.ckpt"))[:2] == ["epoch=0-step=1.ckpt", "epoch=0-step=2.ckpt"]

    # what a checkpoint holds: adapters (never the frozen backbone), optimizer, step, the sampler position,
    # RNG states; as safetensors + JSON, not a pickle
    mid = ckpts / "epoch=0-step=2.ckpt"
    assert not mid.read_bytes().startswith(b"PK")
    ck = load_checkpoint_file(mid)
    assert ck["global_step"] == 2 and ck["state_dict"]
    assert all(k.startswith("switch.") for k in ck["state_dict"])
    assert ck["optimizer_states"][0]["state"]
    assert ck["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [
        {"epoch": 0, "batches_done": 2, "batch_size": 2, "num_replicas": 1}
    ]
    assert set(ck["rng_states"]) >= {"torch", "python", "numpy"}
    assert mid.stat().st_size < 200_000  # adapter-sized (the tiny backbone alone is ~1 MB of float32)

    for name in ("epoch=0-step=2.ckpt", "epoch=0-step=4.ckpt"):  # mid-epoch, and the checkpoint closing epoch 0
        run = tmp_path / f"resume_{name[:-5]}"
        config = write_config(run, cache)
        assert main(["fit", "--config", str(config), "--ckpt_path", str(ckpts / name)]) == 0
        assert max_abs_diff(adapters(run), reference) <= 1e-6, name
        assert load_checkpoint_file(run / "checkpoints" / "last.ckpt")["global_step"] == 8

    # the test can fail: a run that trains on another order ends elsewhere
    other = write_config(tmp_path / "other", cache)
    assert main(["fit", "--config", str(other), "--data.init_args.seed", "1"]) == 0
    assert max_abs_diff(adapters(tmp_path / "other"), reference) > 1e-4


def test_a_resumed_run_with_another_batch_size_is_refused(tmp_path, capsys):
    cache = tmp_path / "cache"
    first = write_config(tmp_path / "first", cache, max_epochs=1)
    assert main(["fit", "--config", str(first), "--trainer.max_steps", "1"]) == 0
    assert (
        main(
            [
                "fit",
                "--config",
                str(first),
                "--data.init_args.batch_size",
                "1",
                "--ckpt_path",
                str(tmp_path / "first" / "checkpoints" / "last.ckpt"),
            ]
        )
        == 2
    )
    assert re.search("batch_size=2 on 1 process.*batch_size=1", capsys.readouterr().err.splitlines()[-1])


SLOW_STEPS = """
import time

import lightning.pytorch as pl


class SlowSteps(pl.Callback):
    '''Stretches each step so that the parent can kill the run part-way (a full-size step takes minutes).'''

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        time.sleep(0.4)
"""


@pytest.mark.slow
def test_sigkilled_fit_resumed_with_ckpt_path_last_equals_uninterrupted_run(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    reference_cfg = write_config(tmp_path / "reference", cache, max_epochs=3, save_top_k=0)
    assert main(["fit", "--config", str(reference_cfg)]) == 0
    reference = adapters(tmp_path / "reference")

    (tmp_path / "slow_steps.py").write_text(SLOW_STEPS)
    run = tmp_path / "run"
    config = write_config(
        run, cache, max_epochs=3, save_top_k=0, extra_callbacks=[{"class_path": "slow_steps.SlowSteps"}]
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "unlearn.cli", "fit", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    last = run / "checkpoints" / "last.ckpt"
    killed_at = None
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if last.is_file() and load_checkpoint_file(last)["global_step"] >= 3:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-3000:]
    killed_at = load_checkpoint_file(last)["global_step"]
    assert 3 <= killed_at < 12  # killed part-way: 3 epochs x 4 steps
    assert not (run / "adapters").exists()  # the killed run never reached its end

    monkeypatch.syspath_prepend(str(tmp_path))  # the same config, SlowSteps included, resumes in this process
    assert main(["fit", "--config", str(config), "--ckpt_path", "last"]) == 0
    assert load_checkpoint_file(last)["global_step"] == 12
    diff = max_abs_diff(adapters(run), reference)
    print(f"resumed after SIGKILL at step {killed_at}: max |adapters - uninterrupted| = {diff:.3e}")
    assert diff <= 1e-6


KILL_DURING_WRITE = """
import os, signal, sys

import torch

from unlearn.io import save_checkpoint_file  # what SafeCheckpointIO.save_checkpoint calls (lighter to import)

path, where = sys.argv[1], sys.argv[2]
save_checkpoint_file({"global_step": 1, "state_dict": {"w": torch.ones(1000)}}, path)
second = {"global_step": 2, "state_dict": {"w": torch.full((1000,), 2.0)}}
if where == "data":  # killed half-way through writing the tensors
    import safetensors.torch as st

    original = st.save_file

    def half_then_die(tensors, filename, metadata=None):
        original(tensors, filename, metadata=metadata)
        with open(filename, "rb+") as f:
            f.truncate(os.path.getsize(filename) // 2)
        os.kill(os.getpid(), signal.SIGKILL)

    st.save_file = half_then_die
else:  # killed after the temporary file is complete, before it replaces the checkpoint
    os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
save_checkpoint_file(second, path)
"""


@pytest.mark.parametrize("where", ["data", "rename"])
def test_kill_during_a_checkpoint_write_leaves_the_previous_checkpoint_loadable(tmp_path, where):
    path = tmp_path / "last.ckpt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", KILL_DURING_WRITE, str(path), where], env=env, capture_output=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    ck = load_checkpoint_file(path)
    assert ck["global_step"] == 1 and torch.equal(ck["state_dict"]["w"], torch.ones(1000))
    # the interrupted write left only a hidden temporary file beside it
    assert [p.name for p in tmp_path.iterdir() if p.name != "last.ckpt"] == [
        p.name for p in tmp_path.glob(".last.ckpt.*.tmp")
    ]


def test_checkpoint_format_round_trip_and_refusals(tmp_path):
    import numpy as np

    state = {
        "global_step": 3,
        "nested": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(2, 3)}},
        "betas": (0.9, 0.999),
        "list": [1, "a", None, float("inf")],
        "__weird": True,
        "rng": ("MT19937", np.arange(5, dtype=np.uint32), 2, 0, 0.0),
        "path": Path("x/y"),
        "dtype": torch.bfloat16,
        "shared": [torch.ones(2)] * 2,
    }
    save_checkpoint_file(state, tmp_path / "c.ckpt")
    back = load_checkpoint_file(tmp_path / "c.ckpt")
    assert back["nested"][0]["step"].item() == 3.0 and torch.equal(
        back["nested"][0]["exp_avg"], state["nested"][0]["exp_avg"]
    )
    assert back["betas"] == (0.9, 0.999) and back["list"] == [1, "a", None, float("inf")] and back["__weird"] is True
    assert back["rng"][0] == "MT19937" and back["rng"][1].dtype == np.uint32 and list(back["rng"][1]) == list(range(5))
    assert back["path"] == Path("x/y") and back["dtype"] is torch.bfloat16
    from safetensors import safe_open

    with safe_open(str(tmp_path / "c.ckpt"), framework="pt") as f:
        assert f.metadata()["format"] == CHECKPOINT_FORMAT

    class Opaque:
        pass

    with pytest.raises(TypeError, match=r"checkpoint\.obj is a .*Opaque"):
        save_checkpoint_file({"obj": Opaque()}, tmp_path / "bad.ckpt")
    assert not (tmp_path / "bad.ckpt").exists() and not list(tmp_path.glob(".bad.ckpt*"))
    # Lightning's own format (a zip of tensors and plain containers) still loads, weights-only
    torch.save(
        {"global_step": 5, "state_dict": {"switch.w": torch.ones(3)}, "betas": (0.9, 0.99)},
        tmp_path / "lightning.ckpt",
    )
    legacy = load_checkpoint_file(tmp_path / "lightning.ckpt")
    assert legacy["global_step"] == 5 and torch.equal(legacy["state_dict"]["switch.w"], torch.ones(3))
    # a truncated file is named, not a crash deep in a parser
    data = (tmp_path / "c.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) - 10])
    with pytest.raises(ValueError, match="cut.ckpt.*damaged or truncated"):
        load_checkpoint_file(tmp_path / "cut.ckpt")


def test_export_reads_a_resumable_checkpoint(tmp_path):
    config = write_config(tmp_path / "run", tmp_path / "cache", max_epochs=1)
    assert main(["fit", "--config", str(config), "--trainer.max_steps", "2"]) == 0
    assert (
        main(
            [
                "export",
                "--ckpt",
                str(tmp_path / "run" / "checkpoints" / "last.ckpt"),
                "--out",
                str(tmp_path / "exported"),
            ]
        )
        == 0
    )
    exported = load_file(tmp_path / "exported" / "adapters.safetensors")
    assert max_abs_diff(exported, adapters(tmp_path / "run")) == 0.0


def test_sampler_order_is_the_seeded_dataloader_order_split_across_ranks():
    from torch.utils.data import DataLoader

    from unlearn.methods.t2vunlearning.data import ResumableSampler

    data = list(range(20))
    loader = DataLoader(data, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(3))
    one = ResumableSampler(data, num_replicas=1, rank=0, seed=3)
    ranks = [ResumableSampler(data, num_replicas=2, rank=r, seed=3) for r in range(2)]
    for epoch in range(3):
        # one iterator per epoch, consumed as Lightning does: len(loader) batches, never past the end (a plain
        # for-loop would also run the sampler into its end, which draws once more from the generator)
        batches = iter(loader)
        expected = [int(i) for _ in range(len(loader)) for i in next(batches)]
        for s in (one, *ranks):
            s.set_epoch(epoch)
        assert list(one) == expected  # the order earlier versions trained on
        first, second = list(ranks[0]), list(ranks[1])
        for k in range(0, 10, 2):  # global batch 4 = 2 ranks x 2: the same samples as one process's batch
            assert sorted(first[k : k + 2] + second[k : k + 2]) == sorted(expected[2 * k : 2 * k + 4])
    one.resume_at(1, 6)
    assert list(one) == one.epoch_order(1)[6:]
    one.set_epoch(2)
    assert list(one) == one.epoch_order(2)  # only the resumed epoch is shortened
