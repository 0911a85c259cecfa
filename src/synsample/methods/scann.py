"""scANN: sampling (by coin flips) artificial neural networks (paper 000, section II.A).

A network trained with the weights of its dense layers in [-1, 1] is read as a matrix of signed
Bernoulli probabilities: every sampled pass draws a binary weight matrix per layer (eq. 3), the
biases and the activations stay as trained. K passes vote; see :mod:`synsample.metrics`.

>>> import torch
>>> from synsample import methods, devices, engine, models
>>> net = models.build("mlp")                                   # 784-400-10
>>> sto = methods.scann.convert(net, coin=devices.QuantizedCoin(bits=8))
>>> pred = engine.predict(sto, torch.zeros(4, 1, 28, 28, dtype=torch.uint8), samples=10)
>>> pred.votes.shape
torch.Size([4, 10])
"""

from __future__ import annotations

from torch import nn

from synsample.devices import IdealCoin, RandomSource
from synsample.errors import ConfigError
from synsample.nn import CoinFlipLinear, SampledNetwork, replace_modules, split_prefix
from synsample.nn.convert import Filter
from synsample.nn.scale import fold_input_scale

#: the module types scANN samples by default: the dense layers (paper 000, section III.A)
DEFAULT_INCLUDE: tuple[type, ...] = (nn.Linear,)


def convert(model: nn.Module, coin: RandomSource | None = None,
            include: Filter = DEFAULT_INCLUDE, exclude: Filter = ()) -> SampledNetwork:
    """Return the scANN stochastic model of a trained network.

    ``coin``: the device model of every sampled weight (:class:`IdealCoin` when None; one device
    for all layers, so its counter holds the run's random bits). ``include`` / ``exclude``:
    module types (or, for ``exclude``, qualified names with wildcards) to sample or to keep
    deterministic. Raises ``ConfigError`` when a sampled layer has weights outside [-1, 1].
    The deterministic layers before the first sampled one form the prefix, computed once per
    batch, not once per sample.
    """
    coin = coin if coin is not None else IdealCoin()
    was_training = model.training
    model.eval()
    try:
        converted, sampled = replace_modules(
            model, lambda name, m: CoinFlipLinear.from_linear(m, coin, name), include, exclude)
    finally:
        model.train(was_training)
    if not sampled:
        raise ConfigError("no layer of the network is sampled (include "
                          f"{_names(include)}, exclude {_names(exclude) or 'nothing'}); scANN "
                          "samples nn.Linear layers: include one, or exclude fewer")
    converted.eval()
    prefix, body = split_prefix(converted, sampled)
    first = body[0] if isinstance(body, nn.Sequential) and len(body) else None
    if isinstance(first, CoinFlipLinear):
        prefix = fold_input_scale(prefix, first)
    return SampledNetwork(prefix, body, sampled, method="scann",
                          info={"coin": coin.describe()})


def _names(spec: Filter) -> str:
    items = spec if isinstance(spec, tuple | list) else (spec,)
    return ", ".join(getattr(i, "__name__", str(i)) for i in items)
