"""Quantized stochastic computing (paper 003): a network of
[`SCLinear`][synsample.nn.sc_linear.SCLinear] layers inferred with bitstreams of ``length`` bits
from one bitstream source; every pass is one realisation of the streams.

>>> import torch
>>> from synsample import methods, devices, engine, models
>>> net = models.build("sc-mlp", seed=0)                      # 784-128-10, 5 states
>>> sto = methods.sc.convert(net, length=100, source=devices.MTJBitstream())
>>> pred = engine.predict(sto, torch.zeros(4, 1, 28, 28, dtype=torch.uint8), samples=10)
>>> pred.votes.shape
torch.Size([4, 10])

The logits are the read-out counters ``s = (2 count - n_in L) / L``: the class is the largest
counter (the paper's sigmoid of the read-out is monotone, and its quantized LUT would tie).
"""

from __future__ import annotations

import copy
import warnings

from torch import nn

from synsample.devices import BitstreamSource, IdealBitstream, LFSRBitstream
from synsample.errors import ConfigError
from synsample.methods.spec import MethodSpec
from synsample.nn import SampledNetwork, split_prefix
from synsample.nn.sc_linear import SCLinear

#: the paper's stream lengths (section IV)
PAPER_LENGTHS = (100, 200, 300, 400, 500)


def convert(model: nn.Module, length: int | None = 100, source: BitstreamSource | None = None,
            path: str = "fast") -> SampledNetwork:
    """The SC stochastic model of a trained ``sc-*`` network.

    Args:
        model: the trained network with [`SCLinear`][synsample.nn.sc_linear.SCLinear] layers
            (copied).
        length: bits per stream (None: inference "without SC", exact quantized arithmetic,
            the same output every pass).
        source: the bitstream device of every stream
            ([`IdealBitstream`][synsample.devices.IdealBitstream] when None; one device, so its
            counter holds the run's stream bits).
        path: ``fast`` or ``bits`` (see [`synsample.nn.sc_linear`][synsample.nn.sc_linear]); the
            fast path warns for an LFSR, whose bits it treats as independent.

    Returns:
        The sampling model (a [`SampledNetwork`][synsample.nn.SampledNetwork]).

    Raises:
        ConfigError: for a network without SC layers.
    """
    net = copy.deepcopy(model).eval()
    sampled = [name for name, m in net.named_modules() if isinstance(m, SCLinear)]
    if not sampled:
        raise ConfigError("the network has no stochastic-computing layer: SC quantizes inputs "
                          "and weights to a few states and is trained for them (paper 003, "
                          "section III), so a float network cannot be converted; train an sc-* "
                          "architecture, or use method scann")
    source = source if source is not None else IdealBitstream()
    if isinstance(source, LFSRBitstream) and length is not None and path == "fast":
        warnings.warn("the fast SC path treats an LFSR's bits as independent; a Galois LFSR's "
                      "successive bits are correlated (the counter's variance is about 20-30% "
                      "higher for a 16-bit LFSR at 100 bits, measured with path='bits'); use "
                      "path='bits' to simulate it exactly", stacklevel=2)
    for name in sampled:
        layer = net.get_submodule(name)
        layer.source = source
        layer.layer_name = name
        layer.set_stochastic(length, path)
    prefix, body = split_prefix(net, sampled)
    first = net.get_submodule(sampled[0])
    info = {"bitstream": source.describe(), "length": length, "path": path,
            "states": first.states,
            "streams_per_inference": streams_per_inference(net)}
    return SampledNetwork(prefix, body, sampled, method="sc", info=info)


def without_sc(model: nn.Module) -> nn.Module:
    """A copy of ``model`` computing exactly (quantized, no bitstreams): the reference a SC
    network's sampled accuracy is compared with.

    Args:
        model: a network with [`SCLinear`][synsample.nn.sc_linear.SCLinear] layers.

    Returns:
        The copy, in eval mode.
    """
    net = copy.deepcopy(model).eval()
    for m in net.modules():
        if isinstance(m, SCLinear):
            m.set_stochastic(None)
    return net


def streams_per_inference(model: nn.Module) -> int:
    """Bitstreams one inference makes: one per input node and one per weight of every SC
    layer (a hidden node's LUT state becomes the next layer's input stream).

    Args:
        model: a network with [`SCLinear`][synsample.nn.sc_linear.SCLinear] layers.

    Returns:
        ``sum(in * (1 + out))`` over the SC layers.
    """
    return sum(m.in_features * (1 + m.out_features) for m in model.modules()
               if isinstance(m, SCLinear))


def convert_streams(model: nn.Module, stream_length: int | None = 100, bitstream: str = "ideal",
                    sc_path: str = "fast", precision: str | int | None = None,
                    source: BitstreamSource | None = None) -> SampledNetwork:
    """[`convert`][synsample.methods.sc.convert] with the bitstream source named as the command line
    names it: ``bitstream`` (``ideal``, ``lfsr``, ``mtj``) of ``precision`` bits (the LFSR's width
    or the MTJ's bias DAC; the ideal source has none), unless a ``source`` device is given.

    Args:
        model: the trained network with [`SCLinear`][synsample.nn.sc_linear.SCLinear] layers.
        stream_length: bits per stream (None: without SC).
        bitstream: ``ideal``, ``lfsr`` or ``mtj``.
        sc_path: ``fast`` or ``bits``.
        precision: the LFSR's width or the MTJ DAC's bits (full: 16-bit LFSR, continuous
            DAC).
        source: a bitstream device, used instead of ``bitstream`` and ``precision``.

    Returns:
        The sampling model.

    Raises:
        ConfigError: for an unknown source or precision, or bits for the ideal source (its
            probabilities are exact, so bits would be silently ignored).
    """
    from synsample.devices import bitstream_for

    if source is None:
        source = bitstream_for(bitstream, precision)
    return convert(model, length=stream_length, source=source, path=sc_path)


SPEC = MethodSpec(
    name="sc", title="quantized stochastic computing",
    summary="bipolar bitstreams, XNOR and parallel counters, LUT sigmoid (paper 003)",
    convert=convert_streams, options=("stream_length", "bitstream", "sc_path", "source"),
    precision="the LFSR's width or the MTJ's bias DAC bits (full: 16-bit LFSR, continuous DAC; "
              "the ideal source: full only)",
    reference="quantized network without SC", reference_model=without_sc, exports=True,
    filters=False)
