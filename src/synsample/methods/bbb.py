"""Bayes-by-Backprop (Blundell et al. 2015; paper 004's baseline [5]): every pass draws all
weights from the trained Gaussian posterior (eq. 2 of paper 004).

>>> import torch
>>> from synsample import methods, engine, models
>>> net = models.build("lenet5-bbb", seed=0)
>>> sto = methods.bbb.convert(net)
>>> engine.predict(sto, torch.zeros(4, 1, 28, 28, dtype=torch.uint8), samples=5).votes.shape
torch.Size([4, 10])
"""

from __future__ import annotations

from torch import nn

from synsample.nn import SampledNetwork
from synsample.nn.bayes import BayesLayer
from synsample.nn.convert import sampling_network


def convert(model: nn.Module) -> SampledNetwork:
    """The sampling model of a trained network with Bayes-by-Backprop layers."""
    prior = next((m.prior_sigma for m in model.modules() if isinstance(m, BayesLayer)), None)
    return sampling_network(model, (BayesLayer,), "bbb",
                            "the network has no Bayes-by-Backprop layer; train lenet5-bbb (or "
                            "another Bayesian architecture) first",
                            {"posterior": "mean-field Gaussian", "prior": f"N(0, {prior}^2)"})
