"""MC-DropConnect (Mobiny et al. 2021; paper 004's baseline [20]): Bernoulli masks on the
weights, one mask per pass.

A network trained with synsample's DropConnect layers (``lenet5-dropconnect``: every layer but
the last) keeps them (at rate ``p`` when given) and its plain read-out; any other network gets
DropConnect on its chosen ``nn.Linear`` and ``nn.Conv2d`` layers with a rate ``p``.

>>> import torch
>>> from synsample import methods, engine, models
>>> sto = methods.mc_dropconnect.convert(models.build("lenet5-dropconnect", seed=0))
>>> engine.predict(sto, torch.zeros(4, 1, 28, 28, dtype=torch.uint8), samples=5).votes.shape
torch.Size([4, 10])
"""

from __future__ import annotations

from torch import nn

from synsample.devices import RandomSource
from synsample.errors import ConfigError
from synsample.methods.spec import MethodSpec
from synsample.nn import SampledNetwork, replace_modules
from synsample.nn.convert import Filter
from synsample.nn.dropout import (
    DropConnect,
    DropConnectConv2d,
    DropConnectLinear,
    masked_network,
)

#: the rate of paper 004's DropConnect baseline (``lenet5-dropconnect`` trains with it)
DEFAULT_RATE = 0.2


def convert(model: nn.Module, coin: RandomSource | None = None, include: Filter | None = None,
            exclude: Filter | None = None, p: float | None = None) -> SampledNetwork:
    """The MC-DropConnect model of a trained network.

    Args:
        model: a network with DropConnect layers, or any network with ``nn.Linear`` /
            ``nn.Conv2d`` layers.
        coin: the device of every mask bit (one device per weight; default: each layer's own
            ideal coin).
        include: the layers to mask (types or names; default the DropConnect layers of a
            network trained with them, else every ``nn.Linear`` and ``nn.Conv2d``).
        exclude: layers to leave unmasked (a DropConnect layer left out computes without
            masks).
        p: the drop rate of every masked layer (default: a DropConnect layer's trained rate,
            [`DEFAULT_RATE`][synsample.methods.mc_dropconnect.DEFAULT_RATE] for the others).

    Returns:
        The sampling model (a [`SampledNetwork`][synsample.nn.SampledNetwork]) drawing one weight
        mask per pass.

    Raises:
        ConfigError: for an included layer that is not ``nn.Linear`` or ``nn.Conv2d``, or a
            filter that matches no module.
    """
    native = any(isinstance(m, DropConnect) for m in model.modules())
    if native and include is None and exclude is None and p is None:
        return masked_network(model, DropConnect, "mc-dropconnect", "lenet5-dropconnect", coin)
    rate = DEFAULT_RATE if p is None else p

    def masked(name: str, m: nn.Module) -> nn.Module:
        if isinstance(m, DropConnect) and p is None:
            return m
        own_coin = m.coin if isinstance(m, DropConnect) else None
        if isinstance(m, nn.Conv2d):
            return DropConnectConv2d.from_conv(m, rate, own_coin, name)
        if isinstance(m, nn.Linear):
            return DropConnectLinear.from_linear(m, rate, own_coin)
        raise ConfigError(f"layer {name} is a {type(m).__name__}; DropConnect masks the weights "
                          "of nn.Linear and nn.Conv2d layers: include only those")

    net, kept = replace_modules(model, masked, include, exclude,
                                (DropConnect,) if native else (nn.Linear, nn.Conv2d))
    for name, m in list(net.named_modules()):  # trained masks left out are off at inference
        if isinstance(m, DropConnect) and name not in kept:
            net.set_submodule(name, m.unmasked())
    return masked_network(net, DropConnect, "mc-dropconnect", "lenet5-dropconnect", coin)


SPEC = MethodSpec(
    name="mc-dropconnect", title="MC-DropConnect",
    summary="Bernoulli masks on the weights, one mask per pass (Mobiny 2021)",
    convert=convert, options=("coin", "p"), reference="network without masks")
