"""Sampling-aware training of scANN networks (issue 20): the coins in the training loop.

Paper 000 trains an ordinary network and reads its weights as coins afterwards (section II.A):
each weight ``w`` in [-1, 1] becomes the signed Bernoulli ``W~ = sign(w) B``, ``B ~
Bernoulli(|w|)`` (eq. 3), so ``E[W~] = w`` but the sampled network is not the trained one.
Training *through* the coins optimises the expected loss of the sampled network instead.

Two gradient estimators are offered (``ESTIMATORS``):

``lrt`` (the default): the local reparameterisation of a layer's pre-activation. Given the
    layer's input ``x``, the pre-activation ``a_j = sum_i x_i W~_ji + b_j`` is a sum of
    independent coins, with

        E[a_j]   = sum_i x_i sign(w_ji) p_ji + b_j,
        Var[a_j] = sum_i x_i^2 p_ji (1 - p_ji),            p_ji = P(coin ji = 1),

    exact for any ``x``; the training pass draws ``a_j = E[a_j] + sqrt(Var[a_j]) eps_j``,
    ``eps_j ~ N(0, 1)`` per item and unit (the central limit of the coin sum: exact in the
    limit of many inputs). Two matrix products per layer, one normal per unit, low variance
    (every item has its own noise, as independent sampling has), and the gradient reaches
    both moments: it sees that moving ``|w|`` towards 0 or 1 makes the coin less noisy
    (``d Var / d|w| = x^2 (1 - 2|w|)``). For a loss quadratic in ``a`` the gradient is
    unbiased for the exact expected loss of the coins (both depend on the two moments only);
    tests/nn/test_sampling_aware.py checks it against enumeration of every coin outcome.
``ste``: the straight-through estimator on sampled signed-Bernoulli weights, as
    BinaryConnect: the forward pass uses one sampled weight matrix per step (shared by the
    batch, as shared sampling does), the backward pass treats ``dW~/dw`` as 1. Its expected
    gradient is that of the loss at the *mean* path only: it misses the variance term above,
    so it cannot learn to make the coins less noisy (the test shows the missing term), and one
    draw per batch gives a noisier gradient. Kept for comparison.

The device is in the loop through its realised probability: ``p = coin.probability(|w|,
layer)`` of any [`RandomSource`][synsample.devices.RandomSource] (the levels of a b-bit
[`QuantizedCoin`][synsample.devices.QuantizedCoin], the bias, spread and stuck devices of a
[`NonIdealCoin`][synsample.devices.NonIdealCoin], keyed by the same layer name the converter gives
it, so the same devices), with the gradient passed straight through the device's map
(``dp/d|w| = 1``). Inference is unchanged: the trained ``nn.Linear`` weights are converted
by [`synsample.methods.scann.convert`][synsample.methods.scann.convert] and sampled by the engine's
exact coins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F

from synsample.devices import IdealCoin, RandomSource
from synsample.errors import ConfigError
from synsample.nn.convert import Filter, _matches

#: the gradient estimators of sampling-aware training (see the module docstring)
ESTIMATORS = ("lrt", "ste")
#: variance floor under the square root (a unit whose coins are all certain has none)
_TINY = 1e-12


def realised_probability(weight: torch.Tensor, coin: RandomSource, pool: str = ""
                         ) -> torch.Tensor:
    """``P(coin = 1)`` of each weight as ``coin`` realises it (paper 000, eq. 3: ``|w|``;
    quantized, biased, spread or stuck for an imperfect device), with the gradient of ``|w|``
    (straight through the device's map).

    Args:
        weight: the layer's weights, in [-1, 1].
        coin: the device model.
        pool: the layer's name (the device pool of an imperfect coin).

    Returns:
        ``p``, shaped as ``weight``.
    """
    a = weight.abs()
    p = coin.probability(a.detach(), pool).to(a.dtype)
    return a + (p - a.detach())


def coin_moments(weight: torch.Tensor, coin: RandomSource, pool: str = ""
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(E[W~], Var[W~])`` of the signed coins of ``weight`` (paper 000, eq. 3): ``sign(w) p``
    and ``p (1 - p)`` with ``p`` the realised probability; the mean's gradient is 1, the
    variance's ``(1 - 2p) sign(w)``.

    Args:
        weight: the layer's weights, in [-1, 1].
        coin: the device model.
        pool: the layer's name (the device pool of an imperfect coin).

    Returns:
        ``(mean, variance)``, each shaped as ``weight``.
    """
    p = realised_probability(weight, coin, pool)
    mean = torch.sign(weight.detach()) * p.detach()
    # d mean / dw = 1 everywhere, also at w = 0 (where sign(w) |w| has no gradient)
    return weight + (mean - weight.detach()), p * (1.0 - p)


def lrt_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
               coin: RandomSource, pool: str = "", generator: torch.Generator | None = None
               ) -> torch.Tensor:
    """One training pass of a coin-flip linear layer by the local reparameterisation:
    ``x.E[W~] + b + sqrt(x^2.Var[W~]) eps``, ``eps ~ N(0, 1)`` per item and unit.

    Args:
        x: ``[batch, in]``.
        weight: ``[out, in]``, in [-1, 1].
        bias: ``[out]`` or None.
        coin: the device model.
        pool: the layer's name (the device pool).
        generator: draws ``eps`` (None: torch's default).

    Returns:
        ``[batch, out]`` sampled pre-activations, with gradients to both moments.
    """
    mean, var = coin_moments(weight, coin, pool)
    mu = F.linear(x, mean, bias)
    sd = torch.sqrt(F.linear(x * x, var).clamp_min(_TINY))
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + sd * eps


def ste_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
               coin: RandomSource, pool: str = "", generator: torch.Generator | None = None
               ) -> torch.Tensor:
    """One training pass with one sampled signed binary weight matrix for the batch; its
    gradient flows to ``w`` straight through the sample (``dW~/dw = 1``).

    Args:
        x: ``[batch, in]``.
        weight: ``[out, in]``, in [-1, 1].
        bias: ``[out]`` or None.
        coin: the device model.
        pool: the layer's name (the device pool).
        generator: draws the uniforms (None: torch's default).

    Returns:
        ``[batch, out]``.
    """
    p = coin.probability(weight.detach().abs(), pool).to(weight.dtype)
    u = torch.rand(p.shape, generator=generator, dtype=p.dtype, device=p.device)
    sample = torch.sign(weight.detach()) * (u < p).to(weight.dtype)
    return F.linear(x, weight + (sample - weight.detach()), bias)


_FORWARDS: dict[str, Callable[..., torch.Tensor]] = {"lrt": lrt_linear, "ste": ste_linear}


def check_estimator(estimator: str) -> None:
    """Refuse an estimator that is not one of [`ESTIMATORS`][synsample.nn.sampling_aware.ESTIMATORS]
    (one line).

    Args:
        estimator: the estimator's name.

    Raises:
        ConfigError: for an unknown estimator.
    """
    if estimator not in ESTIMATORS:
        raise ConfigError(f"unknown sampling-aware estimator {estimator!r}; use one of "
                          f"{', '.join(ESTIMATORS)}")


def attach(model: nn.Module, coin: RandomSource | None = None, estimator: str = "lrt",
           include: Filter = (nn.Linear,), exclude: Filter = ()
           ) -> tuple[list[str], Callable[[], None]]:
    """Make every chosen ``nn.Linear`` of ``model`` compute its training-mode passes through
    its coins (``estimator``: ``lrt`` or ``ste``, module docstring); in eval mode it stays
    deterministic. The layers keep their parameters and ``state_dict``, so the trained network
    is an ordinary one that [`synsample.methods.scann.convert`][synsample.methods.scann.convert]
    turns into coins. Noise comes from torch's default generator (seed it for a reproducible run).

    Args:
        model: the network (patched in place).
        coin: the device model (an ideal coin by default).
        estimator: ``'lrt'`` or ``'ste'``.
        include: module types or qualified names to train through their coins (only
            ``nn.Linear`` layers are taken).
        exclude: module types or qualified names to leave alone.

    Returns:
        the qualified names of the layers (the device pools, as the converter names them) and
        a function that restores their ordinary forward.

    Raises:
        ConfigError: for an unknown estimator, or when no layer is chosen.
    """
    check_estimator(estimator)
    coin = coin if coin is not None else IdealCoin()
    forward = _FORWARDS[estimator]
    chosen = [(name, m) for name, m in model.named_modules()
              if name and isinstance(m, nn.Linear) and _matches(name, m, tuple(include))
              and not _matches(name, m, tuple(exclude))]
    if not chosen:
        raise ConfigError("sampling-aware training found no nn.Linear layer to train through "
                          "its coins; scANN samples the dense layers")

    def patched(m: nn.Linear, name: str) -> Callable[[torch.Tensor], torch.Tensor]:
        def run(x: torch.Tensor) -> torch.Tensor:
            if not m.training:
                return F.linear(x, m.weight, m.bias)
            return forward(x, m.weight, m.bias, coin, name)
        return run

    saved = [(m, m.__dict__.get("forward")) for _, m in chosen]
    for name, m in chosen:
        m.forward = patched(m, name)

    def detach() -> None:
        for m, before in saved:
            if before is None:
                m.__dict__.pop("forward", None)
            else:
                m.forward = before

    return [name for name, _ in chosen], detach


@contextmanager
def sampling_aware(model: nn.Module, coin: RandomSource | None = None, estimator: str = "lrt",
                   include: Filter = (nn.Linear,), exclude: Filter = ()
                   ) -> Iterator[list[str]]:
    """[`attach`][synsample.nn.sampling_aware.attach] for the duration of a ``with`` block; yields
    the layers' names.

    Args:
        model: the network (patched for the block).
        coin: the device model (an ideal coin by default).
        estimator: ``'lrt'`` or ``'ste'``.
        include: module types or qualified names to train through their coins.
        exclude: module types or qualified names to leave alone.

    Yields:
        The qualified names of the layers.

    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> with sampling_aware(net) as layers:
    ...     loss = net(torch.ones(5, 4)).sum()
    >>> layers
    ['0', '2']
    """
    names, detach = attach(model, coin, estimator, include, exclude)
    try:
        yield names
    finally:
        detach()
