import math

import pytest
import torch

from synsample.devices import IdealCoin, QuantizedCoin, coin_for_precision
from synsample.errors import ConfigError


def test_ideal_coin_frequency_matches_probability_within_standard_errors():
    coin = IdealCoin()
    p = torch.linspace(0, 1, 21)
    n = 20000
    draws = coin.draw(p, torch.Generator().manual_seed(1), (n,))
    freq = draws.double().mean(0)
    se = torch.sqrt(p.double() * (1 - p.double()) / n)
    assert torch.all((freq - p.double()).abs() <= 5 * se + 1e-12)
    assert coin.draws == n * 21 and coin.random_bits == n * 21 * 24


@pytest.mark.parametrize("bits", [1, 4, 8])
def test_quantized_levels_are_exactly_k_over_two_to_the_b(bits):
    coin = QuantizedCoin(bits)
    p = torch.rand(10000, generator=torch.Generator().manual_seed(0))
    q = coin.probability(torch.cat([p, torch.tensor([0.0, 1.0])]))
    k = q.double() * 2**bits
    assert torch.equal(k, torch.round(k))
    assert k.min() == 0 and k.max() == 2**bits - 1  # |w| = 1 maps to the top level, not "always"
    top = 1 - 2.0**-bits
    inside = p <= top
    assert torch.all((q[:-2][inside].double() - p[inside].double()).abs()
                     <= 2.0 ** -(bits + 1) + 1e-7)
    assert torch.all(q[:-2][~inside] == top)  # above the top level: clipped to it
    assert coin.levels.numel() == 2**bits


def test_quantized_rounding_documented_cases():
    coin = QuantizedCoin(4)
    got = coin.probability(torch.tensor([0.0, 1 / 33, 1 / 31, 0.5, 15 / 16, 1.0]))
    assert got.tolist() == [0.0, 0.0, 1 / 16, 0.5, 15 / 16, 15 / 16]


def test_quantized_draw_equals_integer_comparator_bit_for_bit():
    bits = 4
    coin = QuantizedCoin(bits)
    m = torch.arange(2**bits).float()
    prob = coin.probability(m / 2**bits)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    draws = coin.draw(prob, g1, (500,))
    u = torch.rand((500, 2**bits), generator=g2)
    r = torch.floor(u * 2**bits)  # a b-bit uniform integer
    assert torch.equal(draws, r < m)
    assert coin.random_bits == 500 * 2**bits * bits


def test_quantized_draw_frequency():
    coin = QuantizedCoin(8)
    prob = coin.probability(torch.tensor([0.1234, 0.5, 0.9]))
    n = 40000
    freq = coin.draw(prob, torch.Generator().manual_seed(3), (n,)).double().mean(0)
    se = torch.sqrt(prob.double() * (1 - prob.double()) / n)
    assert torch.all((freq - prob.double()).abs() <= 5 * se)


@pytest.mark.parametrize("bits", [0, -1, 25, 2.5, "8", True])
def test_bad_precision_is_a_clear_error(bits):
    with pytest.raises(ConfigError, match="1 to 24 bits"):
        QuantizedCoin(bits)


def test_coin_for_precision_names():
    assert isinstance(coin_for_precision("full"), IdealCoin)
    assert coin_for_precision("8").bits == 8
    assert coin_for_precision(4).bits == 4
    with pytest.raises(ConfigError, match="unknown precision"):
        coin_for_precision("half")
    with pytest.raises(ConfigError):
        coin_for_precision("0")
    assert math.isclose(IdealCoin().probability(torch.tensor([0.3])).item(), 0.3, rel_tol=1e-6)
