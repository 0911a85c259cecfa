"""The stochastic-computing layer and network (paper 003): the bit-level and fast paths agree
in distribution, counts, the LUT, Method 2's gradient, votes independent of tiling."""

import math

import pytest
import torch

from synsample import devices, engine, methods, models
from synsample.devices import IdealBitstream, MTJBitstream
from synsample.errors import ConfigError
from synsample.nn.sampling import SamplingContext
from synsample.nn.sc_linear import SCLinear
from synsample.nn.stochastic_computing import quantize, sigmoid_lut


def _layer(source, in_features=40, out_features=3, length=64, readout=True, seed=0):
    torch.manual_seed(seed)
    layer = SCLinear(in_features, out_features, states=5, length=length, source=source,
                     readout=readout)
    layer.weight.data.uniform_(-1, 1)
    return layer


def _passes(layer, x, n, mode, path, seed=1):
    layer.set_stochastic(layer.length, path)
    layer.context = SamplingContext.for_samples(seed, 0, n, x.shape[0], mode)
    try:
        return layer(x).reshape(x.shape[0], n, -1)
    finally:
        layer.context = None


@pytest.mark.parametrize("source", [IdealBitstream(), MTJBitstream(), MTJBitstream(spread=0.3)],
                         ids=["ideal", "mtj", "mtj-spread"])
@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_bit_level_and_fast_paths_agree_with_the_counter_moments(source, mode):
    """E s = x' . w', Var s = (n_in - x'^2 . w'^2) / L for the realised bipolar values; both
    paths within 4.5 standard errors (mean) and 4.5 (variance, normal theory: sqrt(2 / n))."""
    layer = _layer(source)
    x = torch.rand(1, 40, generator=torch.Generator().manual_seed(3))
    xr = layer.realised(quantize(x, 5), "inputs")
    wr = layer.realised(quantize(layer.weight.data, 5), "weights")
    mean = (xr @ wr.T)[0].double()
    var = ((40 - (xr * xr) @ (wr * wr).T) / 64)[0].double()
    n = 1500
    for path in ("fast", "bits"):
        s = _passes(layer, x, n, mode, path)[0].double()
        assert torch.all((s.mean(0) - mean).abs() < 4.5 * (var / n).sqrt()), path
        assert torch.all((s.var(0) / var - 1).abs() < 4.5 * math.sqrt(2 / (n - 1))), path
        # the counter is an integer: s lies on the grid (2 count - n_in L) / L
        counts = (s * 64 + 40 * 64) / 2
        assert torch.allclose(counts, counts.round(), atol=1e-3)


def test_an_mtj_at_its_edge_carries_less_than_the_asked_value():
    layer = _layer(MTJBitstream())
    realised = layer.realised(torch.tensor([-1.0, 0.0, 1.0]), "weights")
    assert torch.allclose(realised, torch.tensor([-0.9, 0.0, 0.9]), atol=1e-6)
    ideal = _layer(IdealBitstream()).realised(torch.tensor([-1.0, -0.5, 0.5, 1.0]), "weights")
    assert torch.equal(ideal, torch.tensor([-1.0, -0.5, 0.5, 1.0]))


def test_mtj_spread_gives_every_weight_and_every_input_wire_its_own_device():
    """One device per weight and one per input node (shared by every item on that wire); the
    spread of the realised values is the curve's slope times the voltage spread."""
    layer = _layer(MTJBitstream(spread=0.05, seed=2), in_features=4000)
    layer.layer_name = "fc1"
    w = torch.zeros(3, 4000)
    wr = layer.realised(w, "weights")
    # at P = 1/2 the curve's slope is 1 / (4 slope_volts): 2P - 1 has std 0.05 / (2 slope)
    want = 0.05 / (2 * layer.source.slope)
    assert abs(wr.std().item() / want - 1) < 5 / math.sqrt(2 * wr.numel())
    assert len(torch.unique(wr)) > 1000  # not one value per state
    x = torch.zeros(5, 4000)
    xr = layer.realised(x, "inputs")
    assert torch.equal(xr, xr[:1].expand_as(xr))  # every item on a wire meets the same device
    assert not torch.equal(xr[0], wr[0])  # the input wires are another pool of devices
    other = _layer(MTJBitstream(spread=0.05, seed=2), in_features=4000)
    other.layer_name = "fc2"
    assert not torch.equal(other.realised(w, "weights"), wr)  # each layer its own devices


@pytest.mark.parametrize("path", ["fast", "bits"])
def test_hidden_units_take_the_lut_states_of_their_counter(path):
    layer = _layer(IdealBitstream(), in_features=12, out_features=5, length=20, readout=False)
    x = torch.rand(6, 12, generator=torch.Generator().manual_seed(0))
    y = _passes(layer, x, 4, "independent", path)
    _, states = sigmoid_lut(5, 12, 20)
    assert set(y.unique().tolist()) <= set(states.tolist()) == {0.0, 0.5, 1.0}


def test_stream_bits_are_counted_per_inference_the_same_by_both_paths():
    """Independent mode: one stream per input node and per weight, L bits each, per item and
    pass, whichever path computes the counter."""
    for path in ("fast", "bits"):
        source = IdealBitstream()
        layer = _layer(source, in_features=10, out_features=4, length=16)
        _passes(layer, torch.rand(3, 10), 2, "independent", path)
        assert source.draws == 3 * 2 * 10 * (1 + 4) * 16
    net = models.build("sc-mlp", input_shape=(1, 8, 8), num_classes=4, seed=0)
    source = IdealBitstream()
    sto = methods.sc.convert(net, length=32, source=source)
    engine.predict(sto, torch.zeros(5, 1, 8, 8, dtype=torch.uint8), samples=3,
                   mode="independent")
    assert source.draws == 5 * 3 * 32 * methods.sc.streams_per_inference(net)
    assert methods.sc.streams_per_inference(net) == 64 * (1 + 128) + 128 * (1 + 4)


@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_votes_do_not_depend_on_blocks_and_chunks(mode):
    net = models.build("sc-mlp3", input_shape=(1, 8, 8), num_classes=4, seed=0, states=11)
    sto = methods.sc.convert(net, length=50, source=MTJBitstream())
    x = (torch.rand(30, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 255).to(
        torch.uint8)
    a = engine.predict(sto, x, samples=10, seed=5, mode=mode)
    b = engine.predict(sto, x, samples=10, seed=5, mode=mode, batch_size=7, sample_chunk=3,
                       tile=4)
    assert torch.equal(a.votes, b.votes)
    assert a.random_bits == b.random_bits > 0
    assert (a.votes.max(1).values < 10).any()  # the streams do make passes differ


def test_without_sc_every_pass_is_the_exact_quantized_network():
    net = models.build("sc-mlp", input_shape=(1, 8, 8), num_classes=4, seed=0)
    x = (torch.rand(9, 1, 8, 8, generator=torch.Generator().manual_seed(2)) * 255).to(
        torch.uint8)
    sto = methods.sc.convert(net, length=None)
    pred = engine.predict(sto, x, samples=3, seed=0)
    assert torch.equal(pred.votes.max(1).values, torch.full((9,), 3))
    # the exact network by hand: quantized inputs, weights and sigmoid states
    h = x.reshape(9, -1).float() / 255
    for layer in [m for m in net.modules() if isinstance(m, SCLinear)]:
        s = quantize(h, 5) @ quantize(layer.weight.data, 5).T
        h = s if layer.readout else quantize(torch.sigmoid(s), 5)
    assert torch.equal(pred.votes.argmax(1), h.argmax(1))


def test_method_2_draws_the_counter_forward_and_passes_the_exact_gradient():
    layer = _layer(IdealBitstream(), in_features=30, out_features=2, length=25)
    layer.weight.data.mul_(0.9)  # inside [-1, 1]: the quantizer's STE passes everything
    x = torch.rand(8, 30, generator=torch.Generator().manual_seed(4))
    torch.manual_seed(0)
    s1 = layer(x)
    s2 = layer(x)
    assert not torch.equal(s1, s2)  # a fresh realisation of the streams per call
    s1.sum().backward()
    assert torch.allclose(layer.weight.grad, quantize(x, 5).sum(0).expand(2, 30))
    exact = (quantize(x, 5) @ quantize(layer.weight.data, 5).T)
    assert (s1 - exact).abs().max() < 6 * math.sqrt(30 / 25)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="positive length"):
        SCLinear(4, 2, length=0)
    with pytest.raises(ConfigError, match="'fast'"):
        SCLinear(4, 2, length=10, path="analog")
    with pytest.raises(ConfigError, match="at least 2 states"):
        SCLinear(4, 2, states=1)
    with pytest.raises(ConfigError, match="no stochastic-computing layer"):
        methods.sc.convert(models.build("mlp"))
    with pytest.raises(ConfigError, match="ideal, lfsr or mtj"):
        devices.bitstream_for("photonic")


def test_an_lfsr_on_the_fast_path_is_a_warning_and_exact_on_the_bit_path():
    from synsample.devices import LFSRBitstream

    net = models.build("sc-mlp", input_shape=(1, 8, 8), num_classes=4, seed=0)
    with pytest.warns(UserWarning, match="path='bits'"):
        methods.sc.convert(net, length=20, source=LFSRBitstream(8))
    sto = methods.sc.convert(net, length=20, source=LFSRBitstream(8), path="bits")
    x = (torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 255).to(
        torch.uint8)
    a = engine.predict(sto, x, samples=2, seed=1, mode="independent")
    b = engine.predict(sto, x, samples=2, seed=1, mode="independent", batch_size=1)
    assert torch.equal(a.votes, b.votes)
