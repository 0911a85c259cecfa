"""``methods/sc.py`` (paper 003): converting a trained ``sc-*`` network sets its stream
length, path and one bitstream device on every SC layer; the source named as the command line
names it; the reference network without SC; the read-out counters of the sampled passes; the
spec entry; seeds; errors."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import synsample as ss
from synsample import devices, engine, models
from synsample.errors import ConfigError
from synsample.methods import sc
from synsample.nn.sc_linear import SCLinear
from synsample.nn.stochastic_computing import quantize
from tests.helpers import assert_seeded

SMALL = {"input_shape": (1, 4, 4), "num_classes": 3, "seed": 0}


def _images(n: int, seed: int = 0) -> torch.Tensor:
    """Synthetic uint8 4x4 images."""
    return torch.randint(0, 256, (n, 1, 4, 4), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def _sc_layers(net: nn.Module) -> list[SCLinear]:
    return [m for m in net.modules() if isinstance(m, SCLinear)]


# -- convert --------------------------------------------------------------------------------------

def test_convert_sets_every_sc_layer_on_one_source_and_leaves_the_trained_network():
    net = models.build("sc-mlp3", **SMALL)
    source = devices.MTJBitstream()
    sto = sc.convert(net, length=40, source=source, path="bits")
    assert sto.method == "sc" and sto.sampled_names == ["2", "3", "4", "5"]
    for name, layer in zip(sto.sampled_names, sto.sampled_layers(), strict=True):
        assert isinstance(layer, SCLinear) and layer.layer_name == name
        assert layer.source is source and layer.length == 40 and layer.path == "bits"
        assert torch.equal(layer.weight, net.get_submodule(name).weight)
    for trained in _sc_layers(net):  # the trained network keeps its training settings
        assert trained.length is None and trained.path == "fast" and trained.source is not source
    assert sto.info == {"bitstream": source.describe(), "length": 40, "path": "bits",
                        "states": 5, "streams_per_inference": sc.streams_per_inference(net)}


def test_streams_per_inference_counts_one_stream_per_input_node_and_per_weight():
    """A hidden node's LUT state is the next layer's input stream: ``n_in (1 + n_out)`` streams
    per layer (paper 003, section II: one bitstream per input and per weight)."""
    net = models.build("sc-mlp3", **SMALL)
    widths = [16, 392, 196, 98, 3]
    pairs = zip(widths[:-1], widths[1:], strict=True)
    assert sc.streams_per_inference(net) == sum(a * (1 + b) for a, b in pairs)
    assert sc.streams_per_inference(nn.Sequential(nn.Linear(3, 2))) == 0


@pytest.mark.parametrize("bitstream,precision,kind,attrs", [
    ("ideal", None, devices.IdealBitstream, {}),
    ("lfsr", None, devices.LFSRBitstream, {"width": 16}),
    ("lfsr", 8, devices.LFSRBitstream, {"width": 8}),
    ("mtj", "full", devices.MTJBitstream, {"bias_levels": None}),
    ("mtj", 3, devices.MTJBitstream, {"bias_levels": 8}),
])
def test_the_bitstream_source_is_named_as_the_command_line_names_it(bitstream, precision, kind,
                                                                     attrs):
    net = models.build("sc-mlp", **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the LFSR-on-the-fast-path warning
        sto = ss.convert(net, "sc", bitstream=bitstream, precision=precision, stream_length=30)
    (source,) = sto.devices()
    assert type(source) is kind
    assert {k: source.describe()[k] for k in attrs} == attrs
    assert all(layer.length == 30 for layer in sto.sampled_layers())


def test_a_given_source_device_wins_over_the_named_one():
    source = devices.IdealBitstream()
    sto = ss.convert(models.build("sc-mlp", **SMALL), "sc", bitstream="mtj", source=source)
    assert sto.devices() == [source]


@pytest.mark.parametrize("options,message", [
    ({"stream_length": 0}, "a bitstream needs a positive length, got 0"),
    ({"stream_length": 2.5}, "positive length"),
    ({"sc_path": "analog"}, "unknown SC path 'analog'"),
    ({"bitstream": "photonic"}, "unknown bitstream source 'photonic'; use ideal, lfsr or mtj"),
    ({"bitstream": "lfsr", "precision": 5}, "no maximal-length taps for a 5-bit LFSR"),
    ({"bitstream": "mtj", "precision": "many"}, "unknown precision 'many'"),
    ({"precision": 8}, "an ideal bitstream has no precision"),
])
def test_bad_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        ss.convert(models.build("sc-mlp", **SMALL), "sc", **options)


def test_a_float_network_cannot_be_converted():
    with pytest.raises(ConfigError, match="no stochastic-computing layer.*use method scann"):
        sc.convert(models.build("mlp", **SMALL))


# -- the spec and the reference -------------------------------------------------------------------

def test_the_spec_entry():
    spec = sc.SPEC
    assert spec.name == "sc" and spec.reference_model is sc.without_sc
    assert spec.options == ("stream_length", "bitstream", "sc_path", "source")
    assert spec.precision and spec.exports and not spec.filters and spec.needs_data is None
    assert spec.reference == "quantized network without SC"
    with pytest.raises(ConfigError, match="sc converts the whole network"):
        ss.convert(models.build("sc-mlp", **SMALL), "sc", exclude=["2"])


def test_the_reference_is_the_exact_quantized_network_of_every_pass_without_sc():
    net = models.build("sc-mlp", **SMALL)
    for layer in _sc_layers(net):
        layer.set_stochastic(25)  # as Method 2 trains it: the reference must switch SC off
    reference = sc.without_sc(net)
    assert all(m.length is None for m in _sc_layers(reference))
    assert all(m.length == 25 for m in _sc_layers(net))  # the trained network is left alone
    x = _images(7)
    with torch.no_grad():
        exact = reference(x)
        assert torch.equal(exact, reference(x))
    sto = ss.convert(net, "sc", stream_length=None)
    passes = sto(x, n=3, generator=torch.Generator().manual_seed(0))
    for k in range(3):
        assert torch.equal(passes[k], exact)
    pred = engine.predict(sto, x, samples=4, seed=0)
    assert pred.random_bits == 0 and torch.all(pred.votes.max(1).values == 4)


# -- the distribution it samples ------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["shared", "independent"])
@pytest.mark.parametrize("path", ["fast", "bits"])
def test_read_out_counters_average_to_the_network_without_sc(mode, path):
    """Paper 003, section II: XNOR of bipolar streams has ``P(1) = (1 + x w) / 2``, and the
    parallel counter of the products gives ``s = (2 count - n_in L) / L`` with ``E s = x . w``
    (quantized values) and ``Var s = (n_in - x^2 . w^2) / L``. Every pass is on that grid, and
    the mean of n passes is within 5 standard errors of the reference network's output (in
    shared mode an item's passes are independent too: each pass draws all its streams)."""
    torch.manual_seed(1)
    layer = SCLinear(24, 3, states=5, readout=True)
    with torch.no_grad():
        layer.weight.uniform_(-1, 1)
    net = nn.Sequential(nn.Flatten(), layer)
    x = torch.rand(2, 24, generator=torch.Generator().manual_seed(2)) * 2 - 1
    length, n = 30, 600 if path == "bits" else 3000
    sto = sc.convert(net, length=length, path=path)
    s = sto(x, n=n, generator=torch.Generator().manual_seed(3), mode=mode).double()
    counts = (s * length + 24 * length) / 2
    assert torch.allclose(counts, counts.round(), atol=1e-3)
    assert counts.min() >= 0 and counts.max() <= 24 * length
    xq, wq = quantize(x, 5).double(), quantize(layer.weight.detach(), 5).double()
    with torch.no_grad():
        exact = sc.without_sc(net)(x).double()
    assert torch.allclose(exact, xq @ wq.T, atol=1e-5)
    var = (24 - (xq ** 2) @ (wq ** 2).T) / length
    gap = (s.mean(0) - exact).abs()
    assert torch.all(gap <= 5 * (var / n).sqrt()), gap / (var / n).sqrt()
    assert (s.var(0) > 0.5 * var).all()  # the passes do differ: SC is sampled


# -- seeds ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_the_same_seed_gives_the_same_votes_and_another_seed_other_counters(mode):
    sto = ss.convert(models.build("sc-mlp", **SMALL), "sc", stream_length=20)
    x = _images(8, seed=1)
    assert_seeded(sto, x, mode, seed=2, other_seed=9, samples=6, n=3)
