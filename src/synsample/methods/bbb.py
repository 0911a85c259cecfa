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

import copy

from torch import nn

from synsample.errors import ConfigError
from synsample.nn import SampledNetwork, split_prefix
from synsample.nn.bayes import BayesLayer


def convert(model: nn.Module) -> SampledNetwork:
    """The sampling model of a trained network with Bayes-by-Backprop layers."""
    net = copy.deepcopy(model).eval()
    sampled = [name for name, m in net.named_modules() if isinstance(m, BayesLayer)]
    if not sampled:
        raise ConfigError("the network has no Bayes-by-Backprop layer; train lenet5-bbb (or "
                          "another Bayesian architecture) first")
    for name in sampled:
        net.get_submodule(name).layer_name = name
    prefix, body = split_prefix(net, sampled)
    layer = net.get_submodule(sampled[0])
    return SampledNetwork(prefix, body, sampled, method="bbb",
                          info={"posterior": "mean-field Gaussian",
                                "prior": f"N(0, {layer.prior_sigma}^2)"})
