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


def classification_reference(generate, items, classifier, erased_class, batch_size=32):
    """ESR/PSR of the videos ``generate(prompts, seeds)`` makes for ``items`` (``EvalVideo`` items), scored by the
    torchmetrics metrics directly, batch by batch: the reference the drivers' numbers are checked against."""
    from unlearn.evaluation.metrics import ErasureSuccessRate, PreservationSuccessRate
    from unlearn.evaluation.scoring import classification_summary

    esr = ErasureSuccessRate(erased_class, classifier=classifier, top_k=(1, 5))
    psr = PreservationSuccessRate(erased_class=erased_class, classifier=classifier, top_k=(1, 5))
    items = list(items)
    for i in range(0, len(items), batch_size):
        chunk = items[i : i + batch_size]
        videos = generate([it.prompt for it in chunk], [it.seed for it in chunk])
        esr.update(videos, [it.label for it in chunk])
        psr.update(videos, [it.label for it in chunk])
    return classification_summary(esr, psr)
