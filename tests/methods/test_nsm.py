"""``methods/nsm.py`` (paper 002): converting a trained Neural Sampling Machine keeps its
layers, splits off the input binarisation, puts the noise on the devices asked for; the
sampled units fire with the erf probability of eq. 3-4; the spec entry; seeds; errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import synsample as ss
from synsample import devices, engine, models
from synsample.errors import ConfigError
from synsample.methods import nsm
from synsample.nn.nsm import Binarize, NSMConv2d, NSMLinear, StochasticSigmoidLinear
from tests.helpers import assert_seeded

SMALL = {"input_shape": (1, 4, 4), "num_classes": 3, "seed": 0}


def _images(n: int, side: int = 4, seed: int = 0) -> torch.Tensor:
    """Synthetic uint8 images."""
    return torch.randint(0, 256, (n, 1, side, side), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def _small(arch: str, noise: str | None = None) -> nn.Sequential:
    """A small synthetic NSM (or StNN) 16-8-8-3 network, built as nsm-mlp is, narrower."""
    torch.manual_seed(0)
    if arch == "stnn-mlp":
        hidden = [StochasticSigmoidLinear(16, 8, name="2"), StochasticSigmoidLinear(8, 8, name="3")]
    else:
        hidden = [NSMLinear(16, 8, noise=noise, name="2"), NSMLinear(8, 8, noise=noise, name="3")]
    return nn.Sequential(Binarize(), nn.Flatten(), *hidden, nn.Linear(8, 3))


def _sources(sto) -> list:
    return [getattr(m, "source", getattr(m, "coin", None)) for m in sto.sampled_layers()]


# -- convert --------------------------------------------------------------------------------------

def test_convert_keeps_the_trained_layers_and_splits_off_the_binarisation():
    net = models.build("nsm-mlp", **SMALL)
    sto = nsm.convert(net)
    assert sto.method == "nsm" and sto.sampled_names == ["2", "3", "4"]
    assert [type(m) for m in sto.prefix_net] == [Binarize, nn.Flatten]
    for name, layer in zip(sto.sampled_names, sto.sampled_layers(), strict=True):
        trained = net.get_submodule(name)
        assert isinstance(layer, NSMLinear) and layer is not trained
        for p in ("weight", "bias", "beta"):
            assert torch.equal(getattr(layer, p), getattr(trained, p))
    assert type(sto.body[-1]) is nn.Linear  # the read-out stays an ordinary layer
    assert sto.info == {"coin": None, "units": "sign (eq. 1)", "noise": "bernoulli:0.5",
                        "estimator": "erf", "linear_noise_site": "synapse"}
    assert sto.rows_per_call is None  # no convolution: no limit on rows per call
    with torch.no_grad():
        sto.sampled_layers()[0].weight.zero_()
    assert net[2].weight.abs().sum() > 0  # the trained network is a separate copy


def test_a_stnn_converts_with_its_sigmoid_units():
    net = models.build("stnn-mlp", **SMALL)
    sto = nsm.convert(net)
    assert all(isinstance(m, StochasticSigmoidLinear) for m in sto.sampled_layers())
    assert sto.info == {"coin": None, "units": "sigmoid stochastic (StNN)"}


def test_without_a_coin_each_layer_keeps_a_copy_of_its_trained_device():
    net = _small("nsm-mlp", "gaussian:0.5")
    sto = nsm.convert(net)
    for layer, trained in zip(sto.sampled_layers(), [net[2], net[3]], strict=True):
        assert type(layer.source) is type(trained.source) is devices.GaussianSource
        assert layer.source is not trained.source and layer.source.bits is None
    engine.predict(sto, _images(4), samples=2, seed=0)
    assert all(trained.source.draws == 0 for trained in (net[2], net[3]))


@pytest.mark.parametrize("arch,noise", [("nsm-mlp", "bernoulli:0.5"), ("nsm-mlp", "gaussian:1"),
                                        ("stnn-mlp", None)])
@pytest.mark.parametrize("make", [lambda: devices.QuantizedCoin(8), devices.IdealCoin],
                         ids=["8-bit", "ideal"])
def test_a_coin_becomes_the_one_device_of_every_draw(arch, noise, make):
    """Bernoulli noise and StNN units draw from the coin itself; Gaussian noise from one
    Gaussian source of the coin's precision (ideal for an ideal coin). One device per kind
    for the whole network, so its counter holds the run's random bits."""
    net = _small(arch, noise)
    coin = make()
    sto = nsm.convert(net, coin=coin)
    used = _sources(sto)
    assert all(s is used[0] for s in used)
    if noise == "gaussian:1":
        assert isinstance(used[0], devices.GaussianSource)
        assert used[0].bits == (None if isinstance(coin, devices.IdealCoin) else 8)
    else:
        assert used[0] is coin
    assert sto.info["coin"] == coin.describe()
    pred = engine.predict(sto, _images(5), samples=3, seed=1)
    assert pred.random_bits == used[0].random_bits > 0
    trained = [getattr(net[i], "source", getattr(net[i], "coin", None)) for i in (2, 3)]
    assert all(s is not coin and s is not used[0] and s.draws == 0 for s in trained)


def test_precision_names_the_noise_coin():
    net = models.build("nsm-mlp", **SMALL)
    sto = ss.convert(net, "nsm", precision=4)
    assert all(isinstance(s, devices.QuantizedCoin) and s.bits == 4 for s in _sources(sto))
    assert sto.info["coin"]["bits"] == 4
    full = ss.convert(net, "nsm", precision="full")
    assert all(type(s) is devices.IdealCoin for s in _sources(full))
    with pytest.raises(ConfigError, match="unknown precision 'high'"):
        ss.convert(net, "nsm", precision="high")


def test_a_coin_and_a_precision_together_are_refused():
    net = models.build("nsm-mlp", **SMALL)
    with pytest.raises(ConfigError, match="not both"):
        ss.convert(net, "nsm", coin=devices.QuantizedCoin(8), precision=4)


def test_a_convolutional_nsm_caps_the_rows_of_one_call():
    net = models.build("nsm-conv", input_shape=(1, 16, 16), num_classes=3, seed=0)
    sto = nsm.convert(net)
    widest = max(math.prod(m.beta.shape) for m in net.modules() if isinstance(m, NSMConv2d))
    assert sto.rows_per_call == max(16, nsm.ROW_BUDGET // (16 * widest))


def test_networks_of_other_units_say_which_methods_fit():
    with pytest.raises(ConfigError, match="use method scann, mc-dropout or bbb"):
        nsm.convert(models.build("sigmoid-mlp", **SMALL))


# -- the spec -------------------------------------------------------------------------------------

def test_the_spec_entry():
    spec = nsm.SPEC
    assert spec.name == "nsm" and spec.options == ("coin",) and spec.precision
    assert not spec.filters and not spec.exports and spec.needs_data is None
    assert spec.reference == "network, one sampled pass"
    net = models.build("nsm-mlp", **SMALL)
    assert spec.reference_model(net) is net
    with pytest.raises(ConfigError, match="nsm converts the whole network"):
        ss.convert(net, "nsm", include=["2"])


# -- the distribution it samples (eq. 3-4) --------------------------------------------------------

@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_units_fire_with_the_erf_probability_of_eq3(mode):
    """Paper 002, eq. 3-5: with Gaussian noise ``xi ~ N(1, sigma^2)`` the pre-activation is
    exactly normal given the binary inputs, so ``P(z_i = 1) = 1/2 (1 + erf(E u / sqrt(2 Var u)))``
    holds at any fan-in. Firing rates over n passes of the converted network (prefix: the
    binarisation) are within 5 binomial standard errors of it."""
    torch.manual_seed(0)
    layer = NSMLinear(64, 5, noise="gaussian:1", name="2")
    with torch.no_grad():
        layer.beta.copy_(torch.tensor([0.2, 0.5, 1.0, 1.5, 3.0]))
        layer.bias.uniform_(-0.3, 0.3)
    net = nn.Sequential(Binarize(), nn.Flatten(), layer)
    sto = nsm.convert(net)
    x = _images(2, side=8, seed=3)
    n = 4000
    states = sto(x, n=n, generator=torch.Generator().manual_seed(4), mode=mode)  # [n, 2, 5]
    assert set(states.unique().tolist()) <= {-1.0, 1.0}
    rate = (states == 1).double().mean(0)
    with torch.no_grad():
        p = layer.firing_probability(torch.where(x >= 128, 1.0, -1.0).flatten(1)).double()
    assert (p > 0.02).any() and (p < 0.98).any()  # the check sees uncertain units
    assert torch.all((rate - p).abs() <= 5 * (p * (1 - p) / n).sqrt() + 1e-9), (rate, p)


# -- seeds ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_the_same_seed_gives_the_same_votes_and_another_seed_other_draws(mode):
    sto = nsm.convert(_small("nsm-mlp", "bernoulli:0.5"))
    x = _images(6, seed=2)
    assert_seeded(sto, x, mode, seed=3, other_seed=5, samples=10, n=4)
