import math

import pytest
import torch

from chroma_studio.training.schedule import chroma_tail_remap, lr_lambda, sample_sigmas


def test_logit_normal_sigmas_are_remapped_into_the_tails():
    sigmas = sample_sigmas(20000, torch.Generator().manual_seed(0))
    assert sigmas.min() > 0 and sigmas.max() < 1
    # s -> s^2 below 0.5 and 1 - (1 - s)^2 above leave nothing strictly between 0.25 and 0.75
    assert not ((sigmas > 0.25) & (sigmas < 0.75)).any()
    # logit-normal is symmetric around 0.5, so both tails get about half the samples
    assert abs((sigmas < 0.5).float().mean().item() - 0.5) < 0.02


def test_remap_matches_the_formula():
    s = torch.tensor([0.1, 0.4, 0.5, 0.6, 0.9])
    expected = torch.tensor([0.01, 0.16, 0.75, 0.84, 0.99])
    assert torch.allclose(chroma_tail_remap(s), expected)


def test_same_generator_seed_gives_the_same_sigmas_and_uniform_differs():
    a = sample_sigmas(8, torch.Generator().manual_seed(3))
    b = sample_sigmas(8, torch.Generator().manual_seed(3))
    u = sample_sigmas(8, torch.Generator().manual_seed(3), uniform=True)
    assert torch.equal(a, b)
    assert not torch.equal(a, u)


def test_shift_moves_sigmas_toward_noise():
    plain = sample_sigmas(4000, torch.Generator().manual_seed(1))
    shifted = sample_sigmas(4000, torch.Generator().manual_seed(1), shift=3.0)
    assert shifted.mean() > plain.mean() + 0.05


def test_warmup_then_constant():
    f = lr_lambda("constant", warmup_steps=4, total_steps=100)
    assert [round(f(i), 3) for i in range(5)] == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert f(50) == 1.0


def test_cosine_reaches_zero_at_the_end_and_linear_halfway_is_half():
    cosine = lr_lambda("cosine", warmup_steps=0, total_steps=100)
    linear = lr_lambda("linear", warmup_steps=0, total_steps=100)
    assert cosine(0) == pytest.approx(1.0)
    assert cosine(50) == pytest.approx(0.5)
    assert cosine(100) == pytest.approx(0.0, abs=1e-9)
    assert linear(50) == pytest.approx(0.5)
    assert math.isclose(cosine(25), 0.5 * (1 + math.cos(math.pi / 4)))
