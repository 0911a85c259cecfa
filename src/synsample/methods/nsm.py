"""Neural Sampling Machines (paper 002): the trained network already samples; converting it
only splits off the deterministic prefix (input binarisation) and, if asked, puts its noise on
other devices (a b-bit coin or Gaussian source).

>>> import torch
>>> from synsample import methods, engine, models
>>> net = models.build("nsm-mlp", seed=0)                      # 784-300-300-300-10, p = 0.5
>>> sto = methods.nsm.convert(net)
>>> pred = engine.predict(sto, torch.zeros(4, 1, 28, 28, dtype=torch.uint8), samples=10)
>>> pred.votes.shape
torch.Size([4, 10])

Section 3.3 and the tables average the softmax outputs of 100 passes; the engine keeps both
that mean (``Prediction.mean_probs``) and the votes.
"""

from __future__ import annotations

import copy
import math

from torch import nn

from synsample.devices import (
    GaussianSource,
    IdealCoin,
    NoiseSource,
    RandomSource,
    coin_or_precision,
)
from synsample.errors import ConfigError
from synsample.methods.spec import MethodSpec
from synsample.nn import SampledNetwork, split_prefix
from synsample.nn.nsm import NSMConv2d, NSMLayer, StochasticSigmoidLinear

#: activation bytes one sampled row may hold per call, for networks with convolutions
ROW_BUDGET = 1 << 28


def _gaussian_like(coin: RandomSource) -> GaussianSource:
    return GaussianSource(None if isinstance(coin, IdealCoin) else coin.bits_per_draw)


def convert(model: nn.Module, coin: RandomSource | None = None,
            precision: str | int | None = None) -> SampledNetwork:
    """Return the NSM stochastic model of a trained network with NSM (or StNN) layers.

    ``coin``: when given, the device of every Bernoulli draw (blank-out synapses, StNN units),
    and its precision for the Gaussian noise (a [`GaussianSource`][synsample.devices.GaussianSource]
    of as many bits, ideal for an ideal coin); one device per kind for the whole network, so its
    counter holds the run's random bits. When None, each layer keeps the device it was trained with;
    ``precision`` (``full`` or bits) names such a coin instead (not both).

    Args:
        model: the trained network (copied, in eval mode).
        coin: the device of the noise, or None.
        precision: the precision of a coin for every layer, instead of ``coin``.

    Returns:
        The sampling model (a [`SampledNetwork`][synsample.nn.SampledNetwork]); with convolutions it
        limits the rows per call.

    Raises:
        ConfigError: for a network with no stochastic layer (NSMs sample with units their
            training made, paper 002, so a network of other units cannot be converted), or
            both a coin and a precision.
    """
    coin = coin_or_precision(coin, precision)
    net = copy.deepcopy(model).eval()
    sampled = [name for name, m in net.named_modules()
               if isinstance(m, NSMLayer | StochasticSigmoidLinear)]
    if not sampled:
        raise ConfigError("the network has no NSM or StNN layer: a Neural Sampling Machine is "
                          "trained with its stochastic sign units (paper 002), so a network of "
                          "other units cannot be converted; train an nsm-* architecture, or use "
                          "method scann, mc-dropout or bbb")
    if coin is not None:
        gaussian = _gaussian_like(coin)
        for name in sampled:
            layer = net.get_submodule(name)
            if isinstance(layer, StochasticSigmoidLinear):
                layer.coin = coin
            else:
                layer.source = coin if layer.noise.kind == "bernoulli" else gaussian
    prefix, body = split_prefix(net, sampled)
    stochastic = SampledNetwork(prefix, body, sampled, method="nsm", info=_info(net, coin))
    if any(isinstance(m, NSMConv2d) for m in net.modules()):
        widest = max(math.prod(m.beta.shape) for m in net.modules() if isinstance(m, NSMConv2d))
        stochastic.rows_per_call = max(16, ROW_BUDGET // (16 * widest))
    return stochastic


def _info(net: nn.Module, coin: NoiseSource | None) -> dict:
    layers = [m for m in net.modules() if isinstance(m, NSMLayer)]
    info = {"coin": None if coin is None else coin.describe(),
            "units": "sign (eq. 1)" if layers else "sigmoid stochastic (StNN)"}
    if layers:
        info.update(noise=str(layers[0].noise), estimator=layers[0].estimator,
                    linear_noise_site="synapse" if any(m.site == "synapse" for m in layers)
                    else "input")
    return info


SPEC = MethodSpec(
    name="nsm", title="Neural Sampling Machine",
    summary="sign units with multiplicative synaptic noise, trained through the erf firing "
            "probability (paper 002)",
    convert=convert, options=("coin",), precision="the noise coin's bits (full: ideal)",
    reference="network, one sampled pass", filters=False)
