"""Sampling-aware training's estimators (issue 20) against the exact expected loss of the coins.

Tolerances come from the sampling error of the Monte Carlo gradient: the estimator's gradient is
averaged over ``GROUPS`` groups of draws, and the difference to the exact gradient must lie
within ``Z`` standard errors of that mean (with fixed seeds, so the test is deterministic).
"""

import itertools
import math

import pytest
import torch
from torch import nn

from synsample import devices
from synsample.errors import ConfigError
from synsample.nn.sampling_aware import (
    attach,
    coin_moments,
    lrt_linear,
    sampling_aware,
    ste_linear,
)

GROUPS, PER_GROUP, Z = 40, 500, 4.5
W = torch.tensor([[0.9, -0.3, 0.55, -0.05], [-0.7, 0.2, 0.12, 0.45]])
X = torch.tensor([[0.8, 0.5, 1.0, 0.3]])
BIAS = torch.tensor([0.1, -0.2])
TARGET = torch.tensor([0.4, -0.3])


def exact_expected_quadratic(w: torch.Tensor, coin) -> torch.Tensor:
    """E[sum_j (a_j - t_j)^2] over every outcome of the 8 coins of ``w`` (paper 000, eq. 3),
    differentiable in ``w`` through the realised probabilities (straight through the device)."""
    a = w.abs()
    p = a + (coin.probability(a.detach()) - a.detach())
    total = torch.zeros(())
    for j in range(w.shape[0]):
        for bits in itertools.product((0.0, 1.0), repeat=w.shape[1]):
            b = torch.tensor(bits)
            prob = torch.prod(torch.where(b > 0, p[j], 1 - p[j]))
            act = (X[0] * torch.sign(w[j].detach()) * b).sum() + BIAS[j]
            total = total + prob * (act - TARGET[j]) ** 2
    return total


def mc_gradient(forward, loss_fn, coin, seed: int = 0, batch: bool = True):
    """Mean and standard error of the estimator's gradient over GROUPS x PER_GROUP draws."""
    g = torch.Generator().manual_seed(seed)
    grads = []
    for _ in range(GROUPS):
        w = W.clone().requires_grad_(True)
        if batch:  # one item repeated: every row draws its own noise (LRT)
            out = forward(X.expand(PER_GROUP, -1), w, BIAS, coin, "", g)
            loss = loss_fn(out).sum(1).mean()
        else:  # one weight draw per call (STE)
            loss = sum(loss_fn(forward(X, w, BIAS, coin, "", g)).sum()
                       for _ in range(PER_GROUP)) / PER_GROUP
        grads.append(torch.autograd.grad(loss, w)[0])
    stack = torch.stack(grads)
    return stack.mean(0), stack.std(0) / math.sqrt(GROUPS)


@pytest.mark.parametrize("coin", [devices.IdealCoin(), devices.QuantizedCoin(4)],
                         ids=["ideal", "4-bit"])
def test_lrt_gradient_is_the_exact_expected_loss_gradient_for_a_quadratic_loss(coin):
    # E[(a - t)^2] depends on the first two moments of a only, which the local
    # reparameterisation has exactly: its gradient is unbiased for the coins' expected loss
    w = W.clone().requires_grad_(True)
    exact = torch.autograd.grad(exact_expected_quadratic(w, coin), w)[0]
    mean, se = mc_gradient(lrt_linear, lambda a: (a - TARGET) ** 2, coin)
    assert ((mean - exact).abs() <= Z * se + 1e-6).all(), (mean, exact, se)
    assert exact.abs().max() > 10 * se.max()  # the test has power


def test_lrt_gradient_matches_the_gaussian_objective_for_a_nonlinear_loss():
    # softplus of a ~ N(mu, s^2): E by 60-node Gauss-Hermite quadrature, differentiated exactly
    coin = devices.IdealCoin()
    nodes, weights = (torch.tensor(v, dtype=torch.float32) for v in
                      __import__("numpy").polynomial.hermite.hermgauss(60))
    w = W.clone().requires_grad_(True)
    mean_w, var_w = coin_moments(w, coin)
    mu = X @ mean_w.T + BIAS
    sd = torch.sqrt((X * X) @ var_w.T)
    values = nn.functional.softplus(mu[..., None] + math.sqrt(2) * sd[..., None] * nodes)
    objective = (values * weights).sum(-1).sum() / math.sqrt(math.pi)
    exact = torch.autograd.grad(objective, w)[0]
    mean, se = mc_gradient(lrt_linear, nn.functional.softplus, coin, seed=1)
    assert ((mean - exact).abs() <= Z * se + 1e-6).all(), (mean, exact, se)


def test_ste_gradient_misses_the_variance_term():
    # straight-through: E[grad] = 2 x (mu - t) only; the exact gradient adds
    # d/dw sum x^2 |w| (1 - |w|) = x^2 (1 - 2|w|) sign(w), the noise the coins make
    coin = devices.IdealCoin()
    w = W.clone().requires_grad_(True)
    exact = torch.autograd.grad(exact_expected_quadratic(w, coin), w)[0]
    mu = X @ W.T + BIAS
    mean_path = 2 * (mu - TARGET).T * X
    variance_term = X ** 2 * (1 - 2 * W.abs()) * torch.sign(W)
    assert torch.allclose(exact, mean_path + variance_term, atol=1e-5)
    mean, se = mc_gradient(ste_linear, lambda a: (a - TARGET) ** 2, coin, batch=False)
    assert ((mean - mean_path).abs() <= Z * se + 1e-6).all()
    assert ((mean - exact).abs() > Z * se).any()  # biased for the coins' expected loss


def test_moments_follow_the_device_and_pass_the_gradient_straight_through():
    w = torch.tensor([[0.5, -1.0, 0.02, -0.3, 0.0]], requires_grad=True)
    mean, var = coin_moments(w, devices.QuantizedCoin(4))
    p = torch.tensor([8, 15, 0, 5, 0]) / 16  # 0.3 -> 4.8/16 rounds to 5/16; 1.0 -> top level
    assert torch.allclose(mean, torch.sign(w.detach()) * p)
    assert torch.allclose(var, p * (1 - p))
    grad, = torch.autograd.grad(mean.sum(), w)
    assert torch.equal(grad, torch.ones_like(w))  # d(sign(w) p)/dw = 1 straight through, at 0 too
    stuck = devices.NonIdealCoin(stuck_at_1=1.0)
    mean, var = coin_moments(w, stuck, "layer")
    assert torch.equal(var, torch.zeros_like(var))
    # every coin fires; a weight of 0 has no sign to give (as the engine's draws)
    assert torch.equal(mean.abs(), (w != 0).float())


def test_attach_trains_through_coins_keeps_the_state_dict_and_restores():
    net = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    keys = list(net.state_dict())
    x = torch.rand(4, 6)
    before = net.eval()(x)
    with sampling_aware(net, devices.QuantizedCoin(8)) as names:
        assert names == ["0", "2"]
        assert torch.equal(net.eval()(x), before)  # eval mode: deterministic
        net.train()
        torch.manual_seed(0)
        a = net(x)
        torch.manual_seed(0)
        assert torch.equal(net(x), a)  # seeded by torch's generator
        assert not torch.equal(a, before)
        assert list(net.state_dict()) == keys
    assert "forward" not in vars(net[0])
    assert torch.equal(net.train()(x), before)  # ordinary again
    with pytest.raises(ConfigError, match="unknown sampling-aware estimator"):
        attach(net, estimator="reinforce")
    with pytest.raises(ConfigError, match="no nn.Linear"):
        attach(nn.Sequential(nn.ReLU()))


def test_coin_specs():
    assert isinstance(devices.coin_from_spec("full"), devices.IdealCoin)
    assert devices.coin_from_spec("4").bits == 4
    c = devices.coin_from_spec("nonideal:bits=8,bias=0.02,spread=0.05,stuck=0.02,seed=3")
    assert (c.base.bits, c.bias, c.spread, c.stuck_at_0, c.stuck_at_1, c.seed) == \
        (8, 0.02, 0.05, 0.01, 0.01, 3)
    for bad in ("nonideal:wobble=1", "nonideal:bias=x", "banana", "4:bits=2"):
        with pytest.raises(ConfigError):
            devices.coin_from_spec(bad)
