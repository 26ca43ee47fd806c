"""The objective's pieces against their formulas."""

import pytest
import torch

from unlearn.backbones.attention import concept_attention_probs, dense_concept_attention_probs
from unlearn.methods.t2vunlearning.losses import (
    concept_mask,
    localization_loss,
    negatively_guided_target,
    token_mean_squares,
)


def test_negatively_guided_target_is_the_formula():
    g = torch.Generator().manual_seed(0)
    u, c = torch.randn(3, 4, 5, generator=g), torch.randn(3, 4, 5, generator=g)
    for eta in (0.0, 1.0, 7.0):
        expected = u - eta * (c - u)
        assert torch.equal(negatively_guided_target(u, c, eta), expected)
    # η = 1 reflects the conditional prediction about the unconditional one
    assert torch.allclose(negatively_guided_target(u, c, 1.0), 2 * u - c)
    with pytest.raises(ValueError, match="shape"):
        negatively_guided_target(u, c[:2], 1.0)


def loc(outputs, masks):
    return localization_loss([token_mean_squares(o) for o in outputs], masks)


def test_localization_loss_zero_inside_full_mask_and_grows_outside():
    o = torch.randn(2, 12, 8)
    full = torch.ones(2, 12)
    assert loc([o], [full]).item() == 0.0
    mask = torch.zeros(2, 12)
    mask[:, :6] = 1
    small = loc([o * 0.1], [mask])
    large = loc([o], [mask])
    assert large > small > 0
    # normalised by masked-out entries: mean of squares outside the mask
    expected = (o[:, 6:] ** 2).mean()
    assert torch.allclose(large, expected, rtol=1e-6)
    # outputs inside the mask do not count
    o2 = o.clone()
    o2[:, :6] *= 100
    assert torch.allclose(loc([o2], [mask]), large)


def test_localization_loss_from_token_squares_equals_the_formula_and_its_gradient():
    """(1/L) Σ_l mean_b ‖o^l_b ⊙ (1 − M^l_b)‖² / #masked-out entries of video b, from per-token squares: value
    and gradient of the direct formula on the outputs (also for a soft mask), and no float32 copy of a bf16
    output is saved."""
    g = torch.Generator().manual_seed(3)
    outs = [
        torch.randn(2, 10, 6, generator=g, requires_grad=True),
        torch.randn(2, 10, 4, generator=g, requires_grad=True),
    ]
    masks = [(torch.rand(2, 10, generator=g) > 0.5).float(), torch.rand(2, 2, 5, generator=g)]
    direct = (
        sum(
            torch.stack(
                [
                    ((o[b] * (1 - m[b].reshape(-1))[:, None]) ** 2).sum() / ((1 - m[b]).sum() * o.shape[-1])
                    for b in range(2)
                ]
            ).mean()
            for o, m in zip(outs, masks)
        )
        / 2
    )
    ref_grads = torch.autograd.grad(direct, outs)
    got = loc(outs, masks)
    torch.testing.assert_close(got, direct, rtol=1e-6, atol=1e-7)
    for a, b in zip(torch.autograd.grad(got, outs), ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    saved = []
    o16 = torch.randn(2, 10, 6, generator=g).bfloat16().requires_grad_()
    with (
        torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t),
        torch.autocast("cpu", dtype=torch.bfloat16),
    ):
        sq = token_mean_squares(o16 * 2)
    assert sq.dtype == torch.float32 and sq.shape == (2, 10)
    assert not [t for t in saved if t.dtype == torch.float32 and t.shape == o16.shape]


def test_localization_loss_is_the_papers_squared_norm_over_the_unlearning_divisor():
    """Eq. (7): (1/L) Σ_l ‖o^l ⊙ (1 − M)‖², divided (per sample) by the prediction's element count, the
    divisor that makes L_unlearn a mean: α then weighs the two as in the paper."""
    g = torch.Generator().manual_seed(1)
    outs = [torch.randn(2, 12, 8, generator=g), torch.randn(2, 12, 4, generator=g)]
    masks = [torch.zeros(2, 12), torch.zeros(2, 3, 4)]
    masks[0][:, :6] = 1
    masks[1][0, 0] = 1
    numel = 50  # elements of one sample's prediction
    sq = [((o * (1 - m.reshape(2, -1))[..., None]) ** 2).sum(dim=(1, 2)) for o, m in zip(outs, masks)]  # per sample
    expected = sum(s.mean() / numel for s in sq) / 2
    squares = [token_mean_squares(o) for o in outs]
    got = localization_loss(squares, masks, per_sample_elements=numel, channels=[8, 4])
    assert torch.allclose(got, expected, rtol=1e-6)
    # against L_unlearn = mean of squares: with o − target of the same squared norm, the two terms are equal
    pred = torch.zeros(2, numel)
    target = torch.cat([torch.sqrt(sq[0] / numel)[:, None].expand(2, numel)], 1)
    assert torch.allclose(
        ((pred - target) ** 2).mean(), localization_loss(squares[:1], masks[:1], per_sample_elements=numel, channels=8)
    )
    with pytest.raises(ValueError, match="per_sample_elements"):
        localization_loss(squares, masks, per_sample_elements=0, channels=8)
    with pytest.raises(ValueError, match="channels"):
        localization_loss(squares, masks, per_sample_elements=numel)


def test_concept_mask_normalises_per_frame():
    m = torch.tensor([[[0.0, 1.0, 2.0, 4.0], [10.0, 10.0, 10.0, 30.0]]])
    soft, mask = concept_mask(m, 0.5)
    assert torch.allclose(soft[0, 0], torch.tensor([0.0, 0.25, 0.5, 1.0]))
    assert torch.equal(mask[0, 0], torch.tensor([0.0, 0.0, 1.0, 1.0]))
    assert torch.equal(mask[0, 1], torch.tensor([0.0, 0.0, 0.0, 1.0]))


@pytest.mark.parametrize("chunk", [1, 3, 7, None])
def test_chunked_concept_attention_equals_dense(chunk):
    g = torch.Generator().manual_seed(1)
    b, h, nq, nk, d = 2, 3, 11, 16, 8
    q, k = torch.randn(b, h, nq, d, generator=g), torch.randn(b, h, nk, d, generator=g)
    concept = torch.zeros(b, nk, dtype=torch.bool)
    concept[0, [1, 2]] = True
    concept[1, [5]] = True
    got = concept_attention_probs(q, k, concept, chunk_size=chunk)
    ref = dense_concept_attention_probs(q, k, concept)
    assert got.shape == (b, nq)
    assert torch.allclose(got, ref, atol=1e-5)
    # all keys marked → probabilities sum to one
    ones = concept_attention_probs(q, k, torch.ones(b, nk, dtype=torch.bool), chunk_size=chunk)
    assert torch.allclose(ones, torch.ones(b, nq), atol=1e-5)


def _inputs(b=2, h=3, nq=11, nk=16, d=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, n, d, generator=g) for n in (nq, nk, nk))
    concept = torch.zeros(b, nk, dtype=torch.bool)
    concept[0, [1, 2]] = True
    concept[1, [5]] = True
    return q, k, v, concept


@pytest.mark.parametrize("route", ["fused", "chunked fallback"])
@pytest.mark.parametrize("masked", [False, True])
def test_attention_with_concept_map_is_the_layer_attention_and_the_dense_map(route, masked, monkeypatch):
    """One kernel call gives the attention output (bitwise what scaled_dot_product_attention gives, gradients
    included) and, from its log-sum-exp and the concept columns, the map of the dense softmax reference."""
    import torch.nn.functional as F

    import unlearn.backbones.attention as am

    if route != "fused":
        monkeypatch.setattr(am, "_fused_kernel", lambda *a: None)
    q, k, v, concept = _inputs()
    q.requires_grad_()
    mask = None
    if masked:  # key padding as HunyuanVideo passes it: [B, 1, 1, Nk], False at padded text keys
        mask = torch.ones(2, 1, 1, 16, dtype=torch.bool)
        mask[1, ..., 12:] = False
    rows = slice(3, None)
    out, probs = am.attention_with_concept_map(q, k, v, concept, query_rows=rows, attn_mask=mask)
    ref_out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.equal(out, ref_out)
    assert out.requires_grad and not probs.requires_grad and probs.dtype == torch.float32
    logits = q.detach().double() @ k.double().transpose(-1, -2) / 8**0.5
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    ref = (torch.softmax(logits, -1) * concept[:, None, None, :].double()).sum(-1).mean(1)[:, rows]
    assert probs.shape == (2, 8)
    torch.testing.assert_close(probs.double(), ref, atol=1e-6, rtol=0)
    # a 2-D key mask [B, Nk] (diffusers' dispatcher accepts it) means the same
    if mask is not None:
        _, probs2 = am.attention_with_concept_map(q, k, v, concept, query_rows=rows, attn_mask=mask[:, 0, 0])
        torch.testing.assert_close(probs2, probs)
    (out.sum()).backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()


def test_concept_map_is_float32_under_bf16_autocast():
    """Under bf16-mixed autocast the output runs in bf16 as scaled_dot_product_attention would, but the map's
    logits stay float32: both routes agree with the float32 map of the bf16-rounded q and k."""
    import torch.nn.functional as F

    from unlearn.backbones.attention import attention_with_concept_map

    q, k, v, concept = _inputs(nq=40, nk=30, d=16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, probs = attention_with_concept_map(q, k, v, concept)
        chunked = concept_attention_probs(q.bfloat16(), k.bfloat16(), concept)
        ref_out = F.scaled_dot_product_attention(q, k, v)
    assert out.dtype == ref_out.dtype == torch.bfloat16 and torch.equal(out, ref_out)
    ref = dense_concept_attention_probs(q.bfloat16().float(), k.bfloat16().float(), concept)
    torch.testing.assert_close(chunked, ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(probs, ref, atol=1e-5, rtol=0)


def test_localization_loss_keeps_float64_runs_in_float64():
    """A float64 run (the DDP equality test trains the toy in 64-true) gets float64 squares and loss."""
    g = torch.Generator().manual_seed(0)
    o = torch.randn(2, 12, 8, generator=g, dtype=torch.float64)
    sq = token_mean_squares(o)
    assert sq.dtype == torch.float64
    torch.testing.assert_close(sq, (o**2).mean(-1))
    mask = torch.zeros(2, 12, dtype=torch.float64)
    mask[:, :3] = 1
    loss = localization_loss([sq], [mask], per_sample_elements=96, channels=8)
    assert loss.dtype == torch.float64
    torch.testing.assert_close(loss, ((o[:, 3:] ** 2).sum(dim=(1, 2)) / 96).mean())
