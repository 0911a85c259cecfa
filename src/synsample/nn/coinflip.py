"""The coin-flip linear layer of scANN (paper 000, section II.A, eq. 3)."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from synsample import kernels, paths, randomness
from synsample.devices import IdealCoin, RandomSource
from synsample.errors import ConfigError
from synsample.nn.sampling import (
    SampledLayer,
    SamplingContext,
    counter_coinflip,
    pass_draws,
    per_sample_linear,
)

#: how a layer's weights may be scaled to use the whole coin range (None: read as they are)
GAINS = ("row", "layer")


class CoinFlipLinear(SampledLayer):
    """A linear layer whose weights are signed Bernoulli coins (paper 000, eq. 3).

    Each weight ``w`` in [-1, 1] becomes, in every sample, ``sign(w)`` with probability
    ``|w|`` and 0 otherwise: the positive part ``Omega^p ~ Bernoulli(max(w, 0))`` and the
    negative part ``Omega^n ~ Bernoulli(max(-w, 0))`` combined into one signed binary matrix
    ``W~ = W~^p - W~^n``, so ``E[W~] = w`` (with the coin's realised probability). The bias
    stays deterministic.

    Args:
        weight: the trained weight ``[out, in]``; its values must lie in [-1, 1] unless
            ``gain`` rescales them.
        bias: the trained bias ``[out]``, or None.
        coin: the device model that draws the coins (an ideal coin by default).
        name: the layer's name in the network (for errors and per-layer device state).
        gain: ``'row'`` divides each output unit's weights by their largest ``|w|`` and
            multiplies its sampled sum back; ``'layer'`` does the same with one scale for the
            layer; None reads the weights as they are.

    Raises:
        ConfigError: for a weight that is not 2-D, has non-finite values, or (with
            ``gain=None``) values outside [-1, 1], or for an unknown ``gain``.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None,
                 coin: RandomSource | None = None, name: str = "", gain: str | None = None
                 ) -> None:
        super().__init__()
        if weight.ndim != 2:
            raise ConfigError(f"layer {name or '?'}: a coin-flip linear layer needs a 2-D weight, "
                              f"got shape {tuple(weight.shape)}")
        w = weight.detach()
        if not torch.isfinite(w).all():
            raise ConfigError(f"layer {name or '?'} has non-finite weights; retrain or repair the "
                              "checkpoint")
        top = w.abs().max().item() if w.numel() else 0.0
        rows = None
        if gain == "row" and w.numel():
            rows = w.abs().amax(1)
            rows = torch.where(rows > 0, rows, torch.ones_like(rows))
            w = w / rows[:, None]
        elif gain == "layer" and top > 0:
            w = w / top
        elif gain is not None and gain not in GAINS:
            raise ConfigError(f"unknown gain {gain!r}; use 'row' (each output unit's weights "
                              "scaled to use the whole coin range), 'layer' (one scale per "
                              "layer) or None")
        elif gain is None and top > 1.0 + 1e-6:
            raise ConfigError(f"layer {name or '?'} has weights outside [-1, 1] (max |w| = "
                              f"{top:.4g}); scANN reads weights as probabilities: train with the "
                              "[-1, 1] constraint (synsample train does), convert with "
                              "gain='row', or exclude this layer")
        self.register_buffer("weight", w.clamp(-1.0, 1.0).clone())
        #: the factor the sampled sum is multiplied by: the largest |w| of the trained layer
        #: with ``gain='layer'`` (its weights divided by it use the whole coin range), else 1
        self.output_gain = top if gain == "layer" and top > 0 else 1.0
        #: with ``gain='row'``, the largest |w| of each output unit's weights ``[out]``, which
        #: multiplies that unit's sampled sum (None otherwise)
        self.register_buffer("row_gain", rows)
        self.register_buffer("bias", None if bias is None else bias.detach().clone())
        self.coin = coin if coin is not None else IdealCoin()
        self.layer_name = name
        self.context: SamplingContext | None = None
        #: scale applied after the matmul (folded from the input scaling, see fold_input_scale)
        self.input_scale = 1.0
        # (weight version, coin), (bits, thresholds^T, sign(w)^T) of the counter-based draws
        self._comparator: tuple[tuple, tuple[int, torch.Tensor, torch.Tensor]] | None = None
        self._probability: tuple[tuple, torch.Tensor] | None = None

    @classmethod
    def from_linear(cls, linear: nn.Linear, coin: RandomSource | None = None, name: str = "",
                    gain: str | None = None) -> CoinFlipLinear:
        """The coin-flip twin of a trained ``nn.Linear`` (its weights and bias copied).

        Args:
            linear: the trained layer.
            coin: the device model that draws the coins (an ideal coin by default).
            name: the layer's name in the network.
            gain: how the weights are scaled to the coin range (see the class).

        Returns:
            The new layer.
        """
        return cls(linear.weight, linear.bias, coin, name, gain)

    @property
    def in_features(self) -> int:
        """Inputs per item."""
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        """Outputs per item."""
        return self.weight.shape[0]

    def extra_repr(self) -> str:
        """Sizes, bias, coin and gain, shown by ``repr``."""
        gain = "" if self.output_gain == 1.0 else f", output_gain={self.output_gain:.4g}"
        gain += "" if self.row_gain is None else ", row_gain"
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, coin={self.coin!r}{gain}")

    def probability(self) -> torch.Tensor:
        """``|w|`` as realised by the coin (quantized for a b-bit coin), kept while weight and
        coin are unchanged (every chunk of a run draws from it).

        Returns:
            The probability of each coin, ``[out, in]``.
        """
        key = self._weight_key()
        if self._probability is None or self._probability[0] != key:
            with torch.no_grad():  # draws compare with it; no gradient flows through them
                prob = self.coin.probability(self.weight.abs(), self.layer_name)
            self._probability = (key, prob)
        return self._probability[1]

    def _weight_key(self) -> tuple:
        """What a value computed from the weight and the coin depends on."""
        return (self.weight._version, self.weight.data_ptr(), self.weight.device,
                self.weight.dtype, id(self.coin), repr(self.coin), self.layer_name)

    def sample_weight_int8(self, generator: torch.Generator | None,
                           leading: tuple[int, ...] = (), prob: torch.Tensor | None = None
                           ) -> torch.Tensor:
        """One signed binary weight matrix per leading index, int8 values in {-1, 0, 1}.

        Args:
            generator: the generator the coin draws from (None: torch's default).
            leading: the leading shape, e.g. ``(n,)`` for one matrix per sample.
            prob: the coin probabilities (default
                [`probability`][synsample.nn.coinflip.CoinFlipLinear.probability]).

        Returns:
            ``[*leading, out, in]`` int8 (paper 000, eq. 3's ``W~``).
        """
        prob = self.probability() if prob is None else prob
        return self._signed(self.coin.draw(prob, generator, leading))

    def _signed(self, keep: torch.Tensor) -> torch.Tensor:
        """``sign(w)`` where the coin says 1, else 0 (int8): -keep is 0 or -1 (all bits set),
        so the AND keeps the sign."""
        return keep.view(torch.int8).neg() & torch.sign(self.weight).to(torch.int8)

    def sample_weight(self, generator: torch.Generator | None, leading: tuple[int, ...] = (),
                      prob: torch.Tensor | None = None) -> torch.Tensor:
        """One signed binary weight matrix per leading index, as the weight's float dtype.

        Args:
            generator: the generator the coin draws from (None: torch's default).
            leading: the leading shape, e.g. ``(n,)`` for one matrix per sample.
            prob: the coin probabilities (default
                [`probability`][synsample.nn.coinflip.CoinFlipLinear.probability]).

        Returns:
            ``[*leading, out, in]`` in the weight's dtype.
        """
        return self.sample_weight_int8(generator, leading, prob).to(self.weight.dtype)

    def _shared_draws(self, ctx: SamplingContext, dtype: torch.dtype = torch.int8
                      ) -> torch.Tensor:
        """The weights ``[n, out, in]`` of the context's samples as ``dtype``, drawn once per
        key (every tile of items of the same samples reuses them)."""
        def draw() -> torch.Tensor:
            return self._signed(pass_draws(self, self.coin, self.probability(), ctx))

        w8 = self.shared_draws(ctx, draw, "int8")
        return w8 if dtype == torch.int8 else self.shared_draws(ctx, lambda: w8.to(dtype),
                                                                str(dtype))

    def _scaled(self, y: torch.Tensor) -> torch.Tensor:
        """``input_scale * output_gain * y``: the scale after the sum keeps integer sums exact.
        An int32 ``y`` becomes float32 in the same pass (its values are below 2^24: exact)."""
        scale = self.input_scale * self.output_gain
        if not y.is_floating_point():
            return y.to(torch.float32).mul_(scale)
        return y if scale == 1.0 else torch.mul(y, scale)

    def _finish(self, y: torch.Tensor, scaled: bool = False) -> torch.Tensor:
        """``input_scale * output_gain * y`` (unless ``scaled`` already), times the row gain,
        plus the bias."""
        y = y if scaled else self._scaled(y)
        if self.row_gain is not None:
            y = y * self.row_gain
        return y if self.bias is None else y.add_(self.bias)

    def _gemm_paths(self, x: torch.Tensor, columns: int) -> list[str]:
        """The ways to compute a shared-mode product on ``x``, the reference (fp32) first: on
        raw uint8 inputs also the int8 GEMM (``torch._int_mm``: more than 16 rows, sizes
        multiples of 8) and each variant of the compiled u8s8 kernel; all exact while every
        sum is an integer below 2^24 (``255 * in_features < 2^24``)."""
        names = ["fp32"]
        if x.dtype != torch.uint8 or x.device.type != "cpu" or 255 * self.in_features >= 2**24:
            return names
        if x.shape[0] > 16 and self.in_features % 8 == 0 and columns % 8 == 0:
            names.append("int_mm")
        return names + [f"u8s8-{v}" for v in kernels.gemm_variants()]

    def _shared_gemm(self, name: str, x: torch.Tensor, ctx: SamplingContext) -> torch.Tensor:
        """``input_scale * output_gain * (x @ W~^T)`` for every sample of the context, float32
        ``[rows, n * out]``, by path ``name``.

        On uint8 inputs every path is exact (integer sums below 2^24, fp32 or int32, then one
        rounding by the scale), so all give the same bits: ``fp32`` multiplies the float values;
        ``int_mm`` shifts ``x`` to int8 and adds ``128 * rowsum(W)`` back; ``u8s8-*`` multiplies
        unsigned by signed bytes and scales in the same pass
        ([`synsample.kernels.gemm_u8s8`][synsample.kernels.gemm_u8s8]).
        """
        if name == "fp32":
            return self._scaled(per_sample_linear(x.to(self.weight.dtype),
                                                  self._shared_draws(ctx, self.weight.dtype), ctx))
        w = self._shared_draws(ctx).reshape(-1, self.in_features)
        if name == "int_mm":
            # the correction for the shifted input, 128 * (row sums of every draw), once per draw
            correction = self.shared_draws(ctx, lambda: 128 * w.sum(dim=1, dtype=torch.int32),
                                           "row sums")
            shifted = (x ^ 128).view(torch.int8)  # uint8 v -> int8 v - 128, one bitwise pass
            return self._scaled(torch._int_mm(shifted, w.T).add_(correction))
        variant = name.removeprefix("u8s8-")
        packed = self.shared_draws(ctx, lambda: kernels.pack_u8s8(w, variant), name)
        return kernels.gemm_u8s8(x, packed, w.shape[0], variant,
                                 self.input_scale * self.output_gain)

    def _shared_mode(self, x: torch.Tensor, ctx: SamplingContext) -> torch.Tensor:
        """Shared mode: one ``W~`` per sample for the whole batch, through the fastest exact
        path here (measured, see [`synsample.paths`][synsample.paths], op ``gemm``); scaled as
        [`_scaled`][synsample.nn.coinflip.CoinFlipLinear._scaled]."""
        n, out = ctx.n, self.out_features
        if ctx.expanded(x.shape[0]):  # per-sample inputs: only the fp32 path applies
            return self._shared_gemm("fp32", x, ctx)
        names = self._gemm_paths(x, n * out)
        rows = x.shape[0]

        def run(name: str, size: int) -> torch.Tensor:
            sub = dataclasses.replace(ctx, batch=size)
            return self._shared_gemm(name, x[:size], sub)

        chosen = paths.choose(
            "gemm", names, run, paths.trial_sizes(rows, 32, 4),
            {"in": self.in_features, "columns": paths.bucket(n * out), "dtype": str(x.dtype),
             "rows": paths.bucket(rows), "kernels": kernels.identity()},
            x.device, layer_paths=self.paths, reference="fp32")
        return self._shared_gemm(chosen, x, ctx).reshape(ctx.batch * n, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The sampled linear map ``x @ W~^T * gain + b`` (paper 000, eq. 3, before ``sigma``).

        Without a context (a plain call) one sample is drawn from torch's default generator;
        under a `SamplingContext` every sample of the context gets its own ``W~``
        (shared mode) or every item and sample its own coins (independent mode).

        Args:
            x: ``[batch, in]`` or ``[batch * n, in]`` (item-major), or ``[rows, *tokens, in]``.

        Returns:
            ``[batch * n, out]`` item-major under a context (``[*tokens]`` kept), else the
            input's shape with ``out`` last.
        """
        if x.ndim < 2 or x.shape[-1] != self.in_features:
            raise ConfigError(f"layer {self.layer_name or '?'} expects [batch, ..., "
                              f"{self.in_features}] inputs, got {tuple(x.shape)}")
        if not x.is_floating_point() and self.input_scale == 1.0:
            # raw integers are read as values only where the layer took over the network's
            # 1/255 input scaling (fold_input_scale); elsewhere nn.Linear would refuse them
            raise ConfigError(f"layer {self.layer_name or '?'} computes on float inputs and got "
                              f"{x.dtype}; give the inputs as the network was trained on, e.g. "
                              "x.float() / 255 for pixels scaled to [0, 1]")
        ctx = self.context
        if ctx is None:  # a plain call: one sample from torch's default generator
            return self._finish(x.to(self.weight.dtype) @ self.sample_weight(None).T)
        if x.ndim > 2:  # tokens: each one computed as an item of its own
            return self.over_tokens(x, self.forward)
        if ctx.mode == "independent":
            return self._finish(self._independent(x.to(self.weight.dtype), ctx))
        return self._finish(self._shared_mode(x, ctx), scaled=True)

    def _counter_comparator(self) -> tuple[int, torch.Tensor, torch.Tensor]:
        """``(bits, thresholds [in, out], sign(w) [in, out])``, kept while weight and coin are
        unchanged (every chunk and tile of a run uses them)."""
        key = self._weight_key()
        if self._comparator is None or self._comparator[0] != key:
            bits, thr = self.coin.counter_thresholds(self.probability())
            sign = torch.sign(self.weight).T.to(torch.float32).contiguous()
            self._comparator = (key, (bits, thr.T.to(torch.int32).contiguous(), sign))
        return self._comparator[1]

    def _independent(self, x: torch.Tensor, ctx: SamplingContext) -> torch.Tensor:
        """Fresh coins for every (item, sample, weight), from the counter-based generator of
        [`synsample.randomness`][synsample.randomness]: the compiled kernel or its bit-identical
        PyTorch twin, whichever is faster here (see
        [`counter_coinflip`][synsample.nn.sampling.counter_coinflip]).

        Coins of zero inputs are never drawn; the coin counts what was drawn."""
        n, b = ctx.n, ctx.batch
        xs = x.reshape(b, n, self.in_features) if ctx.expanded(x.shape[0]) else x[:, None, :]
        bits, thr, sign = self._counter_comparator()
        y, coins = counter_coinflip(
            self, xs.to(torch.float32), n, thr, sign, bits, ctx.item_indices(x.device), ctx.first,
            randomness.layer_key(ctx.seed, randomness.layer_id(self.layer_name)))
        self.coin.count(coins)
        return y.to(x.dtype).reshape(b * n, self.out_features)
