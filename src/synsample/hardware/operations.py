"""Counting the operations a run performs: forward hooks on every layer, each layer's
hardware operations (`OPERATIONS`) computed from the
shapes of the call it really made.

One row of a layer's output is one item through one pass (the sampled part) or one item (the
deterministic prefix, computed once per item), so the counts of a run divided by its items are
the operations of one inference as a batch-1 device would do it. The operations are what the
hardware does, not what the simulation does: a stochastic-computing counter drawn from its
distribution still counts ``L`` XNORs per synapse, a crossbar its sensed reads. BatchNorm costs
nothing at inference: its scale and shift fold into the layer before it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import torch
from torch import nn

from synsample.hardware.assumptions import DEFAULT, CostAssumptions
from synsample.hardware.memory import stored_bits, weights_read_per_pass
from synsample.nn.bayes import BayesLayer
from synsample.nn.coinflip import CoinFlipLinear
from synsample.nn.crossbar import CrossbarLayer
from synsample.nn.nsm import Binarize, NSMLayer, StochasticSigmoidLinear
from synsample.nn.sc_linear import SCLinear
from synsample.nn.weight_sampling import WeightSampledLayer

Ops = dict[str, int]


def _fan_in(weight: torch.Tensor) -> int:
    return weight[0].numel()


def _coinflip(m: CoinFlipLinear, out: torch.Tensor) -> Ops:
    return {"add": out.numel() * m.in_features}


def _sc(m: SCLinear, out: torch.Tensor) -> Ops:
    if m.length is None:  # exact arithmetic (the network without SC)
        return {"mac": out.numel() * m.in_features}
    ops = {"xnor": out.numel() * m.in_features * m.length}
    if not m.readout:
        ops["lut"] = out.numel()
    return ops


def _crossbar(m: CrossbarLayer, out: torch.Tensor) -> Ops:
    rows, per_row, ways = out.shape[0], out[0].numel(), m.arbiter.ways
    return {"crossbar_read": rows * (per_row // out.shape[1]) * ways,
            "crossbar_cell": out.numel() * _fan_in(m.levels[0]) * ways,
            "averaging": rows}


def _bayes(m: BayesLayer, out: torch.Tensor) -> Ops:
    # a pass draws its weights (one multiply-add per parameter, w = mu + sigma eps) and uses them
    params = sum(mu.numel() for mu, _ in m._pairs())
    return {"mac": out.numel() * _fan_in(m.weight_mu) + out.shape[0] * params}


def _nsm(m: NSMLayer, out: torch.Tensor) -> Ops:
    # +-1 inputs: blank-out synapses add or subtract their weight; Gaussian ones multiply
    kind = "add" if m.noise.kind == "bernoulli" else "mac"
    return {kind: out.numel() * _fan_in(m.weight), "compare": out.numel()}


def _stochastic_sigmoid(m: StochasticSigmoidLinear, out: torch.Tensor) -> Ops:
    return {"add": out.numel() * m.weight.shape[1], "lut": out.numel()}


def _dense(m: nn.Module, out: torch.Tensor) -> Ops:
    return {"mac": out.numel() * _fan_in(m.weight)}


def _maxpool(m: nn.MaxPool2d, out: torch.Tensor) -> Ops:
    k = m.kernel_size
    window = k * k if isinstance(k, int) else math.prod(k)
    return {"compare": out.numel() * (window - 1)}


#: (layer type, its operations from the output of one call); the first match counts
RULES: list[tuple[type, Callable[[nn.Module, torch.Tensor], Ops]]] = [
    (CoinFlipLinear, _coinflip),
    (SCLinear, _sc),
    (CrossbarLayer, _crossbar),
    (BayesLayer, _bayes),
    (NSMLayer, _nsm),
    (StochasticSigmoidLinear, _stochastic_sigmoid),
    (WeightSampledLayer, _dense),  # DropConnect
    (nn.Linear, _dense),
    (nn.Conv2d, _dense),
    (nn.modules.batchnorm._BatchNorm, lambda m, out: {}),  # folded into the layer before
    (nn.ReLU, lambda m, out: {"compare": out.numel()}),
    (Binarize, lambda m, out: {"compare": out.numel()}),
    (nn.Sigmoid, lambda m, out: {"lut": out.numel()}),
    (nn.MaxPool2d, _maxpool),
    (nn.AvgPool2d, lambda m, out: {"add": out.numel()}),
    (nn.AdaptiveAvgPool2d, lambda m, out: {"add": out.numel()}),
]


def rule_for(module: nn.Module) -> Callable[[nn.Module, torch.Tensor], Ops] | None:
    """The operation-counting rule of ``module``'s type (None: it costs nothing counted).

    Args:
        module: one module.

    Returns:
        The first rule of [`RULES`][synsample.hardware.operations.RULES] whose type the module is,
        or None.
    """
    for kind, rule in RULES:
        if isinstance(module, kind):
            return rule
    return None


class OperationCounter:
    """Counts, while active (``with counter: ...``), the operations and weight bits read of
    every layer of ``model`` that has a rule, split into the ``prefix`` (the modules under
    ``model.prefix_net``, if any) and the ``sampled`` part.

    Args:
        model: the model whose layers are hooked.
        assumptions: gives the width of the weights read.
    """

    def __init__(self, model: nn.Module, assumptions: CostAssumptions = DEFAULT) -> None:
        self.model, self.assumptions = model, assumptions
        prefix = getattr(model, "prefix_net", None)
        self._prefix_ids = {id(m) for m in prefix.modules()} if prefix is not None else set()
        self.ops: dict[str, Counter] = {"prefix": Counter(), "sampled": Counter()}
        self.weight_bits_read: Counter = Counter()
        self._handles: list = []

    def _hook(self, module: nn.Module, rule, part: str, bits: int):
        def hook(mod, inputs, output):
            if not isinstance(output, torch.Tensor):
                return
            self.ops[part].update(rule(mod, output))
            self.weight_bits_read[part] += output.shape[0] * bits
        return hook

    def __enter__(self) -> OperationCounter:
        seen = set()
        for module in self.model.modules():
            rule = rule_for(module)
            if rule is None or id(module) in seen:
                continue
            seen.add(id(module))
            part = "prefix" if id(module) in self._prefix_ids else "sampled"
            bits = stored_bits(module, self.assumptions) if weights_read_per_pass(module) else 0
            self._handles.append(module.register_forward_hook(self._hook(module, rule, part,
                                                                         bits)))
        return self

    def reset(self) -> None:
        """Forget what was counted (a run that failed part way)."""
        for part in self.ops.values():
            part.clear()
        self.weight_bits_read.clear()

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
