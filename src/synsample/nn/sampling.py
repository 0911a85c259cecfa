"""How a sampled forward pass gets its randomness: per-sample generators and the sampling mode.

Sample ``k`` of a run with base seed ``s`` draws from a generator seeded by a hash of
``(s, k)``. Everything a sample draws is thus fixed by ``(s, k)`` alone, not by how items are
blocked or samples chunked, so votes are identical whatever the batch size, and a later item
block re-creates exactly the weights an earlier block used (shared mode).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from synsample import kernels, paths, randomness
from synsample.errors import ConfigError
from synsample.randomness import derive_seed

MODES = ("shared", "independent")


def check_mode(mode: str) -> str:
    """``mode`` if it is a sampling mode ([`MODES`][synsample.nn.sampling.MODES]), else a one-line
    error.

    Args:
        mode: ``'shared'`` or ``'independent'``.

    Returns:
        ``mode`` unchanged.

    Raises:
        ConfigError: for any other mode.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown sampling mode {mode!r}; use 'shared' (one draw per sample "
                          "for the whole batch) or 'independent' (fresh draws per item)")
    return mode


@dataclass
class SamplingContext:
    """What the sampled layers of one call need: ``n`` samples of a batch of ``batch`` items.

    Tensors inside the sampled part of a network are either ``[batch, ...]`` (not yet expanded:
    the same for every sample) or ``[batch * n, ...]`` in item-major order (item ``i``, sample
    ``k`` at row ``i * n + k``).

    Attributes:
        n: samples (forward passes) in this call.
        batch: items in this call.
        generators: one generator per sample, seeded from ``(seed, first + k)``.
        mode: ``'shared'`` or ``'independent'`` (see [`MODES`][synsample.nn.sampling.MODES]).
        block: distinguishes item blocks.
        seed: the run's base seed.
        first: the global index of the context's first sample.
        items: the global index of each item (None: ``0 .. batch - 1``).
        key: identifies the draws of this context (see `SampledLayer.shared_draws`).
    """

    n: int
    batch: int
    generators: list[torch.Generator]
    mode: str = "shared"
    #: distinguishes item blocks (for methods that draw per item block from the generators)
    block: int = 0
    #: the run's base seed and the index of the first sample: with
    #: [`items`][synsample.nn.sampling.SamplingContext.items], the coordinates of counter-based
    #: draws (independent mode, see synsample.randomness)
    seed: int = 0
    first: int = 0
    #: the global index of each of the ``batch`` items (default ``0 .. batch - 1``); the
    #: engine sets it per tile, so independent-mode draws do not depend on how items are blocked
    items: torch.Tensor | None = None
    #: identifies the draws of this context: in shared mode a layer called again with the same
    #: key (another tile of items of the same samples) reuses its draws instead of drawing anew
    key: tuple | None = None

    @classmethod
    def for_samples(cls, base_seed: int, first: int, n: int, batch: int, mode: str = "shared",
                    block: int = 0, device: torch.device | str = "cpu") -> SamplingContext:
        """Generators for samples ``first .. first + n - 1``; in independent mode they also
        depend on the item block, so that every item gets its own draws.

        Args:
            base_seed: the run's base seed.
            first: the global index of the first sample.
            n: samples in the context.
            batch: items in the context.
            mode: ``'shared'`` or ``'independent'``.
            block: the index of the item block.
            device: where the generators live.

        Returns:
            The context, keyed by ``(base_seed, first, n, mode, block)``.
        """
        check_mode(mode)
        gens = []
        for k in range(first, first + n):
            g = torch.Generator(device=device)
            keys = (k,) if mode == "shared" else (k, block)
            g.manual_seed(derive_seed(base_seed, *keys))
            gens.append(g)
        return cls(n=n, batch=batch, generators=gens, mode=mode, block=block, seed=base_seed,
                   first=first, key=(base_seed, first, n, mode, block))

    def item_indices(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The global index of each item of the batch.

        Args:
            device: where the default ``arange`` is made.

        Returns:
            ``[batch]`` indices ([`items`][synsample.nn.sampling.SamplingContext.items] when set,
            else ``0 .. batch - 1``).
        """
        if self.items is None:
            return torch.arange(self.batch, device=device)
        if len(self.items) != self.batch:
            raise ConfigError(f"the context names {len(self.items)} items for a batch of "
                              f"{self.batch}")
        return self.items

    def expanded(self, rows: int) -> bool:
        """Whether a tensor with ``rows`` rows is already expanded to every sample.

        Args:
            rows: the tensor's first dimension.

        Returns:
            True for ``batch * n`` rows, False for ``batch`` rows.

        Raises:
            ConfigError: for any other number of rows.
        """
        if rows == self.batch * self.n:
            return True
        if rows == self.batch:
            return False
        raise ConfigError(f"a sampled layer got {rows} rows, expected {self.batch} items or "
                          f"{self.batch} x {self.n} samples; reshape the input to "
                          "[batch, features]")


class SampledLayer(nn.Module):
    """Base of every layer that draws during a sampled call; it reads ``self.context``.

    Where a layer has several ways of computing the same result,
    [`synsample.paths`][synsample.paths] picks the fastest on this machine; ``layer.paths = {"gemm":
    "fp32"}`` forces one per op (the candidates give the same bits, so this changes speed only).
    """

    context: SamplingContext | None = None

    #: candidates forced per op for this layer (see [`synsample.paths`][synsample.paths]); empty:
    #: measured
    paths: dict[str, str] = {}

    #: the draws this layer made for the context key it last saw (see `shared_draws`)
    _shared: tuple[tuple, dict[str, object]] | None = None

    def shared_draws(self, ctx: SamplingContext, make, tag: str = ""):
        """``make()`` once per shared-mode context key (and ``tag``, for a layer that draws
        several things): every tile of items of the same samples must see the same draws, and
        the generators cannot replay them. Draws a later item block re-creates are not counted
        on the layer's devices (per-item draws, counted outside ``make``, still are).

        Args:
            ctx: the sampling context of the call.
            make (Callable[[], object]): draws the thing to keep.
            tag: names the thing among the layer's draws for this key.

        Returns:
            (object): what ``make()`` returned for this key and tag (kept, or made now).
        """
        if ctx.key is None:
            return make()
        if self._shared is None or self._shared[0] != ctx.key:
            self._shared = (ctx.key, {})
        store = self._shared[1]
        if tag not in store:
            if ctx.mode == "shared" and ctx.block > 0:
                # a later item block re-creates the first block's draws: the hardware draws
                # them once per sample, so they are not counted again
                counts = [(d, d.snapshot()) for d in self.devices()]
                try:
                    store[tag] = make()
                finally:
                    for device, draws in counts:
                        device.restore(draws)
            else:
                store[tag] = make()
        return store[tag]

    def over_tokens(self, x: torch.Tensor, forward) -> torch.Tensor:
        """A 2-D sampled op on ``[rows, *tokens, d]`` inputs (a transformer's ``[B, T, d]``):
        every token is computed as an item of its own (global index ``item * T + t``), so in
        shared mode all tokens of all items see the pass's draws, and in independent mode each
        token gets its own, keyed by item and token, whatever the tiling. ``forward(x2)``
        computes the layer on ``[rows', d]`` under the token context set on ``self``.

        Args:
            x: ``[batch, *tokens, d]`` or ``[batch * n, *tokens, d]``.
            forward (Callable[[torch.Tensor], torch.Tensor]): the layer's 2-D computation.

        Returns:
            ``[batch * n, *tokens, out]``, item-major as every sampled output.
        """
        ctx = self.context
        lead, d = tuple(x.shape[1:-1]), x.shape[-1]
        tokens = math.prod(lead)
        b, n = ctx.batch, ctx.n
        items = ctx.item_indices(x.device)
        sub = dataclasses.replace(ctx, batch=b * tokens, items=(
            items[:, None] * tokens + torch.arange(tokens, device=x.device)).reshape(-1))
        if ctx.expanded(x.shape[0]):
            x2 = x.reshape(b, n, tokens, d).transpose(1, 2).reshape(b * tokens * n, d)
        else:
            x2 = x.reshape(b * tokens, d)
        self.context = sub
        try:
            y = forward(x2)
        finally:
            self.context = ctx
        out = y.shape[-1]
        return y.reshape(b, tokens, n, out).transpose(1, 2).reshape(b * n, *lead, out)

    def forget_draws(self) -> None:
        """Drop the draws kept for the last context key (the engine does, before and after a
        run: a later run with the same key must draw, and count, anew)."""
        self._shared = None

    def devices(self) -> list:
        """The device models this layer draws from.

        Returns:
            The layer's ``coin`` (empty when it has none); layers with other devices override
            this.
        """
        coin = getattr(self, "coin", None)
        return [] if coin is None else [coin]


def per_sample_linear(x: torch.Tensor, weights: torch.Tensor, ctx: SamplingContext
                      ) -> torch.Tensor:
    """``x @ weights[k].T`` for every sample ``k`` of the context, item-major ``[batch * n, out]``.

    ``x`` is ``[batch, in]`` (the same input for every sample: one GEMM against the stacked
    weights) or ``[batch * n, in]`` (sample ``k`` of every item is a strided view: one GEMM per
    sample); ``weights`` is ``[n, out, in]``.

    Args:
        x: ``[batch, in]`` or ``[batch * n, in]``.
        weights: one weight matrix per sample, ``[n, out, in]``.
        ctx: the sampling context (its ``batch`` and ``n``).

    Returns:
        ``[batch * n, out]``, item-major.
    """
    n, out, d_in = weights.shape
    if not ctx.expanded(x.shape[0]):
        return (x @ weights.reshape(n * out, d_in).T).reshape(ctx.batch * n, out)
    xs = x.reshape(ctx.batch, n, d_in)
    return torch.stack([xs[:, k] @ weights[k].T for k in range(n)], dim=1).reshape(-1, out)


#: inputs of a measurement trial below the full call (see
#: [`counter_coinflip`][synsample.nn.sampling.counter_coinflip])
TRIAL_INPUTS = 256


def _counter_coinflip(name: str, args: tuple) -> tuple[torch.Tensor, int]:
    if name == "twin":
        return randomness.coinflip_reference(*args)
    return kernels.coinflip(*args, variant=name.removeprefix("kernel-"))


def counter_coinflip(layer: SampledLayer, x: torch.Tensor, n: int, threshold: torch.Tensor,
                     value: torch.Tensor, bits: int, items: torch.Tensor, first_sample: int,
                     key: int) -> tuple[torch.Tensor, int]:
    """Independent-mode coins (arguments of
    [`synsample.randomness.coinflip_reference`][synsample.randomness.coinflip_reference]) through
    the fastest path here: a variant of the compiled kernel (``kernel-avx512``, ``kernel-avx2``,
    ``kernel-base``) or the pure-PyTorch ``twin``, which give the same bits. Measured on trials of
    the call's first items and samples ([`synsample.paths`][synsample.paths], op ``coinflip``);
    unmeasured, the widest kernel the CPU runs, else the twin (the only path off the CPU).

    Args:
        layer: the calling layer (its forced ``paths``).
        x: ``[items, n | 1, in]`` float32.
        n: samples.
        threshold: ``[in, out]`` integer thresholds.
        value: ``[in, out]`` what each coin gates.
        bits: the bits of the device's uniform integers.
        items: the global index of each item.
        first_sample: the index of the first sample.
        key: the layer's 64-bit key in the run.

    Returns:
        ``(y [items, n, out] float32, coins drawn)``.
    """
    on_cpu = x.device.type == "cpu"
    names = [*(f"kernel-{v}" for v in (kernels.variants() if on_cpu else [])), "twin"]
    b = x.shape[0]

    def run(name: str, size: int) -> tuple[torch.Tensor, int]:
        """The op on a trial of ``size`` item-passes: the first items, the first samples when
        fewer than ``n``, and at most TRIAL_INPUTS inputs (the twin loops over inputs in
        Python, and a conv head's 21,632 inputs would make every trial cost seconds)."""
        k = min(n, size)
        m = min(b, max(1, size // n))
        d = min(x.shape[2], TRIAL_INPUTS)
        xs = (x[:m] if x.shape[1] == 1 else x[:m, :k])[..., :d]
        return _counter_coinflip(name, (xs, k, threshold[:d], value[:d], bits, items[:m],
                                        first_sample, key))

    chosen = paths.choose(
        "coinflip", names, run, paths.trial_sizes(b * n, 1, 8),
        # per layer shape, not per chunk: the builds' order does not change with the samples
        {"in": x.shape[2], "out": threshold.shape[1], "expanded": x.shape[1] != 1,
         "kernels": kernels.identity()},
        x.device, default=names[0], layer_paths=layer.paths)
    return _counter_coinflip(chosen, (x, n, threshold, value, bits, items, first_sample, key))


def pass_draws(layer: SampledLayer, coin, prob: torch.Tensor, ctx: SamplingContext
               ) -> torch.Tensor:
    """``coin.draw_passes(prob, ctx, layer.layer_name)``, the passes' uniforms drawn on one
    thread or on several at once, whichever is faster here ([`synsample.paths`][synsample.paths], op
    ``draw``: ``serial`` or ``threads-T``). Each pass has its own generator, so both give the
    same bits; trials draw from generators of their own and are not counted.

    Args:
        layer: the calling layer (its forced ``paths``, its name).
        coin (RandomSource): the device.
        prob: the realised probabilities.
        ctx: the shared-mode context.

    Returns:
        ``[ctx.n, *prob.shape]`` booleans.
    """
    threads = torch.get_num_threads()
    names = ["serial"]
    if threads > 1 and ctx.n > 1 and prob.device.type == "cpu" and coin.parallel_draws:
        names.append(f"threads-{threads}")

    def workers(name: str, passes: int) -> int:
        return min(int(name.removeprefix("threads-")), passes) if name != "serial" else 1

    def run(name: str, passes: int) -> torch.Tensor:
        before = coin.snapshot()
        try:
            gens = [torch.Generator().manual_seed(i) for i in range(passes)]
            return coin.draw_passes(prob, dataclasses.replace(ctx, generators=gens, n=passes),
                                    layer.layer_name, workers(name, passes))
        finally:
            coin.restore(before)

    # one measurement per layer shape, whatever the chunk's passes (a chunk cut at a vote
    # checkpoint has fewer): two passes per thread, so that no thread idles in the trial
    chosen = paths.choose("draw", names, run, [2 * threads],
                          {"numel": paths.bucket(prob.numel())},
                          prob.device, layer_paths=layer.paths, reference="serial")
    return coin.draw_passes(prob, ctx, layer.layer_name, workers(chosen, ctx.n))
