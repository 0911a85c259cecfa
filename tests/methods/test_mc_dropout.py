"""``methods/mc_dropout.py`` (Gal and Ghahramani 2016, paper 004's baseline [9]): a network's
dropout kept on at inference (its trained rate, or ``p``), dropout inserted where asked, the
others left off; every unit kept with probability ``1 - p`` and scaled by ``1 / (1 - p)``;
the spec entry; seeds; errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import synsample as ss
from synsample import devices, models
from synsample.errors import ConfigError
from synsample.methods import mc_dropout
from synsample.nn.dropout import MCDropout
from tests.helpers import assert_seeded, sampled_rates

Z = 5.0  # standard errors allowed in the statistical checks (normal tail < 1e-6)


def _net(seed: int = 0) -> nn.Sequential:
    """A small synthetic MLP with two dropout layers of different rates."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 16),
                         nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))


# -- convert --------------------------------------------------------------------------------------

def test_every_dropout_stays_on_at_its_trained_rate():
    net = _net()
    sto = mc_dropout.convert(net)
    assert sto.method == "mc-dropout" and sampled_rates(sto) == {"2": 0.3, "5": 0.1}
    assert all(isinstance(m, MCDropout) for m in sto.sampled_layers())
    assert sto.info == {"rate": 0.3}
    assert [type(m) for m in net] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU,
                                      nn.Dropout, nn.Linear]  # the trained network is unchanged
    assert (net[2].p, net[5].p) == (0.3, 0.1)


def test_p_sets_the_rate_of_every_dropout_kept_on():
    assert sampled_rates(ss.convert(_net(), "mc-dropout", p=0.25)) == {"2": 0.25, "5": 0.25}


def test_excluded_dropout_is_off_at_inference():
    net = _net()
    sto = mc_dropout.convert(net, exclude=["5"])
    assert sampled_rates(sto) == {"2": 0.3}
    off = [m for m in sto.modules() if type(m) is nn.Dropout]
    assert len(off) == 1 and off[0].p == 0.0
    assert net[5].p == 0.1  # switched off in the copy only
    only = mc_dropout.convert(net, include=["5"])
    assert sampled_rates(only) == {"5": 0.1}


def test_insert_before_puts_new_dropout_in_front_of_named_modules():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    sto = ss.convert(net, "mc-dropout", insert_before=["2"], p=0.2)
    assert sampled_rates(sto) == {"2.0": 0.2}
    order = [m for m in sto.modules() if isinstance(m, MCDropout | nn.Linear)]
    assert [type(m) for m in order] == [nn.Linear, MCDropout, nn.Linear]
    assert torch.equal(order[2].weight, net[2].weight)
    assert isinstance(net[2], nn.Linear)  # the trained network is unchanged


def test_p_sets_the_rate_of_a_network_trained_with_mc_dropout_too():
    net = models.build("lenet5-dropout", input_shape=(1, 16, 16), num_classes=4, seed=0,
                       dropout=0.5)
    assert set(sampled_rates(mc_dropout.convert(net)).values()) == {0.5}
    assert set(sampled_rates(mc_dropout.convert(net, p=0.1)).values()) == {0.1}


def test_filters_choose_the_dropout_of_a_network_trained_with_mc_dropout_too():
    net = models.build("lenet5-dropout", input_shape=(1, 16, 16), num_classes=4, seed=0,
                       dropout=0.5)
    first, *others = [name for name, m in net.named_modules() if isinstance(m, MCDropout)]
    assert mc_dropout.convert(net, exclude=[first]).sampled_names == others
    off = mc_dropout.convert(net, include=[first])
    assert off.sampled_names == [first]
    assert [m.p for m in off.modules() if type(m) is nn.Dropout] == [0.0] * len(others)


def test_a_network_trained_with_mc_dropout_keeps_its_layers():
    net = models.build("lenet5-dropout", input_shape=(1, 16, 16), num_classes=4, seed=0,
                       dropout=0.25)
    sto = mc_dropout.convert(net)
    trained = [name for name, m in net.named_modules() if isinstance(m, MCDropout)]
    assert sto.sampled_names == trained and len(trained) == 4
    assert set(sampled_rates(sto).values()) == {0.25}
    assert all(layer.layer_name == name for name, layer in zip(
        sto.sampled_names, sto.sampled_layers(), strict=True))


@pytest.mark.parametrize("options,message", [
    ({"p": 1.0}, r"a drop rate must be in \[0, 1\), got 1.0"),
    ({"p": -0.2}, r"a drop rate must be in \[0, 1\)"),
    ({"insert_before": ["3"]}, "insert_before needs the drop rate p"),
    ({"insert_before": ["head"], "p": 0.2}, "insert_before names 'head', which is not a module"),
    ({"include": [nn.Linear]}, "module 0 is a Linear, not a dropout layer"),
    ({"exclude": [nn.Dropout]}, "no layer of the network would be sampled"),
    ({"precision": 4}, "mc-dropout has no precision to set"),
])
def test_bad_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        ss.convert(_net(), "mc-dropout", **options)


def test_a_network_without_dropout_is_told_how_to_get_some():
    with pytest.raises(ConfigError, match="no nn.Dropout.*insert_before=.*fine-tune"):
        mc_dropout.convert(nn.Sequential(nn.Linear(4, 2)))


# -- the spec -------------------------------------------------------------------------------------

def test_the_spec_entry():
    spec = mc_dropout.SPEC
    assert spec.name == "mc-dropout" and spec.options == ("coin", "p", "insert_before")
    assert spec.precision is None and spec.filters and not spec.exports
    assert spec.reference == "network without masks"
    net = _net().eval()
    assert spec.reference_model(net) is net


# -- the distribution it samples ------------------------------------------------------------------

def _mask_passes(p: float, n: int, mode: str, coin=None) -> torch.Tensor:
    """``n`` passes of a dropout layer alone on inputs of ones: ``[n, items, units]``."""
    net = nn.Sequential(nn.Identity(), nn.Dropout(p))
    sto = mc_dropout.convert(net, coin=coin)
    return sto(torch.ones(2, 500), n=n, generator=torch.Generator().manual_seed(1),
               mode=mode).double()


@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_units_are_kept_with_probability_one_minus_p_and_scaled_back(mode):
    """Gal 2016 (inverted dropout): a unit is ``x / (1 - p)`` with probability ``1 - p``, else
    0, so its mean over passes is ``x``; the kept fraction of 2 x 500 units x 40 passes (shared
    mode: the 500 units of a pass, the same for both items) is within 5 binomial standard
    errors of 1 - p."""
    p, n = 0.3, 40
    y = _mask_passes(p, n, mode)
    values = y.unique()
    assert len(values) == 2 and values[0] == 0.0
    assert values[1].item() == pytest.approx(1 / (1 - p), rel=1e-6)
    kept = (y != 0).double()
    draws = kept[:, 0].numel() * (1 if mode == "shared" else 2)
    assert abs(kept.mean().item() - (1 - p)) <= Z * math.sqrt(p * (1 - p) / draws)
    assert torch.equal(kept[:, 0], kept[:, 1]) == (mode == "shared")


def test_the_coin_option_sets_the_device_of_every_mask_bit():
    """A 4-bit coin realises P(keep) = 0.7 as round(0.7 * 16) / 16 = 11/16 = 0.6875: the kept
    fraction of 20,000 units is within 5 standard errors of it, and about 6 from 0.7."""
    coin = devices.QuantizedCoin(4)
    y = _mask_passes(0.3, 40, "shared", coin=coin)
    kept = (y[:, 0] != 0).double().mean().item()
    se = math.sqrt(0.6875 * 0.3125 / 20_000)
    assert abs(kept - 0.6875) <= Z * se and abs(kept - 0.7) > 3 * se
    assert coin.draws == 40 * 500


@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_the_mean_over_passes_is_the_network_without_masks(mode):
    """A linear read-out after dropout: ``E[W (m * x) / (1 - p) + b] = W x + b``; per output,
    ``Var = p / (1 - p) sum_j w_j^2 x_j^2``; the mean of n passes is within 5 standard errors
    of the reference (the network in eval mode)."""
    torch.manual_seed(2)
    net = nn.Sequential(nn.Identity(), nn.Dropout(0.4), nn.Linear(30, 3)).eval()
    x = torch.randn(2, 30, generator=torch.Generator().manual_seed(3))
    n = 3000
    y = ss.convert(net, "mc-dropout")(x, n=n, generator=torch.Generator().manual_seed(4),
                                      mode=mode).double()
    with torch.no_grad():
        reference = mc_dropout.SPEC.reference_model(net)(x).double()
    var = 0.4 / 0.6 * (x.double() ** 2) @ (net[2].weight.double() ** 2).T.detach()
    assert torch.all((y.mean(0) - reference).abs() <= Z * (var / n).sqrt())


# -- seeds ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_the_same_seed_gives_the_same_votes_and_another_seed_other_masks(mode):
    sto = mc_dropout.convert(_net())
    x = torch.randn(6, 8, generator=torch.Generator().manual_seed(1))
    assert_seeded(sto, x, mode, seed=4, other_seed=6, samples=8, n=3)
