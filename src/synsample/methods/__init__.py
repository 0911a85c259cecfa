"""Methods: each turns a trained network into a [`StochasticModel`][synsample.nn.StochasticModel].

Every method module defines its [`MethodSpec`][synsample.methods.spec.MethodSpec]; `REGISTRY`
holds them by name, and [`convert`][synsample.methods.convert] is the one front door
(``synsample.convert``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from synsample.errors import ConfigError
from synsample.methods import (
    bbb,
    ensemble,
    mc_dropconnect,
    mc_dropout,
    nsm,
    sc,
    scann,
    spinbayes,
)
from synsample.methods.spec import MethodSpec
from synsample.nn.convert import Filter
from synsample.nn.stochastic import StochasticModel

#: every method's spec, by name
REGISTRY: dict[str, MethodSpec] = {m.SPEC.name: m.SPEC for m in (
    scann, nsm, sc, bbb, spinbayes, mc_dropout, mc_dropconnect, ensemble)}
#: the method names (``--method`` choices)
METHODS = tuple(REGISTRY)

__all__ = ["METHODS", "REGISTRY", "MethodSpec", "bbb", "convert", "ensemble", "get",
           "mc_dropconnect", "mc_dropout", "nsm", "sc", "scann", "spinbayes"]


def get(name: str) -> MethodSpec:
    """The spec of the method called ``name``.

    Args:
        name: a key of `REGISTRY`.

    Returns:
        The method's spec.

    Raises:
        ConfigError: for an unknown method.
    """
    if name not in REGISTRY:
        raise ConfigError(f"unknown method {name!r}; available: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def convert(model: nn.Module | Sequence[nn.Module], method: str, *,
            include: Filter | None = None, exclude: Filter | None = None,
            precision: str | int | None = None, **options: Any) -> StochasticModel:
    """Turn a trained network (any ``nn.Module``, its own ``forward`` included) into the
    stochastic model of ``method``.

    Args:
        model: the trained network (a list of networks for ``ensemble``); never changed.
        method: a name from `REGISTRY`: ``scann``, ``mc-dropout``, ``mc-dropconnect``,
            ``bbb``, ``spinbayes``, ``ensemble`` convert any network; ``nsm`` and ``sc`` need
            the units their training makes, and say so in one line otherwise.
        include: module types or qualified names (shell wildcards) the method samples
            (default: the method's own choice, e.g. every ``nn.Linear`` for scANN).
        exclude: module types or names to leave deterministic.
        precision: ``full`` or bits, for the methods that have one (scANN's coins, NSM's noise
            coin, SC's LFSR or MTJ DAC, SpinBayes' crossbars).
        **options: the method's own options (``MethodSpec.options``), e.g. ``gain="row"`` for
            scANN, ``p`` for MC-Dropout, ``calibration=images`` for SpinBayes.

    Returns:
        The stochastic model, for `synsample.predict`.

    Raises:
        ConfigError: an unknown method or option, a filter that matches nothing, nothing to
            sample, or a network the method cannot take (the message says why).
    """
    return get(method)(model, include=include, exclude=exclude, precision=precision, **options)
