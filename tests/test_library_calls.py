"""Hand-written pieces replaced by library calls give the same numbers."""

import torch
from lightning.pytorch.utilities import grad_norm

from unlearn.methods.t2vunlearning import AdapterController


def test_lightning_grad_norm_equals_the_hand_written_total():
    ctl = AdapterController([24, 24, 40], 8)
    g = torch.Generator().manual_seed(0)
    for p in ctl.parameters():
        p.grad = torch.randn(p.shape, generator=g) * 1e-3
    ctl.adapters[1].up.bias.grad = None  # a parameter without a gradient is skipped by both
    hand = torch.stack([p.grad.detach().float().norm() for p in ctl.parameters() if p.grad is not None]).norm()
    library = grad_norm(ctl, 2)["grad_2.0_norm_total"]
    assert torch.equal(library, hand), (library.item(), hand.item())
