"""Imperfect coins: each non-ideality's statistics are what it claims, and they reach every
sampling path."""

import math

import pytest
import torch

from synsample import engine, methods, models
from synsample.devices import IdealCoin, NonIdealCoin, QuantizedCoin
from synsample.errors import ConfigError


def _frequency(coin, p, draws, seed=0):
    prob = coin.probability(p)
    g = torch.Generator().manual_seed(seed)
    return coin.draw(prob, g, (draws,)).double().mean(0)


def test_a_bias_shifts_every_device_by_its_amount():
    coin = NonIdealCoin(bias=0.07)
    p = torch.full((4,), 0.3)
    freq = _frequency(coin, p, 40000)
    se = math.sqrt(0.37 * 0.63 / 40000)
    assert torch.all((freq - 0.37).abs() < 4.5 * se)
    assert torch.equal(NonIdealCoin(bias=0.5).probability(torch.tensor([0.8])),
                       torch.tensor([1.0]))


def test_spread_is_a_seeded_per_device_offset_of_the_stated_size():
    coin = NonIdealCoin(spread=0.05, seed=3)
    p = torch.full((20000,), 0.5)
    realised = coin.probability(p).double()
    assert torch.equal(realised.float(), coin.probability(p))  # fixed per device
    offsets = realised - 0.5
    # sample standard deviation of 20,000 normal offsets: within 4.5 SE of 0.05
    assert abs(offsets.std().item() - 0.05) < 4.5 * 0.05 / math.sqrt(2 * 19999)
    assert abs(offsets.mean().item()) < 4.5 * 0.05 / math.sqrt(20000)
    assert not torch.equal(realised, NonIdealCoin(spread=0.05, seed=4).probability(p).double())


def test_stuck_devices_at_their_rates_always_give_the_same_bit():
    coin = NonIdealCoin(QuantizedCoin(8), stuck_at_0=0.1, stuck_at_1=0.05, seed=1)
    p = torch.full((20000,), 0.5)
    realised = coin.probability(p)
    for value, rate in ((0.0, 0.1), (1.0, 0.05)):
        share = (realised == value).double().mean().item()
        assert abs(share - rate) < 4.5 * math.sqrt(rate * (1 - rate) / 20000)
    bits, threshold = coin.counter_thresholds(realised)
    assert bits == 8
    assert torch.all(threshold[realised == 1.0] == 256)  # r < 2^8: always 1
    assert torch.all(threshold[realised == 0.0] == 0)  # never
    working = (realised != 0) & (realised != 1)
    assert torch.all(realised[working] == 0.5)  # an 8-bit level, unchanged


def test_a_perfect_wrapper_changes_nothing_and_imperfections_reach_the_votes():
    net = models.build("mlp", input_shape=(1, 8, 8), num_classes=4, seed=0)
    x = (torch.rand(30, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 255).to(
        torch.uint8)
    for mode in ("shared", "independent"):
        base = engine.predict(methods.scann.convert(net, IdealCoin()), x, samples=8, seed=2,
                              mode=mode)
        same = engine.predict(methods.scann.convert(net, NonIdealCoin()), x, samples=8, seed=2,
                              mode=mode)
        stuck = engine.predict(methods.scann.convert(net, NonIdealCoin(stuck_at_1=0.3)), x,
                               samples=8, seed=2, mode=mode)
        assert torch.equal(base.votes, same.votes)
        assert not torch.equal(base.votes, stuck.votes)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="stuck-at"):
        NonIdealCoin(stuck_at_0=0.7, stuck_at_1=0.5)
    with pytest.raises(ConfigError, match="spread"):
        NonIdealCoin(spread=-1)


def test_every_layer_is_its_own_pool_of_devices():
    """Two layers asking one wrapper get independent devices (their offsets uncorrelated);
    the same layer always gets the same ones."""
    coin = NonIdealCoin(spread=0.1, stuck_at_1=0.1, seed=3)
    p = torch.full((20000,), 0.5)
    a, b = coin.probability(p, "fc1"), coin.probability(p, "fc2")
    assert torch.equal(a, coin.probability(p, "fc1"))
    corr = torch.corrcoef(torch.stack([a, b]).double())[0, 1].item()
    assert abs(corr) < 5 / math.sqrt(20000)
    net = models.build("mlp", input_shape=(1, 8, 8), num_classes=4, seed=0)
    sto = methods.scann.convert(net, coin)
    first, second = [m.probability() for m in sto.sampled_layers()]
    stuck = [(q == 1.0).double().mean().item() for q in (first, second)]
    assert all(abs(s - 0.1) < 0.05 for s in stuck)  # each layer has its stuck share
