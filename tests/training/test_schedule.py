import math

import pytest
import torch

from chroma_studio.config.settings import SIGMA_DISTRIBUTIONS
from chroma_studio.training.schedule import (
    chroma_cdf,
    chroma_inverse_cdf,
    lr_lambda,
    sample_sigmas,
    shift_sigmas,
    simpletuner_tail_map,
)

DRAWS = 100_000


def normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1 + torch.erf(x / math.sqrt(2)))


def logit(x: torch.Tensor) -> torch.Tensor:
    return torch.log(x) - torch.log1p(-x)


def logit_normal_cdf(s: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    return normal_cdf(logit(s.clamp(1e-12, 1 - 1e-12)) / scale)


def simpletuner_cdf(s: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """The tail map sends x < 0.5 to x^2 and x >= 0.5 to 1 - (1 - x)^2: invert each branch."""
    low = logit_normal_cdf(s.clamp(max=0.25).sqrt(), scale)
    high = logit_normal_cdf(1 - (1 - s.clamp(min=0.75)).sqrt(), scale)
    return torch.where(s < 0.25, low, torch.where(s < 0.75, torch.full_like(s, 0.5), high))


ANALYTIC = {
    "chroma": chroma_cdf,
    "uniform": lambda s: s.double(),
    "logit_normal": logit_normal_cdf,
    "simpletuner": simpletuner_cdf,
}


def ks_distance(draws: torch.Tensor, cdf) -> float:
    """The Kolmogorov-Smirnov distance between the draws' empirical CDF and ``cdf``."""
    ordered = draws.double().sort().values
    expected = cdf(ordered).double()
    n = len(ordered)
    above = torch.arange(1, n + 1, dtype=torch.float64) / n - expected
    below = expected - torch.arange(0, n, dtype=torch.float64) / n
    return max(above.max().item(), below.max().item())


def mass(draws: torch.Tensor) -> dict[str, float]:
    return {
        "below 0.1": (draws < 0.1).double().mean().item(),
        "0.25-0.75": ((draws > 0.25) & (draws < 0.75)).double().mean().item(),
        "above 0.9": (draws > 0.9).double().mean().item(),
    }


def draw(distribution: str, **kwargs) -> torch.Tensor:
    return sample_sigmas(DRAWS, torch.Generator().manual_seed(1234), distribution=distribution, **kwargs)


@pytest.mark.parametrize("distribution", SIGMA_DISTRIBUTIONS)
def test_each_distribution_follows_its_analytic_cdf(distribution):
    draws = draw(distribution)
    assert draws.dtype == torch.float32 and draws.min() >= 0 and draws.max() <= 1
    assert ks_distance(draws, ANALYTIC[distribution]) < 0.01


def test_the_logit_normal_scale_widens_the_logit_normal_choices():
    for distribution, cdf in (("logit_normal", logit_normal_cdf), ("simpletuner", simpletuner_cdf)):
        draws = draw(distribution, sigmoid_scale=2.0)
        assert ks_distance(draws, lambda s, cdf=cdf: cdf(s, 2.0)) < 0.01
        assert ks_distance(draws, cdf) > 0.05


def test_the_default_trains_mostly_in_the_middle_of_the_schedule():
    fractions = mass(draw("chroma"))
    assert 0.60 <= fractions["0.25-0.75"] <= 0.75
    assert 0.02 < fractions["below 0.1"] < 0.045 and 0.02 < fractions["above 0.9"] < 0.045


def test_only_the_simpletuner_choice_skips_the_middle():
    assert mass(draw("simpletuner"))["0.25-0.75"] == 0.0
    assert mass(draw("uniform"))["0.25-0.75"] == pytest.approx(0.5, abs=0.01)  # no map on uniform draws
    assert mass(draw("logit_normal"))["0.25-0.75"] > 0.5


def test_the_inverse_cdf_is_exact():
    p = torch.linspace(0, 1, 10_001, dtype=torch.float64)
    sigma = chroma_inverse_cdf(p)
    assert sigma[0] == 0 and sigma[-1] == 1 and (sigma.diff() > 0).all()
    torch.testing.assert_close(chroma_cdf(sigma), p, rtol=0, atol=1e-12)


def test_the_shift_applies_to_every_choice_after_the_draw_and_before_the_map():
    for distribution in SIGMA_DISTRIBUTIONS:
        plain = draw(distribution)
        shifted = draw(distribution, shift=3.0)
        assert shifted.mean() > plain.mean() + 0.05, distribution
    # uniform draws shifted by k have the CDF of the inverse shift
    inverse = lambda s: s.double() / (3.0 - 2.0 * s.double())  # noqa: E731
    assert ks_distance(draw("uniform", shift=3.0), inverse) < 0.01
    # for SimpleTuner the map comes last: the same generator gives map(shift(draw))
    raw = draw("logit_normal", shift=3.0)
    torch.testing.assert_close(draw("simpletuner", shift=3.0), simpletuner_tail_map(raw.double()).float())
    assert torch.equal(shift_sigmas(torch.tensor([0.0, 1.0]), 3.0), torch.tensor([0.0, 1.0]))


def test_each_sample_takes_one_draw_so_a_sample_seeded_alone_matches_a_batch():
    for distribution in SIGMA_DISTRIBUTIONS:
        generator = torch.Generator().manual_seed(5)
        one = sample_sigmas(1, generator, distribution=distribution)
        follow = torch.randn(3, generator=generator)  # what the next draw of the same generator gives
        generator = torch.Generator().manual_seed(5)
        sample_sigmas(1, generator, distribution=distribution)
        assert torch.equal(torch.randn(3, generator=generator), follow)
        assert torch.equal(one, sample_sigmas(1, torch.Generator().manual_seed(5), distribution=distribution))


def test_remap_matches_the_formula():
    s = torch.tensor([0.1, 0.4, 0.5, 0.6, 0.9])
    expected = torch.tensor([0.01, 0.16, 0.75, 0.84, 0.99])
    assert torch.allclose(simpletuner_tail_map(s), expected)


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
