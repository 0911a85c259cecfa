"""``methods/bbb.py`` (Blundell et al. 2015, paper 004's baseline [5]): a trained network made
Bayesian MOPED-style (posterior mean = the trained weight, sigma = delta |w|), a Bayesian
network sampled as it is, every pass drawing its weights from ``N(mu, softplus(rho)^2)``; the
spec entry; seeds; errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import synsample as ss
from synsample import models
from synsample.errors import ConfigError
from synsample.methods import bbb
from synsample.nn.bayes import BayesConv2d, BayesLayer, BayesLinear
from tests.helpers import assert_seeded

Z = 5.0  # standard errors allowed in the statistical checks (normal tail < 1e-6)


def _plain(seed: int = 0) -> nn.Sequential:
    """A small synthetic conv net for 1x8x8 inputs."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(2 * 8 * 8, 6), nn.ReLU(), nn.Linear(6, 3))


def _bayes_layers(net: nn.Module) -> dict[str, BayesLayer]:
    return {name: m for name, m in net.named_modules() if isinstance(m, BayesLayer)}


# -- convert --------------------------------------------------------------------------------------

def test_a_plain_network_is_made_bayesian_moped_style():
    """MOPED (Krishnan et al. 2020): ``mu = w``, ``sigma = delta |w|`` floored at 1e-6, the
    N(0, prior_sigma^2) prior of the KL term."""
    net = _plain()
    with torch.no_grad():
        net[3].weight[0, :5] = 0.0  # sigma of a zero weight: the floor
    sto = bbb.convert(net, delta=0.2, prior_sigma=0.3)
    assert sto.method == "bbb" and sto.sampled_names == ["0", "3", "5"]
    layers = _bayes_layers(sto)
    assert [type(m) for m in layers.values()] == [BayesConv2d, BayesLinear, BayesLinear]
    for (qualified, layer), name in zip(layers.items(), sto.sampled_names, strict=True):
        trained = net.get_submodule(name)
        assert layer.layer_name.endswith(name) and qualified.endswith(name)
        assert layer.prior_sigma == 0.3
        for mu, rho, w in ((layer.weight_mu, layer.weight_rho, trained.weight),
                           (layer.bias_mu, layer.bias_rho, trained.bias)):
            assert torch.equal(mu, w)
            want = (0.2 * w.abs()).clamp(min=1e-6)
            torch.testing.assert_close(F.softplus(rho), want, rtol=1e-4, atol=1e-9)
    assert sto.info == {"posterior": "mean-field Gaussian", "prior": "N(0, 0.3^2)"}
    assert all(type(m) in (nn.Sequential, nn.Conv2d, nn.ReLU, nn.Flatten, nn.Linear)
               for m in net.modules())  # the trained network is unchanged


def test_the_default_delta_is_a_tenth_of_each_weight():
    net = _plain()
    layer = list(_bayes_layers(bbb.convert(net)).values())[1]  # the nn.Linear "3"
    assert bbb.DEFAULT_DELTA == 0.1 and layer.prior_sigma == 0.1
    torch.testing.assert_close(F.softplus(layer.weight_rho),
                               (0.1 * net[3].weight.abs()).clamp(min=1e-6), rtol=1e-4, atol=1e-9)


def test_include_and_exclude_choose_the_layers_made_bayesian():
    net = _plain()
    assert bbb.convert(net, exclude=[nn.Conv2d]).sampled_names == ["3", "5"]
    only_head = bbb.convert(net, include=["5"])
    assert only_head.sampled_names == ["5"]
    assert sum(isinstance(m, nn.Linear) for m in only_head.modules()) == 1  # layer 3 stays


def test_a_bayesian_network_is_sampled_as_trained():
    net = models.build("lenet5-bbb", input_shape=(1, 16, 16), num_classes=4, seed=0)
    sto = bbb.convert(net, delta=0.5)  # delta only shapes networks made Bayesian here
    trained = _bayes_layers(net)
    assert sto.sampled_names == list(trained)
    for layer, original in zip(sto.sampled_layers(), trained.values(), strict=True):
        assert layer is not original
        assert torch.equal(layer.weight_mu, original.weight_mu)
        assert torch.equal(layer.weight_rho, original.weight_rho)
    assert sto.info["prior"] == "N(0, 0.1^2)"


@pytest.mark.parametrize("options,message", [
    ({"delta": 0.0}, r"delta, .* must lie in \(0, 1\), got 0"),
    ({"delta": 1.0}, r"must lie in \(0, 1\), got 1"),
    ({"include": [nn.ReLU]}, "layer 1 is a ReLU; Bayes-by-Backprop converts nn.Linear and "
                             "nn.Conv2d layers"),
    ({"exclude": [nn.Linear, nn.Conv2d]}, "no layer of the network would be sampled"),
    ({"precision": 8}, "bbb has no precision to set"),
])
def test_bad_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        ss.convert(_plain(), "bbb", **options)


def test_a_convolution_it_cannot_sample_is_named():
    net = nn.Sequential(nn.Conv2d(1, 2, (3, 1)), nn.Flatten(), nn.Linear(2 * 6 * 8, 3))
    with pytest.raises(ConfigError, match="layer 0: Bayes-by-Backprop converts square, "
                                          "ungrouped.*exclude this one"):
        bbb.convert(net)
    assert bbb.convert(net, exclude=["0"]).sampled_names == ["2"]


@pytest.mark.parametrize("prior_sigma", [0.0, -0.1])
def test_a_prior_without_a_positive_sigma_is_refused(prior_sigma):
    with pytest.raises(ConfigError, match="prior"):
        ss.convert(_plain(), "bbb", prior_sigma=prior_sigma)


# -- the spec -------------------------------------------------------------------------------------

def test_the_spec_entry():
    spec = bbb.SPEC
    assert spec.name == "bbb" and spec.options == ("delta", "prior_sigma")
    assert spec.precision is None and spec.filters and not spec.exports
    assert spec.reference == "posterior-mean network"
    net = models.build("lenet5-bbb", input_shape=(1, 16, 16), num_classes=4, seed=0).eval()
    assert spec.reference_model(net) is net
    layer = _bayes_layers(net)["1"]  # outside a sampled call, a layer computes with its mean
    x = torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.weight_mu, layer.bias_mu, padding=2))


# -- the distribution it samples (paper 004, eq. 2) -----------------------------------------------

@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_every_pass_draws_the_weights_from_the_posterior(mode):
    """Paper 004 eq. 2 with Blundell's ``w = mu + softplus(rho) eps``: on the one-hot input
    e_j, a Bayesian linear layer outputs ``w[:, j] + b ~ N(mu_w[:, j] + mu_b, sigma_w[:, j]^2
    + sigma_b^2)``. Over n passes the mean is within 5 standard errors and the variance within
    5 of its normal-theory standard error ``sqrt(2 / (n - 1))`` (relative)."""
    torch.manual_seed(3)
    lin = nn.Linear(4, 3)
    net = nn.Sequential(lin)
    sto = bbb.convert(net, delta=0.5)
    n = 3000
    y = sto(torch.eye(4), n=n, generator=torch.Generator().manual_seed(4), mode=mode).double()
    sw, sb = 0.5 * lin.weight.abs().double(), 0.5 * lin.bias.abs().double()
    mean = (lin.weight.double() + lin.bias.double()[:, None]).T.detach()  # [item j, out]
    var = (sw ** 2 + sb[:, None] ** 2).T.detach()
    assert torch.all((y.mean(0) - mean).abs() <= Z * (var / n).sqrt())
    assert torch.all((y.var(0) / var - 1).abs() <= Z * math.sqrt(2 / (n - 1)))


def test_shared_mode_applies_one_draw_to_the_whole_batch():
    """Shared mode: a pass's weights are the same for every item, so two equal items get equal
    outputs in every pass; independent mode draws per item."""
    sto = bbb.convert(_plain(), delta=0.3)
    x = torch.randn(1, 1, 8, 8).expand(2, 1, 8, 8).contiguous()
    shared = sto(x, n=5, generator=torch.Generator().manual_seed(0), mode="shared")
    assert torch.equal(shared[:, 0], shared[:, 1])
    own = sto(x, n=5, generator=torch.Generator().manual_seed(0), mode="independent")
    assert not torch.allclose(own[:, 0], own[:, 1])


# -- seeds ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_the_same_seed_gives_the_same_votes_and_another_seed_other_weights(mode):
    sto = bbb.convert(_plain(), delta=0.3)
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    assert_seeded(sto, x, mode, seed=4, other_seed=6, samples=8, n=3)
