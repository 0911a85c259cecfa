"""Quantized stochastic computing primitives (paper 003): quantizer, XNOR and counter, LUT."""

import math

import pytest
import torch

from synsample.devices.bitstreams import (
    IdealBitstream,
    LFSRBitstream,
    MTJBitstream,
    bipolar_probability,
)
from synsample.errors import ConfigError
from synsample.nn.stochastic_computing import (
    apply_lut,
    counter_sample,
    levels,
    pack_bits,
    popcount,
    product_probability,
    quantize,
    quantize_ste,
    sigmoid_lut,
    xnor_popcount,
)


def _bits(s: str) -> torch.Tensor:
    return torch.tensor([c == "1" for c in s])


def test_xnor_and_counter_on_hand_made_streams():
    x = torch.stack([_bits("10110010"), _bits("11111111")])[None]        # [1, in=2, L=8]
    w = torch.stack([torch.stack([_bits("11010110"), _bits("00000000")]),  # neuron 0
                     torch.stack([_bits("10110010"), _bits("11111111")])])  # neuron 1
    counts = xnor_popcount(pack_bits(x), pack_bits(w), 8)
    # neuron 0: XNOR(10110010, 11010110) = 10011011 (5 ones) + XNOR(1..1, 0..0) = 0
    # neuron 1: identical streams, every bit agrees: 16
    assert counts.tolist() == [[5, 16]]
    # bipolar values: x0 = 2 * 4/8 - 1 = 0, and the estimate of the products' sum
    assert (2 * counts[0, 1] - 2 * 8) / 8 == 2.0


def test_packing_and_popcount_across_word_boundaries():
    g = torch.Generator().manual_seed(0)
    for length in (1, 63, 64, 65, 130, 500):
        bits = torch.rand(5, length, generator=g) < 0.3
        words = pack_bits(bits)
        assert words.shape[-1] == math.ceil(length / 64)
        assert torch.equal(popcount(words).sum(-1), bits.sum(-1))
    all_ones = torch.tensor([-1, 0, 1 << 62, (1 << 63) - 1], dtype=torch.int64)
    assert popcount(all_ones).tolist() == [64, 0, 1, 63]


def test_xnor_popcount_masks_the_padding():
    x = torch.zeros(1, 1, 70, dtype=torch.bool)
    w = torch.zeros(1, 1, 70, dtype=torch.bool)
    assert xnor_popcount(pack_bits(x), pack_bits(w), 70).item() == 70  # not 128


def test_quantizer_on_its_boundaries():
    assert levels(5).tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert len(levels(11)) == 11 and torch.allclose(levels(11)[1:] - levels(11)[:-1],
                                                    torch.full((10,), 0.2, dtype=torch.float64))
    m = torch.tensor([-3.0, -1.0, -0.76, -0.74, 0.24, 0.26, 0.999, 7.0])
    assert quantize(m, 5).tolist() == [-1.0, -1.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.0]
    # a midpoint goes to the even state index, like round (eq. 3)
    assert quantize(torch.tensor([-0.75, -0.25, 0.25, 0.75]), 5).tolist() == [-1.0, 0.0, 0.0,
                                                                               1.0]
    assert quantize(torch.tensor([0.3]), 3, a=0.0, b=1.0).item() == 0.5
    with pytest.raises(ConfigError):
        quantize(m, 1)


def test_straight_through_gradient():
    m = torch.tensor([-1.5, -0.9, 0.1, 0.7, 1.2], requires_grad=True)
    out = quantize_ste(m, 5)
    assert out.tolist() == [-1.0, -1.0, 0.0, 0.5, 1.0]
    (out * torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])).sum().backward()
    assert m.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 0.0]  # identity inside [-1, 1], 0 outside


def test_the_lut_equals_the_quantized_sigmoid_with_few_states():
    for n, states in ((5, 3), (11, 6)):
        for n_in, length in ((3, 10), (20, 100)):
            thresholds, out = sigmoid_lut(n, n_in, length)
            assert len(out) == states and out.min() == 0.0 and out.max() == 1.0
            counts = torch.arange(n_in * length + 1)
            direct = quantize(torch.sigmoid((2 * counts.double() - n_in * length) / length), n)
            assert torch.equal(apply_lut(counts, thresholds, out), direct.float())


def test_bit_level_and_counter_distribution_agree():
    """The fast path draws the counter from the distribution the bit level realises: same mean
    and variance within a few standard errors, over many realisations."""
    g = torch.Generator().manual_seed(1)
    n, length, reps = 5, 40, 3000
    lv = levels(n).float()
    x_state = torch.tensor([[0, 4, 2, 3, 1, 4]])
    w_state = torch.tensor([[4, 4, 1, 0, 3, 2], [0, 1, 2, 3, 4, 0]])
    src = IdealBitstream()
    px = src.probability(bipolar_probability(lv))
    bit_counts = []
    for _ in range(reps):
        xs = src.streams(bipolar_probability(lv[x_state]), length, g)
        ws = src.streams(bipolar_probability(lv[w_state]), length, g)
        bit_counts.append(xnor_popcount(pack_bits(xs), pack_bits(ws), length)[0])
    bit_counts = torch.stack(bit_counts).double()
    fast = torch.stack([counter_sample(x_state, w_state, px, px, length, g)[0]
                        for _ in range(reps)]).double()
    q = product_probability(px[x_state].double()[:, None, :], px[w_state].double()[None])[0]
    mean = (length * q).sum(-1)
    var = (length * q * (1 - q)).sum(-1)
    for counts in (bit_counts, fast):
        assert ((counts.mean(0) - mean).abs() < 4 * (var / reps).sqrt()).all()
        assert ((counts.var(0) - var).abs() < 5 * var * math.sqrt(2 / reps)).all()


def test_counter_sample_with_an_mtj_is_exact_per_product():
    """An MTJ cannot make P(1) = 1: a product of two +1 streams is 1 with 0.95^2 + 0.05^2."""
    mtj = MTJBitstream()
    p = mtj.probability(bipolar_probability(levels(3).float()))
    assert torch.allclose(p, torch.tensor([0.05, 0.5, 0.95]))
    g = torch.Generator().manual_seed(2)
    counts = counter_sample(torch.full((1, 50), 2), torch.full((1, 50), 2), p, p, 100, g)
    q = 0.95 ** 2 + 0.05 ** 2
    assert abs(counts.item() - 5000 * q) < 4 * math.sqrt(5000 * q * (1 - q))


def test_mtj_curve_range_monotonicity_levels_and_spread():
    mtj = MTJBitstream()
    volts = torch.linspace(-1, 1, 101)
    p = mtj.curve(volts)
    assert abs(p[0] - 0.95) < 1e-6 and abs(p[-1] - 0.05) < 1e-6  # Fig. 2c: 95% to 5%
    assert (p[1:] < p[:-1]).all()                                 # monotone in the bias
    assert mtj.probability(torch.tensor([0.0, 1.0])).tolist() == pytest.approx([0.05, 0.95])
    coarse = MTJBitstream(bias_levels=3).probability(torch.linspace(0, 1, 21))
    assert len(coarse.unique()) == 3                              # three bias voltages
    spread = MTJBitstream(spread=0.1, seed=4)
    a, b = spread.probability(torch.full((1000,), 0.5)), spread.probability(torch.full((1000,),
                                                                                          0.5))
    assert torch.equal(a, b) and 0.02 < a.std() < 0.2              # fixed per device, spread
    with pytest.raises(ConfigError):
        MTJBitstream(bias_levels=1)


def test_sources_count_stream_bits_and_realise_their_probabilities():
    g = torch.Generator().manual_seed(3)
    p = torch.tensor([0.1, 0.5, 0.8])
    for src, bits in ((IdealBitstream(), 24), (LFSRBitstream(16), 1), (MTJBitstream(), 1)):
        s = src.streams(p, 4000, g)
        assert s.shape == (3, 4000) and src.draws == 3 * 4000
        assert src.random_bits == 3 * 4000 * bits
        real = src.probability(p).double()
        assert ((s.double().mean(-1) - real).abs() < 4 * (real * (1 - real) / 4000).sqrt()
                + 1e-3).all()
    lfsr = LFSRBitstream(8)  # over one period every nonzero state appears once: exact
    p = torch.tensor([0.3])
    s = lfsr.streams(p, 255, g)
    assert s.sum().item() == round(lfsr.probability(p).item() * 255)
    with pytest.raises(ConfigError):
        LFSRBitstream(13)
    with pytest.raises(ConfigError):
        IdealBitstream().streams(p, 0)
