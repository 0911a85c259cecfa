"""Neural Sampling Machines (paper 002): sign neurons with always-on multiplicative noise.

A unit's pre-activation is ``u_i = sum_j (xi_ij + a_i) w_ij z_j + b_i`` (eq. 5) and its state
``z_i = sgn(u_i)`` (eq. 1, ``sgn(0) = +1``). The noise ``xi`` is Bernoulli blank-out
(``xi ~ Bernoulli(p)``) or Gaussian (``xi ~ N(1, sigma^2)``), drawn from a synsample device
model, in training and inference alike. With ``z`` in {-1, +1} the firing probability is

    P(z_i = 1 | z) = 1/2 (1 + erf(v_i . z + b_i / (sqrt(2 Var xi) ||w_i||)))      (eq. 3-4)

with ``v_i = beta_i w_i / ||w_i||``: weight normalisation (section 2.2). ``beta`` is the trained
parameter; ``a = beta sqrt(2 Var xi) - E xi`` follows from it (Bernoulli:
``beta = (p + a) / sqrt(2 p (1 - p))``, Gaussian: ``beta = (1 + a) / sqrt(2 sigma^2)``), with the
moments the device really realises (a 4-bit coin or Gaussian source has its own).

Training (section 2.3, SI 4.2): the forward pass propagates the sampled binary states, the
backward pass the gradient of their expectation ``E z_i = 2 P - 1 = erf(.)``; autograd
through the normalised weights gives eq. 6-7 (tested). Linear layers put the noise on every
synapse; convolutions on every input neuron (SI 4.3, eq. 9-11), as the paper does.

Options that reproduce the released code (nmi-lab/neural_sampling_machines) where it departs
from the paper, named so that nobody takes them for the paper's method:

- ``site="input"``: one noise value per input neuron, shared by every output (the released
  ``NSMLinear_`` multiplies the input by the mask); the paper's linear layers are per synapse.
- ``estimator="released"``: the released forward pass returns ``2 X - 1`` with ``X`` a
  BinConcrete sample of the firing probability, logit ``log(phi)``, in training *and* inference;
  ``sgn(u)`` is computed there but not used. The paper propagates ``sgn(u)``.
- ``estimator="binconcrete"``: SI 4.6 with the logit of the binary Concrete distribution
  (Maddison et al.), ``log(phi) - log(1 - phi)``, temperature 1, in training; inference uses
  ``sgn(u)``.
- the released code leaves the data-dependent initialisation (eq. 8) switched off; here it is
  [`data_dependent_init_`][synsample.nn.nsm.data_dependent_init_], and training runs it unless told
  not to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from synsample import randomness
from synsample.devices import GaussianSource, IdealCoin, NoiseSource, RandomSource
from synsample.errors import ConfigError
from synsample.nn.neural_noise import bernoulli_field, normal_field, uniform_ints
from synsample.nn.sampling import SampledLayer, counter_coinflip, per_sample_linear

SITES = ("synapse", "input")
ESTIMATORS = ("erf", "binconcrete", "released")
#: floor of the batch standard deviation in the data-dependent initialisation, as a fraction
#: of the layer's median: a unit whose input never varies on the batch (a convolution window on
#: MNIST's blank border) would otherwise get beta = 1 / 0
INIT_MIN_STD = 0.1


def sgn(u: torch.Tensor) -> torch.Tensor:
    """+1 where ``u >= 0``, -1 elsewhere, as float32 (paper 002, eq. 1).

    Args:
        u: pre-activations.

    Returns:
        The states ``z``, same shape, float32.
    """
    return (u >= 0).to(torch.float32).mul_(2.0).sub_(1.0)  # faster than torch.where


@dataclass(frozen=True)
class Noise:
    """The multiplicative noise ``xi`` of paper 002: ``bernoulli`` with probability ``level``
    (blank-out, bNSM) or ``gaussian`` with mean 1 and standard deviation ``level`` (gNSM).

    Attributes:
        kind: ``'bernoulli'`` or ``'gaussian'``.
        level: ``p`` for blank-out (``0 < p < 1``), ``sigma`` for Gaussian (``> 0``).

    Raises:
        ConfigError: for an unknown kind or a level out of range.
    """

    kind: str
    level: float

    def __post_init__(self) -> None:
        if self.kind == "bernoulli" and not 0.0 < self.level < 1.0:
            raise ConfigError(f"blank-out noise needs 0 < p < 1, got {self.level}")
        if self.kind == "gaussian" and not self.level > 0.0:
            raise ConfigError(f"Gaussian noise needs sigma > 0, got {self.level}")
        if self.kind not in ("bernoulli", "gaussian"):
            raise ConfigError(f"unknown noise {self.kind!r}; use bernoulli:P or gaussian:SIGMA")

    @classmethod
    def parse(cls, spec: str | Noise) -> Noise:
        """Read ``"bernoulli:0.5"`` or ``"gaussian:1"``.

        Args:
            spec: ``KIND:LEVEL``, or a [`Noise`][synsample.nn.nsm.Noise] (returned as it is).

        Returns:
            The noise.

        Raises:
            ConfigError: for a spec that cannot be read.
        """
        if isinstance(spec, Noise):
            return spec
        kind, _, level = str(spec).partition(":")
        try:
            number = float(level)
        except ValueError:
            raise ConfigError(f"cannot read noise {spec!r}; write bernoulli:P (e.g. "
                              "bernoulli:0.5) or gaussian:SIGMA (e.g. gaussian:1)") from None
        return cls(kind.strip().lower(), number)

    def __str__(self) -> str:
        return f"{self.kind}:{self.level:g}"

    def default_source(self) -> NoiseSource:
        """The ideal device for this noise.

        Returns:
            An ideal coin for blank-out noise, an ideal Gaussian source for Gaussian noise.
        """
        return IdealCoin() if self.kind == "bernoulli" else GaussianSource()

    def check_source(self, source: NoiseSource) -> NoiseSource:
        """``source`` if it can make this noise, else a one-line error.

        Args:
            source: the device model offered.

        Returns:
            ``source``.

        Raises:
            ConfigError: for a Gaussian source with blank-out noise or a coin with Gaussian
                noise.
        """
        want = RandomSource if self.kind == "bernoulli" else GaussianSource
        if not isinstance(source, want):
            raise ConfigError(f"{self} noise needs a {want.__name__} device, got {source!r}")
        return source


class NSMLayer(SampledLayer):
    """What NSM linear and convolution layers share: parameters ``weight``, ``bias``, ``beta``,
    the noise, its device, and the sampled forward pass.

    Args:
        weight_shape: the weight's shape, output units first.
        unit_shape: the shape of ``beta`` (one per output unit).
        bias: whether the layer has a bias.
        noise: the multiplicative noise ``xi`` (a [`Noise`][synsample.nn.nsm.Noise] or its spec).
        source: the device that draws it (default: the noise's ideal device).
        site: ``'synapse'`` (the paper's) or ``'input'`` (one value per input neuron).
        estimator: ``'erf'`` (the paper's), ``'binconcrete'`` or ``'released'`` (see the
            module docstring).
        name: the layer's name in the network (it keys the counter-based draws).

    Raises:
        ConfigError: for an unknown site or estimator, or a device that cannot make the noise.
    """

    def __init__(self, weight_shape: tuple[int, ...], unit_shape: tuple[int, ...], bias: bool,
                 noise: str | Noise, source: NoiseSource | None, site: str, estimator: str,
                 name: str) -> None:
        super().__init__()
        if site not in SITES:
            raise ConfigError(f"unknown noise site {site!r}; use one of {', '.join(SITES)}")
        if estimator not in ESTIMATORS:
            raise ConfigError(f"unknown estimator {estimator!r}; use one of "
                              f"{', '.join(ESTIMATORS)}")
        self.noise = Noise.parse(noise)
        self.source = self.noise.check_source(source or self.noise.default_source())
        self.site = site
        self.estimator = estimator
        self.layer_name = name
        self.weight = nn.Parameter(torch.empty(weight_shape))
        self.bias = nn.Parameter(torch.zeros(weight_shape[0])) if bias else None
        self.beta = nn.Parameter(torch.ones(unit_shape))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # PyTorch's Linear/Conv default
        #: keep the argument of erf of the last training call in ``last_argument`` (Fig. 2)
        self.trace_argument = False
        self.last_argument: torch.Tensor | None = None
        self._operands: tuple[tuple, tuple[int, torch.Tensor, torch.Tensor]] | None = None

    # -- what the subclasses define ------------------------------------------------------
    def _op(self, z: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _per_channel(self, t: torch.Tensor) -> torch.Tensor:
        """An ``[out]`` tensor shaped to broadcast over the op's output."""
        raise NotImplementedError

    def _check_input(self, z: torch.Tensor) -> None:
        raise NotImplementedError

    # -- eq. 3-5 ---------------------------------------------------------------------------
    def devices(self) -> list[NoiseSource]:
        """The noise's device.

        Returns:
            ``[source]``.
        """
        return [self.source]

    def moments(self) -> tuple[float, float]:
        """``(E xi, Var xi)`` as the device realises them.

        Returns:
            ``(p, p (1 - p))`` for blank-out noise with the realised ``p``,
            ``(1, sigma^2 Var e)`` for Gaussian noise.

        Raises:
            ConfigError: when the device realises ``p`` as 0 or 1.
        """
        if self.noise.kind == "bernoulli":
            p = float(self.source.probability(torch.tensor(self.noise.level)))
            if not 0.0 < p < 1.0:
                raise ConfigError(f"{self.source!r} realises p = {self.noise.level} as {p}: "
                                  "the noise vanishes; use more bits")
            return p, p * (1.0 - p)
        return 1.0, self.noise.level ** 2 * self.source.variance

    def a(self) -> torch.Tensor:
        """``a = beta sqrt(2 Var xi) - E xi`` per unit (paper 002, section 2.1, eq. 5).

        Returns:
            ``a``, shaped as ``beta``.
        """
        mean, var = self.moments()
        return self.beta * math.sqrt(2.0 * var) - mean

    def norms(self) -> torch.Tensor:
        """``||w_i||`` per output (paper 002, eq. 4 and 11).

        Returns:
            ``[out]`` L2 norms over each output's weights.
        """
        return self.weight.flatten(1).norm(dim=1)

    def argument(self, z: torch.Tensor) -> torch.Tensor:
        """The argument of erf in eq. 3: ``E(u) / sqrt(2 Var(u))`` for inputs ``z`` in {-1, 1},
        ``beta * (w / ||w||) . z + b / (sqrt(2 Var xi) ||w||)`` (paper 002, eq. 3-4, 10).

        Args:
            z: inputs in {-1, 1}, as the layer takes them.

        Returns:
            The argument per output unit of every row.
        """
        _, var = self.moments()
        norms = self.norms()
        shape = (-1,) + (1,) * (self.weight.ndim - 1)
        s = self.beta * self._op(z, self.weight / norms.reshape(shape))
        if self.bias is not None:
            s = s + self._per_channel(self.bias / (math.sqrt(2.0 * var) * norms))
        return s

    def firing_probability(self, z: torch.Tensor) -> torch.Tensor:
        """``P(z_i = 1 | z) = (1 + erf(argument)) / 2`` (paper 002, eq. 3-4).

        Args:
            z: inputs in {-1, 1}.

        Returns:
            The firing probability per output unit of every row.
        """
        return 0.5 * (1.0 + torch.erf(self.argument(z)))

    # -- sampling --------------------------------------------------------------------------
    def _rows(self, z: torch.Tensor) -> torch.Tensor:
        """Every sample needs its own noise: under a context, inputs become ``[batch * n]``
        rows (item-major)."""
        ctx = self.context
        if ctx is None or ctx.expanded(z.shape[0]):
            return z
        return z.repeat_interleave(ctx.n, dim=0)

    def _field_shape(self, field: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """A field ``[batch | 1, n | 1, numel]`` as rows shaped like ``z``."""
        ctx = self.context
        lead = (z.shape[0], 1) if ctx is None else (ctx.batch, ctx.n)
        return field.expand(*lead, field.shape[-1]).reshape(z.shape)

    def _input_noise(self, z: torch.Tensor) -> torch.Tensor:
        """``xi`` per input neuron of every row (SI 4.3)."""
        numel = z[0].numel()
        if self.noise.kind == "bernoulli":
            xi = bernoulli_field(self, self.layer_name, self.source,
                                 torch.tensor(self.noise.level), z.shape[0], numel, z.device)
            return self._field_shape(xi, z).to(z.dtype)
        e = normal_field(self, self.layer_name, self.source, z.shape[0], numel, z.device)
        return 1.0 + self.noise.level * self._field_shape(e, z)

    def _synapse_noise_sum(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def preactivation(self, z: torch.Tensor) -> torch.Tensor:
        """One sample of ``u`` (paper 002, eq. 5) per row of ``z`` (rows as
        [`forward`][synsample.nn.nsm.NSMLayer.forward] makes them).

        Args:
            z: inputs ``[batch, ...]`` or ``[batch * n, ...]``.

        Returns:
            The pre-activations, one row per item and sample under a context.
        """
        if self.site == "input":
            rows = self._rows(z)  # the a-term is the same for every sample: once per item
            u = self._op(self._input_noise(rows) * rows, self.weight)
            u = u + (self._op(z, self.weight) * self.a()).repeat_interleave(
                rows.shape[0] // z.shape[0], dim=0)
        else:
            u = self._synapse_noise_sum(z)
        return u if self.bias is None else u + self._per_channel(self.bias)

    def _logistic(self, rows: int, numel: int, device: torch.device) -> torch.Tensor:
        """Logistic noise ``log U - log(1 - U)`` per (row, unit), from 24-bit uniforms."""
        u = (uniform_ints(self, self.layer_name + "/logistic", self.source, rows, numel, 24,
                          device).to(torch.float64) + 0.5) / 2.0 ** 24
        return (torch.log(u) - torch.log1p(-u)).to(torch.float32)

    def _traced(self, s: torch.Tensor) -> torch.Tensor:
        """``s``, kept in ``last_argument`` when the layer is traced (Fig. 2)."""
        if self.trace_argument:
            self.last_argument = s.detach()
        return s

    def _binconcrete(self, z: torch.Tensor, released: bool, learning: bool) -> torch.Tensor:
        """``2 X - 1``, ``X = sigmoid(L + logit)`` (SI 4.6, eq. 14, temperature 1)."""
        z = self._rows(z)
        s = self.argument(z)
        phi = 0.5 * (1.0 + torch.erf(self._traced(s) if learning else s))  # eq. 3
        logit = torch.log(phi + 1e-12)
        if not released:
            logit = logit - torch.log1p(-phi + 1e-12)
        noise = self._logistic(z.shape[0], phi[0].numel(), z.device)
        return 2.0 * torch.sigmoid(self._field_shape(noise, phi) + logit) - 1.0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Sampled binary states ``sgn(u)`` (paper 002, eq. 1 and 5).

        In training (no context, gradients on) the states carry the gradient of
        ``E z = erf(argument)`` (section 2.3); the ``'binconcrete'`` and ``'released'``
        estimators return ``2 X - 1`` instead (SI 4.6, eq. 14).

        Args:
            z: inputs in {-1, 1}, ``[batch, ...]`` or ``[batch * n, ...]``.

        Returns:
            States in {-1, 1} (values in (-1, 1) for the BinConcrete estimators), one row per
            item and sample under a context.
        """
        self._check_input(z)
        z = z.to(self.weight.dtype)
        learning = self.context is None and torch.is_grad_enabled() and self.weight.requires_grad
        if self.estimator == "released" or learning and self.estimator == "binconcrete":
            return self._binconcrete(z, released=self.estimator == "released",
                                     learning=learning)
        spikes = sgn(self.preactivation(z))
        if not learning:
            return spikes
        s = self._traced(self.argument(z))
        expected = torch.erf(s)  # E z = 2 P(z = 1) - 1: the gradient path of section 2.3
        return spikes + (expected - expected.detach())

    # -- eq. 8 -----------------------------------------------------------------------------
    @torch.no_grad()
    def init_from_(self, z: torch.Tensor) -> dict[str, float]:
        """Eq. 8 on a batch of inputs ``z``: ``beta = 1 / sigma`` per unit and
        ``b = -mu ||w|| sqrt(2 Var xi) / sigma``, with ``mu``, ``sigma`` the batch mean and
        standard deviation of ``(w / ||w||) . z``, so that the argument of erf has zero mean
        and unit variance on the batch (per unit; for a convolution, whose bias is per channel,
        zero median over the channel's positions, robust to the border units whose input never
        varies). ``sigma`` is floored at [`INIT_MIN_STD`][synsample.nn.nsm.INIT_MIN_STD] times the
        layer's median (a unit whose input is constant on the batch would get ``beta = 1 / 0``); the
        floor does not bind in the MLPs of paper 002.

        Args:
            z: the layer's inputs on the batch.

        Returns:
            ``{"mean", "std"}`` of the argument of erf after the init (the std averaged over
            units).
        """
        z = z.to(self.weight.dtype)
        norms = self.norms()
        t = self._op(z, self.weight / norms.reshape((-1,) + (1,) * (self.weight.ndim - 1)))
        mu, sigma = t.mean(dim=0), t.std(dim=0)
        sigma = sigma.clamp(min=max(INIT_MIN_STD * sigma.median().item(), 1e-6))
        self.beta.copy_(1.0 / sigma)
        if self.bias is not None:
            _, var = self.moments()
            shift = (mu / sigma).reshape(mu.shape[0], -1).median(dim=1).values
            self.bias.copy_(-shift * norms * math.sqrt(2.0 * var))
        s = self.argument(z)
        return {"mean": s.mean().item(), "std": s.std(dim=0).mean().item()}


class NSMLinear(NSMLayer):
    """An NSM fully connected layer, noise on every synapse (paper 002, eq. 5).

    Args:
        in_features: inputs per item.
        out_features: output units.
        bias: whether the layer has a bias.
        noise: the multiplicative noise (a [`Noise`][synsample.nn.nsm.Noise] or its spec).
        source: the device that draws it (default: the noise's ideal device).
        site: ``'synapse'`` (the paper's) or ``'input'`` (the released code's).
        estimator: ``'erf'``, ``'binconcrete'`` or ``'released'``.
        name: the layer's name in the network.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 noise: str | Noise = "bernoulli:0.5", source: NoiseSource | None = None,
                 site: str = "synapse", estimator: str = "erf", name: str = "") -> None:
        super().__init__((out_features, in_features), (out_features,), bias, noise, source,
                         site, estimator, name)

    @property
    def in_features(self) -> int:
        """Inputs per item."""
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        """Output units."""
        return self.weight.shape[0]

    def extra_repr(self) -> str:
        """Sizes, noise, device, site and estimator, shown by ``repr``."""
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"noise={self.noise}, source={self.source!r}, site={self.site}, "
                f"estimator={self.estimator}")

    def _op(self, z: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.linear(z, weight)

    def _per_channel(self, t: torch.Tensor) -> torch.Tensor:
        return t

    def _check_input(self, z: torch.Tensor) -> None:
        if z.ndim != 2 or z.shape[1] != self.in_features:
            raise ConfigError(f"layer {self.layer_name or '?'} expects [batch, "
                              f"{self.in_features}] inputs, got {tuple(z.shape)}")

    def _blank_out_threshold(self) -> tuple[int, int]:
        """``(bits, t)``: a synapse transmits when a uniform ``bits``-bit integer is below
        ``t`` (the device's comparator for ``p``, the same for every synapse)."""
        bits, t = self.source.counter_thresholds(
            self.source.probability(torch.tensor(self.noise.level)))
        return bits, int(t)

    def _kernel_operands(self) -> tuple[int, torch.Tensor, torch.Tensor]:
        """``(bits, thresholds [in, out], w^T [in, out])`` for the counter-based kernel, kept
        while weight, noise and device are unchanged (every chunk and tile of a run reuses
        them, and the kernel then reuses its padded form of them too)."""
        key = (self.weight._version, self.weight.data_ptr(), repr(self.source), self.noise)
        if self._operands is None or self._operands[0] != key:
            bits, t = self._blank_out_threshold()
            thr = torch.full((self.in_features, self.out_features), t, dtype=torch.int32)
            value = self.weight.detach().T.to(torch.float32).contiguous()
            self._operands = (key, (bits, thr, value))
        return self._operands[1]

    def _synapse_noise_sum(self, z: torch.Tensor) -> torch.Tensor:
        """``sum_j (xi_ij + a_i) w_ij z_j`` with a fresh ``xi`` per synapse of every row."""
        ctx = self.context
        if ctx is not None and ctx.mode == "shared":
            return per_sample_linear(z, self.shared_draws(ctx, lambda: self._shared_weights(ctx)),
                                     ctx)
        if ctx is None:
            xs, n, items, first = z[:, None, :], 1, torch.arange(z.shape[0]), 0
            seed = int(torch.randint(0, 2**62, (1,)).item())
        else:
            b = ctx.batch
            xs = z.reshape(b, ctx.n, -1) if ctx.expanded(z.shape[0]) else z[:, None, :]
            n, items, first, seed = ctx.n, ctx.item_indices(z.device), ctx.first, ctx.seed
        rows = xs.shape[0] * n
        linear = F.linear(xs, self.weight)  # [b, n | 1, out]
        if self.noise.kind == "gaussian":
            if not self.source.ideal:
                raise ConfigError(f"layer {self.layer_name or '?'}: a {self.source.bits}-bit "
                                  "Gaussian source on every synapse is sampled in shared mode "
                                  "only; use --mode shared, or site='input'")
            # xi = 1 + sigma e on every synapse: given z, sum_j sigma e_ij w_ij z_j is exactly
            # N(0, sigma^2 sum_j w_ij^2 z_j^2), one normal per unit. The hardware draws one
            # deviate per synapse: that is what the device counts.
            e = normal_field(self, self.layer_name, self.source, rows, self.out_features,
                             z.device).reshape(xs.shape[0], n, -1)
            self.source.count(rows * self.out_features * (self.in_features - 1))
            std = F.linear(xs * xs, self.weight * self.weight).sqrt() * (
                self.noise.level * math.sqrt(self.source.variance))
            u = linear * (1.0 + self.a()) + std * e
        else:
            bits, thr, value = self._kernel_operands()
            key = randomness.layer_key(seed, randomness.layer_id(self.layer_name))
            y, coins = counter_coinflip(self, xs.to(torch.float32).contiguous(), n, thr, value,
                                        bits, items, first, key)
            self.source.count(coins)
            u = y.to(z.dtype) + linear * self.a()
        return u.reshape(rows, self.out_features)

    def _shared_weights(self, ctx) -> torch.Tensor:
        """``(xi_k + a) * W`` for every sample ``k`` of a shared-mode context, ``[n, out, in]``."""
        shape = (self.out_features, self.in_features)
        if self.noise.kind == "bernoulli":
            bits, limit = self._blank_out_threshold()
            xi = torch.stack([torch.randint(0, 2 ** bits, shape, generator=g,
                                            device=self.weight.device) < limit
                              for g in ctx.generators]).to(self.weight.dtype)
            self.source.count(ctx.n * self.weight.numel())
        else:
            xi = 1.0 + self.noise.level * torch.stack(
                [self.source.normal(shape, g, self.weight.device) for g in ctx.generators])
        return (xi + self.a()[None, :, None]) * self.weight


class NSMConv2d(NSMLayer):
    """An NSM convolution with noise on every input neuron (SI 4.3, eq. 9-11); ``beta`` is per
    output unit (channel and position, as eq. 10 writes it), the bias per channel.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: the square kernel's side.
        input_size: the input's ``(height, width)`` (``beta`` has one value per output
            position).
        stride: the convolution's stride.
        padding: the convolution's zero padding.
        bias: whether the layer has a bias.
        noise: the multiplicative noise (a [`Noise`][synsample.nn.nsm.Noise] or its spec).
        source: the device that draws it.
        site: must be ``'input'``.
        estimator: ``'erf'``, ``'binconcrete'`` or ``'released'``.
        name: the layer's name in the network.

    Raises:
        ConfigError: for another site, or a kernel that does not fit the input.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 input_size: tuple[int, int], stride: int = 1, padding: int = 0,
                 bias: bool = True, noise: str | Noise = "bernoulli:0.5",
                 source: NoiseSource | None = None, site: str = "input", estimator: str = "erf",
                 name: str = "") -> None:
        if site != "input":
            raise ConfigError(f"layer {name or '?'}: convolutions put the noise on every input "
                              "neuron (SI 4.3); synaptic noise is for linear layers")
        self.stride, self.padding, self.input_size = stride, padding, tuple(input_size)
        h, w = ((s + 2 * padding - kernel_size) // stride + 1 for s in input_size)
        if h < 1 or w < 1:
            raise ConfigError(f"a {kernel_size}x{kernel_size} convolution does not fit inputs of "
                              f"{input_size}")
        super().__init__((out_channels, in_channels, kernel_size, kernel_size),
                         (out_channels, h, w), bias, noise, source, site, estimator, name)

    def extra_repr(self) -> str:
        """Sizes, geometry, noise, device and estimator, shown by ``repr``."""
        c_out, c_in, k, _ = self.weight.shape
        return (f"{c_in}, {c_out}, kernel_size={k}, input_size={self.input_size}, "
                f"stride={self.stride}, padding={self.padding}, noise={self.noise}, "
                f"source={self.source!r}, estimator={self.estimator}")

    def _op(self, z: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.conv2d(z, weight, stride=self.stride, padding=self.padding)

    def _per_channel(self, t: torch.Tensor) -> torch.Tensor:
        return t[:, None, None]

    def _check_input(self, z: torch.Tensor) -> None:
        c_in = self.weight.shape[1]
        if z.ndim != 4 or z.shape[1] != c_in or tuple(z.shape[2:]) != self.input_size:
            raise ConfigError(f"layer {self.layer_name or '?'} expects [batch, {c_in}, "
                              f"{self.input_size[0]}, {self.input_size[1]}] inputs, got "
                              f"{tuple(z.shape)}")


class StochasticSigmoidLinear(SampledLayer):
    """The StNN baseline of paper 002 section 3.1 (its ref. [27]): binary units in {-1, +1}
    with ``P(z_i = 1 | z) = sigmoid(w_i . z)``, no bias; gradients through ``E z = 2 P - 1``,
    as for the NSM. The draw is a device coin per unit.

    Args:
        in_features: inputs per item.
        out_features: output units.
        coin: the device that draws the units (an ideal coin by default).
        name: the layer's name in the network.
    """

    def __init__(self, in_features: int, out_features: int, coin: RandomSource | None = None,
                 name: str = "") -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.coin = coin if coin is not None else IdealCoin()
        self.layer_name = name
        self.trace_argument = False
        self.last_argument: torch.Tensor | None = None

    def extra_repr(self) -> str:
        """Sizes and coin, shown by ``repr``."""
        return (f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}, "
                f"coin={self.coin!r}")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Sampled units in {-1, +1}, +1 with probability ``sigmoid(w_i . z)``.

        Args:
            z: ``[batch, in]`` or ``[batch * n, in]``.

        Returns:
            ``[rows, out]``, one row per item and sample under a context; in training the
            states carry the gradient of ``E z = 2 P - 1``.
        """
        if z.ndim != 2 or z.shape[1] != self.weight.shape[1]:
            raise ConfigError(f"layer {self.layer_name or '?'} expects [batch, "
                              f"{self.weight.shape[1]}] inputs, got {tuple(z.shape)}")
        ctx = self.context
        z = z.to(self.weight.dtype)
        if ctx is not None and not ctx.expanded(z.shape[0]):
            z = z.repeat_interleave(ctx.n, dim=0)
        s = F.linear(z, self.weight)
        p = torch.sigmoid(s)
        lead = (z.shape[0], 1) if ctx is None else (ctx.batch, ctx.n)
        with torch.no_grad():
            fire = bernoulli_field(self, self.layer_name, self.coin, p.reshape(*lead, -1),
                                   z.shape[0], p.shape[1], z.device)
            spikes = torch.where(fire, 1.0, -1.0).reshape(p.shape)
        if ctx is not None or not torch.is_grad_enabled():
            return spikes
        if self.trace_argument:
            self.last_argument = s.detach()
        expected = 2.0 * p - 1.0
        return spikes + (expected - expected.detach())


class Binarize(nn.Module):
    """Paper 002 section 3.3: inputs to -1/+1 with eq. 1, ``sgn(2x - 1)`` for ``x`` in [0, 1]
    (the released code's reading): uint8 pixels ``>= 128`` become +1, the rest -1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in {-1, +1} as float32 (uint8 pixels or floats in [0, 1]), same shape."""
        if x.dtype == torch.uint8:
            return torch.where(x >= 128, 1.0, -1.0)
        return sgn(2.0 * x.to(torch.float32) - 1.0)


class _Stop(Exception):
    pass


@torch.no_grad()
def data_dependent_init_(model: nn.Module, x: torch.Tensor) -> dict[str, dict[str, float]]:
    """Eq. 8 for every NSM layer of ``model``, first to last, on the batch ``x`` (the paper
    uses one batch of 100 training items): each layer is initialised on the inputs it gets
    from the layers before it, already initialised.

    Args:
        model: a network with NSM layers (initialised in place).
        x: the batch of inputs.

    Returns:
        Per layer name, the mean and standard deviation of the argument of erf on its batch
        after the initialisation (about 0 and 1).
    """
    stats = {}
    for name, layer in [(n, m) for n, m in model.named_modules() if isinstance(m, NSMLayer)]:
        seen: dict[str, torch.Tensor] = {}

        def capture(module, args, seen=seen):
            seen["z"] = args[0]
            raise _Stop

        handle = layer.register_forward_pre_hook(capture)
        try:
            model(x)
        except _Stop:
            pass
        finally:
            handle.remove()
        stats[name] = layer.init_from_(seen["z"])
    return stats
