"""The Monte Carlo baselines of paper 004: MC-Dropout (Gal and Ghahramani 2016, its reference
[9]) and MC-DropConnect (Mobiny et al. 2021, its reference [20]), as layers that keep their
masks on at inference and draw them from a device model.

- [`MCDropout`][synsample.nn.dropout.MCDropout]: every unit kept with probability ``1 - p`` and
  scaled by ``1 / (1 - p)``; a sampled call draws one mask per pass for the batch (``shared``) or
  per item and pass (``independent``, counter-based, so votes do not depend on tiling).
- [`DropConnectLinear`][synsample.nn.dropout.DropConnectLinear] /
  [`DropConnectConv2d`][synsample.nn.dropout.DropConnectConv2d]: every *weight* kept with
  probability ``1 - p`` and scaled by ``1 / (1 - p)``; one mask per pass (``shared``) or per item
  and pass (``independent``, rows in chunks so the per-row weights stay small).

Training uses the same masks (one per mini-batch for DropConnect) from torch's generator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from synsample.devices import IdealCoin, RandomSource
from synsample.errors import ConfigError
from synsample.nn import neural_noise
from synsample.nn.sampling import SampledLayer, pass_draws
from synsample.nn.weight_sampling import WeightSampledLayer

#: floats of per-row weights one independent-mode DropConnect chunk may hold
_ROW_WEIGHT_BUDGET = 1 << 24


def _check_rate(p: float) -> float:
    if not 0.0 <= p < 1.0:
        raise ConfigError(f"a drop rate must be in [0, 1), got {p}")
    return float(p)


class MCDropout(SampledLayer):
    """Dropout that stays on in sampled passes.

    Args:
        p: the drop rate, in [0, 1).
        coin: the device that draws the keep bits (an ideal coin by default).
    """

    def __init__(self, p: float = 0.5, coin: RandomSource | None = None) -> None:
        super().__init__()
        self.p = _check_rate(p)
        self.coin = coin if coin is not None else IdealCoin()
        self.layer_name = ""

    def extra_repr(self) -> str:
        """The drop rate, shown by ``repr``."""
        return f"p={self.p}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Units kept with probability ``1 - p`` and scaled by ``1 / (1 - p)``.

        Without a context, torch's ``F.dropout`` (on in training only); under a context, one
        mask per pass (shared) or per item and pass (independent), drawn on the coin.

        Args:
            x: ``[batch, ...]`` or ``[batch * n, ...]``.

        Returns:
            ``[batch * n, ...]`` under a context, else the shape of ``x``.
        """
        ctx = self.context
        if ctx is None:
            return F.dropout(x, self.p, self.training)
        if self.p == 0.0:
            return x
        unit_shape = x.shape[1:]
        numel = math.prod(unit_shape)
        keep = neural_noise.bernoulli_field(  # one device per unit
            self, self.layer_name, self.coin, torch.full((numel,), 1.0 - self.p), ctx.batch,
            numel, x.device)  # [batch, n, numel]
        lead = (ctx.batch, ctx.n) if ctx.expanded(x.shape[0]) else (ctx.batch, 1)
        y = x.reshape(*lead, numel) * keep / (1.0 - self.p)
        return y.reshape(ctx.batch * ctx.n, *unit_shape)


class DropConnect(WeightSampledLayer):
    """Bernoulli masks on the weights of a linear or conv layer (its ``weight``, ``bias``)."""

    def _init_dropconnect(self, p: float, coin: RandomSource | None) -> None:
        self.p = _check_rate(p)
        self.coin = coin if coin is not None else IdealCoin()
        self.layer_name = ""

    def extra_repr(self) -> str:
        """The layer's own settings and the drop rate, shown by ``repr``."""
        return f"{super().extra_repr()}, p={self.p}"

    def _masked(self, keep: torch.Tensor) -> torch.Tensor:
        return self.weight * keep / (1.0 - self.p)

    def unmasked(self) -> nn.Module:
        """The layer without masks: an ``nn.Linear`` or ``nn.Conv2d`` of the same weights.

        Returns:
            The plain layer, on this layer's device.
        """
        if self.conv:
            plain = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride,
                              self.padding, bias=self.bias is not None)
        else:
            plain = nn.Linear(self.in_features, self.out_features, self.bias is not None)
        return _copy_parameters(self, plain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The layer with every weight kept with probability ``1 - p``, scaled by
        ``1 / (1 - p)``.

        Without a context: one mask per call in training, none in eval. Under a context: one
        mask per pass (shared) or per item and pass (independent), drawn on the coin.

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
            if not self.training or self.p == 0.0:
                return self._op(x, self.weight, self.bias)
            keep = torch.rand_like(self.weight) >= self.p
            return self._op(x, self._masked(keep), self.bias)
        # one device per weight: an imperfect coin gives each its own P(keep)
        prob = self.coin.probability(torch.full_like(self.weight, 1.0 - self.p), self.layer_name)
        if ctx.mode == "shared":
            keep = self.shared_draws(ctx, lambda: pass_draws(self, self.coin, prob, ctx),
                                     "masks")
            biases = None if self.bias is None else self.bias.expand(ctx.n, -1)
            return self.apply_per_sample(x, self._masked(keep), biases, ctx)
        rows = self.rows_of(x, ctx)
        numel = self.weight.numel()
        bits, threshold = self.coin.counter_thresholds(prob)
        ints = neural_noise.counter_ints(ctx, self.layer_name, numel, bits, x.device)
        self.coin.count(len(rows) * numel)
        keep = (ints < threshold.reshape(-1)).reshape(len(rows), *self.weight.shape)
        chunk = max(1, _ROW_WEIGHT_BUDGET // numel)
        return torch.cat([self.apply_per_row(rows[i:i + chunk], self._masked(keep[i:i + chunk]),
                                             None if self.bias is None
                                             else self.bias.expand(len(keep[i:i + chunk]), -1))
                          for i in range(0, len(rows), chunk)])


class DropConnectLinear(DropConnect, nn.Linear):
    """An ``nn.Linear`` with DropConnect masks.

    Args:
        in_features: inputs per item.
        out_features: outputs per item.
        p: the drop rate, in [0, 1).
        bias: whether the layer has a bias.
        coin: the device that draws the keep bits (an ideal coin by default).
    """

    def __init__(self, in_features: int, out_features: int, p: float = 0.2, bias: bool = True,
                 coin: RandomSource | None = None) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias)
        self._init_dropconnect(p, coin)

    @classmethod
    def from_linear(cls, linear: nn.Linear, p: float, coin: RandomSource | None = None
                    ) -> DropConnectLinear:
        """The DropConnect twin of a trained ``nn.Linear`` (weights and bias copied).

        Args:
            linear: the trained layer.
            p: the drop rate.
            coin: the device that draws the keep bits.

        Returns:
            The new layer, on the trained layer's device.
        """
        layer = cls(linear.in_features, linear.out_features, p, linear.bias is not None, coin)
        return _copy_parameters(linear, layer)


class DropConnectConv2d(DropConnect, nn.Conv2d):
    """An ``nn.Conv2d`` (square, ungrouped) with DropConnect masks.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: the square kernel's side.
        stride: the convolution's stride.
        padding: the convolution's zero padding.
        p: the drop rate, in [0, 1).
        bias: whether the layer has a bias.
        coin: the device that draws the keep bits (an ideal coin by default).
    """

    conv = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, p: float = 0.2, bias: bool = True,
                 coin: RandomSource | None = None) -> None:
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride, padding,
                           bias=bias)
        self._init_dropconnect(p, coin)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, p: float, coin: RandomSource | None = None, name: str = ""
                  ) -> DropConnectConv2d:
        """The DropConnect twin of a trained ``nn.Conv2d`` (weights and bias copied).

        Args:
            conv: the trained layer (square, ungrouped, undilated, zero-padded).
            p: the drop rate.
            coin: the device that draws the keep bits.
            name: the layer's name, for errors.

        Returns:
            The new layer, on the trained layer's device.
        """
        kernel, stride, padding = plain_conv(conv, name, "DropConnect")
        layer = cls(conv.in_channels, conv.out_channels, kernel, stride, padding, p,
                    conv.bias is not None, coin)
        return _copy_parameters(conv, layer)


def plain_conv(conv: nn.Conv2d, name: str, method: str) -> tuple[int, int, int]:
    """``(kernel, stride, padding)`` of a square, ungrouped, undilated, zero-padded conv; a
    one-line error naming the layer for any other (the sampled conv layers support no more).

    Args:
        conv: the trained convolution.
        name: its name in the network, for the error.
        method: the method converting it, for the error.

    Returns:
        ``(kernel, stride, padding)``.

    Raises:
        ConfigError: for any other convolution.
    """
    square = (conv.kernel_size[0] == conv.kernel_size[1] and conv.stride[0] == conv.stride[1]
              and not isinstance(conv.padding, str) and conv.padding[0] == conv.padding[1])
    if not square or conv.groups != 1 or tuple(conv.dilation) != (1, 1) or \
            conv.padding_mode != "zeros":
        raise ConfigError(f"layer {name or '?'}: {method} converts square, ungrouped, "
                          "undilated, zero-padded nn.Conv2d layers; exclude this one")
    return conv.kernel_size[0], conv.stride[0], conv.padding[0]


def _copy_parameters(source: nn.Module, target: nn.Module) -> nn.Module:
    with torch.no_grad():
        target.weight.copy_(source.weight)
        if source.bias is not None:
            target.bias.copy_(source.bias)
    return target.to(source.weight.device)


def masked_network(model: nn.Module, layer_type: type, method: str, arch: str,
                   coin: RandomSource | None = None):
    """The sampling model of a trained network whose ``layer_type`` masks (MCDropout or
    DropConnect) stay on, each mask bit from ``coin`` when given.

    Args:
        model: the trained network (not modified).
        layer_type: [`MCDropout`][synsample.nn.dropout.MCDropout] or
            [`DropConnect`][synsample.nn.dropout.DropConnect].
        method: the method's name.
        arch: the network to train when ``model`` has no such layer (for the error).
        coin: the device of every mask bit (None: each layer keeps its own).

    Returns:
        (SampledNetwork): the sampling model; its ``info`` records the first layer's rate.
    """
    from synsample.nn.convert import sampling_network

    rate = next((m.p for m in model.modules() if isinstance(m, layer_type)), None)
    return sampling_network(model, (layer_type,), method,
                            f"the network has no {layer_type.__name__} layer; train {arch} first",
                            {"rate": rate}, coin)
