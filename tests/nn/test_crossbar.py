"""SpinBayes' crossbars (paper 004, sections 3.2-3.3): eq. 3's quantizer, the arbiter's choice
per pass and per row, n-way averaging, BatchNorm re-calibration, counted arbiter bits."""

import pytest
import torch
from torch import nn

from synsample import engine, methods, models
from synsample.devices import Arbiter, IdealCoin
from synsample.errors import ConfigError
from synsample.nn.bayes import BayesLinear
from synsample.nn.crossbar import CrossbarLayer, quantize_levels
from synsample.nn.sampling import SamplingContext
from tests.helpers import assert_votes_do_not_depend_on_tiling


def test_eq3_quantizer_on_its_boundaries():
    theta = torch.tensor([-3.0, -1.0, -0.5, -1 / 14, 0.0, 1 / 14 + 1e-6, 0.5, 1.0, 2.0])
    assert quantize_levels(theta, 4).tolist() == [-7, -7, -4, -0, 0, 1, 4, 7, 7]
    assert quantize_levels(torch.tensor([0.3, -1.2]), 2).tolist() == [0, -1]
    with pytest.raises(ConfigError, match="at least 2 bits"):
        quantize_levels(theta, 1)


def _layer(crossbars=4, ways=1, seed=0):
    torch.manual_seed(seed)
    bayes = BayesLinear(5, 3)
    bayes.weight_rho.data.fill_(-1.0)
    return CrossbarLayer.from_bayes(bayes, crossbars, 4, Arbiter.ideal(crossbars, ways),
                                    torch.Generator().manual_seed(seed))


def _outputs(layer, x, n, mode, seed=1):
    layer.context = SamplingContext.for_samples(seed, 0, n, x.shape[0], mode)
    try:
        return layer(x).reshape(x.shape[0], n, -1)
    finally:
        layer.context = None


def test_crossbars_are_distinct_quantized_posterior_samples():
    layer = _layer(crossbars=6)
    assert layer.levels.dtype == torch.int8 and layer.levels.abs().max() <= 7
    assert len({tuple(w.flatten().tolist()) for w in layer.levels}) == 6


@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_every_pass_uses_one_crossbar_uniformly(mode):
    layer = _layer(crossbars=4)
    x = torch.randn(3, 5)
    y = _outputs(layer, x, 4000, mode)  # [3, n, 3]
    candidates = torch.stack([layer._op(x, *layer.crossbar(torch.tensor([c])))
                              for c in range(4)])  # [4, 3, 3]
    match = (y[None] - candidates[:, :, None]).abs().amax(-1) < 1e-5  # [4, items, n]
    assert torch.all(match.sum(0) == 1)
    counts = match[:, 0].sum(1).double()
    assert float(((counts - 1000) ** 2 / 1000).sum()) < 16.27  # chi-square, df 3, 99.9%
    if mode == "shared":  # one choice for the whole batch per pass
        assert torch.equal(match[:, 0], match[:, 1])


def test_n_way_inference_averages_distinct_crossbars():
    layer = _layer(crossbars=4, ways=2)
    x = torch.randn(1, 5)
    y = _outputs(layer, x, 200, "independent")[0]
    pairs = {(a, b): layer._op(x, *layer.crossbar(torch.tensor([a, b])))[0]
             for a in range(4) for b in range(4) if a < b}
    for row in y:
        assert any(torch.allclose(row, v, atol=1e-5) for v in pairs.values())


def test_arbiter_bits_are_counted_per_layer_and_pass():
    net = models.build("lenet5-bbb", seed=0)
    coin = IdealCoin()
    sto = methods.spinbayes.convert(net, crossbars=8, coin=coin)
    x = torch.zeros(10, 1, 28, 28, dtype=torch.uint8)
    pred = engine.predict(sto, x, samples=7, seed=0)
    assert coin.draws == 5 * 7 * 3  # 5 layers, 7 passes, 3 bits each
    assert pred.random_bits == coin.draws * 24


@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_votes_do_not_depend_on_blocks_and_chunks(mode):
    net = models.build("lenet5-bbb", seed=0)
    for m in net.modules():
        if hasattr(m, "weight_rho"):
            m.weight_rho.data.fill_(-1.0)
    sto = methods.spinbayes.convert(net, crossbars=6, ways=2)
    x = (torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 255).to(
        torch.uint8)
    assert_votes_do_not_depend_on_tiling(sto, x, 6, mode, batch_size=7, sample_chunk=4, tile=3)


def test_batchnorm_recalibration_averages_the_batch_statistics():
    net = models.build("lenet5-bbb", seed=0)
    sto = methods.spinbayes.convert(net, crossbars=4)
    norms = [m for m in sto.modules() if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d)]
    assert all(torch.equal(m.running_mean, torch.zeros_like(m.running_mean)) for m in norms)
    images = (torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 255).to(
        torch.uint8)
    assert methods.spinbayes.recalibrate_batchnorm(sto, images, batches=2, batch_size=32) == 4
    first = norms[0]
    assert not torch.equal(first.running_mean, torch.zeros_like(first.running_mean))
    assert first.num_batches_tracked == 2 and not first.training and first.momentum == 0.1
    # with one batch, the running mean is that batch's mean of the first conv's output
    methods.spinbayes.recalibrate_batchnorm(sto, images, batches=1, batch_size=64)
    conv = sto.body[0]
    conv.context = SamplingContext.for_samples(
        methods.spinbayes.derive_seed(0, 0xBA7C, 0), 0, 1, 64)
    h = conv(sto.prefix(images))
    conv.context = None
    assert torch.allclose(first.running_mean, h.mean((0, 2, 3)), atol=1e-5)
    with pytest.raises(ConfigError, match="at least one batch"):
        methods.spinbayes.recalibrate_batchnorm(sto, images[:10], batch_size=32)


def test_the_layer_gain_fills_the_q_bit_range_and_eq3_as_written_does_not():
    torch.manual_seed(0)
    bayes = BayesLinear(50, 20)  # weights up to 1/sqrt(50) = 0.14: below eq. 3's 2nd level
    arbiter = Arbiter.ideal(4)
    literal = CrossbarLayer.from_bayes(bayes, 4, 4, arbiter, torch.Generator().manual_seed(0),
                                       gain=None)
    scaled = CrossbarLayer.from_bayes(bayes, 4, 4, arbiter, torch.Generator().manual_seed(0))
    assert literal.levels.abs().max() <= 1 and literal.gain == 1.0
    assert scaled.levels.abs().max() == 7 and scaled.gain == bayes.weight_mu.abs().max()
    # the scaled crossbar is the quantized, clipped posterior sample: within half a level
    w, _ = bayes.posterior_sample(torch.Generator().manual_seed(0), 4)
    w = w.clamp(-scaled.gain, scaled.gain)
    assert (scaled.levels.float() * scaled.scale - w).abs().max() <= scaled.scale / 2 + 1e-6
    # the gain does not depend on the number of crossbars
    more = CrossbarLayer.from_bayes(bayes, 16, 4, Arbiter.ideal(16))
    assert more.gain == scaled.gain
    with pytest.raises(ConfigError, match="gain"):
        CrossbarLayer.from_bayes(bayes, 4, 4, arbiter, gain="global")


def test_energy_per_image_from_counted_operations():
    """LeNet-5 per pass: crossbar reads 28*28 + 10*10 + 3 positions, crossbar cells
    117,600 + 240,000 + 48,000 + 10,080 + 840, comparisons 4704 + 1600 + 120 + 84 (ReLU),
    3 * (1176 + 400) (2x2 max-pools) and 9 (the vote); one averaging per layer; arbiter bits 3
    per try, a try accepted with probability 5/8 (N = 5)."""
    from synsample import hardware

    net = models.build("lenet5-bbb", seed=0)
    sto = methods.spinbayes.convert(net, coin=IdealCoin())
    images = torch.zeros(40, 1, 28, 28, dtype=torch.uint8)
    e = methods.spinbayes.energy_per_image(sto, images, passes=10)
    c = e["per_inference"]["counts"]
    assert c["crossbar_read"] == 10 * 887
    assert c["crossbar_cell"] == 10 * 416_520
    assert c["compare"] == 10 * (6508 + 3 * 1576 + 9) and c["averaging"] == 50
    assert abs(c["random bits (cmos)"] / (5 * 10 * 3 * 8 / 5 * 24) - 1) < 0.1
    assert "mac" not in c and "weight bits read" not in c  # BatchNorm folds, crossbars compute
    cheap = hardware.CostAssumptions(pj_per_op={**hardware.DEFAULT.pj_per_op,
                                                "crossbar_read": 0.0})
    e2 = methods.spinbayes.energy_per_image(sto, images, passes=10, assumptions=cheap)
    assert e2["per_inference"]["energy_pj"]["crossbar_read"] == 0.0
    assert abs(e["per_inference"]["energy_nj"] - e2["per_inference"]["energy_nj"]
               - 10 * 887 * 4.71e-3) < 1e-6
