"""A method described once: how it converts a network, what it takes, what it needs.

Every method module (``methods/scann.py``, ``methods/bbb.py``, ...) defines one
[`MethodSpec`][synsample.methods.spec.MethodSpec] called ``SPEC``;
[`synsample.methods`][synsample.methods] collects them in a registry from which the command line,
[`synsample.evaluate`][synsample.evaluate], [`synsample.export`][synsample.export], the cost model's
experiments and `synsample.convert` all read. Nothing else switches on a method's name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from synsample.devices import is_full_precision
from synsample.errors import ConfigError


def _same(model: nn.Module) -> nn.Module:
    return model


@dataclass(frozen=True)
class MethodSpec:
    """What synsample knows about one method.

    Attributes:
        name: the registry key and ``--method`` value, e.g. ``mc-dropout``.
        title: the name a report prints, e.g. ``MC-Dropout``.
        summary: one line for ``--help`` and the docs.
        convert: ``convert(model, *, include, exclude, **options)`` turns a trained network (a
            list of networks for an ensemble) into a
            [`StochasticModel`][synsample.nn.StochasticModel]; ``include``/``exclude`` are None when
            the user gave none (the method's own default).
        options: the keyword options ``convert`` takes beyond the filters.
        precision: what ``precision`` sets for this method (None: it has none); ``convert``
            then takes ``precision`` (``full`` or a number of bits).
        needs_data: the option that holds the training images the method needs (SpinBayes'
            BatchNorm re-calibration), or None.
        many_models: ``convert`` takes a list of networks (a deep ensemble).
        reference: the deterministic network a sampled accuracy is compared with.
        reference_model: builds that network from the trained one.
        exports: whether [`synsample.export`][synsample.export] writes its hardware tensors.
        filters: whether ``include``/``exclude`` choose its layers (``convert`` checks them
            against the network, in `replace_modules`).
    """

    name: str
    title: str
    summary: str
    convert: Callable[..., Any] = field(repr=False)
    options: tuple[str, ...] = ()
    precision: str | None = None
    needs_data: str | None = None
    many_models: bool = False
    reference: str = "network without sampling"
    reference_model: Callable[[nn.Module], nn.Module] = field(default=_same, repr=False)
    exports: bool = False
    filters: bool = True

    def __call__(self, model: nn.Module | Sequence[nn.Module], *, include=None, exclude=None,
                 precision: str | int | None = None, **options: Any):
        """Convert ``model`` with this method (see `synsample.convert`).

        Args:
            model: the trained network (a list of networks for an ensemble).
            include (Filter | None): the layers to sample (None: the method's default).
            exclude (Filter | None): the layers to keep deterministic.
            precision: ``full`` or bits, for a method that has a precision.
            **options: the method's own options (`options`).

        Returns:
            (StochasticModel): the stochastic model.

        Raises:
            ConfigError: for an unknown option, filters for a method without them, a
                precision for a method without one, several networks for a method that takes
                one, or something that is not an ``nn.Module``.
        """
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            raise ConfigError(f"{self.name} takes no option {', '.join(unknown)}; its options: "
                              f"{known}")
        if (include is not None or exclude is not None) and not self.filters:
            raise ConfigError(f"{self.name} converts the whole network; it takes no include or "
                              "exclude filter")
        if not is_full_precision(precision):
            if self.precision is None:
                raise ConfigError(f"{self.name} has no precision to set; leave it at full")
            options["precision"] = precision
        models = list(model) if isinstance(model, list | tuple) else [model]
        if not self.many_models and len(models) != 1:
            raise ConfigError(f"{self.name} converts one network; several make an ensemble "
                              "(method 'ensemble')")
        for m in models:
            if not isinstance(m, nn.Module):
                raise ConfigError(f"{self.name} converts torch nn.Module networks, got "
                                  f"{type(m).__name__}")
        filters = {"include": include, "exclude": exclude} if self.filters else {}
        return self.convert(models if self.many_models else models[0], **filters, **options)

