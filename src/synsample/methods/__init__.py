"""Methods: each turns a trained network into a :class:`~synsample.nn.StochasticModel`."""

from __future__ import annotations

from types import ModuleType

from synsample.errors import ConfigError
from synsample.methods import nsm, scann

METHODS: dict[str, ModuleType] = {"scann": scann, "nsm": nsm}

__all__ = ["METHODS", "get", "nsm", "scann"]


def get(name: str) -> ModuleType:
    """The method module called ``name`` (it has a ``convert`` function)."""
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; available: {', '.join(METHODS)}")
    return METHODS[name]
