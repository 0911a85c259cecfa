"""Split any traceable network into its deterministic prefix and its sampled body (torch.fx).

The network is traced with the sampled layers (and torch's own layers) as leaves. A node is
*stochastic* when it is a sampled layer or uses a stochastic node; every other node is
deterministic. The prefix computes, once per item block, the deterministic values that the
stochastic part uses (the *frontier*); the body computes the stochastic nodes once per chunk
of passes, from the frontier (and from constants such as parameters, which it reads itself).

Inside the body a frontier value has one row per item, ``[batch, ...]``, while every value
downstream of a sampled layer has one row per item and pass, ``[batch * n, ...]`` (item-major).
A sampled layer takes a frontier value as it is (it broadcasts it over the passes: one GEMM
against the stacked draws, the exact int8 path for raw pixels); any other op that uses one (a
residual add, a cat, a mul) gets it through [`ExpandSamples`][synsample.nn.split.ExpandSamples],
which repeats each row ``n`` times, so that skip connections across sampled layers work.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import fx, nn

from synsample.errors import ConfigError
from synsample.nn.sampling import SampledLayer, SamplingContext

#: the body's name of its [`ExpandSamples`][synsample.nn.split.ExpandSamples] module
EXPAND = "expand_to_samples"


class SampledTracer(fx.Tracer):
    """A torch.fx tracer that keeps sampled layers (and torch's own layers) as leaves."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        """Whether the tracer keeps ``m`` as one call instead of tracing into it.

        Args:
            m: the module met while tracing.
            module_qualified_name: its qualified name.

        Returns:
            True for a sampled layer or a layer torch.fx keeps as a leaf.
        """
        return isinstance(m, SampledLayer) or super().is_leaf_module(m, module_qualified_name)


class ExpandSamples(nn.Module):
    """Repeats each row of a per-item value ``n`` times (item-major), ``n`` read from the
    `SamplingContext` that [`SampledNetwork`][synsample.nn.stochastic.SampledNetwork] sets on it
    for the duration of a call (no context: one pass, returned as it is)."""

    context: SamplingContext | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with each row repeated ``n`` times, or as it is when already expanded.

        Args:
            x: ``[batch, ...]`` or ``[batch * n, ...]``.

        Returns:
            ``[batch * n, ...]`` item-major (``[batch, ...]`` without a context).
        """
        ctx = self.context
        if ctx is None or ctx.expanded(x.shape[0]):
            return x
        return x.repeat_interleave(ctx.n, dim=0)


class Frontier:
    """The deterministic values the body uses, carried from prefix to body as one tensor.

    The engine slices the prefix output by items, so it must be one tensor with one row per
    item: a single value travels as it is; several are flattened and concatenated along dim 1
    (in their promoted dtype), and [`unpack`][synsample.nn.split.Frontier.unpack] restores their
    shapes and dtypes as views.

    Args:
        names: the names of the frontier values (for errors).
    """

    def __init__(self, names: list[str]) -> None:
        self.names = names
        #: the trailing shape and dtype of each value, set by
        #: [`pack`][synsample.nn.split.Frontier.pack]
        self.layout: list[tuple[torch.Size, torch.dtype]] | None = None

    def pack(self, values: tuple, batch: int) -> torch.Tensor:
        """One tensor ``[batch, ...]`` holding ``values``.

        Args:
            values: the frontier values, in [`names`][synsample.nn.split.Frontier.names] order.
            batch: items in the batch.

        Returns:
            The single value as it is, or ``[batch, total]`` with every value flattened and
            concatenated (the layout kept for [`unpack`][synsample.nn.split.Frontier.unpack]).

        Raises:
            ConfigError: for a value that is not a tensor with one row per item.
        """
        for name, v in zip(self.names, values, strict=True):
            if not isinstance(v, torch.Tensor) or v.ndim == 0 or v.shape[0] != batch:
                got = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
                raise ConfigError(f"{name!r}, computed before the first sampled layer and used "
                                  f"after it, is not a tensor of {batch} items (got {got}); "
                                  "compute it from tensors after the sampled layer instead")
        if len(values) == 1:
            return values[0]
        self.layout = [(v.shape[1:], v.dtype) for v in values]
        dtype = functools.reduce(torch.promote_types, [v.dtype for v in values])
        return torch.cat([v.reshape(batch, -1).to(dtype) for v in values], dim=1)

    def unpack(self, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The values [`pack`][synsample.nn.split.Frontier.pack] packed into ``h`` (or rows of it).

        Args:
            h: a packed frontier ``[rows, ...]``.

        Returns:
            The values with their shapes and dtypes.

        Raises:
            ConfigError: when ``h`` does not match the layout
                [`pack`][synsample.nn.split.Frontier.pack] recorded.
        """
        if len(self.names) == 1:
            return (h,)
        sizes = [math.prod(shape) for shape, _ in self.layout or []]
        if self.layout is None or h.ndim != 2 or h.shape[1] != sum(sizes):
            raise ConfigError("the body needs the output of this network's prefix; call "
                              "prefix(x) on the same kind of input first")
        out, start = [], 0
        for (shape, dtype), size in zip(self.layout, sizes, strict=True):
            out.append(h[:, start:start + size].reshape(h.shape[0], *shape).to(dtype))
            start += size
        return tuple(out)


class TracedPrefix(nn.Module):
    """The deterministic part of a traced network: returns its frontier, packed.

    Args:
        graph: the traced prefix graph, returning the frontier values.
        frontier: packs them.
    """

    def __init__(self, graph: fx.GraphModule, frontier: Frontier) -> None:
        super().__init__()
        self.graph = graph
        self.frontier = frontier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The packed frontier ``[batch, ...]`` of the inputs ``x``."""
        return self.frontier.pack(self.graph(x), x.shape[0])


class TracedBody(nn.Module):
    """The stochastic part of a traced network: the network's output from the packed
    frontier.

    Args:
        graph: the traced body graph, taking the frontier values.
        frontier: unpacks them.
    """

    def __init__(self, graph: fx.GraphModule, frontier: Frontier) -> None:
        super().__init__()
        self.graph = graph
        self.frontier = frontier

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """The network's output from the packed frontier ``h``."""
        return self.graph(*self.frontier.unpack(h))


def _is_sampled(model: nn.Module, node: fx.Node) -> bool:
    return node.op == "call_module" and isinstance(model.get_submodule(node.target),
                                                   SampledLayer)


def _attr(model: nn.Module, target: str):
    return functools.reduce(getattr, target.split("."), model)


def trace_split(model: nn.Module) -> tuple[TracedPrefix, TracedBody]:
    """The prefix and body of ``model`` (see the module docstring): ``body(prefix(x))`` is the
    network's output.

    Args:
        model: the converted network, its sampled layers in place.

    Returns:
        ``(prefix, body)``.

    Raises:
        Exception: what torch.fx raises when ``model`` cannot be traced (data-dependent
            control flow in a ``forward``).
    """
    graph = SampledTracer().trace(model)
    stochastic: set[fx.Node] = set()
    per_item: set[fx.Node] = set()  # deterministic, computed from the input
    for node in graph.nodes:
        inputs = node.all_input_nodes
        if node.op == "output":
            continue
        if _is_sampled(model, node) or any(i in stochastic for i in inputs):
            stochastic.add(node)
        elif node.op == "placeholder" or any(i in per_item for i in inputs):
            per_item.add(node)
    frontier = [node for node in graph.nodes if node in per_item
                and any(u in stochastic or u.op == "output" for u in node.users)]

    prefix = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in graph.nodes:
        if node.op != "output" and node not in stochastic:
            env[node] = prefix.node_copy(node, env.__getitem__)
    prefix.output(tuple(env[n] for n in frontier))

    body = fx.Graph()
    env = {n: body.placeholder(n.name) for n in frontier}
    expanded: dict[fx.Node, fx.Node] = {}

    def arg(user: fx.Node, node: fx.Node) -> fx.Node:
        if node not in frontier or user.op == "output" or _is_sampled(model, user):
            return env[node]
        if node not in expanded:
            expanded[node] = body.call_module(EXPAND, (env[node],))
        return expanded[node]

    for node in graph.nodes:
        if node not in per_item:  # stochastic nodes, constants (recomputed) and the output
            env[node] = body.node_copy(node, functools.partial(arg, node))
    targets = {n.target for n in body.nodes if n.op in ("call_module", "get_attr")} - {EXPAND}
    root = {t: _attr(model, t) for t in targets}
    root[EXPAND] = ExpandSamples()

    names = Frontier([n.name for n in frontier])
    return (TracedPrefix(_pruned(fx.GraphModule(model, prefix, "Prefix")), names),
            TracedBody(_pruned(fx.GraphModule(root, body, "Body")), names))


def _pruned(gm: fx.GraphModule) -> fx.GraphModule:
    """``gm`` without the nodes, and submodules, its output does not need."""
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm
