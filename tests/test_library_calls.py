"""Hand-written pieces replaced by library calls give the same numbers."""

import torch
from lightning.pytorch.utilities import grad_norm

from unlearn.methods.t2vunlearning import AdapterSwitch


def test_lightning_grad_norm_equals_the_hand_written_total():
    switch = AdapterSwitch([24, 24, 40], 8)
    g = torch.Generator().manual_seed(0)
    for p in switch.parameters():
        p.grad = torch.randn(p.shape, generator=g) * 1e-3
    switch.adapters[1].up.bias.grad = None  # a parameter without a gradient is skipped by both
    hand = torch.stack([p.grad.detach().float().norm() for p in switch.parameters() if p.grad is not None]).norm()
    library = grad_norm(switch, 2)["grad_2.0_norm_total"]
    assert torch.equal(library, hand), (library.item(), hand.item())
