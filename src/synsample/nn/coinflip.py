"""The coin-flip linear layer of scANN (paper 000, section II.A, eq. 3)."""

from __future__ import annotations

import torch
from torch import nn

from synsample.devices import IdealCoin, RandomSource
from synsample.errors import ConfigError
from synsample.nn.sampling import SampledLayer, SamplingContext

#: independent mode materialises one weight matrix per item; at most this many weights at once
_INDEPENDENT_BLOCK_WEIGHTS = 1 << 22


class CoinFlipLinear(SampledLayer):
    """A linear layer whose weights are signed Bernoulli coins (paper 000, eq. 3).

    Each weight ``w`` in [-1, 1] becomes, in every sample, ``sign(w)`` with probability
    ``|w|`` and 0 otherwise: the positive part ``Omega^p ~ Bernoulli(max(w, 0))`` and the
    negative part ``Omega^n ~ Bernoulli(max(-w, 0))`` combined into one signed binary matrix
    ``W~ = W~^p - W~^n``, so ``E[W~] = w`` (with the coin's realised probability). The bias
    stays deterministic.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None,
                 coin: RandomSource | None = None, name: str = "") -> None:
        super().__init__()
        if weight.ndim != 2:
            raise ConfigError(f"layer {name or '?'}: a coin-flip linear layer needs a 2-D weight, "
                              f"got shape {tuple(weight.shape)}")
        w = weight.detach()
        if not torch.isfinite(w).all():
            raise ConfigError(f"layer {name or '?'} has non-finite weights; retrain or repair the "
                              "checkpoint")
        top = w.abs().max().item() if w.numel() else 0.0
        if top > 1.0 + 1e-6:
            raise ConfigError(f"layer {name or '?'} has weights outside [-1, 1] (max |w| = "
                              f"{top:.4g}); scANN reads weights as probabilities: train with the "
                              "[-1, 1] constraint (synsample train does) or exclude this layer")
        self.register_buffer("weight", w.clamp(-1.0, 1.0).clone())
        self.register_buffer("bias", None if bias is None else bias.detach().clone())
        self.coin = coin if coin is not None else IdealCoin()
        self.layer_name = name
        self.context: SamplingContext | None = None

    @classmethod
    def from_linear(cls, linear: nn.Linear, coin: RandomSource | None = None, name: str = ""
                    ) -> CoinFlipLinear:
        return cls(linear.weight, linear.bias, coin, name)

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, coin={self.coin!r}")

    def probability(self) -> torch.Tensor:
        """``|w|`` as realised by the coin (quantized for a b-bit coin)."""
        return self.coin.probability(self.weight.abs())

    def sample_weight(self, generator: torch.Generator | None, leading: tuple[int, ...] = (),
                      prob: torch.Tensor | None = None) -> torch.Tensor:
        """One signed binary weight matrix per leading index: values in {-1, 0, 1}."""
        prob = self.probability() if prob is None else prob
        keep = self.coin.draw(prob, generator, leading)
        return torch.where(keep, torch.sign(self.weight), torch.zeros((), dtype=self.weight.dtype))

    def _add_bias(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.bias is None else y + self.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ConfigError(f"layer {self.layer_name or '?'} expects [batch, "
                              f"{self.in_features}] inputs, got {tuple(x.shape)}")
        ctx = self.context
        if ctx is None:  # a plain call: one sample from torch's default generator
            return self._add_bias(x @ self.sample_weight(None).T)
        x = x.to(self.weight.dtype)
        prob = self.probability()
        if ctx.mode == "independent":
            return self._add_bias(self._independent(x, ctx, prob))
        weights = torch.stack([self.sample_weight(g, prob=prob) for g in ctx.generators])
        n, out = ctx.n, self.out_features
        if not ctx.expanded(x.shape[0]):
            # the same input for every sample: one GEMM against the n stacked weight draws
            y = x @ weights.reshape(n * out, self.in_features).T
            return self._add_bias(y.reshape(ctx.batch * n, out))
        xs = x.reshape(ctx.batch, n, self.in_features).transpose(0, 1)
        y = torch.bmm(xs, weights.transpose(1, 2))  # [n, batch, out]
        return self._add_bias(y.transpose(0, 1).reshape(ctx.batch * n, out))

    def _independent(self, x: torch.Tensor, ctx: SamplingContext, prob: torch.Tensor
                     ) -> torch.Tensor:
        """Fresh weights for every (item, sample): the slow reference of per-item sampling."""
        n, b = ctx.n, ctx.batch
        xs = x.reshape(b, n, self.in_features) if ctx.expanded(x.shape[0]) else (
            x.unsqueeze(1).expand(b, n, self.in_features))
        out = torch.empty(b, n, self.out_features, dtype=x.dtype, device=x.device)
        block = max(1, _INDEPENDENT_BLOCK_WEIGHTS // max(1, self.weight.numel()))
        for k, g in enumerate(ctx.generators):
            for start in range(0, b, block):
                stop = min(b, start + block)
                w = self.sample_weight(g, (stop - start,), prob)  # [items, out, in]
                out[start:stop, k] = torch.bmm(xs[start:stop, k, None, :], w.transpose(1, 2))[:, 0]
        return out.reshape(b * n, self.out_features)
