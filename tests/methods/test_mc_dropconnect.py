"""``methods/mc_dropconnect.py`` (Mobiny et al. 2021, paper 004's baseline [20]): Bernoulli
masks on the weights of the chosen ``nn.Linear`` / ``nn.Conv2d`` layers (rate ``p``, 0.2 by
default), a network trained with DropConnect layers kept as it is; every weight kept with
probability ``1 - p`` and scaled by ``1 / (1 - p)``; the spec entry; seeds; errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import synsample as ss
from synsample import devices, models
from synsample.errors import ConfigError
from synsample.methods import mc_dropconnect
from synsample.nn.dropout import DropConnect, DropConnectConv2d, DropConnectLinear
from tests.helpers import assert_seeded, sampled_rates

Z = 5.0  # standard errors allowed in the statistical checks (normal tail < 1e-6)


def _net(seed: int = 0) -> nn.Sequential:
    """A small synthetic conv net for 1x6x6 inputs."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(3 * 6 * 6, 10), nn.ReLU(), nn.Linear(10, 4))


# -- convert --------------------------------------------------------------------------------------

def test_every_linear_and_conv_gets_weight_masks_at_the_default_rate():
    net = _net()
    sto = mc_dropconnect.convert(net)
    assert sto.method == "mc-dropconnect" and mc_dropconnect.DEFAULT_RATE == 0.2
    assert sampled_rates(sto) == {"0": 0.2, "3": 0.2, "5": 0.2} and sto.info == {"rate": 0.2}
    kinds = [type(m) for m in sto.sampled_layers()]
    assert kinds == [DropConnectConv2d, DropConnectLinear, DropConnectLinear]
    for name, layer in zip(sto.sampled_names, sto.sampled_layers(), strict=True):
        trained = net.get_submodule(name)
        assert torch.equal(layer.weight, trained.weight) and torch.equal(layer.bias, trained.bias)
        assert layer.weight is not trained.weight and layer.layer_name == name
    assert not any(isinstance(m, DropConnect) for m in net.modules())  # the trained net


def test_p_and_the_filters_choose_the_rate_and_the_layers():
    net = _net()
    assert sampled_rates(ss.convert(net, "mc-dropconnect", p=0.05)) == {"0": 0.05, "3": 0.05,
                                                                 "5": 0.05}
    assert list(sampled_rates(mc_dropconnect.convert(net, exclude=["5"]))) == ["0", "3"]
    assert list(sampled_rates(mc_dropconnect.convert(net, include=[nn.Linear]))) == ["3", "5"]


def test_a_network_trained_with_dropconnect_keeps_its_masks_and_plain_read_out():
    net = models.build("lenet5-dropconnect", input_shape=(1, 16, 16), num_classes=4, seed=0,
                       dropout=0.3)
    sto = mc_dropconnect.convert(net)
    trained = [name for name, m in net.named_modules() if isinstance(m, DropConnect)]
    assert sto.sampled_names == trained and len(trained) == 4
    assert set(sampled_rates(sto).values()) == {0.3}
    assert type([m for m in sto.modules() if isinstance(m, nn.Linear)][-1]) is nn.Linear


def test_p_on_a_network_trained_with_dropconnect_leaves_its_read_out_unmasked():
    net = models.build("lenet5-dropconnect", input_shape=(1, 16, 16), num_classes=4, seed=0,
                       dropout=0.3)
    trained = [name for name, m in net.named_modules() if isinstance(m, DropConnect)]
    sto = mc_dropconnect.convert(net, p=0.1)
    assert sto.sampled_names == trained and set(sampled_rates(sto).values()) == {0.1}


def test_filters_choose_the_layers_of_a_network_trained_with_dropconnect_too():
    net = models.build("lenet5-dropconnect", input_shape=(1, 16, 16), num_classes=4, seed=0,
                       dropout=0.3)
    first, *others = [name for name, m in net.named_modules() if isinstance(m, DropConnect)]
    assert mc_dropconnect.convert(net, exclude=[first]).sampled_names == others
    only = mc_dropconnect.convert(net, include=[first])
    assert only.sampled_names == [first]
    plain = [m for m in only.modules() if type(m) in (nn.Linear, nn.Conv2d)]
    trained = [net.get_submodule(name) for name in others]
    assert len(plain) == len(others) + 1  # and the read-out
    assert all(torch.equal(a.weight, b.weight) for a, b in zip(plain, trained, strict=False))


@pytest.mark.parametrize("options,message", [
    ({"p": 1.0}, r"a drop rate must be in \[0, 1\), got 1.0"),
    ({"p": -0.5}, r"a drop rate must be in \[0, 1\)"),
    ({"include": [nn.ReLU]}, "layer 1 is a ReLU; DropConnect masks the weights of nn.Linear "
                             "and nn.Conv2d layers"),
    ({"exclude": [nn.Linear, nn.Conv2d]}, "no layer of the network would be sampled"),
    ({"exclude": ["fc"]}, "the exclude filter 'fc' matches no module"),
    ({"precision": "8"}, "mc-dropconnect has no precision to set"),
])
def test_bad_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        ss.convert(_net(), "mc-dropconnect", **options)


def test_a_convolution_it_cannot_mask_is_named():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2), nn.Flatten(), nn.Linear(2 * 2 * 2, 3))
    with pytest.raises(ConfigError, match="layer 0: DropConnect converts square, ungrouped, "
                                          "undilated"):
        mc_dropconnect.convert(net)
    assert list(sampled_rates(mc_dropconnect.convert(net, exclude=["0"]))) == ["2"]


# -- the spec -------------------------------------------------------------------------------------

def test_the_spec_entry():
    spec = mc_dropconnect.SPEC
    assert spec.name == "mc-dropconnect" and spec.options == ("coin", "p")
    assert spec.precision is None and spec.filters and not spec.exports
    assert spec.reference == "network without masks"
    net = _net()
    assert spec.reference_model(net) is net


# -- the distribution it samples ------------------------------------------------------------------

def _weight_draws(p: float, n: int, coin=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The sampled weight matrices of one bias-free linear layer, read off one-hot items in
    shared mode (item j of pass k is column j of pass k's masked weights): ``[n, out, in]``,
    and the trained weights."""
    torch.manual_seed(1)
    lin = nn.Linear(40, 50, bias=False)
    sto = mc_dropconnect.convert(nn.Sequential(lin), p=p, coin=coin)
    y = sto(torch.eye(40), n=n, generator=torch.Generator().manual_seed(2), mode="shared")
    return y.permute(0, 2, 1).double(), lin.weight.detach().double()


def test_every_weight_is_kept_with_probability_one_minus_p_and_scaled_back():
    """Mobiny 2021: each weight is ``w / (1 - p)`` with probability ``1 - p``, else 0; over 2000
    weights x 40 passes the kept fraction is within 5 binomial standard errors of 1 - p, and
    the masked weights average to w (inverted scaling)."""
    p, n = 0.25, 40
    draws, w = _weight_draws(p, n)
    kept = draws != 0
    assert torch.allclose(draws[kept], (w / (1 - p)).expand_as(draws)[kept], rtol=1e-5)
    assert abs(kept.double().mean().item() - (1 - p)) <= Z * math.sqrt(p * (1 - p) / (n * 2000))
    se = w.abs() * math.sqrt(p / (1 - p) / n)  # sd of one masked weight is |w| sqrt(p/(1-p))
    assert torch.all((draws.mean(0) - w).abs() <= Z * se + 1e-7)


def test_the_coin_option_sets_the_device_of_every_mask_bit():
    """A 4-bit coin realises P(keep) = 0.8 as round(0.8 * 16) / 16 = 13/16 = 0.8125: the kept
    fraction of 80,000 draws is within 5 standard errors of it, and about 9 from 0.8."""
    coin = devices.QuantizedCoin(4)
    draws, _ = _weight_draws(0.2, 40, coin=coin)
    kept = (draws != 0).double().mean().item()
    se = math.sqrt(0.8125 * 0.1875 / 80_000)
    assert abs(kept - 0.8125) <= Z * se and abs(kept - 0.8) > 5 * se
    assert coin.draws == 40 * 2000


# -- seeds ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_the_same_seed_gives_the_same_votes_and_another_seed_other_masks(mode):
    sto = mc_dropconnect.convert(_net(), p=0.3)
    x = torch.randn(6, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    assert_seeded(sto, x, mode, seed=4, other_seed=6, samples=8, n=3)
