"""Correlated successive bits and drift: the statistics a TemporalCoin claims."""

import math

import pytest
import torch

from synsample import engine, methods, models
from synsample.devices import QuantizedCoin, TemporalCoin
from synsample.errors import ConfigError
from synsample.nn.sampling import SamplingContext
from tests.helpers import assert_votes_do_not_depend_on_tiling

DEVICES = 20000


def _draws(coin, p, first, n, seed=0, tag="layer"):
    ctx = SamplingContext.for_samples(seed, first, n, 1)
    return coin.draw_passes(torch.full((DEVICES,), p), ctx, tag).double()


def _corr(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / math.sqrt(float((a * a).sum() * (b * b).sum())))


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.8])
def test_bits_keep_their_rate_and_have_the_claimed_autocorrelation(rho):
    p = 0.3
    bits = _draws(TemporalCoin(autocorrelation=rho, seed=1), p, 0, 8)
    se_mean = math.sqrt(p * (1 - p) / DEVICES)
    assert ((bits.mean(1) - p).abs() < 5 * se_mean).all()  # the rate, at every pass
    # a Markov chain: corr(b_t, b_t+k) = rho^k; the estimator's standard error is about
    # (1 - r^2) / sqrt(N)
    for lag in (1, 2, 3):
        want = rho ** lag
        assert abs(_corr(bits[4], bits[4 + lag]) - want) < 5 * (1 - want ** 2) / math.sqrt(
            DEVICES) + 1e-9


def test_the_probability_drifts_per_pass_and_saturates():
    coin = TemporalCoin(drift=0.001, seed=2)
    late = _draws(coin, 0.2, 500, 1)  # p = 0.2 + 0.5
    assert abs(late.mean() - 0.7) < 5 * math.sqrt(0.7 * 0.3 / DEVICES)
    assert _draws(coin, 0.2, 0, 1).mean() < 0.25
    assert _draws(TemporalCoin(drift=0.01, seed=2), 0.5, 100, 1).min() == 1.0  # clipped at 1
    assert _draws(TemporalCoin(drift=-0.01, seed=2), 0.5, 100, 1).max() == 0.0


def test_bits_do_not_depend_on_how_passes_are_chunked_and_are_seeded():
    coin = TemporalCoin(QuantizedCoin(4), autocorrelation=0.9, drift=1e-3, seed=3)
    whole = _draws(coin, 0.4, 0, 10)
    parts = torch.cat([_draws(coin, 0.4, 0, 4), _draws(coin, 0.4, 4, 6)])
    assert torch.equal(whole, parts)
    assert not torch.equal(whole, _draws(coin, 0.4, 0, 10, tag="other layer"))
    assert not torch.equal(whole, _draws(coin, 0.4, 0, 10, seed=1))
    assert not torch.equal(whole, _draws(TemporalCoin(QuantizedCoin(4), 0.9, 1e-3, seed=4),
                                         0.4, 0, 10))


def test_counts_one_draw_per_device_and_pass_at_the_base_precision():
    coin = TemporalCoin(QuantizedCoin(8), autocorrelation=0.5)
    _draws(coin, 0.5, 0, 3)
    assert coin.draws == 3 * DEVICES and coin.random_bits == 3 * DEVICES * 8
    assert coin.technology == "cmos" and coin.probability(torch.tensor([0.3])).item() == \
        QuantizedCoin(8).probability(torch.tensor([0.3])).item()
    with pytest.raises(ConfigError, match="autocorrelation"):
        TemporalCoin(autocorrelation=1.0)


def test_scann_samples_with_temporal_coins_in_shared_mode_only():
    torch.manual_seed(0)
    net = models.build("mlp", seed=0)
    x = torch.randint(0, 256, (24, 1, 28, 28), dtype=torch.uint8)
    sto = methods.scann.convert(net, TemporalCoin(autocorrelation=0.6, drift=1e-3, seed=5))
    assert_votes_do_not_depend_on_tiling(sto, x, 12, "shared", sample_chunk=5, batch_size=7)
    with pytest.raises(ConfigError, match="shared mode"):
        engine.predict(sto, x, samples=4, mode="independent")
    # correlated passes repeat one another: the votes spread less than with fresh bits
    entropy = {rho: engine.predict(methods.scann.convert(net, TemporalCoin(autocorrelation=rho)),
                                   x, samples=40, seed=0).vote_entropy().mean().item()
               for rho in (0.0, 0.95)}
    assert entropy[0.95] < entropy[0.0]
