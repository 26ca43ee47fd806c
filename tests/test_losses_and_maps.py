"""The objective's pieces against their formulas."""

import pytest
import torch

from backbones.attention import concept_attention_probs, dense_concept_attention_probs
from unlearn.methods.t2vunlearning.losses import concept_mask, localization_loss, negatively_guided_target


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


def test_localization_loss_zero_inside_full_mask_and_grows_outside():
    o = torch.randn(2, 12, 8)
    full = torch.ones(2, 12)
    assert localization_loss([o], [full]).item() == 0.0
    mask = torch.zeros(2, 12)
    mask[:, :6] = 1
    small = localization_loss([o * 0.1], [mask])
    large = localization_loss([o], [mask])
    assert large > small > 0
    # normalised by masked-out entries: mean of squares outside the mask
    expected = (o[:, 6:] ** 2).mean()
    assert torch.allclose(large, expected, rtol=1e-6)
    # outputs inside the mask do not count
    o2 = o.clone()
    o2[:, :6] *= 100
    assert torch.allclose(localization_loss([o2], [mask]), large)


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
    assert torch.allclose(localization_loss(outs, masks, per_sample_elements=numel), expected, rtol=1e-6)
    # against L_unlearn = mean of squares: with o − target of the same squared norm, the two terms are equal
    pred = torch.zeros(2, numel)
    target = torch.cat([torch.sqrt(sq[0] / numel)[:, None].expand(2, numel)], 1)
    assert torch.allclose(((pred - target) ** 2).mean(), localization_loss(outs[:1], masks[:1], per_sample_elements=numel))
    with pytest.raises(ValueError, match="per_sample_elements"):
        localization_loss(outs, masks, per_sample_elements=0)


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
