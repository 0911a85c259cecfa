"""The hardware cost model: what an inference costs in operations, random bits, weight memory
and energy, for every method, measured from a real run
([`measure`][synsample.hardware.cost.measure]) and priced by a named, replaceable set of assumptions
([`CostAssumptions`][synsample.hardware.assumptions.CostAssumptions],
[`load_assumptions`][synsample.hardware.assumptions.load]).

>>> import torch
>>> from synsample import hardware, methods, models
>>> sto = methods.scann.convert(models.build("mlp", seed=0))
>>> cost = hardware.measure(sto, torch.zeros(4, 1, 28, 28, dtype=torch.uint8), samples=10)
>>> sorted(cost["per_inference"])
['energy_nj', 'energy_pj', 'operations', 'random_bits', 'weight_bits_read']
"""

from synsample.hardware.assumptions import (
    DEFAULT,
    OPERATIONS,
    TECHNOLOGIES,
    CostAssumptions,
)
from synsample.hardware.assumptions import load as load_assumptions
from synsample.hardware.cost import measure
from synsample.hardware.memory import memory_bits, stored_bits
from synsample.hardware.operations import OperationCounter

__all__ = ["DEFAULT", "OPERATIONS", "TECHNOLOGIES", "CostAssumptions", "OperationCounter",
           "load_assumptions", "measure", "memory_bits", "stored_bits"]
