"""Input scaling as a layer, so that a sampled layer can take it over (exact integer GEMMs)."""

from __future__ import annotations

import torch
from torch import nn

#: modules that only move or pass values along; a scale can be folded across them
SHAPE_ONLY = (nn.Flatten, nn.Identity, nn.Dropout, nn.Unflatten)


class ScaleInput(nn.Module):
    """Casts raw integer pixels to float and multiplies by ``scale`` (1/255 by default).

    Args:
        scale: the factor the float32 input is multiplied by.
    """

    def __init__(self, scale: float = 1.0 / 255.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as float32, times ``scale`` (same shape)."""
        return x.to(torch.float32) * self.scale

    def extra_repr(self) -> str:
        """The scale, shown by ``repr``."""
        return f"scale={self.scale:.6g}"


def fold_input_scale(prefix: nn.Module, layer: nn.Module) -> nn.Module:
    """Move a trailing [`ScaleInput`][synsample.nn.scale.ScaleInput] of ``prefix`` into
    ``layer.input_scale``.

    When only shape operations stand between the scaling and the first sampled layer, that
    layer can compute ``scale * (x @ W~^T)`` on the raw integers instead of ``(scale * x) @
    W~^T``: mathematically the same, and with integer ``x`` and ``W~`` in {-1, 0, 1} the sum
    is an exact integer in fp32 and in int32, so fast integer GEMMs give the same votes.

    Args:
        prefix: the deterministic part of the network that runs before ``layer``.
        layer: the first sampled layer; only a layer with an ``input_scale`` attribute can
            take the scale over (it is set on ``layer`` in place).

    Returns:
        The prefix without the scaling (``prefix`` itself if nothing can be folded).
    """
    if not isinstance(prefix, nn.Sequential) or not hasattr(layer, "input_scale"):
        return prefix
    children = list(prefix.children())
    for i in range(len(children) - 1, -1, -1):
        if isinstance(children[i], ScaleInput):
            layer.input_scale = float(children[i].scale)
            return nn.Sequential(*children[:i], *children[i + 1:])
        if not isinstance(children[i], SHAPE_ONLY):
            break
    return prefix
