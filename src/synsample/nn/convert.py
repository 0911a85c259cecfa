"""The conversion walk: replace chosen modules of a trained network by sampled ones.

Like bayesian-torch's ``dnn_to_bnn`` and aihwkit's ``convert_to_analog``, the walk takes filters:
``include`` (module types to convert) and ``exclude`` (types, or qualified module names with
shell-style wildcards, to leave alone).
"""

from __future__ import annotations

import copy
import fnmatch
import warnings
from collections.abc import Callable, Iterable

from torch import nn

from synsample.errors import ConfigError
from synsample.nn.split import trace_split

Filter = Iterable[type | str]


def _matches(name: str, module: nn.Module, patterns: Filter) -> bool:
    for p in patterns:
        if isinstance(p, str):
            if fnmatch.fnmatchcase(name, p):
                return True
        elif isinstance(module, p):
            return True
    return False


def replace_modules(model: nn.Module, factory: Callable[[str, nn.Module], nn.Module],
                    include: Filter | None = None, exclude: Filter | None = None,
                    default: Filter = (nn.Linear,)) -> tuple[nn.Module, list[str]]:
    """Return a deep copy of ``model`` with every included, not excluded, module replaced by
    ``factory(qualified_name, module)``, and the qualified names replaced.

    A module inside one already replaced is left alone. ``include`` and ``exclude`` are the
    user's filters, checked by [`check_filters`][synsample.nn.convert.check_filters]; ``default`` is
    the method's own choice.

    Args:
        model: the trained network (not modified).
        factory: makes the replacement of a module from its qualified name and itself.
        include: module types or qualified names (shell-style wildcards) to replace (None:
            ``default``).
        exclude: module types or qualified names to leave alone (None: none).
        default: the module types or names replaced when ``include`` is None.

    Returns:
        ``(copy, names)``: the converted copy and the qualified names replaced, in
        ``named_modules`` (registration) order.

    Raises:
        ConfigError: for a filter that is neither a module type nor a string or that matches
            no module, or when no module would be replaced.
    """
    check_filters(model, include, exclude)
    include, exclude = tuple(default if include is None else include), tuple(exclude or ())
    model = copy.deepcopy(model)
    replaced = []
    for name, module in list(model.named_modules()):
        if not name or not _matches(name, module, include) or _matches(name, module, exclude):
            continue
        if any(name.startswith(r + ".") for r in replaced):
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, factory(name, module))
        replaced.append(name)
    if not replaced:
        raise ConfigError(f"no layer of the network would be sampled (include "
                          f"{', '.join(map(_name, include))}; exclude "
                          f"{', '.join(map(_name, exclude)) or 'nothing'}): include a layer the "
                          "network has, or exclude fewer")
    return model, replaced


def check_filters(model: nn.Module, include: Filter | None, exclude: Filter | None) -> None:
    """Refuse a user's ``include`` or ``exclude`` pattern that matches no module of ``model``:
    a filter that matches nothing is a mistake (a typo, a renamed layer), never a no-op.

    Args:
        model: the network the filters apply to.
        include: the user's include filters (module types or names), or None.
        exclude: the user's exclude filters, or None.

    Raises:
        ConfigError: for a filter of the wrong kind or one that matches no module.
    """
    modules = [(name, m) for name, m in model.named_modules() if name]
    for kind, patterns in (("include", include), ("exclude", exclude)):
        for p in patterns or ():
            if not isinstance(p, str) and not (isinstance(p, type) and issubclass(p, nn.Module)):
                raise ConfigError(f"filters take nn.Module types or module names, got {p!r}")
            if not any(_matches(name, m, (p,)) for name, m in modules):
                raise ConfigError(f"the {kind} filter {_name(p)} matches no module of the "
                                  f"network; its modules: "
                                  f"{', '.join(n for n, _ in modules[:12])}"
                                  f"{', ...' if len(modules) > 12 else ''}")


def _name(pattern: type | str) -> str:
    return repr(pattern) if isinstance(pattern, str) else pattern.__name__


def split_prefix(model: nn.Module, sampled: list[str]) -> tuple[nn.Module, nn.Module]:
    """Split a network into its deterministic prefix and the rest.

    Returns ``(prefix, body)`` with ``body(prefix(x))`` the network's output: the prefix is
    computed once per item block, the body once per chunk of passes. For an ``nn.Sequential``
    whose sampled modules are all top-level children, the prefix is the children before the
    first sampled one ([`fold_input_scale`][synsample.nn.scale.fold_input_scale] can take its last
    scaling). Any other network is split by [`trace_split`][synsample.nn.split.trace_split], which
    also makes skip connections across sampled layers work. A network torch.fx cannot trace
    keeps its ``nn.Sequential`` split, or else the identity prefix, with a warning.

    Args:
        model: the converted network.
        sampled: the qualified names of its sampled modules.

    Returns:
        ``(prefix, body)``.
    """
    if not sampled:
        return nn.Identity(), model
    fallback = (nn.Identity(), model)
    if isinstance(model, nn.Sequential):
        names = [name for name, _ in model.named_children()]
        first = min(names.index(name.split(".")[0]) for name in sampled)
        children = list(model.children())
        fallback = nn.Sequential(*children[:first]), nn.Sequential(*children[first:])
        if all("." not in name for name in sampled):
            return fallback
    try:
        return trace_split(model)
    except Exception as exc:  # torch.fx refuses data-dependent control flow, and more
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        warnings.warn(f"{type(model).__name__} cannot be traced by torch.fx ({reason}): its "
                      "deterministic layers before the first sampled one will be recomputed "
                      "for every chunk of passes", stacklevel=2)
        return fallback


def sampling_network(model: nn.Module, layer_types: tuple[type, ...], method: str,
                     missing: str, info: dict | None = None, coin=None):
    """The sampling model of a trained network whose ``layer_types`` layers already sample (a
    Bayesian, dropout or DropConnect network): a deep copy in eval mode, each such layer named
    (the names key its counter-based draws), split into prefix and body.

    Args:
        model: the trained network (not modified).
        layer_types: the types of its sampling layers.
        method: the method's name.
        missing: the error's advice when the network has no such layer.
        info: more to report in ``describe()``.
        coin (RandomSource | None): when given, the device of every such layer's coin (and
            described in ``info``).

    Returns:
        (SampledNetwork): the sampling model.

    Raises:
        ConfigError: with ``missing`` when the network has no ``layer_types`` layer.
    """
    from synsample.nn.stochastic import SampledNetwork

    net = copy.deepcopy(model).eval()
    sampled = [name for name, m in net.named_modules() if isinstance(m, layer_types)]
    if not sampled:
        raise ConfigError(missing)
    for name in sampled:
        net.get_submodule(name).layer_name = name
        if coin is not None:
            net.get_submodule(name).coin = coin
    if coin is not None:
        info = {**(info or {}), "coin": coin.describe()}
    prefix, body = split_prefix(net, sampled)
    return SampledNetwork(prefix, body, sampled, method=method, info=info)
