"""``methods/scann.py`` (paper 000, section II.A): which layers become coin-flip layers, the
user's network left alone, options and their errors, the spec entry, and the distribution of
the sampled outputs (eq. 3: every weight is ``sign(w)`` with probability ``|w|``, else 0)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import synsample as ss
from synsample import devices, engine
from synsample.errors import ConfigError
from synsample.methods import scann
from synsample.nn import CoinFlipLinear, SampledNetwork

# every statistical check allows this many standard errors: a correct implementation fails one
# such check with probability < 1e-6 (normal tail), and the seeds are fixed anyway
Z = 5.0


class Named(nn.Module):
    """A small network with its own forward and named layers (not an nn.Sequential)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(8, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        return self.head(torch.relu(self.fc2(self.drop(h))))


def _named(seed: int = 0) -> Named:
    torch.manual_seed(seed)
    net = Named()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear):
                m.weight.uniform_(-1, 1)
    return net


def _one_layer(d_in: int, d_out: int, seed: int, weight=None) -> nn.Sequential:
    """One synthetic ``nn.Linear`` (weights uniform in [-1, 1] unless given)."""
    g = torch.Generator().manual_seed(seed)
    lin = nn.Linear(d_in, d_out)
    with torch.no_grad():
        lin.weight.copy_(torch.rand(d_out, d_in, generator=g) * 2 - 1 if weight is None
                         else weight)
        lin.bias.copy_(torch.randn(d_out, generator=g) * 0.1)
    return nn.Sequential(lin)


def _passes(sto, x: torch.Tensor, n: int, mode: str, seed: int = 0) -> torch.Tensor:
    """``n`` sampled outputs ``[n, batch, out]`` as float64."""
    return sto(x, n=n, generator=torch.Generator().manual_seed(seed), mode=mode).double()


def _assert_mean_within(samples: torch.Tensor, expected: torch.Tensor, var: torch.Tensor):
    n = samples.shape[0]
    se = (var / n).sqrt()
    gap = (samples.mean(0) - expected).abs()
    assert torch.all(gap <= Z * se + 1e-9), (gap / se).max()


# -- convert --------------------------------------------------------------------------------------

def test_every_linear_becomes_a_coin_flip_layer_with_the_trained_weights():
    net = _named()
    sto = scann.convert(net)
    assert isinstance(sto, SampledNetwork) and sto.method == "scann"
    assert sto.sampled_names == ["fc1", "fc2", "head"]
    layers = dict(zip(sto.sampled_names, sto.sampled_layers(), strict=True))
    for name, layer in layers.items():
        trained = net.get_submodule(name)
        assert isinstance(layer, CoinFlipLinear) and layer.layer_name == name
        assert torch.equal(layer.weight, trained.weight) and torch.equal(layer.bias, trained.bias)
    assert not any(isinstance(m, nn.Linear) for m in sto.modules())
    # the trained dropout stays off (eval mode) in the converted network
    drops = [m for m in sto.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 1 and not drops[0].training


def test_include_and_exclude_choose_the_layers_by_type_or_wildcard_name():
    net = _named()
    assert scann.convert(net, include=["fc*"]).sampled_names == ["fc1", "fc2"]
    assert scann.convert(net, exclude=["fc?"]).sampled_names == ["head"]
    kept = scann.convert(net, include=[nn.Linear], exclude=["head"])
    assert kept.sampled_names == ["fc1", "fc2"]
    assert sum(type(m) is nn.Linear for m in kept.modules()) == 1  # the head, as trained


def test_the_users_network_is_left_as_it_was_training_mode_included():
    net = _named().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    sto = scann.convert(net, gain="row")
    assert net.training and all(m.training for m in net.modules())
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert all(type(m) in (Named, nn.Linear, nn.Dropout) for m in net.modules())
    for layer in sto.sampled_layers():  # the converted copy owns its weights
        layer.weight.zero_()
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())


def test_a_filter_that_matches_nothing_is_an_error_when_convert_is_called_directly():
    with pytest.raises(ConfigError, match="matches no module"):
        scann.convert(_named(), exclude=["haed"])


@pytest.mark.parametrize("options,message", [
    ({"gain": "column"}, "unknown gain 'column'; use 'row'"),
    ({"precision": 4, "coin": devices.IdealCoin()}, "give a coin or a precision, not both"),
    ({"precision": "half"}, "unknown precision 'half'; use full or a number of bits"),
    ({"precision": 0}, "1 to 24 bits"),
    ({"precision": 32}, "1 to 24 bits"),
    ({"include": [nn.Dropout]}, "layer drop is a Dropout; scANN samples the weights of nn.Linear"),
])
def test_bad_options_are_config_errors_that_name_the_fix(options, message):
    with pytest.raises(ConfigError, match=message):
        ss.convert(_named(), "scann", **options)


def test_weights_outside_the_coin_range_are_refused_unless_a_gain_is_asked_for():
    net = _one_layer(4, 3, 0, weight=torch.full((3, 4), 0.5))
    with torch.no_grad():
        net[0].weight[1, 2] = -1.75
    with pytest.raises(ConfigError, match=r"layer 0 has weights outside \[-1, 1\] \(max \|w\| "
                                          r"= 1\.75\).*gain='row'.*or exclude this layer"):
        scann.convert(net)
    for gain in ("row", "layer"):
        assert scann.convert(net, gain=gain).info["gain"] == gain


# -- the spec -------------------------------------------------------------------------------------

def test_the_spec_entry():
    spec = scann.SPEC
    assert spec.name == "scann" and spec.options == ("coin", "gain")
    assert spec.precision and spec.exports and spec.filters and not spec.many_models
    assert spec.reference == "deterministic network" and spec.needs_data is None
    net = _named()
    assert spec.reference_model(net) is net  # the reference is the trained network itself


@pytest.mark.parametrize("precision,bits", [(None, None), ("full", None), (8, 8), ("4", 4)])
def test_precision_names_one_coin_for_every_layer(precision, bits):
    """Full precision: the ideal coin (24 bits a draw); ``b`` bits: paper 000 section III.D's
    b-bit coin. One device for the whole network, so its counter holds the run's bits."""
    sto = ss.convert(_named(), "scann", precision=precision)
    (coin,) = sto.devices()
    assert all(layer.coin is coin for layer in sto.sampled_layers())
    if bits is None:
        assert type(coin) is devices.IdealCoin and coin.bits_per_draw == 24
    else:
        assert isinstance(coin, devices.QuantizedCoin) and coin.bits == bits
    assert sto.info == {"coin": coin.describe(), "gain": None}
    pred = engine.predict(sto, torch.randn(5, 6), samples=3, seed=0)
    weights = sum(m.weight.numel() for m in sto.sampled_layers())
    assert pred.random_bits == coin.random_bits == 3 * weights * coin.bits_per_draw


# -- the distribution it samples (eq. 3) ----------------------------------------------------------

@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_the_mean_of_many_passes_is_the_deterministic_output(mode):
    """Eq. 3 with ``W~ = W~^p - W~^n``: each weight is ``sign(w) Bernoulli(|w|)``, so
    ``E[W~ x + b] = W x + b`` and ``Var = sum_j x_j^2 (|w_ij| - w_ij^2)`` per output; the mean
    of n passes is within 5 standard errors of the deterministic network's output."""
    net = _one_layer(20, 5, seed=1)
    x = torch.randn(3, 20, generator=torch.Generator().manual_seed(2))
    y = _passes(scann.convert(net), x, 4000, mode)
    w = net[0].weight.double()
    var = (x.double() ** 2) @ (w.abs() - w ** 2).T
    _assert_mean_within(y, net(x).double().detach(), var)
    # every pass is the bias plus a sum of -x_j, 0 and +x_j: never the deterministic output
    assert not torch.allclose(y[0], net(x).double().detach())


def test_a_sampled_weight_is_sign_w_with_probability_abs_w():
    """Eq. 3 read off one layer without bias on one-hot items: in shared mode item j of pass k
    is column j of that pass's weight matrix, so every entry is in {-1, 0, +1}, has the sign of
    w, and is nonzero with frequency |w| (within 5 binomial standard errors)."""
    w = torch.linspace(-1, 1, 21).reshape(3, 7)
    lin = nn.Linear(7, 3, bias=False)
    with torch.no_grad():
        lin.weight.copy_(w)
    n = 3000
    y = _passes(scann.convert(nn.Sequential(lin)), torch.eye(7), n, "shared")  # [n, 7, 3]
    draws = y.permute(0, 2, 1)  # [n, out, in]: the sampled weight matrices
    assert set(draws.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert torch.all(draws * torch.sign(w).double() >= 0)
    freq = (draws != 0).double().mean(0)
    p = w.abs().double()
    assert torch.all((freq - p).abs() <= Z * (p * (1 - p) / n).sqrt() + 1e-9)


def test_a_b_bit_coin_samples_the_rounded_probability_not_the_trained_one():
    """Paper 000 section III.D: a b-bit coin realises ``|w|`` rounded to a multiple of 2^-b
    (at most 1 - 2^-b). With |w| = 0.53 (4 bits: 8/16) and |w| = 1 (15/16) the mean of the
    passes converges to the rounded weights, far (about 17 SE) from the trained output."""
    w = torch.tensor([[0.53] * 20, [1.0] * 10 + [-0.53] * 10])
    net = _one_layer(20, 2, 0, weight=w)
    x = torch.ones(1, 20)
    y = _passes(ss.convert(net, "scann", precision=4), x, 4000, "shared")
    q = torch.tensor([[0.5] * 20, [15 / 16] * 10 + [-0.5] * 10], dtype=torch.float64)
    bias = net[0].bias.double()
    var = (q.abs() - q ** 2).sum(1)[None]
    _assert_mean_within(y, q.sum(1)[None] + bias, var)
    trained = w.double().sum(1) + bias
    se = (var / 4000).sqrt()
    assert torch.all((y.mean(0) - trained).abs() > 10 * se)


@pytest.mark.parametrize("gain", ["row", "layer"])
def test_with_a_gain_the_mean_is_still_the_trained_network(gain):
    """A gain divides the weights by their largest ``|w|`` (per output unit, or per layer) and
    multiplies the sampled sum back: ``E = g (W / g) x + b = W x + b`` with the variance of eq.
    3 at ``w / g`` scaled by ``g^2``."""
    weight = torch.rand(4, 12, generator=torch.Generator().manual_seed(3)) * 6 - 3
    net = _one_layer(12, 4, 0, weight=weight)
    x = torch.randn(2, 12, generator=torch.Generator().manual_seed(4))
    y = _passes(scann.convert(net, gain=gain), x, 4000, "shared")
    top = weight.abs().amax(1, keepdim=True) if gain == "row" else weight.abs().max()
    g = (top * torch.ones(4, 1)).double()
    scaled = weight.double() / g
    var = ((x.double() ** 2) @ (scaled.abs() - scaled ** 2).T) * g.T ** 2
    _assert_mean_within(y, net(x).double().detach(), var)


# -- seeds ----------------------------------------------------------------------------------------

def test_the_same_seed_draws_the_same_weights_and_another_seed_others():
    sto = scann.convert(_one_layer(30, 4, seed=5))
    x = torch.randn(6, 30, generator=torch.Generator().manual_seed(6))
    for mode in ("shared", "independent"):
        a = _passes(sto, x, 8, mode, seed=11)
        assert torch.equal(a, _passes(sto, x, 8, mode, seed=11))
        b = _passes(sto, x, 8, mode, seed=12)
        assert not torch.equal(a, b)
        # passes differ from each other too: 8 draws of 120 coins, none certain
        assert len({tuple(row.flatten().tolist()) for row in a}) == 8
