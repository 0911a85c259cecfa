"""SpinBayes' arbiter (paper 004, eq. 5 and section 3.5.1): the SOT switching curve and the
uniformity of the crossbar choice."""

import math

import pytest
import torch

from synsample.devices import Arbiter, IdealCoin, SOTSwitch
from synsample.errors import ConfigError


def test_switching_curve_is_monotone_and_half_at_the_calibrated_current():
    sot = SOTSwitch()
    currents = torch.linspace(0, math.pi / 4 * sot.ic0_ua, 500)
    p = sot.switching_probability(currents)
    assert torch.all(p[1:] >= p[:-1]) and p[0] < 1e-12 and p[-1] > 1 - 1e-9
    assert abs(float(sot.switching_probability(230.0)) - 0.5) < 1e-12
    # Fig. 4: near 0 well below, near 1 from 300 uA
    assert float(sot.switching_probability(150.0)) < 1e-3
    assert float(sot.switching_probability(300.0)) > 0.999
    # the driver inverts the curve
    for q in (0.1, 0.5, 0.9):
        assert abs(float(sot.switching_probability(sot.current_for(q))) - q) < 1e-9
    assert abs(float(SOTSwitch(half_at_ua=180.0).current_for(0.5)) - 180.0) < 1e-9


def _chi_square(counts: torch.Tensor) -> float:
    expected = counts.sum() / len(counts)
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("crossbars", [4, 6, 8])
def test_choices_are_uniform_chi_square(crossbars):
    """Chi-square at 60,000 draws against the 99.9% quantile of its distribution (df = N - 1:
    16.27, 20.52, 24.32 for 3, 5, 7 degrees of freedom)."""
    limit = {4: 16.27, 6: 20.52, 8: 24.32}[crossbars]
    arbiter = Arbiter(crossbars)
    picks = arbiter.choose(60000, torch.Generator().manual_seed(crossbars))
    assert _chi_square(torch.bincount(picks[:, 0], minlength=crossbars).double()) < limit


def test_bits_per_choice_are_counted():
    arbiter = Arbiter(8)
    arbiter.choose(1000, torch.Generator().manual_seed(0))
    assert arbiter.coin.draws == 3 * 1000 and arbiter.coin.random_bits == 3000
    # 6 crossbars: 3 bits, drawn again with probability 2/8; 4 bits per choice on average
    six = Arbiter(6)
    six.choose(20000, torch.Generator().manual_seed(1))
    assert abs(six.coin.draws / 20000 - 4.0) < 0.05


def test_n_way_choices_are_distinct_and_uniform():
    arbiter = Arbiter.ideal(5, ways=3)
    picks = arbiter.choose(30000, torch.Generator().manual_seed(2))
    assert picks.shape == (30000, 3)
    assert all(len(set(row)) == 3 for row in picks[:200].tolist())
    counts = torch.bincount(picks.flatten(), minlength=5).double()
    assert _chi_square(counts) < 18.47  # 99.9% quantile, df = 4
    assert isinstance(arbiter.coin, IdealCoin)


def test_a_miscalibrated_driver_biases_the_choice():
    biased = Arbiter(4, SOTSwitch(current_error_ua=5.0))
    p = float(biased.coin.probability(torch.tensor(0.5)))
    assert p > 0.6
    picks = biased.choose(20000, torch.Generator().manual_seed(3))[:, 0]
    share_of_3 = float((picks == 3).double().mean())
    assert abs(share_of_3 - p * p) < 0.02  # both bits 1


def test_bad_arbiters_are_clear_errors():
    with pytest.raises(ConfigError, match="ways"):
        Arbiter(2, ways=3)
    with pytest.raises(ConfigError, match="positive"):
        SOTSwitch(delta=0)
