"""Weight memory: the bits each layer stores, as its method stores them.

- a digital layer (and a DropConnect or NSM layer): ``float_bits`` per parameter;
- Bayes-by-Backprop: two real numbers per parameter (mean and ``rho``);
- scANN: one probability of the coin's width and a sign bit per weight (paper 000: 8 or 4
  bits), the bias as a real number;
- stochastic computing: ``ceil(log2 states)`` bits per weight (paper 003's 5 or 11 states;
  the streams themselves are transient);
- SpinBayes: N crossbars of Q bits per parameter (paper 004, section 4.3.2);
- BatchNorm: the scale and shift it folds into (two real numbers per channel); a deep ensemble:
  its members.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from synsample.hardware.assumptions import DEFAULT, CostAssumptions
from synsample.nn.bayes import BayesLayer
from synsample.nn.coinflip import CoinFlipLinear
from synsample.nn.crossbar import CrossbarLayer
from synsample.nn.sc_linear import SCLinear


def _real_numel(module: nn.Module) -> int:
    tensors = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
    return sum(t.numel() for t in tensors if t.is_floating_point())


def stored_bits(module: nn.Module, assumptions: CostAssumptions = DEFAULT) -> int:
    """Bits of weight memory ``module`` itself holds (not its children).

    Args:
        module: one module.
        assumptions: gives ``float_bits``, the width of a real number.

    Returns:
        The bits, as the module's method stores them (see the module docstring).
    """
    real = assumptions.float_bits
    if isinstance(module, CoinFlipLinear):
        bias = 0 if module.bias is None else module.bias.numel()
        return module.weight.numel() * (module.coin.bits_per_draw + 1) + bias * real
    if isinstance(module, SCLinear):
        return module.weight.numel() * math.ceil(math.log2(module.states))
    if isinstance(module, CrossbarLayer):
        cells = module.levels.numel() + (0 if module.bias_levels is None
                                         else module.bias_levels.numel())
        return cells * module.bits
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return 2 * module.num_features * real
    if isinstance(module, BayesLayer):
        return sum(t.numel() for t in module.parameters(recurse=False)) * real
    return _real_numel(module) * real


def memory_bits(model: nn.Module, assumptions: CostAssumptions = DEFAULT) -> int:
    """Bits of weight memory of the whole model, each distinct module counted once.

    Args:
        model: the model.
        assumptions: gives ``float_bits``.

    Returns:
        The sum of [`stored_bits`][synsample.hardware.memory.stored_bits] over its modules.
    """
    return sum(stored_bits(m, assumptions) for m in model.modules())


def weights_read_per_pass(module: nn.Module) -> bool:
    """Whether a pass reads the layer's weights from memory.

    Args:
        module: one module.

    Returns:
        False for a crossbar (it computes in place), BatchNorm (folded) and a module without
        tensors of its own; True otherwise.
    """
    if isinstance(module, CrossbarLayer | nn.modules.batchnorm._BatchNorm):
        return False  # computes in place / folded into its neighbours
    return bool(
        [t for t in (*module.parameters(recurse=False), *module.buffers(recurse=False))
         if isinstance(t, torch.Tensor)])
