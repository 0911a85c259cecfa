"""Deep ensembles (Lakshminarayanan et al. 2017; paper 004's baseline [15]): M networks trained
from different seeds; pass ``k`` is member ``k mod M``, so every M passes are the ensemble's
average and no random bit is drawn.

>>> import torch
>>> from synsample import methods, engine, models
>>> members = [models.build("lenet5", seed=s) for s in range(5)]
>>> sto = methods.ensemble.convert(members)
>>> engine.predict(sto, torch.zeros(4, 1, 28, 28, dtype=torch.uint8), samples=10).votes.shape
torch.Size([4, 10])
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from synsample.errors import ConfigError
from synsample.methods.spec import MethodSpec
from synsample.nn import StochasticModel
from synsample.nn.sampling import SamplingContext

DEFAULT_MEMBERS = 5


class Ensemble(StochasticModel):
    """A deep ensemble as a stochastic model: pass ``k`` is member ``k mod M``.

    Args:
        members: the trained networks (copied, in eval mode).

    Raises:
        ConfigError: for no member.
    """
    method = "ensemble"

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ConfigError("an ensemble needs at least one trained network")
        self.members = nn.ModuleList(copy.deepcopy(m).eval() for m in members)

    def sample(self, h: torch.Tensor, context: SamplingContext) -> torch.Tensor:
        """The outputs of the members of the context's passes (each member run once).

        Args:
            h: a batch of inputs ``[batch, ...]``.
            context: the passes (only ``first`` and ``n`` matter).

        Returns:
            ``[n, batch, classes]``.

        Raises:
            ConfigError: when the members' outputs differ in shape.
        """
        size = len(self.members)
        chosen = [(context.first + j) % size for j in range(context.n)]
        outputs = {m: self.members[m](h) for m in sorted(set(chosen))}
        shapes = {tuple(o.shape) for o in outputs.values()}
        if len(shapes) > 1:
            raise ConfigError(f"the ensemble's members give outputs of different shapes "
                              f"({', '.join(map(str, sorted(shapes)))}); its members must be "
                              "networks of one task")
        return torch.stack([outputs[m] for m in chosen])

    def describe(self) -> dict[str, Any]:
        """What the model is, for reports.

        Returns:
            The method, the number of members and the pass rule.
        """
        return {"method": self.method, "members": len(self.members),
                "pass_k_uses": "member k mod M"}


def convert(members: Sequence[nn.Module]) -> Ensemble:
    """The ensemble of trained ``members`` (deterministic networks of one architecture).

    Args:
        members: the trained networks.

    Returns:
        The ensemble.
    """
    return Ensemble(members)


SPEC = MethodSpec(
    name="ensemble", title="deep ensemble",
    summary="M networks trained from different seeds; pass k is member k mod M "
            "(Lakshminarayanan 2017)",
    convert=convert, many_models=True, reference="first member", filters=False)
