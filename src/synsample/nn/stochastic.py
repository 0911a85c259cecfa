"""The one interface every method implements: a distribution over forward passes.

A [`StochasticModel`][synsample.nn.stochastic.StochasticModel] maps a batch of inputs to ``n``
sampled outputs (logits). The sampling engine, the metrics and the reports only use this interface.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import torch
from torch import nn

from synsample.devices import RandomSource
from synsample.errors import ConfigError
from synsample.nn.sampling import SampledLayer, SamplingContext
from synsample.nn.split import ExpandSamples, TracedBody
from synsample.randomness import seed_from


def _check_logits(out: object) -> None:
    """Refuse a network output that is not one ``[batch, classes]`` tensor of logits: a tuple,
    a dict or a per-token output would otherwise be misread (or fail deep inside)."""
    fix = ("synsample reads one [batch, classes] tensor of logits: make forward return it "
           "(e.g. out[0], out['logits'], or logits[:, -1] of a sequence), or wrap the network "
           "in a module that does")
    if isinstance(out, torch.Tensor):
        if out.ndim != 2:
            raise ConfigError(f"the network returns a tensor of shape {tuple(out.shape)}; {fix}")
        if not out.is_floating_point():
            raise ConfigError(f"the network returns {out.dtype} values, not logits; {fix}")
        return
    raise ConfigError(f"the network returns a {type(out).__name__}; {fix}")


def _per_item_meets_per_pass(exc: RuntimeError, n: int) -> bool:
    """Whether ``exc`` is torch's size mismatch of a per-item value (``b`` rows) and a
    per-pass one (``b * n`` rows), as an add or a cat of the two raises."""
    msg = str(exc)
    sizes = [int(s) for s in re.findall(r"\d+", msg)]
    return n > 1 and "must match" in msg and any(a == n * b > 0 for a in sizes for b in sizes)


class StochasticModel(nn.Module):
    """A network whose forward pass is random; ``sample`` returns ``[n, batch, classes]``."""

    method: str = "stochastic"
    #: at most this many item-sample rows per call of
    #: [`sample`][synsample.nn.stochastic.StochasticModel.sample] (None: no limit), for models whose
    #: per-row activations are large; the engine tiles items to respect it
    rows_per_call: int | None = None

    def prefix(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic part before the first random layer, computed once per batch.

        Args:
            x: a batch of inputs ``[batch, ...]``.

        Returns:
            The prefix's output ``[batch, ...]`` (``x`` itself here).
        """
        return x

    def sample(self, h: torch.Tensor, context: SamplingContext) -> torch.Tensor:
        """``context.n`` sampled outputs ``[n, batch, classes]`` for the prefix output ``h``.

        Args:
            h: the output of [`prefix`][synsample.nn.stochastic.StochasticModel.prefix] for the
                batch.
            context: the samples to draw (their generators, mode and item indices).

        Returns:
            ``[n, batch, classes]`` logits.
        """
        raise NotImplementedError

    def devices(self) -> list[RandomSource]:
        """The device models this model draws from (their counters give the random bits).

        Returns:
            The devices (none here).
        """
        return []

    def describe(self) -> dict[str, Any]:
        """What the model is, for reports and run records.

        Returns:
            ``{"method": ...}``.
        """
        return {"method": self.method}

    @torch.no_grad()
    def forward(self, x: torch.Tensor, n: int = 1, generator: torch.Generator | None = None,
                mode: str = "shared") -> torch.Tensor:
        """``n`` sampled outputs ``[n, batch, classes]``; for whole runs use the engine.

        Args:
            x: a batch of inputs ``[batch, ...]``.
            n: samples (forward passes).
            generator: draws the run's base seed (None: torch's default generator).
            mode: ``'shared'`` or ``'independent'``.

        Returns:
            ``[n, batch, classes]`` logits.
        """
        base = seed_from(generator, None)
        h = self.prefix(x)
        ctx = SamplingContext.for_samples(base, 0, n, x.shape[0], mode, device=x.device)
        return self.sample(h, ctx)


class SampledNetwork(StochasticModel):
    """A trained network some of whose layers sample (the conversion walk's output).

    ``prefix`` holds the layers before the first sampled one; ``body`` the rest (see
    [`split_prefix`][synsample.nn.convert.split_prefix]). The sampled layers (and the body's
    [`ExpandSamples`][synsample.nn.split.ExpandSamples]) read the `SamplingContext` set on them
    for the duration of a call.

    Args:
        prefix: the layers before the first sampled one.
        body: the rest of the network, with its sampled layers.
        sampled: the names of the sampled layers.
        method: the method's name.
        info: more to report in [`describe`][synsample.nn.stochastic.SampledNetwork.describe].
    """

    def __init__(self, prefix: nn.Module, body: nn.Module, sampled: list[str],
                 method: str, info: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.prefix_net = prefix
        self.body = body
        self.sampled_names = sampled
        self.method = method
        self.info = dict(info or {})
        #: run the body one pass per call (set when an untraced skip connection needs it)
        self.pass_by_pass = False
        self._last_key: tuple | None = None

    def sampled_layers(self) -> list[SampledLayer]:
        """The body's sampled layers, in module order.

        Returns:
            The body's modules that are a [`SampledLayer`][synsample.nn.sampling.SampledLayer].
        """
        return [m for m in self.body.modules() if isinstance(m, SampledLayer)]

    def prefix(self, x: torch.Tensor) -> torch.Tensor:
        """The prefix network's output (computed once per batch).

        Args:
            x: a batch of inputs ``[batch, ...]``.

        Returns:
            ``prefix_net(x)``.
        """
        return self.prefix_net(x)

    def sample(self, h: torch.Tensor, context: SamplingContext) -> torch.Tensor:
        """The body run on ``h`` for the context's samples.

        If an untraced body mixes a per-item value with a per-pass one (a skip connection
        across a sampled layer), it warns and falls back to one pass per call for good.

        Args:
            h: the prefix output ``[batch, ...]``.
            context: the samples to draw.

        Returns:
            ``[n, batch, classes]`` logits.
        """
        if self.pass_by_pass and context.n > 1:
            out = self._pass_by_pass(h, context)
        else:
            traced = isinstance(self.body, TracedBody)
            counts = [] if traced else [(d, d.snapshot()) for d in self.devices()]
            try:
                out = self._body(h, context)
            except RuntimeError as exc:
                if traced or not _per_item_meets_per_pass(exc, context.n):
                    raise
                for device, draws in counts:  # the failed call's draws are not counted
                    device.restore(draws)
                warnings.warn(f"{type(self.body).__name__}: a value computed before a sampled "
                              "layer meets one computed after it, and torch.fx could not "
                              "trace the network to expand it: every pass runs on its own "
                              f"(slower; {str(exc).splitlines()[0]})", stacklevel=2)
                self.pass_by_pass = True
                out = self._pass_by_pass(h, context)
        return out.reshape(context.batch, context.n, -1).transpose(0, 1)

    def _body(self, h: torch.Tensor, context: SamplingContext) -> torch.Tensor:
        """The body's output for the context's passes, item-major ``[batch * n, ...]``."""
        readers = [m for m in self.body.modules() if isinstance(m, SampledLayer | ExpandSamples)]
        for m in readers:
            m.context = context
        try:
            out = self.body(h)
        finally:
            for m in readers:
                m.context = None
        _check_logits(out)
        if out.shape[0] == context.batch and context.n > 1:  # no sampled layer on the path
            out = out.repeat_interleave(context.n, dim=0)
        return out

    def _pass_by_pass(self, h: torch.Tensor, context: SamplingContext) -> torch.Tensor:
        """[`_body`][synsample.nn.stochastic.SampledNetwork._body] one pass per call (the context's
        passes re-created by
        [`SamplingContext.for_samples`][synsample.nn.sampling.SamplingContext.for_samples], so each
        draws what it would in one call), for an untraced network whose skip connections cross a
        sampled layer. In shared mode another
        tile of items of the same passes re-creates the draws without counting them again."""
        repeat = context.mode == "shared" and context.key == self._last_key is not None
        self._last_key = context.key
        counts = [(d, d.snapshot()) for d in self.devices()] if repeat else []
        outs = []
        try:
            for k in range(context.n):
                one = SamplingContext.for_samples(context.seed, context.first + k, 1,
                                                  context.batch, context.mode, context.block,
                                                  device=h.device)
                one.items = context.items
                outs.append(self._body(h, one))
        finally:
            for device, draws in counts:
                device.restore(draws)
        return torch.stack(outs, dim=1).reshape(context.batch * context.n, -1)

    def devices(self) -> list[RandomSource]:
        """The device models of the sampled layers, each once.

        Returns:
            The devices, in layer order.
        """
        seen: dict[int, RandomSource] = {}
        for layer in self.sampled_layers():
            for device in layer.devices():
                seen.setdefault(id(device), device)
        return list(seen.values())

    def describe(self) -> dict[str, Any]:
        """What the model is, for reports and run records.

        Returns:
            The method, the sampled layers, each device's description and ``info``.
        """
        return {"method": self.method, "sampled_layers": list(self.sampled_names),
                "devices": [d.describe() for d in self.devices()], **self.info}
