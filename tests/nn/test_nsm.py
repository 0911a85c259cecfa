"""Neural Sampling Machine layers (paper 002): forward statistics, gradients, init, invariance."""

import math

import pytest
import torch
from torch import nn

from synsample import engine, kernels, methods, models, randomness
from synsample.devices import GaussianSource, IdealCoin, QuantizedCoin
from synsample.errors import ConfigError
from synsample.nn.nsm import (
    Binarize,
    Noise,
    NSMConv2d,
    NSMLinear,
    StochasticSigmoidLinear,
    data_dependent_init_,
    sgn,
)
from synsample.nn.sampling import SamplingContext


def _signs(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand(*shape, generator=g) < 0.5, 1.0, -1.0)


def _layer(noise, fan_in=1000, out=4, seed=0, **kw):
    torch.manual_seed(seed)
    layer = NSMLinear(fan_in, out, noise=noise, name="fc", **kw)
    with torch.no_grad():
        layer.beta.copy_(torch.tensor([0.3, 0.7, 1.2, 2.0])[:out])
        layer.bias.uniform_(-0.05, 0.05)
    return layer


def _rates(layer, z, n, mode=None):
    """Firing rate of each unit over ``n`` sampled passes of the one input ``z``."""
    with torch.no_grad():
        if mode is None:
            return (layer(z.expand(n, -1).contiguous()) == 1).double().mean(0)
        layer.context = SamplingContext.for_samples(7, 0, n, 1, mode)
        try:
            return (layer(z) == 1).double().mean(0)
        finally:
            layer.context = None


@pytest.mark.parametrize("noise", ["bernoulli:0.5", "bernoulli:0.25", "gaussian:1",
                                   "gaussian:0.5"])
@pytest.mark.parametrize("mode", [None, "shared", "independent"])
def test_firing_rate_matches_eq3_for_a_large_fan_in(noise, mode):
    layer = _layer(noise)
    z = _signs(1, 1000)
    n = 4000
    p = layer.firing_probability(z).detach()[0].double()
    rate = _rates(layer, z, n, mode)
    # 4 standard errors of a binomial rate; blank-out sums are Gaussian only by the CLT: with
    # 1000 synapses of comparable weight, Berry-Esseen bounds the CDF error by ~0.5 / sqrt(1000)
    clt = 0.0 if noise.startswith("gaussian") else 0.5 / math.sqrt(1000)
    tol = 4 * torch.sqrt(p * (1 - p) / n) + clt
    assert ((rate - p).abs() <= tol).all(), (rate, p)


def test_the_sampled_preactivation_has_the_moments_of_eq5():
    layer = _layer("bernoulli:0.5", out=2)
    z = _signs(1, 1000, seed=2)
    with torch.no_grad():
        u = layer.preactivation(z.expand(20000, -1).contiguous()).double()
        mean_xi, var_xi = layer.moments()
        wz = (layer.weight.double() @ z[0].double())
        expected_mean = (mean_xi + layer.a().double()) * wz + layer.bias.double()
        expected_var = var_xi * (layer.weight.double() ** 2).sum(1)
    assert torch.allclose(u.mean(0), expected_mean, atol=4 * expected_var.sqrt().max() / 141)
    assert torch.allclose(u.var(0), expected_var, rtol=0.05)


def test_the_gradient_is_eq6_and_eq7():
    torch.manual_seed(1)
    layer = NSMLinear(30, 5, bias=False, noise="bernoulli:0.5")
    with torch.no_grad():
        layer.beta.uniform_(0.5, 2.0)
    z = _signs(1, 30, seed=3)
    c = torch.randn(5, dtype=torch.float64)
    out = layer.train()(z)  # binary states forward, erf gradient backward (section 2.3)
    assert set(out.detach().unique().tolist()) <= {-1.0, 1.0}
    (out[0].double() * c).sum().backward()

    w, beta = layer.weight.detach().double(), layer.beta.detach().double()
    norm = w.norm(dim=1)
    v = beta[:, None] * w / norm[:, None]
    s = v @ z[0].double()
    d_v = (c * 2 / math.sqrt(math.pi) * torch.exp(-s ** 2))[:, None] * z[0].double()[None, :]
    d_beta = (w * d_v).sum(1) / norm                                                   # eq. 6
    d_w = beta[:, None] / norm[:, None] * d_v - (w * beta[:, None]
                                                 / norm[:, None] ** 2) * d_beta[:, None]  # eq. 7
    assert torch.allclose(layer.beta.grad.double(), d_beta, rtol=1e-4, atol=1e-6)
    assert torch.allclose(layer.weight.grad.double(), d_w, rtol=1e-4, atol=1e-6)


def test_data_dependent_init_gives_zero_mean_unit_variance_on_its_batch():
    torch.manual_seed(0)
    net = nn.Sequential(NSMLinear(64, 40), NSMLinear(40, 30, noise="gaussian:1"),
                        nn.Linear(30, 3))
    x = _signs(100, 64, seed=4)
    stats = data_dependent_init_(net, x)
    assert set(stats) == {"0", "1"}
    for s in stats.values():
        assert abs(s["mean"]) < 1e-5 and abs(s["std"] - 1) < 1e-4
    s = net[0].argument(x).detach()  # the first layer's input is deterministic: check directly
    assert torch.allclose(s.mean(0), torch.zeros(40), atol=1e-5)
    assert torch.allclose(s.std(0), torch.ones(40), atol=1e-4)


def test_data_dependent_init_of_a_convolution():
    torch.manual_seed(0)
    conv = NSMConv2d(1, 4, 3, (8, 8))
    x = _signs(100, 1, 8, 8, seed=5)
    data_dependent_init_(nn.Sequential(conv), x)
    s = conv.argument(x).detach()
    varies = conv.beta < conv.beta.median() * 5  # units whose input varies on the batch
    assert torch.allclose(s.std(0)[varies], torch.ones(int(varies.sum())), atol=1e-4)
    per_unit = s.mean(0).flatten(1)
    assert torch.allclose(per_unit.median(dim=1).values, torch.zeros(4), atol=1e-5)  # channel
    blank = torch.ones(100, 1, 8, 8)  # a blank input: beta stays finite, the floor binds
    conv2 = NSMConv2d(1, 4, 3, (8, 8))
    data_dependent_init_(nn.Sequential(conv2), torch.cat([x[:50], blank[:50]]) * 0 - 1)
    assert torch.isfinite(conv2.beta).all() and torch.isfinite(conv2.bias).all()


def test_scaling_the_weights_leaves_the_firing_probabilities_and_states():
    """Section 3.2: ``w / ||w||`` makes P invariant to positive scaling of the weights; with the
    biases scaled too, ``u`` is only scaled, so the same draws give the same states."""
    layer = _layer("bernoulli:0.5", fan_in=200)
    scaled = _layer("bernoulli:0.5", fan_in=200)
    with torch.no_grad():
        scaled.weight.mul_(0.1)
        scaled.bias.mul_(0.1)
    z = _signs(16, 200, seed=6)
    ctx = SamplingContext.for_samples(3, 0, 8, 16, "shared")
    layer.context = ctx
    u = layer.preactivation(z)
    scaled.context = SamplingContext.for_samples(3, 0, 8, 16, "shared")
    u_scaled = scaled.preactivation(z)
    assert torch.allclose(u_scaled, 0.1 * u, rtol=1e-4, atol=1e-6)
    assert (sgn(u_scaled) == sgn(u)).double().mean() > 0.999
    bias_free = _layer("gaussian:1", fan_in=200)
    bias_free.bias = None
    p = bias_free.firing_probability(z)
    with torch.no_grad():
        bias_free.weight.mul_(0.1)
    assert torch.allclose(bias_free.firing_probability(z), p, atol=1e-6)


def test_scale_invariance_of_a_small_nsm_against_a_relu_network():
    torch.manual_seed(0)
    x = (torch.rand(64, 1, 8, 8) * 255).to(torch.uint8)

    def predictions(net):
        return engine.predict(methods.nsm.convert(net), x, samples=16, seed=2).votes

    nsm = models.build("nsm-mlp", input_shape=(1, 8, 8), num_classes=4, seed=0, bias=False)
    base = predictions(nsm)
    for m in nsm.modules():
        if isinstance(m, NSMLinear):
            m.weight.data.mul_(0.1)
    assert (predictions(nsm).argmax(1) == base.argmax(1)).double().mean() > 0.95
    relu = models.build("relu-mlp", input_shape=(1, 8, 8), num_classes=4, seed=0)
    before = relu(x)
    for m in list(relu.modules())[:-1]:
        if isinstance(m, nn.Linear) and m is not relu[-1]:
            m.weight.data.mul_(0.1)
    assert not torch.allclose(relu(x), before, rtol=0.1)


@pytest.mark.parametrize("arch,noise", [("nsm-mlp", "bernoulli:0.5"), ("nsm-mlp", "gaussian:1"),
                                        ("stnn-mlp", None), ("nsm-conv", "bernoulli:0.5")])
@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_votes_do_not_depend_on_blocks_and_chunks(arch, noise, mode):
    shape = (1, 16, 16) if arch == "nsm-conv" else (1, 8, 8)
    net = models.build(arch, input_shape=shape, num_classes=4, seed=0, noise=noise)
    sto = methods.nsm.convert(net)
    x = (torch.rand(40, *shape, generator=torch.Generator().manual_seed(1)) * 255).to(
        torch.uint8)
    a = engine.predict(sto, x, samples=12, seed=5, mode=mode)
    b = engine.predict(sto, x, samples=12, seed=5, mode=mode, batch_size=7, sample_chunk=5,
                       tile=3)
    assert torch.equal(a.votes, b.votes)
    assert a.random_bits == b.random_bits > 0


def test_devices_count_one_draw_per_synapse():
    net = models.build("nsm-mlp", input_shape=(1, 8, 8), num_classes=4, seed=0)
    synapses = 64 * 300 + 300 * 300 + 300 * 300
    x = torch.zeros(10, 1, 8, 8, dtype=torch.uint8)
    coin = QuantizedCoin(8)
    shared = engine.predict(methods.nsm.convert(net, coin=coin), x, samples=6, seed=0)
    assert shared.random_bits == 6 * synapses * 8
    indep = engine.predict(methods.nsm.convert(net), x, samples=6, seed=0, mode="independent")
    assert indep.random_bits == 10 * 6 * synapses * 24


def test_the_kernel_gates_real_weights_bit_for_bit():
    if not kernels.available():
        pytest.skip("no C compiler: the twin is what runs")
    torch.manual_seed(0)
    value = torch.randn(50, 37)
    bits, thr = IdealCoin().counter_thresholds(torch.full((50, 37), 0.5))
    x = _signs(9, 3, 50)
    args = (x, 3, thr.to(torch.int32), value, bits, torch.arange(9), 4, 1234)
    assert torch.equal(kernels.coinflip(*args)[0], randomness.coinflip_reference(*args)[0])


def test_gaussian_source_moments_and_levels():
    g = torch.Generator().manual_seed(0)
    for bits in (None, 8, 3):
        src = GaussianSource(bits)
        e = src.normal((200000,), g).double()
        assert abs(e.mean()) < 4 * math.sqrt(src.variance / 200000)
        assert abs(e.var() - src.variance) < 0.02
        assert src.random_bits == 200000 * src.bits_per_draw
    assert len(GaussianSource(3).normal((10000,), g).unique()) == 8
    assert GaussianSource(3).variance < GaussianSource(8).variance < 1.0


def test_estimators_and_options():
    z = _signs(8, 40)
    for estimator in ("binconcrete", "released"):
        layer = NSMLinear(40, 6, estimator=estimator).train()
        out = layer(z)
        assert ((out > -1) & (out < 1)).all()  # relaxed samples in training
        out.sum().backward()
        assert layer.weight.grad.abs().sum() > 0
    with torch.no_grad():  # inference: the paper's estimator samples sgn(u), released does not
        assert set(NSMLinear(40, 6, estimator="binconcrete")(z).unique().tolist()) <= {-1.0, 1.0}
        assert not set(NSMLinear(40, 6, estimator="released")(z).unique().tolist()) <= {-1.0, 1.0}
        assert set(NSMLinear(40, 6, site="input")(z).unique().tolist()) <= {-1.0, 1.0}
        spikes = StochasticSigmoidLinear(40, 6)(z)
        assert set(spikes.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(Binarize()(torch.tensor([0, 127, 128, 255], dtype=torch.uint8)),
                       torch.tensor([-1.0, -1.0, 1.0, 1.0]))


def test_bad_configurations_say_what_to_do():
    with pytest.raises(ConfigError, match="bernoulli:P"):
        Noise.parse("laplace")
    with pytest.raises(ConfigError, match="0 < p < 1"):
        Noise.parse("bernoulli:1.5")
    with pytest.raises(ConfigError, match="input neuron"):
        NSMConv2d(1, 2, 3, (8, 8), site="synapse")
    with pytest.raises(ConfigError, match="GaussianSource"):
        NSMLinear(4, 2, noise="gaussian:1", source=IdealCoin())
    with pytest.raises(ConfigError, match="expects"):
        NSMLinear(4, 2)(torch.ones(3, 5))
    with pytest.raises(ConfigError, match="no NSM"):
        methods.nsm.convert(models.build("relu-mlp"))
    layer = NSMLinear(4, 2, noise="gaussian:1", source=GaussianSource(4))
    layer.context = SamplingContext.for_samples(0, 0, 2, 3, "independent")
    with pytest.raises(ConfigError, match="shared mode"):
        layer(torch.ones(3, 4))
    with pytest.raises(ConfigError, match="vanishes"):
        NSMLinear(4, 2, noise="bernoulli:0.01", source=QuantizedCoin(4)).moments()
