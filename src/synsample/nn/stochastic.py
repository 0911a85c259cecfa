"""The one interface every method implements: a distribution over forward passes.

A :class:`StochasticModel` maps a batch of inputs to ``n`` sampled outputs (logits). The
sampling engine, the metrics and the reports only use this interface.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from synsample.devices import RandomSource
from synsample.errors import ConfigError
from synsample.nn.sampling import SampledLayer, SamplingContext, seed_from
from synsample.nn.split import ExpandSamples, TracedBody


def _per_item_meets_per_pass(exc: RuntimeError, n: int) -> bool:
    """Whether ``exc`` is torch's size mismatch of a per-item value (``b`` rows) and a
    per-pass one (``b * n`` rows), as an add or a cat of the two raises."""
    msg = str(exc)
    sizes = [int(s) for s in re.findall(r"\d+", msg)]
    return n > 1 and "must match" in msg and any(a == n * b > 0 for a in sizes for b in sizes)


class StochasticModel(nn.Module):
    """A network whose forward pass is random; ``sample`` returns ``[n, batch, classes]``."""

    method: str = "stochastic"
    #: at most this many item-sample rows per call of :meth:`sample` (None: no limit), for
    #: models whose per-row activations are large; the engine tiles items to respect it
    rows_per_call: int | None = None

    def prefix(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic part before the first random layer, computed once per batch."""
        return x

    def sample(self, h: torch.Tensor, context: SamplingContext) -> torch.Tensor:
        """``context.n`` sampled outputs ``[n, batch, classes]`` for the prefix output ``h``."""
        raise NotImplementedError

    def devices(self) -> list[RandomSource]:
        """The device models this model draws from (their counters give the random bits)."""
        return []

    def describe(self) -> dict[str, Any]:
        return {"method": self.method}

    @torch.no_grad()
    def forward(self, x: torch.Tensor, n: int = 1, generator: torch.Generator | None = None,
                mode: str = "shared") -> torch.Tensor:
        """``n`` sampled outputs ``[n, batch, classes]``; for whole runs use the engine."""
        base = seed_from(generator, None)
        h = self.prefix(x)
        ctx = SamplingContext.for_samples(base, 0, n, x.shape[0], mode, device=x.device)
        return self.sample(h, ctx)


class SampledNetwork(StochasticModel):
    """A trained network some of whose layers sample (the conversion walk's output).

    ``prefix`` holds the layers before the first sampled one; ``body`` the rest (see
    :func:`~synsample.nn.convert.split_prefix`). The sampled layers (and the body's
    :class:`~synsample.nn.split.ExpandSamples`) read the :class:`SamplingContext` set on them
    for the duration of a call.
    """

    def __init__(self, prefix: nn.Module, body: nn.Module, sampled: list[str],
                 method: str, info: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.prefix_net = prefix
        self.body = body
        self.sampled_names = sampled
        self.method = method
        self.info = dict(info or {})

    def sampled_layers(self) -> list[SampledLayer]:
        return [m for m in self.body.modules() if isinstance(m, SampledLayer)]

    def prefix(self, x: torch.Tensor) -> torch.Tensor:
        return self.prefix_net(x)

    def sample(self, h: torch.Tensor, context: SamplingContext) -> torch.Tensor:
        readers = [m for m in self.body.modules() if isinstance(m, SampledLayer | ExpandSamples)]
        for m in readers:
            m.context = context
        try:
            out = self.body(h)
        except RuntimeError as exc:
            if isinstance(self.body, TracedBody) or not _per_item_meets_per_pass(exc, context.n):
                raise
            raise ConfigError(f"{type(self.body).__name__} failed with {context.n} passes per "
                              f"call ({str(exc).splitlines()[0]}): a skip connection across a "
                              "sampled layer needs the traced split, and torch.fx could not "
                              "trace this network (see the warning at conversion); remove the "
                              "data-dependent control flow from forward, or sample with "
                              "sample_chunk=1") from exc
        finally:
            for m in readers:
                m.context = None
        if out.shape[0] == context.batch and context.n > 1:  # no sampled layer on the path
            out = out.repeat_interleave(context.n, dim=0)
        return out.reshape(context.batch, context.n, -1).transpose(0, 1)

    def devices(self) -> list[RandomSource]:
        seen: dict[int, RandomSource] = {}
        for layer in self.sampled_layers():
            for device in layer.devices():
                seen.setdefault(id(device), device)
        return list(seen.values())

    def describe(self) -> dict[str, Any]:
        return {"method": self.method, "sampled_layers": list(self.sampled_names),
                "devices": [d.describe() for d in self.devices()], **self.info}
