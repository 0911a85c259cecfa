"""Random fields over the rows of a sampled call: one uniform integer per (row, element).

Stochastic neurons (an NSM's neural noise, paper 002 SI 4.3; the StNN's sigmoid units) need a
random number per unit of every item and sample. Where it comes from follows the sampling mode:

- **no context** (training, a plain call): independent draws from torch's default generator;
- **shared**: one field per sample from the context's per-sample generator, the same for every
  item (made once per context key, so every tile of items sees it);
- **independent**: counter-based words keyed by ``(seed, layer, item, sample, element)``
  ([`synsample.randomness`][synsample.randomness]), so the draws do not depend on how items are
  blocked.
"""

from __future__ import annotations

import torch

from synsample import randomness
from synsample.nn.sampling import SampledLayer, SamplingContext


def uniform_ints(layer: SampledLayer, name: str, source, rows: int, numel: int, bits: int,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """Uniform ``bits``-bit integers (int64) for ``rows`` rows of ``numel`` elements, counted
    as draws of the device ``source`` (in shared mode once per sample, as the hardware would).

    Args:
        layer: the layer that draws (its context gives the mode and generators).
        name: names the field (it keys shared draws and counter-based words).
        source (RandomSource): the device the draws are counted on.
        rows: rows of the call (without a context, the rows drawn).
        numel: elements per row.
        bits: bits per integer.
        device: where the integers are made.

    Returns:
        A tensor that broadcasts to ``[batch, n, numel]`` under a context (``rows`` is then
        ``batch`` or ``batch * n``), else ``[rows, 1, numel]``.
    """
    ctx = layer.context
    if ctx is None:
        source.count(rows * numel)
        return torch.randint(0, 2 ** bits, (rows, 1, numel), device=device)
    if ctx.mode == "shared":
        def make() -> torch.Tensor:
            source.count(ctx.n * numel)
            return torch.stack([torch.randint(0, 2 ** bits, (numel,), generator=g, device=device)
                                for g in ctx.generators])
        return layer.shared_draws(ctx, make, name)[None]  # [1, n, numel]
    source.count(ctx.batch * ctx.n * numel)
    return counter_ints(ctx, name, numel, bits, device)


def counter_ints(ctx: SamplingContext, name: str, numel: int, bits: int,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """Counter-based uniform ``bits``-bit integers ``[batch, n, numel]`` (int64) keyed by
    ``(seed, name, item, sample, element)``: per item and sample, whatever the tiling.

    Args:
        ctx: the sampling context (seed, first sample, item indices).
        name: names the field (hashed into the layer key).
        numel: elements per row.
        bits: bits per integer (the top bits of each 32-bit word).
        device: where the integers are made.

    Returns:
        ``[batch, n, numel]`` int64.
    """
    key = randomness.layer_key(ctx.seed, randomness.layer_id(name))
    samples = torch.arange(ctx.first, ctx.first + ctx.n, device=device)
    keys = randomness.stream_keys(key, ctx.item_indices(device), samples)  # [batch, n]
    words = randomness.words(keys, torch.arange(numel, device=device), 1)[..., 0]
    return words >> (32 - bits)


def bernoulli_field(layer: SampledLayer, name: str, coin, prob: torch.Tensor, rows: int,
                    numel: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Bernoulli draws (bool) with the realised probability ``prob`` (broadcast to the field),
    one per (row, element), counted on ``coin``.

    Args:
        layer: the layer that draws.
        name: names the field (and the coin's per-layer state).
        coin (RandomSource): the device; its comparator turns integers into coins.
        prob: the probability of True, broadcast to the field.
        rows: rows of the call.
        numel: elements per row.
        device: where the draws are made.

    Returns:
        Booleans shaped as [`uniform_ints`][synsample.nn.neural_noise.uniform_ints]'s integers.
    """
    bits, thr = coin.counter_thresholds(coin.probability(prob, name))
    return uniform_ints(layer, name, coin, rows, numel, bits, device) < thr.to(device)


def normal_field(layer: SampledLayer, name: str, source, rows: int, numel: int,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard-normal deviates of a [`GaussianSource`][synsample.devices.GaussianSource], one per
    (row, element), from ``bits_per_draw``-bit uniforms (mid-point quantiles), counted.

    Args:
        layer: the layer that draws.
        name: names the field.
        source (GaussianSource): the device.
        rows: rows of the call.
        numel: elements per row.
        device: where the deviates are made.

    Returns:
        Deviates shaped as [`uniform_ints`][synsample.nn.neural_noise.uniform_ints]'s integers.
    """
    bits = source.bits_per_draw
    return source.from_uniform_ints(uniform_ints(layer, name, source, rows, numel, bits, device),
                                    bits)
