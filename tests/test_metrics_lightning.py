"""The metrics inside Lightning's validate loop: update per batch, log_dict(compute()) at epoch end, and the
evaluator's weights stay out of the LightningModule's state_dict."""

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from unlearn.evaluation.evaluators import ModuleClassifier
from unlearn.evaluation.metrics import ErasureSuccessRate, PreservationSuccessRate, SubjectConsistency

CLASSES = ("apple", "bird", "car")


class Videos(Dataset):
    def __init__(self):
        generator = torch.Generator().manual_seed(0)
        self.items = [(torch.rand(4, 8, 8, 3, generator=generator), i % 3) for i in range(6)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


class EvalModule(L.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.generator = nn.Linear(1, 1)  # stands in for the model under evaluation
        classifier = ModuleClassifier(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3)), CLASSES, name="toy")
        self.esr = ErasureSuccessRate("apple", classifier=classifier, top_k=(1, 2))
        self.psr = PreservationSuccessRate(erased_class="apple", classifier=classifier, top_k=(1, 2))
        self.consistency = SubjectConsistency(extractor=classifier.model[0])  # Flatten: raw pixels as features
        self.classifier = classifier
        self.logged = {}

    def validation_step(self, batch, batch_idx):
        frames, labels = batch  # [B, F, H, W, 3], [B]
        self.esr.update(frames, labels)
        self.psr.update(frames, labels)
        self.consistency.update(frames)

    def on_validation_epoch_end(self):
        values = {**self.esr.compute(), **{f"psr/{k}": v for k, v in self.psr.compute().items()}}
        values.update(self.consistency.compute())
        self.log_dict({k: v.float() for k, v in values.items()})
        self.logged = {k: v.item() for k, v in values.items()}
        for metric in (self.esr, self.psr, self.consistency):
            metric.reset()


def test_metrics_in_validate_loop_match_standalone():
    module = EvalModule()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.validate(module, DataLoader(Videos(), batch_size=4))

    standalone = ErasureSuccessRate("apple", classifier=module.classifier, top_k=(1, 2))
    for frames, label in Videos():
        standalone.update(frames, label)
    expected = standalone.compute()
    assert module.logged["esr@1"] == pytest.approx(expected["esr@1"].item())
    assert module.logged["frames"] == 8  # two apple videos of 4 frames
    assert trainer.callback_metrics["psr/classes"].item() == 2
    assert "subject_consistency" in trainer.callback_metrics

    # evaluator weights are not part of the LightningModule's checkpoint... except where the user
    # registered the evaluator as a submodule on purpose (self.classifier here)
    keys = module.state_dict().keys()
    assert not any(key.startswith(("esr.", "psr.", "consistency.")) for key in keys)
