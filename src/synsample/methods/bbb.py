"""Bayes-by-Backprop (Blundell et al. 2015; paper 004's baseline [5]): every pass draws all
weights from the trained Gaussian posterior (eq. 2 of paper 004).

A network with synsample's Bayesian layers samples as it is. Any other network is made Bayesian
first (`bayesian`, MOPED-style: the posterior means are the trained weights); fine-tune
that network on its ELBO ([`synsample.train.fit`][synsample.train.fit]) before trusting its
uncertainty.

>>> import torch
>>> from synsample import methods, engine, models
>>> net = models.build("lenet5-bbb", seed=0)
>>> sto = methods.bbb.convert(net)
>>> engine.predict(sto, torch.zeros(4, 1, 28, 28, dtype=torch.uint8), samples=5).votes.shape
torch.Size([4, 10])
"""

from __future__ import annotations

from torch import nn

from synsample.methods.spec import MethodSpec
from synsample.nn import SampledNetwork, replace_modules
from synsample.nn.bayes import BayesLayer, from_trained
from synsample.nn.convert import Filter, sampling_network

#: MOPED's delta: the posterior's initial standard deviation is delta |w|
DEFAULT_DELTA = 0.1


def bayesian(model: nn.Module, include: Filter | None = None, exclude: Filter | None = None,
             delta: float = DEFAULT_DELTA, prior_sigma: float = 0.1) -> nn.Module:
    """A Bayesian copy of a trained network, ready to fine-tune on the ELBO.

    Args:
        model: the trained network (unchanged).
        include: the layers to make Bayesian (types or names; default every ``nn.Linear`` and
            ``nn.Conv2d``).
        exclude: layers to keep deterministic.
        delta: the posterior's initial standard deviation relative to ``|w|``.
        prior_sigma: the standard deviation of the N(0, sigma^2) prior of the KL term.

    Returns:
        The copy, its chosen layers [`BayesLinear`][synsample.nn.bayes.BayesLinear] /
        ``BayesConv2d`` with posterior means equal to the trained weights.

    Raises:
        ConfigError: for ``delta`` outside (0, 1), a ``prior_sigma`` that is not positive
            and finite, a filter that matches no module, or a layer it cannot make Bayesian.
    """
    net, _ = replace_modules(model, lambda name, m: from_trained(m, delta, prior_sigma, name),
                             include, exclude, (nn.Linear, nn.Conv2d))
    return net


def convert(model: nn.Module, include: Filter | None = None, exclude: Filter | None = None,
            delta: float | None = None, prior_sigma: float | None = None) -> SampledNetwork:
    """The sampling model of a Bayesian network; a network without Bayesian layers is made
    Bayesian first by `bayesian` (with ``include``, ``exclude``, ``delta``,
    ``prior_sigma``).

    Args:
        model: the trained network (unchanged).
        include: the layers to make Bayesian; given, even a Bayesian network is converted
            again by `bayesian`.
        exclude: the layers to keep deterministic (likewise).
        delta: MOPED's delta (default [`DEFAULT_DELTA`][synsample.methods.bbb.DEFAULT_DELTA]), for
            `bayesian`.
        prior_sigma: the prior's standard deviation (default 0.1), for `bayesian`.

    Returns:
        The sampling model (a [`SampledNetwork`][synsample.nn.SampledNetwork]) drawing every weight
        of its Bayesian layers from the posterior in every pass (paper 004, eq. 2).

    Raises:
        ConfigError: as `bayesian`, when it makes the network Bayesian.
    """
    native = any(isinstance(m, BayesLayer) for m in model.modules())
    if not native or include is not None or exclude is not None:
        model = bayesian(model, include, exclude, DEFAULT_DELTA if delta is None else delta,
                         0.1 if prior_sigma is None else prior_sigma)
    prior = next((m.prior_sigma for m in model.modules() if isinstance(m, BayesLayer)), None)
    return sampling_network(model, (BayesLayer,), "bbb",
                            "the network has no Bayes-by-Backprop layer",
                            {"posterior": "mean-field Gaussian", "prior": f"N(0, {prior}^2)"})


SPEC = MethodSpec(
    name="bbb", title="Bayes-by-Backprop",
    summary="every weight drawn from a mean-field Gaussian posterior in every pass "
            "(Blundell 2015)",
    convert=convert, options=("delta", "prior_sigma"), reference="posterior-mean network")
