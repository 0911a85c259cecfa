"""scANN: sampling (by coin flips) artificial neural networks (paper 000, section II.A).

A network trained with the weights of its dense layers in [-1, 1] is read as a matrix of signed
Bernoulli probabilities: every sampled pass draws a binary weight matrix per layer (eq. 3), the
biases and the activations stay as trained. K passes vote; see
[`synsample.metrics`][synsample.metrics].

>>> import torch
>>> from synsample import methods, devices, engine, models
>>> net = models.build("mlp")                                   # 784-400-10
>>> sto = methods.scann.convert(net, coin=devices.QuantizedCoin(bits=8))
>>> pred = engine.predict(sto, torch.zeros(4, 1, 28, 28, dtype=torch.uint8), samples=10)
>>> pred.votes.shape
torch.Size([4, 10])
"""

from __future__ import annotations

import warnings

from torch import nn

from synsample.devices import IdealCoin, RandomSource, coin_or_precision
from synsample.errors import ConfigError
from synsample.methods.spec import MethodSpec
from synsample.nn import CoinFlipLinear, SampledNetwork, replace_modules, split_prefix
from synsample.nn.convert import Filter
from synsample.nn.scale import fold_input_scale

#: the module types scANN samples by default: the dense layers (paper 000, section III.A)
DEFAULT_INCLUDE: tuple[type, ...] = (nn.Linear,)


def convert(model: nn.Module, coin: RandomSource | None = None,
            include: Filter | None = None, exclude: Filter | None = None,
            gain: str | None = None, precision: str | int | None = None) -> SampledNetwork:
    """The scANN stochastic model of any trained network: every chosen ``nn.Linear`` becomes a
    [`CoinFlipLinear`][synsample.nn.CoinFlipLinear] (paper 000, eq. 3).

    Args:
        model: the trained network (left unchanged; a converted copy is returned).
        coin: the device of every sampled weight (default: an ideal coin, or a b-bit coin for
            ``precision``; one device for all layers, so its counter holds the run's bits).
        include: module types or qualified names (shell wildcards) to sample; default every
            ``nn.Linear``.
        exclude: module types or names to keep deterministic.
        gain: ``None`` reads the weights as probabilities as the paper does (they must lie in
            [-1, 1]); ``"row"`` divides each output unit's weights by their largest ``|w|``
            and multiplies its sum back, ``"layer"`` does the same with one factor per layer.
            A network trained without the [-1, 1] clip then uses the whole coin range, and its
            deterministic outputs are unchanged.
        precision: ``full`` or the coin's bits (``8``, ``4``) when ``coin`` is not given.

    Returns:
        The converted network (a [`SampledNetwork`][synsample.nn.SampledNetwork]); the layers before
        the first sampled one form its deterministic prefix, computed once per batch.

    Raises:
        ConfigError: weights outside [-1, 1] without a gain, a filter that matches nothing,
            nothing to sample, an included layer that is not ``nn.Linear``, or both a coin and
            a precision.
    """
    coin = coin_or_precision(coin, precision) or IdealCoin()

    def sampled_twin(name: str, m: nn.Module) -> CoinFlipLinear:
        if not isinstance(m, nn.Linear):
            raise ConfigError(f"layer {name} is a {type(m).__name__}; scANN samples the weights "
                              "of nn.Linear layers: include only those")
        return CoinFlipLinear.from_linear(m, coin, name, gain)

    was_training = model.training
    model.eval()
    try:
        converted, sampled = replace_modules(model, sampled_twin, include, exclude,
                                             DEFAULT_INCLUDE)
    finally:
        model.train(was_training)
    if gain is None:
        _warn_small_weights(converted)
    converted.eval()
    prefix, body = split_prefix(converted, sampled)
    first = body[0] if isinstance(body, nn.Sequential) and len(body) else None
    if isinstance(first, CoinFlipLinear):
        prefix = fold_input_scale(prefix, first)
    return SampledNetwork(prefix, body, sampled, method="scann",
                          info={"coin": coin.describe(), "gain": gain})


#: a layer whose largest |w| is below this reads most of its coins as 0 (paper 000 trains with
#: the clip at 1, so its layers reach it)
SMALL_WEIGHTS = 0.5


def _warn_small_weights(model: nn.Module) -> None:
    small = [(m.layer_name, m.weight.abs().max().item()) for m in model.modules()
             if isinstance(m, CoinFlipLinear) and m.weight.numel()
             and m.weight.abs().max().item() < SMALL_WEIGHTS]
    if small:
        listed = ", ".join(f"{name} ({top:.2g})" for name, top in small)
        warnings.warn(f"scANN: the largest |w| of {listed} is far below 1, so most coins come "
                      "up 0 and accuracy drops; convert with gain='row' to use the whole coin "
                      "range (the deterministic outputs stay the same)", stacklevel=3)


SPEC = MethodSpec(
    name="scann", title="scANN",
    summary="weights in [-1, 1] read as signed Bernoulli coins, K passes vote (paper 000)",
    convert=convert, options=("coin", "gain"), precision="coin bits (8, 4, ...; full: ideal)",
    reference="deterministic network", exports=True)
