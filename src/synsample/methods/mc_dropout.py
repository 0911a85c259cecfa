"""MC-Dropout (Gal and Ghahramani 2016; paper 004's baseline [9]): dropout stays on at
inference, one mask per pass.

Any network with ``nn.Dropout`` modules converts: they become
[`MCDropout`][synsample.nn.dropout.MCDropout] layers with the trained rate, drawing their masks from
a coin device. A network without dropout can have some inserted before chosen layers
(``insert_before``, with a rate ``p``); such a network was not trained with those masks, so
fine-tune it with them first.

>>> import torch
>>> from synsample import methods, engine, models
>>> sto = methods.mc_dropout.convert(models.build("lenet5-dropout", seed=0))
>>> engine.predict(sto, torch.zeros(4, 1, 28, 28, dtype=torch.uint8), samples=5).votes.shape
torch.Size([4, 10])
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from torch import nn

from synsample.devices import RandomSource
from synsample.errors import ConfigError
from synsample.methods.spec import MethodSpec
from synsample.nn import SampledNetwork, replace_modules
from synsample.nn.convert import Filter
from synsample.nn.dropout import MCDropout, masked_network


def convert(model: nn.Module, coin: RandomSource | None = None, include: Filter | None = None,
            exclude: Filter | None = None, p: float | None = None,
            insert_before: Sequence[str] = ()) -> SampledNetwork:
    """The MC-Dropout model of a trained network.

    Args:
        model: a network with ``nn.Dropout`` (or synsample's ``MCDropout``) modules.
        coin: the device of every mask bit (one device per unit; default: each layer's own
            ideal coin).
        include: the dropout modules to keep on (types or names; default every
            ``nn.Dropout`` and ``MCDropout``).
        exclude: dropout modules to leave off at inference.
        p: the drop rate of every dropout kept on (default: each module's trained rate);
            required with ``insert_before``.
        insert_before: names of modules to put a new dropout layer of rate ``p`` in front of.

    Returns:
        The sampling model (a [`SampledNetwork`][synsample.nn.SampledNetwork]) whose dropout masks
        are drawn in every pass.

    Raises:
        ConfigError: for a network without dropout, ``insert_before`` without ``p`` or naming
            no module, a filter that matches no module, or an included module that is not a
            dropout layer.
    """
    native = any(isinstance(m, MCDropout) for m in model.modules())
    if native and include is None and exclude is None and p is None and not insert_before:
        return masked_network(model, MCDropout, "mc-dropout", "lenet5-dropout", coin)
    net = copy.deepcopy(model)
    if insert_before:
        if p is None:
            raise ConfigError("insert_before needs the drop rate p of the new dropout layers")
        for name in insert_before:
            try:
                target = net.get_submodule(name)
            except AttributeError:
                raise ConfigError(f"insert_before names {name!r}, which is not a module of the "
                                  "network") from None
            parent, _, child = name.rpartition(".")
            setattr(net.get_submodule(parent) if parent else net, child,
                    nn.Sequential(MCDropout(p), target))
    if not any(isinstance(m, nn.Dropout | MCDropout) for m in net.modules()):
        raise ConfigError("the network has no nn.Dropout to keep on at inference; train it with "
                          "dropout, or insert some with insert_before=[layer names] and p (then "
                          "fine-tune: the network was not trained with those masks)")

    def kept_on(name: str, m: nn.Module) -> nn.Module:
        if isinstance(m, MCDropout):
            return m if p is None else MCDropout(p, m.coin)
        if isinstance(m, nn.Dropout):
            return MCDropout(m.p if p is None else p)
        raise ConfigError(f"module {name} is a {type(m).__name__}, not a dropout layer; include "
                          "only nn.Dropout modules")

    net, kept = replace_modules(net, kept_on, include, exclude, (nn.Dropout, MCDropout))
    for name, m in list(net.named_modules()):  # the others stay off at inference, as in eval mode
        if isinstance(m, nn.Dropout):
            m.p = 0.0
        elif isinstance(m, MCDropout) and name not in kept:
            net.set_submodule(name, nn.Dropout(0.0))
    return masked_network(net, MCDropout, "mc-dropout", "lenet5-dropout", coin)


SPEC = MethodSpec(
    name="mc-dropout", title="MC-Dropout",
    summary="the network's dropout stays on at inference, one mask per pass (Gal 2016)",
    convert=convert, options=("coin", "p", "insert_before"), reference="network without masks")
