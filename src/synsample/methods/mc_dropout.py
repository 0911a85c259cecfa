"""MC-Dropout (Gal and Ghahramani 2016; paper 004's baseline [9]): dropout stays on at
inference, one mask per pass.

>>> import torch
>>> from synsample import methods, engine, models
>>> sto = methods.mc_dropout.convert(models.build("lenet5-dropout", seed=0))
>>> engine.predict(sto, torch.zeros(4, 1, 28, 28, dtype=torch.uint8), samples=5).votes.shape
torch.Size([4, 10])
"""

from __future__ import annotations

from torch import nn

from synsample.devices import RandomSource
from synsample.nn import SampledNetwork
from synsample.nn.dropout import MCDropout, masked_network


def convert(model: nn.Module, coin: RandomSource | None = None) -> SampledNetwork:
    """The sampling model of a trained network with MCDropout layers; ``coin``: the device of
    every mask bit (one device per unit; default: each layer's own ideal coin)."""
    return masked_network(model, MCDropout, "mc-dropout", "lenet5-dropout", coin)
