"""Bayes-by-Backprop (Blundell et al. 2015, paper 004's reference [5] and its section 2.2): a
mean-field Gaussian posterior ``q(w) = N(mu, sigma^2)`` over every weight and bias, with
``sigma = softplus(rho)``, trained by the reparameterisation ``w = mu + sigma eps`` on the
evidence lower bound ``E_q[-log p(D | w)] + KL(q || p)``.

The prior is a Gaussian ``p(w) = N(0, prior_sigma^2)`` (not Blundell's scale mixture), so the
KL term is in closed form, per parameter

    KL = log(prior_sigma / sigma) + (sigma^2 + mu^2) / (2 prior_sigma^2) - 1/2,

read from [`BayesLayer.kl`][synsample.nn.bayes.BayesLayer.kl] (layers return plain tensors). Paper
004 asks for "a small prior for sigma" because SpinBayes clips the sampled weights to [-1, 1];
``prior_sigma = 0.1``.

Training draws one weight sample per mini-batch (torch's generator). A sampled call draws from
the layer's [`GaussianSource`][synsample.devices.GaussianSource]: one weight tensor per pass in
``shared`` mode; per item and pass in ``independent`` mode, where a linear layer draws its
pre-activations instead (the local reparameterisation: exact, since under a mean-field posterior one
item's outputs depend on disjoint weights) from counter-based normals, and a convolution draws its
whole kernel per row. Evaluation outside a sampled call uses the posterior mean.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from synsample.devices import GaussianSource
from synsample.errors import ConfigError
from synsample.nn import neural_noise
from synsample.nn.sampling import SamplingContext
from synsample.nn.weight_sampling import WeightSampledLayer

#: softplus^-1 of the initial posterior standard deviation
INIT_RHO = math.log(math.expm1(1e-3))


class BayesLayer(WeightSampledLayer):
    """A mean-field Gaussian layer; subclasses fix the weight shape and the operation."""

    def _init_posterior(self, weight_shape: tuple[int, ...], out: int, fan_in: int, bias: bool,
                        prior_sigma: float) -> None:
        if not 0 < prior_sigma < math.inf:  # the KL term divides by it and takes its log
            raise ConfigError(f"prior_sigma, the standard deviation of the N(0, prior_sigma^2) "
                              f"prior, must be positive and finite, got {prior_sigma}")
        bound = 1.0 / math.sqrt(fan_in)
        self.weight_mu = nn.Parameter(torch.empty(weight_shape).uniform_(-bound, bound))
        self.weight_rho = nn.Parameter(torch.full(weight_shape, INIT_RHO))
        self.bias_mu = nn.Parameter(torch.zeros(out)) if bias else None
        self.bias_rho = nn.Parameter(torch.full((out,), INIT_RHO)) if bias else None
        self.prior_sigma = prior_sigma
        self.source = GaussianSource()
        self.layer_name = ""

    def devices(self) -> list:
        """The Gaussian source of the layer's sampled weights.

        Returns:
            ``[source]``.
        """
        return [self.source]

    def _pairs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        pairs = [(self.weight_mu, self.weight_rho)]
        if self.bias_mu is not None:
            pairs.append((self.bias_mu, self.bias_rho))
        return pairs

    def kl(self) -> torch.Tensor:
        """``KL(q || p)`` summed over the layer's weights and biases (closed form, see the
        module docstring).

        Returns:
            A scalar tensor, with gradients.
        """
        total = self.weight_mu.new_zeros(())
        p = self.prior_sigma
        for mu, rho in self._pairs():
            sigma = F.softplus(rho)
            total = total + (math.log(p) - torch.log(sigma)
                             + (sigma ** 2 + mu ** 2) / (2 * p * p) - 0.5).sum()
        return total

    def posterior_sample(self, generator: torch.Generator | None = None, count: int = 1
                         ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``count`` weight (and bias) tensors drawn from the posterior, with gradients.

        ``w = mu + softplus(rho) eps`` with ``eps`` from ``generator`` (the reparameterisation;
        draws are not counted on the device).

        Args:
            generator: the generator of ``eps`` (None: torch's default).
            count: how many tensors to draw.

        Returns:
            ``(weights [count, *weight_shape], biases [count, out] or None)``.
        """
        def draw(mu: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
            eps = torch.randn((count, *mu.shape), generator=generator, device=mu.device)
            return mu + F.softplus(rho) * eps

        w = draw(self.weight_mu, self.weight_rho)
        b = None if self.bias_mu is None else draw(self.bias_mu, self.bias_rho)
        return w, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The layer with weights drawn from the posterior.

        Without a context: the posterior mean in eval, one posterior sample per call in
        training. Under a context: one weight tensor per pass (shared) or fresh weights per
        item and pass (independent).

        Args:
            x: ``[batch, ...]`` or ``[batch * n, ...]`` (``[rows, *tokens, d]`` for linear
                layers).

        Returns:
            The layer's output, one row per item and pass under a context.
        """
        ctx = self.context
        if ctx is not None and x.ndim > 2 and not self.conv:  # tokens [B, T, d]
            return self.over_tokens(x, self.forward)
        if ctx is None:
            if not self.training:
                return self._op(x, self.weight_mu, self.bias_mu)
            w, b = self.posterior_sample()
            return self._op(x, w[0], None if b is None else b[0])
        if ctx.mode == "shared":
            w, b = self.shared_draws(ctx, lambda: self._per_pass(ctx), "weights")
            return self.apply_per_sample(x, w, b, ctx)
        return self._independent(self.rows_of(x, ctx), ctx)

    def _per_pass(self, ctx: SamplingContext) -> tuple[torch.Tensor, torch.Tensor | None]:
        with torch.no_grad():
            ws, bs = [], []
            for g in ctx.generators:
                w, b = self.posterior_sample(g)
                ws.append(w[0])
                bs.append(None if b is None else b[0])
            self.source.count(ctx.n * sum(mu.numel() for mu, _ in self._pairs()))
            return torch.stack(ws), None if bs[0] is None else torch.stack(bs)

    def _normals(self, ctx: SamplingContext, name: str, numel: int, device) -> torch.Tensor:
        """Counter-based standard normals ``[batch * n, numel]`` keyed by item and pass."""
        ints = neural_noise.counter_ints(ctx, f"{self.layer_name}/{name}", numel, 24, device)
        return GaussianSource.from_uniform_ints(ints, 24).reshape(ctx.batch * ctx.n, numel)

    def _independent(self, x: torch.Tensor, ctx: SamplingContext) -> torch.Tensor:
        """Fresh weights for every item and pass."""
        with torch.no_grad():
            w_sigma = F.softplus(self.weight_rho)
            b_sigma = None if self.bias_rho is None else F.softplus(self.bias_rho)
            if not self.conv:
                mean = F.linear(x, self.weight_mu, self.bias_mu)
                var = F.linear(x * x, w_sigma ** 2, None if b_sigma is None else b_sigma ** 2)
                z = self._normals(ctx, "pre-activation", mean.shape[1], x.device)
                self.source.count(len(x) * sum(mu.numel() for mu, _ in self._pairs()))
                return mean + var.sqrt() * z
            numel = self.weight_mu.numel()
            z = self._normals(ctx, "weights", numel, x.device).reshape(len(x),
                                                                     *self.weight_mu.shape)
            w = self.weight_mu + w_sigma * z
            b = None
            if self.bias_mu is not None:
                zb = self._normals(ctx, "biases", self.bias_mu.numel(), x.device)
                b = self.bias_mu + b_sigma * zb
            self.source.count(len(x) * sum(mu.numel() for mu, _ in self._pairs()))
            return self.apply_per_row(x, w, b)


class BayesLinear(BayesLayer):
    """A mean-field Gaussian linear layer.

    Args:
        in_features: inputs per item.
        out_features: outputs per item.
        bias: whether the layer has a (Gaussian) bias.
        prior_sigma: the standard deviation of the N(0, prior_sigma^2) prior.

    Raises:
        ConfigError: for a ``prior_sigma`` that is not positive and finite.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 prior_sigma: float = 0.1) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._init_posterior((out_features, in_features), out_features, in_features, bias,
                             prior_sigma)

    def extra_repr(self) -> str:
        """Sizes and prior, shown by ``repr``."""
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"prior_sigma={self.prior_sigma}")


class BayesConv2d(BayesLayer):
    """A mean-field Gaussian square convolution.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: the square kernel's side.
        stride: the convolution's stride.
        padding: the convolution's zero padding.
        bias: whether the layer has a (Gaussian) bias.
        prior_sigma: the standard deviation of the N(0, prior_sigma^2) prior.

    Raises:
        ConfigError: for a ``prior_sigma`` that is not positive and finite.
    """

    conv = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True, prior_sigma: float = 0.1) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self._init_posterior((out_channels, in_channels, kernel_size, kernel_size),
                             out_channels, in_channels * kernel_size ** 2, bias, prior_sigma)

    def extra_repr(self) -> str:
        """Sizes, geometry and prior, shown by ``repr``."""
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, prior_sigma={self.prior_sigma}")


def from_trained(layer: nn.Linear | nn.Conv2d, delta: float = 0.1, prior_sigma: float = 0.1,
                 name: str = "") -> BayesLayer:
    """The Bayesian twin of a trained layer, MOPED-style (Krishnan et al. 2020): the posterior
    mean is the trained weight, its standard deviation ``delta * |w|`` (floored at 1e-6), the
    prior N(0, prior_sigma^2).

    Args:
        layer: the trained ``nn.Linear`` or square, ungrouped ``nn.Conv2d``.
        delta: the posterior's initial standard deviation relative to ``|w|``, in (0, 1).
        prior_sigma: the prior's standard deviation.
        name: the layer's name in the network (it keys the counter-based draws).

    Returns:
        The twin, a [`BayesLinear`][synsample.nn.bayes.BayesLinear] or
        [`BayesConv2d`][synsample.nn.bayes.BayesConv2d], ready to fine-tune on the ELBO.

    Raises:
        ConfigError: for ``delta`` outside (0, 1), a ``prior_sigma`` that is not positive
            and finite, or a layer of another kind.
    """
    if not 0 < delta < 1:
        raise ConfigError(f"delta, the posterior's initial sigma relative to |w|, must lie in "
                          f"(0, 1), got {delta}")
    if isinstance(layer, nn.Conv2d):
        from synsample.nn.dropout import plain_conv

        kernel, stride, padding = plain_conv(layer, name, "Bayes-by-Backprop")
        twin: BayesLayer = BayesConv2d(layer.in_channels, layer.out_channels, kernel, stride,
                                       padding, layer.bias is not None, prior_sigma)
    elif isinstance(layer, nn.Linear):
        twin = BayesLinear(layer.in_features, layer.out_features, layer.bias is not None,
                           prior_sigma)
    else:
        raise ConfigError(f"layer {name or '?'} is a {type(layer).__name__}; Bayes-by-Backprop "
                          "converts nn.Linear and nn.Conv2d layers: include only those")
    with torch.no_grad():
        pairs = [(layer.weight, twin.weight_mu, twin.weight_rho)]
        if layer.bias is not None:
            pairs.append((layer.bias, twin.bias_mu, twin.bias_rho))
        for trained, mu, rho in pairs:
            mu.copy_(trained)
            sigma = (delta * trained.abs()).clamp(min=1e-6)
            rho.copy_(torch.log(torch.expm1(sigma)))  # softplus^-1
    twin.layer_name = name
    return twin.to(layer.weight.device)


def kl_divergence(model: nn.Module) -> torch.Tensor | None:
    """The KL term of every Bayesian layer of ``model`` (None if it has none).

    Args:
        model: a network, with or without Bayesian layers.

    Returns:
        The sum of the layers' [`BayesLayer.kl`][synsample.nn.bayes.BayesLayer.kl], or None.
    """
    terms = [m.kl() for m in model.modules() if isinstance(m, BayesLayer)]
    return torch.stack(terms).sum() if terms else None
