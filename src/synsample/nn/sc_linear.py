"""A dense layer computed by quantized stochastic computing (paper 003, sections II-III).

[`SCLinear`][synsample.nn.sc_linear.SCLinear] quantizes its inputs and weights to ``states`` levels
on [-1, 1] (eq. 1-3, the algorithm box's two ``Quantize`` lines) and computes ``s = sum_j x_j w_ij``
either exactly (``length`` None: the network "without SC") or as the parallel counter of the XNOR
products of bipolar bitstreams of ``length`` bits: ``s = (2 count - n_in L) / L``. A hidden layer's
output is the quantized sigmoid (the LUT of Fig. 4, a state in [0, 1]); the read-out returns ``s``
itself, the counter, whose largest value is the predicted class.

Two ways to get the counter, which agree in distribution (tests):

- ``path="bits"``: the hardware, bit for bit. One stream per input node (shared by every
  neuron, as the wires are) and one per weight, from the layer's
  [`BitstreamSource`][synsample.devices.BitstreamSource] (an LFSR's streams with their real
  correlations), packed, XNOR-ed and popcounted
  ([`xnor_popcount`][synsample.nn.stochastic_computing.xnor_popcount]). For checking and small runs.
- ``path="fast"`` (default): the counter of each neuron drawn from its distribution without the
  bits. Given the realised bipolar values ``x'``, ``w'`` of the streams, a product bit is 1 with
  ``q_j = (1 + x'_j w'_j) / 2``, independently over ``j`` and the L clocks, so
  ``E s = x' . w'`` and ``Var s = (n_in - x'^2 . w'^2) / L``: two matrix products, then one
  normal deviate per neuron, rounded to an integer count. The count is a sum of
  ``n_in L >= 12800`` independent bits in the paper's layers; Berry-Esseen bounds the
  distance between its distribution and the normal by ``0.56 sum rho / sigma^3`` (about 0.002
  for the first layer at L = 100, 0.005 for the read-out). The exact sum of binomials is
  [`counter_sample`][synsample.nn.stochastic_computing.counter_sample].

Sampling modes (`SamplingContext`): in ``shared`` mode a pass is
one realisation of the *weight* streams for the whole batch (every weight's stream drawn once
per pass; given it, an input stream with ``P(1) = p`` makes ``Bin(c, p) + Bin(L - c, 1 - p)``
ones against a weight stream with ``c`` ones), and each item still has its own input streams;
in ``independent`` mode every item and pass has its own streams of both. Per-item draws are
counter-based (keyed by item and sample), so votes do not depend on how items are blocked.

Device precision: each quantized state is one bias setting of the source, so the realised
bipolar value of state ``v`` is ``2 P(v) - 1`` with ``P`` the source's realised probability
(an s-MTJ at its 95% edge turns +1 into 0.9). An MTJ with device-to-device spread realises
each device's own curve: one device per input node (all items' streams on that wire) and one
per weight, each pool of each layer with its own offsets. The fast path assumes independent
bits; only the bit path shows an LFSR's pseudo-random structure.

Training (Method 2, section IV) calls the layer without a sampling context and with ``length``
set: the forward pass draws the counter (from torch's generator), the backward pass sees the
exact product (straight-through estimator for the quantizers and the counter noise).
"""

from __future__ import annotations

import torch
from torch import nn

from synsample import checks, randomness
from synsample.devices import BitstreamSource, GaussianSource, IdealBitstream
from synsample.devices.bitstreams import bipolar_probability
from synsample.errors import ConfigError
from synsample.nn import neural_noise
from synsample.nn.sampling import SampledLayer, SamplingContext, per_sample_linear
from synsample.nn.stochastic_computing import (
    apply_lut,
    levels,
    pack_bits,
    quantize,
    quantize_ste,
    sigmoid_lut,
    xnor_popcount,
)
from synsample.randomness import derive_seed

PATHS = ("fast", "bits")
#: uniform bits behind each simulated normal deviate of the fast path (not a device draw)
_NORMAL_BITS = 32


class SCLinear(SampledLayer, nn.Linear):
    """``y = LUT(count)`` (hidden) or ``s`` (read-out) for inputs in [-1, 1]; no bias.

    Args:
        in_features: inputs per item.
        out_features: outputs per item.
        states: quantization states of inputs, weights and outputs (5 or 11 in paper 003).
        length: bits per stream (None: exact arithmetic, no SC).
        source: the bitstream device (ideal by default).
        readout: return ``s`` itself (the output layer) instead of the LUT sigmoid.
        path: ``'fast'`` or ``'bits'`` (see the module docstring).

    Raises:
        ConfigError: for fewer than 2 states, a bad length or an unknown path.
    """

    def __init__(self, in_features: int, out_features: int, states: int = 5,
                 length: int | None = None, source: BitstreamSource | None = None,
                 readout: bool = False, path: str = "fast") -> None:
        nn.Linear.__init__(self, in_features, out_features, bias=False)
        quantize(torch.zeros(1), states)  # validates the number of states
        self.states = states
        self.readout = readout
        self.source = source if source is not None else IdealBitstream()
        self.layer_name = ""
        self.set_stochastic(length, path)

    def set_stochastic(self, length: int | None, path: str = "fast") -> None:
        """Compute with bitstreams of ``length`` bits (None: exact arithmetic) by ``path``.

        Args:
            length: bits per stream, or None.
            path: ``'fast'`` or ``'bits'``.

        Raises:
            ConfigError: for a length that is not a positive integer or an unknown path.
        """
        if length is not None and (not isinstance(length, int) or length < 1):
            raise ConfigError(f"a bitstream needs a positive length, got {length!r}")
        if path not in PATHS:
            raise ConfigError(f"unknown SC path {path!r}; use 'fast' (counter drawn from its "
                              "distribution) or 'bits' (every stream bit, for small runs)")
        self.length, self.path = length, path
        self._lut = None if length is None else sigmoid_lut(self.states, self.in_features, length)

    def devices(self) -> list:
        """The bitstream source.

        Returns:
            ``[source]``.
        """
        return [self.source]

    def extra_repr(self) -> str:
        """Sizes, states, length, read-out and path, shown by ``repr``."""
        return (f"{super().extra_repr()}, states={self.states}, length={self.length}, "
                f"readout={self.readout}, path={self.path}")

    # -- values ----------------------------------------------------------------------------
    def realised(self, v: torch.Tensor, pool: str) -> torch.Tensor:
        """The bipolar value ``2 P - 1`` the stream for each quantized state in ``v`` really
        carries (one bias setting per state); the gradient passes straight through. ``pool``:
        ``inputs`` (``v`` is ``[rows, in]``, one device per input node, as the wires share
        it) or ``weights`` (one device per weight), for a source whose devices differ (an
        MTJ with spread).

        Args:
            v: quantized values in [-1, 1].
            pool: ``'inputs'`` or ``'weights'``.

        Returns:
            The realised bipolar values, shaped as ``v``.
        """
        if self.source.varies_per_device:
            devices = tuple(v.shape) if pool == "weights" else tuple(v.shape[-1:])
            real = 2.0 * self.source.device_probability(bipolar_probability(v.detach()),
                                                        devices, f"{self.layer_name}/{pool}") - 1.0
            return v + (real.to(v.dtype) - v).detach()
        table = 2.0 * self.source.probability(bipolar_probability(levels(self.states))) - 1.0
        index = torch.round((v.detach() + 1.0) * ((self.states - 1) / 2.0)).long()
        return v + (table.to(v.device, v.dtype)[index] - v).detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The layer on quantized inputs and weights (paper 003, eq. 1-3).

        Exact ``s = xq . wq`` without a stream length; with one, the SC counter's estimate of
        ``s`` (drawn with torch's generator and the exact gradient without a context, from the
        context's draws with one).

        Args:
            x: ``[batch, in]`` or ``[batch * n, in]``, in [-1, 1].

        Returns:
            ``s`` (read-out) or the quantized sigmoid state (hidden), one row per item and
            pass under a context.
        """
        xq = quantize_ste(x, self.states)
        wq = quantize_ste(self.weight, self.states)
        if self.length is None:
            s = xq @ wq.T
            return s if self.readout else quantize_ste(torch.sigmoid(s), self.states)
        if self.context is None:
            s = self._training_counter(xq, wq)
            return s if self.readout else quantize_ste(torch.sigmoid(s), self.states)
        count = self._counts(xq.detach(), wq.detach(), self.context)
        if self.readout:
            return (2 * count - self.in_features * self.length).to(torch.float32) / self.length
        thresholds, states = self._lut
        return apply_lut(count, thresholds, states)

    # -- the counter -----------------------------------------------------------------------
    def _to_count(self, mean_count: torch.Tensor, var_count: torch.Tensor,
                  z: torch.Tensor) -> torch.Tensor:
        top = self.in_features * self.length
        return torch.round(mean_count + var_count.clamp_min(0).sqrt() * z).clamp(0, top)

    def _moments(self, xr: torch.Tensor, wr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of every neuron's count when all streams are independent: the
        product bits are 1 with ``q_j = (1 + x'_j w'_j) / 2``, so ``E = L sum q`` and
        ``Var = L sum q (1 - q)``."""
        d_in, length = self.in_features, self.length
        mean = (d_in + xr @ wr.T) * (length / 2.0)
        var = (d_in - (xr * xr) @ (wr * wr).T) * (length / 4.0)
        return mean, var

    def _training_counter(self, xq: torch.Tensor, wq: torch.Tensor) -> torch.Tensor:
        """``s`` with the SC counter's noise in the forward pass, the exact gradient (Method 2);
        independent streams for every item, from torch's default generator."""
        xr, wr = self.realised(xq, "inputs"), self.realised(wq, "weights")
        exact = xr @ wr.T
        with torch.no_grad():
            mean, var = self._moments(xr, wr)
            count = self._to_count(mean, var, torch.randn_like(mean))
            s = (2 * count - self.in_features * self.length) / self.length
        self.source.count(xq.shape[0] * (1 + self.out_features) * self.in_features * self.length)
        return exact + (s - exact).detach()

    def _counts(self, xq: torch.Tensor, wq: torch.Tensor, ctx: SamplingContext) -> torch.Tensor:
        """Counter values ``[batch * n, out]`` (float, integer-valued), item-major."""
        if self.path == "bits":
            return self._bit_counts(xq, wq, ctx).to(torch.float32)
        length, d_in = self.length, self.in_features
        per_pass = 1 if ctx.expanded(xq.shape[0]) else ctx.n  # rows to repeat per item
        xr, wr = self.realised(xq, "inputs"), self.realised(wq, "weights")
        rows = ctx.batch * ctx.n
        # every input node's stream, per item and pass
        self.source.count(rows * d_in * length)
        if ctx.mode == "shared":
            ones = self.shared_draws(ctx, lambda: self._weight_ones(wr, ctx), "weight-streams")
            # against a weight stream with c ones, an input stream with P(1) = p makes
            # Bin(c, p) + Bin(L - c, 1 - p) ones: mean L (1 - p) + c x', variance L p (1 - p)
            px = bipolar_probability(xr)
            offset = (length * (1 - px)).sum(1, keepdim=True).repeat_interleave(per_pass, 0)
            mean = per_sample_linear(xr, ones, ctx) + offset
            var = (length * px * (1 - px)).sum(1, keepdim=True).repeat_interleave(per_pass, 0)
            var = var.expand_as(mean)
        else:
            self.source.count(rows * self.out_features * d_in * length)
            mean, var = (m.repeat_interleave(per_pass, 0) for m in self._moments(xr, wr))
        z = GaussianSource.from_uniform_ints(
            neural_noise.counter_ints(ctx, self.layer_name, self.out_features, _NORMAL_BITS,
                                      xq.device), _NORMAL_BITS)  # [batch, n, out]
        return self._to_count(mean, var, z.reshape(rows, -1))

    def _weight_ones(self, wr: torch.Tensor, ctx: SamplingContext) -> torch.Tensor:
        """Ones in every weight's stream, one realisation per pass ``[n, out, in]``."""
        self.source.count(ctx.n * wr.numel() * self.length)
        trials = torch.full_like(wr, float(self.length))
        prob = bipolar_probability(wr)
        return torch.stack([torch.binomial(trials, prob, generator=g) for g in ctx.generators])

    def _bit_counts(self, xq: torch.Tensor, wq: torch.Tensor, ctx: SamplingContext
                    ) -> torch.Tensor:
        """The bit level: streams made by the source, XNOR and popcount, one row at a time."""
        length = self.length
        weights = self.out_features * self.in_features
        kept = ctx.n if ctx.mode == "shared" else 1
        checks.memory(weights * length * (1 + kept / 8),
                      f"layer {self.layer_name or '?'}: the bit path's weight streams ({weights:,} "
                      f"weights x {length:,} bits, {kept} passes kept)",
                      "use a shorter --stream-length or --sc-path fast")
        pw = bipolar_probability(self.realised(wq, "weights"))
        if not ctx.expanded(xq.shape[0]):
            xq = xq.repeat_interleave(ctx.n, dim=0)
        px = bipolar_probability(self.realised(xq, "inputs"))
        ident = randomness.layer_id(self.layer_name)
        items = ctx.item_indices(xq.device).tolist()
        out = torch.empty(len(px), self.out_features, dtype=torch.int64, device=xq.device)
        for r in range(len(px)):
            item, k = items[r // ctx.n], r % ctx.n
            gen = torch.Generator(device=xq.device)
            gen.manual_seed(derive_seed(ctx.seed, ident, ctx.first + k, item))
            x_words = pack_bits(self.source.realised_streams(px[r], length, gen))[None]
            if ctx.mode == "shared":
                w_words = self.shared_draws(
                    ctx, lambda: [pack_bits(self.source.realised_streams(pw, length, g))
                                  for g in ctx.generators], "weight-bits")[k]
            else:
                w_words = pack_bits(self.source.realised_streams(pw, length, gen))
            out[r] = xnor_popcount(x_words, w_words, length)[0]
        return out
