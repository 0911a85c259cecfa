"""Layers whose whole weight tensor is drawn for every pass: the base of Bayes-by-Backprop's
Gaussian layers and of SpinBayes' crossbar layers (paper 004).

A [`WeightSampledLayer`][synsample.nn.weight_sampling.WeightSampledLayer] is a linear or
convolutional layer. In a sampled call it gets one weight tensor per pass (``shared`` mode:
``[n, *weight.shape]`` for the whole batch) or one per item-sample row (``independent`` mode:
``[rows, *weight.shape]``), and applies each to its rows with one grouped convolution or batched
matrix product, not a Python loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from synsample.nn.sampling import SampledLayer, SamplingContext, per_sample_linear


class WeightSampledLayer(SampledLayer):
    """Shared machinery; subclasses set
    [`weight_shape`][synsample.nn.weight_sampling.WeightSampledLayer.weight_shape] and, for
    convolutions,
    [`stride`][synsample.nn.weight_sampling.WeightSampledLayer.stride] and
    [`padding`][synsample.nn.weight_sampling.WeightSampledLayer.padding] (``conv`` True)."""

    conv: bool = False
    stride: int = 1
    padding: int = 0

    def _op(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
            ) -> torch.Tensor:
        if self.conv:
            return F.conv2d(x, weight, bias, stride=self.stride, padding=self.padding)
        return F.linear(x, weight, bias)

    def apply_per_sample(self, x: torch.Tensor, weights: torch.Tensor,
                         biases: torch.Tensor | None, ctx: SamplingContext) -> torch.Tensor:
        """Pass ``k``'s weights ``weights[k]`` on every item: item-major ``[batch * n, ...]``.

        Args:
            x: ``[batch, ...]`` (the same for every pass) or ``[batch * n, ...]``.
            weights: ``[n, *weight.shape]``, one tensor per pass.
            biases: ``[n, out]`` or None.
            ctx: the sampling context.

        Returns:
            ``[batch * n, out, ...]``, item-major.
        """
        n = weights.shape[0]
        if not self.conv:
            out = per_sample_linear(x, weights, ctx)
            return out if biases is None else out + biases.repeat(ctx.batch, 1)
        out_ch = weights.shape[1]
        flat_w = weights.reshape(n * out_ch, *weights.shape[2:])
        flat_b = None if biases is None else biases.reshape(-1)
        if not ctx.expanded(x.shape[0]):
            y = F.conv2d(x, flat_w, flat_b, stride=self.stride, padding=self.padding)
        else:
            xs = x.reshape(ctx.batch, n * x.shape[1], *x.shape[2:])
            y = F.conv2d(xs, flat_w, flat_b, stride=self.stride, padding=self.padding, groups=n)
        return y.reshape(ctx.batch * n, out_ch, *y.shape[2:])

    def apply_per_row(self, x: torch.Tensor, weights: torch.Tensor,
                      biases: torch.Tensor | None) -> torch.Tensor:
        """Row ``r``'s own weights ``weights[r]`` on row ``r`` of ``x`` (``[rows, ...]``).

        Args:
            x: ``[rows, ...]``.
            weights: ``[rows, *weight.shape]``.
            biases: ``[rows, out]`` or None.

        Returns:
            ``[rows, out, ...]``.
        """
        rows = weights.shape[0]
        if not self.conv:
            out = torch.bmm(weights, x[:, :, None])[:, :, 0]
            return out if biases is None else out + biases
        out_ch = weights.shape[1]
        y = F.conv2d(x.reshape(1, rows * x.shape[1], *x.shape[2:]),
                     weights.reshape(rows * out_ch, *weights.shape[2:]),
                     None if biases is None else biases.reshape(-1), stride=self.stride,
                     padding=self.padding, groups=rows)
        return y.reshape(rows, out_ch, *y.shape[2:])

    @staticmethod
    def rows_of(x: torch.Tensor, ctx: SamplingContext) -> torch.Tensor:
        """``x`` with one row per item and pass (item-major).

        Args:
            x: ``[batch, ...]`` or ``[batch * n, ...]``.
            ctx: the sampling context.

        Returns:
            ``[batch * n, ...]``.
        """
        return x if ctx.expanded(x.shape[0]) else x.repeat_interleave(ctx.n, dim=0)
