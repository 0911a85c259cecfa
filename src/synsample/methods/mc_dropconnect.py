"""MC-DropConnect (Mobiny et al. 2021; paper 004's baseline [20]): Bernoulli masks on the
weights of every layer but the last, one mask per pass.

>>> import torch
>>> from synsample import methods, engine, models
>>> sto = methods.mc_dropconnect.convert(models.build("lenet5-dropconnect", seed=0))
>>> engine.predict(sto, torch.zeros(4, 1, 28, 28, dtype=torch.uint8), samples=5).votes.shape
torch.Size([4, 10])
"""

from __future__ import annotations

from torch import nn

from synsample.devices import RandomSource
from synsample.nn import SampledNetwork
from synsample.nn.dropout import DropConnect, masked_network


def convert(model: nn.Module, coin: RandomSource | None = None) -> SampledNetwork:
    """The sampling model of a trained network with DropConnect layers; ``coin``: the device of
    every mask bit (one device per weight; default: each layer's own ideal coin)."""
    return masked_network(model, DropConnect, "mc-dropconnect", "lenet5-dropconnect", coin)
