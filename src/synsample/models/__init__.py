"""The papers' architectures, by name. Every model takes raw uint8 images ``[N, C, H, W]`` and
scales them in its first layer (:class:`ScaleInput`), so the engine sees integer inputs.

=============  ==========================================================  ==================
name           layers                                                      paper
=============  ==========================================================  ==================
``mlp``        784-400-10, ReLU, dropout                                   000, Table I
``conv``       784-[32x3x3]-100-10 (no pooling: 26x26x32 = 21632 -> 100)   000, Table I
``cifar-conv`` 32(3x3)-64(3x3)-128(3x3)-256-128-10, 2x2 max-pool per conv  000, section II.B
=============  ==========================================================  ==================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from synsample.errors import ConfigError
from synsample.nn.scale import ScaleInput

__all__ = ["ARCHS", "Arch", "ScaleInput", "build"]


def init_glorot_(model: nn.Module) -> nn.Module:
    """Keras' default initialisation (Glorot uniform weights, zero biases), as the paper's Keras
    models had; every weight lies far inside [-0.99, 0.99]."""
    for m in model.modules():
        if isinstance(m, nn.Linear | nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def init_uniform_(model: nn.Module, bound: float = 0.99) -> nn.Module:
    """The other reading of paper 000's sentence: dense weights drawn from U(-0.99, 0.99)."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -bound, bound)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


INITS: dict[str, Callable[[nn.Module], nn.Module]] = {"glorot": init_glorot_,
                                                      "uniform": init_uniform_}


def _mlp(input_shape: tuple[int, ...], num_classes: int, dropout: float,
         hidden: tuple[int, ...] = (400,)) -> nn.Sequential:
    layers: list[nn.Module] = [ScaleInput(), nn.Flatten()]
    width = math.prod(input_shape)
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def _conv(input_shape: tuple[int, ...], num_classes: int, dropout: float,
          filters: int = 32, hidden: int = 100) -> nn.Sequential:
    c, h, w = input_shape
    flat = filters * (h - 2) * (w - 2)
    return nn.Sequential(
        ScaleInput(), nn.Conv2d(c, filters, 3), nn.ReLU(), nn.Flatten(), nn.Dropout(dropout),
        nn.Linear(flat, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes))


def _cifar_conv(input_shape: tuple[int, ...], num_classes: int, dropout: float) -> nn.Sequential:
    c, h, w = input_shape
    layers: list[nn.Module] = [ScaleInput()]
    for cin, cout in ((c, 32), (32, 64), (64, 128)):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
    flat = 128 * (h // 8) * (w // 8)
    layers += [nn.Flatten(), nn.Dropout(dropout), nn.Linear(flat, 256), nn.ReLU(),
               nn.Dropout(dropout), nn.Linear(256, 128), nn.ReLU(), nn.Dropout(dropout),
               nn.Linear(128, num_classes)]
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class Arch:
    name: str
    builder: Callable[..., nn.Sequential]
    input_shape: tuple[int, int, int]
    description: str


ARCHS: dict[str, Arch] = {a.name: a for a in (
    Arch("mlp", _mlp, (1, 28, 28), "784-400-10 MLP, ReLU, dropout (paper 000, Table I)"),
    Arch("conv", _conv, (1, 28, 28), "784-[32x3x3]-100-10 conv net (paper 000, Table I)"),
    Arch("cifar-conv", _cifar_conv, (3, 32, 32),
         "32(3x3)-64(3x3)-128(3x3)-256-128-10 conv net (paper 000, CIFAR-10)"),
)}


def build(name: str, input_shape: tuple[int, ...] | None = None, num_classes: int = 10,
          dropout: float = 0.5, init: str = "glorot", seed: int | None = None) -> nn.Sequential:
    """Build architecture ``name`` for inputs of ``input_shape`` (default: the paper's).

    Returns an ``nn.Sequential`` whose first layer scales uint8 pixels by 1/255. ``init``:
    ``glorot`` (Keras default, how we read paper 000) or ``uniform`` (U(-0.99, 0.99) dense
    weights). ``seed`` makes the initialisation reproducible.
    """
    if name not in ARCHS:
        raise ConfigError(f"unknown architecture {name!r}; available: {', '.join(ARCHS)}")
    if init not in INITS:
        raise ConfigError(f"unknown initialisation {init!r}; use one of {', '.join(INITS)}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
    arch = ARCHS[name]
    shape = tuple(input_shape) if input_shape is not None else arch.input_shape
    if len(shape) != 3 or min(shape) < 1 or (name == "conv" and min(shape[1:]) < 3):
        raise ConfigError(f"{name} needs an input shape (C, H, W), got {shape}")
    state = torch.random.get_rng_state()
    if seed is not None:
        torch.manual_seed(seed)
    try:
        model = INITS[init](arch.builder(shape, num_classes, dropout))
    finally:
        if seed is not None:
            torch.random.set_rng_state(state)
    return model
