"""Bayes-by-Backprop layers (paper 004's baseline [5]): the KL term, the posterior's moments in
both sampling modes, votes independent of tiling."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from synsample import methods, models
from synsample.nn.bayes import BayesConv2d, BayesLinear
from synsample.nn.bayes import kl_divergence as model_kl
from synsample.nn.sampling import SamplingContext
from tests.helpers import assert_votes_do_not_depend_on_tiling


def test_kl_term_against_the_closed_form_of_torch_distributions():
    torch.manual_seed(0)
    layer = BayesConv2d(2, 3, 3, prior_sigma=0.2)
    layer.weight_rho.data.normal_(-3, 0.5)
    layer.weight_mu.data.normal_(0, 0.3)
    ref = sum(kl_divergence(Normal(mu, F.softplus(rho)), Normal(0.0, 0.2)).sum()
              for mu, rho in layer._pairs())
    assert torch.allclose(layer.kl(), ref, rtol=1e-5)
    net = models.build("lenet5-bbb", seed=0)
    assert torch.allclose(model_kl(net), sum(m.kl() for m in net.modules()
                                             if hasattr(m, "kl")), rtol=1e-6)
    assert model_kl(models.build("mlp")) is None


def _moments_check(samples: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> None:
    n = samples.shape[0]
    assert torch.all((samples.mean(0) - mean).abs() < 4.5 * (var / n).sqrt())
    assert torch.all((samples.var(0) / var - 1).abs() < 4.5 * math.sqrt(2 / (n - 1)))


@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_linear_outputs_follow_the_posterior(mode):
    """y = x.w + b with w ~ N(mu, sigma^2): mean x.mu + b_mu, variance x^2.sigma^2 + s_b^2."""
    torch.manual_seed(1)
    layer = BayesLinear(6, 3)
    layer.weight_rho.data.fill_(-1.0)
    layer.bias_rho.data.fill_(-2.0)
    x = torch.randn(1, 6)
    n = 3000
    layer.context = SamplingContext.for_samples(4, 0, n, 1, mode)
    y = layer(x).double()
    layer.context = None
    sw, sb = F.softplus(layer.weight_rho).double(), F.softplus(layer.bias_rho).double()
    mean = (x.double() @ layer.weight_mu.double().T + layer.bias_mu.double())[0]
    var = ((x.double() ** 2) @ (sw ** 2).T + sb ** 2)[0]
    _moments_check(y, mean, var)
    assert layer.source.draws == n * (6 * 3 + 3)


@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_conv_outputs_follow_the_posterior(mode):
    torch.manual_seed(2)
    layer = BayesConv2d(2, 2, 3, padding=1)
    layer.weight_rho.data.fill_(-1.5)
    x = torch.randn(1, 2, 4, 4)
    n = 3000
    layer.context = SamplingContext.for_samples(5, 0, n, 1, mode)
    y = layer(x).double()  # [n, 2, 4, 4]
    layer.context = None
    sw, sb = F.softplus(layer.weight_rho).double(), F.softplus(layer.bias_rho).double()
    mean = F.conv2d(x.double(), layer.weight_mu.double(), layer.bias_mu.double(), padding=1)[0]
    var = F.conv2d(x.double() ** 2, sw ** 2, sb ** 2, padding=1)[0]
    _moments_check(y[:, :, 1, 2], mean[:, 1, 2], var[:, 1, 2])
    # the whole kernel is drawn per row: two positions share it, with covariance
    # sum_k x_p1[k] x_p2[k] sigma_k^2 + sigma_b^2
    patches = F.unfold(x.double(), 3, padding=1)[0]  # [C * 9, 16]
    p1, p2 = patches[:, 1 * 4 + 1], patches[:, 1 * 4 + 2]
    cov = (p1 * p2 * sw[0].flatten() ** 2).sum() + sb[0] ** 2
    a, b = y[:, 0, 1, 1], y[:, 0, 1, 2]
    sample_cov = ((a - a.mean()) * (b - b.mean())).mean()
    se = ((a.var() * b.var() + cov ** 2) / n).sqrt()
    assert abs(sample_cov - cov) < 4.5 * se


@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_votes_do_not_depend_on_blocks_and_chunks(mode):
    net = models.build("lenet5-bbb", seed=0)
    for m in net.modules():
        if hasattr(m, "weight_rho"):
            m.weight_rho.data.fill_(-2.0)
    sto = methods.bbb.convert(net)
    x = (torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 255).to(
        torch.uint8)
    assert_votes_do_not_depend_on_tiling(sto, x, 6, mode, batch_size=7, sample_chunk=4, tile=3)


def test_outside_a_sampled_call_training_samples_and_evaluation_uses_the_mean():
    layer = BayesLinear(4, 2)
    layer.weight_rho.data.fill_(0.0)
    x = torch.randn(3, 4)
    layer.train()
    assert not torch.equal(layer(x), layer(x))
    layer.eval()
    assert torch.equal(layer(x), F.linear(x, layer.weight_mu, layer.bias_mu))


def test_training_minimises_the_elbo(synthetic16, tmp_path):
    """The loss is the cross-entropy plus KL / N: on 400 items the KL term (about 4 nats per
    parameter at the initial sigma = 1e-3 under the N(0, 0.1^2) prior) dominates it."""
    from synsample.train import TrainConfig, train

    cfg = TrainConfig.for_arch("lenet5-bbb", dataset="synthetic16", epochs=1)
    result = train(cfg, tmp_path / "ck", data_path=synthetic16, progress=False,
                   log=lambda m: None)
    net = models.build("lenet5-bbb", input_shape=(1, 16, 16), num_classes=4, seed=0)
    kl_per_item = float(model_kl(net).detach()) / 400
    assert kl_per_item > 100
    assert result["history"][0]["loss"] > 0.5 * kl_per_item
