"""SpinBayes' in-memory approximation (paper 004, sections 3.2-3.3): a Bayesian layer stored
as N quantized crossbars, one (or ``n``) chosen by an arbiter per layer and pass.

[`CrossbarLayer.from_bayes`][synsample.nn.crossbar.CrossbarLayer.from_bayes] takes N samples ``theta
~ q(theta)`` of a trained Bayes-by-Backprop layer (weights and biases) and quantizes each to Q bits
(eq. 3):

    theta_hat = round(clip(theta, -1, 1) (2^(Q-1) - 1)),

stored as integers (what the multi-level cells hold: int8 up to 8 bits, int16 up to 16, int32
up to [`MAX_BITS`][synsample.nn.crossbar.MAX_BITS]) with the scale ``1 / (2^(Q-1) - 1)``.
Eq. 3 clips to [-1, 1]: a trained network's weights are usually far smaller (LeNet-5's under a
N(0, 0.1^2) prior: |mu| < 0.3, most below 1/14, the first 4-bit level), so most would round to
0. ``gain="layer"`` (the default) first divides a layer's samples by the largest magnitude of
its posterior mean (weights and biases; samples beyond it are clipped, as eq. 3 clips) and
multiplies the crossbar's output back (a per-layer gain at the ADC; exact for the layer, and
BatchNorm after it would absorb it anyway). The gain does not depend on N (the largest of N
samples would grow with N and coarsen the levels). ``gain=None`` is eq. 3 as written. In a
sampled pass the layer's [`Arbiter`][synsample.devices.Arbiter] picks ``ways`` distinct crossbars
and the layer outputs the mean of their outputs (``n``-way inference; eq. 4 with ``n = 1``).
``shared`` mode: one choice per pass for the whole batch; ``independent``: one per item and
pass, from counter-based bits (votes do not depend on tiling). Outside a sampled call the layer
uses crossbar 0.
"""

from __future__ import annotations

import torch

from synsample.devices import Arbiter
from synsample.errors import ConfigError
from synsample.nn import neural_noise
from synsample.nn.bayes import BayesLayer
from synsample.nn.sampling import SamplingContext
from synsample.nn.weight_sampling import WeightSampledLayer

#: uniform bits behind each simulated arbiter bit in independent mode (the device counts 1)
_UNIFORM_BITS = 24
#: the most bits a level may have: eq. 3's levels and their float32 products stay exact
MAX_BITS = 24


def quantize_levels(theta: torch.Tensor, bits: int) -> torch.Tensor:
    """The integer level ``round(clip(theta, -1, 1) (2^(Q-1) - 1))`` (paper 004, eq. 3).

    Args:
        theta: sampled parameters.
        bits: ``Q``, 2 to [`MAX_BITS`][synsample.nn.crossbar.MAX_BITS].

    Returns:
        The levels, float, same shape, in ``[-(2^(Q-1) - 1), 2^(Q-1) - 1]``.

    Raises:
        ConfigError: for fewer than 2 bits or more than
            [`MAX_BITS`][synsample.nn.crossbar.MAX_BITS].
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 2:
        raise ConfigError(f"SpinBayes needs at least 2 bits per weight (eq. 3), got {bits!r}")
    if bits > MAX_BITS:
        raise ConfigError(f"SpinBayes stores at most {MAX_BITS} bits per weight, got {bits}")
    return torch.round(theta.clamp(-1.0, 1.0) * (2 ** (bits - 1) - 1))


class CrossbarLayer(WeightSampledLayer):
    """N quantized samples of a Bayesian layer and the arbiter that picks among them.

    Args:
        levels: ``[N, *weight_shape]`` integer weight levels, one tensor per crossbar.
        bias_levels: ``[N, out]`` integer bias levels, or None.
        bits: ``Q``, bits per stored level.
        arbiter: picks the crossbars of each pass; it must choose among N.
        conv: whether the layer is a convolution.
        stride: the convolution's stride.
        padding: the convolution's zero padding.
        gain: the per-layer factor the levels were divided by (multiplied back).

    Raises:
        ConfigError: when the arbiter's crossbar count is not N.
    """

    def __init__(self, levels: torch.Tensor, bias_levels: torch.Tensor | None, bits: int,
                 arbiter: Arbiter, conv: bool = False, stride: int = 1, padding: int = 0,
                 gain: float = 1.0) -> None:
        super().__init__()
        if arbiter.crossbars != levels.shape[0]:
            raise ConfigError(f"the arbiter chooses among {arbiter.crossbars} crossbars, the "
                              f"layer has {levels.shape[0]}")
        dtype = torch.int8 if bits <= 8 else torch.int16 if bits <= 16 else torch.int32
        self.register_buffer("levels", levels.to(dtype))
        self.register_buffer("bias_levels", None if bias_levels is None
                             else bias_levels.to(dtype))
        self.bits, self.arbiter = bits, arbiter
        self.conv, self.stride, self.padding = conv, stride, padding
        self.gain = float(gain)
        self.scale = self.gain / (2 ** (bits - 1) - 1)
        self.layer_name = ""

    @classmethod
    def from_bayes(cls, layer: BayesLayer, crossbars: int, bits: int, arbiter: Arbiter,
                   generator: torch.Generator | None = None, gain: str | None = "layer"
                   ) -> CrossbarLayer:
        """N posterior samples of a trained Bayes-by-Backprop layer, quantized to crossbars
        (paper 004, section 3.2, eq. 3).

        Args:
            layer: the trained Bayesian layer.
            crossbars: N, the samples (crossbars) to store.
            bits: ``Q``, bits per level.
            arbiter: picks among the N crossbars.
            generator: draws the samples (None: torch's default).
            gain: ``'layer'`` divides the samples by the largest ``|mu|`` of the layer before
                eq. 3 (and multiplies the output back); None applies eq. 3 as written.

        Returns:
            The crossbar layer.

        Raises:
            ConfigError: for an unknown gain.
        """
        if gain not in ("layer", None):
            raise ConfigError(f"unknown crossbar gain {gain!r}; use 'layer' or None (eq. 3)")
        with torch.no_grad():
            w, b = layer.posterior_sample(generator, crossbars)
            g = 1.0
            if gain == "layer":
                g = float(max(layer.weight_mu.abs().max(),
                              0.0 if layer.bias_mu is None else layer.bias_mu.abs().max()))
                g = g if g > 0 else 1.0
        return cls(quantize_levels(w / g, bits),
                   None if b is None else quantize_levels(b / g, bits), bits, arbiter,
                   layer.conv, layer.stride, layer.padding, g)

    @property
    def crossbars(self) -> int:
        """N, the crossbars stored."""
        return self.levels.shape[0]

    def devices(self) -> list:
        """The arbiter's coin.

        Returns:
            ``[arbiter.coin]``.
        """
        return [self.arbiter.coin]

    def crossbar(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Mean weights (and biases) of the crossbars ``index`` (``[..., ways]``).

        Args:
            index: crossbar indices, the last dimension the ways averaged.

        Returns:
            ``(weights [..., *weight_shape], biases [..., out] or None)``, dequantized
            (levels times `scale`).
        """
        ways_dim = index.dim() - 1
        w = self.levels[index].float().mean(ways_dim) * self.scale
        b = None if self.bias_levels is None else (
            self.bias_levels[index].float().mean(ways_dim) * self.scale)
        return w, b

    def extra_repr(self) -> str:
        """Crossbars, bits, ways, gain and shape, shown by ``repr``."""
        return (f"crossbars={self.crossbars}, bits={self.bits}, ways={self.arbiter.ways}, "
                f"gain={self.gain:.4g}, shape={tuple(self.levels.shape[1:])}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The mean output of the crossbars the arbiter picks (paper 004, section 3.3).

        Without a context, crossbar 0; under a context, one choice per pass (shared) or per
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
            w, b = self.crossbar(torch.zeros(1, dtype=torch.int64, device=x.device))
            return self._op(x, w, b)
        if ctx.mode == "shared":
            choice = self.shared_draws(ctx, lambda: torch.cat(
                [self.arbiter.choose(1, g, x.device) for g in ctx.generators]), "choice")
            w, b = self.crossbar(choice)  # [n, ...]
            return self.apply_per_sample(x, w, b, ctx)
        return self._per_row(x, ctx)

    def _per_row(self, x: torch.Tensor, ctx: SamplingContext) -> torch.Tensor:
        rows = self.rows_of(x, ctx)
        choice = self._row_choices(ctx, x.device)  # [rows, ways]
        out = None
        for c in range(self.crossbars):  # rows grouped by the crossbar they use
            hits = (choice == c).sum(1)
            use = hits.nonzero().flatten()
            if len(use) == 0:
                continue
            w, b = self.crossbar(torch.tensor([c], device=x.device))
            y = self._op(rows[use], w, b) * (hits[use] / self.arbiter.ways).view(
                -1, *([1] * (rows.dim() - 1)))
            if out is None:
                out = torch.zeros(len(rows), *y.shape[1:], device=x.device)
            out.index_add_(0, use, y)
        return out

    def _row_choices(self, ctx: SamplingContext, device) -> torch.Tensor:
        """Each item-sample row's ``ways`` crossbars from counter-based arbiter bits; a
        rejected draw (index >= N, or a repeat) is redrawn under the next attempt's key."""
        arbiter = self.arbiter
        rows = ctx.batch * ctx.n
        prob = arbiter.coin.probability(torch.tensor(0.5))
        threshold = int(torch.ceil(prob.double() * 2 ** _UNIFORM_BITS))
        weights = 2 ** torch.arange(arbiter.bits, device=device)
        picks = torch.full((rows, arbiter.ways), -1, dtype=torch.int64, device=device)
        for way in range(arbiter.ways):
            todo = torch.arange(rows, device=device)
            attempt = 0  # a row's j-th try uses key (way, j) whatever the other rows do
            while len(todo):
                ints = neural_noise.counter_ints(
                    ctx, f"{self.layer_name}/arbiter/{way}/{attempt}", arbiter.bits,
                    _UNIFORM_BITS, device)
                attempt += 1
                bits = ints.reshape(rows, arbiter.bits)[todo] < threshold
                arbiter.coin.count(bits.numel())
                value = (bits.to(torch.int64) * weights).sum(-1)
                ok = (value < arbiter.crossbars) & ~(picks[todo] == value[:, None]).any(1)
                picks[todo[ok], way] = value[ok]
                todo = todo[~ok]
        return picks

