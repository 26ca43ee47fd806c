import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    # pseudo-data cache and wandb runs never leak between tests or into the user's home
    monkeypatch.setenv("T2V_UNLEARN_CACHE", str(tmp_path / "pseudo_cache"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
