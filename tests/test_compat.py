"""The private framework calls behind unlearn/compat.py exist and compute what their public twins do (#22)."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

import unlearn.compat as compat


def test_every_private_api_is_present_with_the_assumed_signature():
    compat.check()  # raises CompatError naming what changed


def test_check_names_a_missing_api(monkeypatch):
    monkeypatch.delattr(torch, "_fused_sdp_choice")
    with pytest.raises(compat.CompatError, match=r"torch\._fused_sdp_choice.*Fix: adapt unlearn/compat.py"):
        compat.check()


def test_cpu_flash_kernel_matches_scaled_dot_product_attention():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 5, 8, generator=g) for _ in range(3))
    assert compat.fused_sdp_choice(q, k, v, None) in (0, 1, 2, 3)
    out, lse = compat.flash_attention_cpu(q, k, v, None, None)[:2]
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))
    logits = q @ k.transpose(-1, -2) / 8**0.5
    torch.testing.assert_close(lse.reshape(1, 2, 5), torch.logsumexp(logits, -1))


def test_rng_states_round_trip():
    states = compat.collect_rng_states(include_cuda=False)
    a = (torch.rand(3), random.random())
    compat.set_rng_states(states)
    assert torch.equal(torch.rand(3), a[0]) and random.random() == a[1]


def test_tensor_version_counts_in_place_writes():
    t = torch.zeros(2)
    before = compat.tensor_version(t)
    t.add_(1)
    assert compat.tensor_version(t) == before + 1
