import pytest
import torch
from torch import nn

from synsample.devices import IdealCoin, QuantizedCoin
from synsample.errors import ConfigError
from synsample.nn import CoinFlipLinear, SamplingContext


def grid_layer(coin=None):
    w = torch.linspace(-1, 1, 41).reshape(1, 41)  # every sign and magnitude, exact 0 and +-1
    return CoinFlipLinear(w, torch.zeros(1), coin or IdealCoin())


def test_sampled_weights_have_frequency_abs_w_and_mean_w():
    layer = grid_layer()
    n = 20000
    samples = layer.sample_weight(torch.Generator().manual_seed(0), (n,))  # [n, 1, 41]
    assert set(samples.unique().tolist()) <= {-1.0, 0.0, 1.0}
    w = layer.weight.double()
    nonzero = (samples != 0).double().mean(0)
    se_freq = torch.sqrt(w.abs() * (1 - w.abs()) / n)
    assert torch.all((nonzero - w.abs()).abs() <= 5 * se_freq + 1e-12)
    mean = samples.double().mean(0)
    se_mean = torch.sqrt((w.abs() - w**2) / n)  # Var of sign(w) * Bernoulli(|w|)
    assert torch.all((mean - w).abs() <= 5 * se_mean + 1e-12)
    # the sign of a drawn weight is the sign of w (positive and negative parts, eq. 3)
    assert torch.all(samples * torch.sign(w) >= 0)


def test_quantized_layer_samples_the_quantized_probability():
    coin = QuantizedCoin(4)
    layer = grid_layer(coin)
    n = 20000
    samples = layer.sample_weight(torch.Generator().manual_seed(1), (n,))
    q = coin.probability(layer.weight.abs()).double()
    freq = (samples != 0).double().mean(0)
    assert torch.all((freq - q).abs() <= 5 * torch.sqrt(q * (1 - q) / n) + 1e-12)
    assert torch.all(freq[q == 0] == 0)


def test_out_of_range_weights_are_refused_with_the_fix():
    lin = nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight[0, 0] = 1.5
    with pytest.raises(ConfigError, match=r"outside \[-1, 1\].*max \|w\| = 1.5"):
        CoinFlipLinear.from_linear(lin, name="fc1")


def test_non_finite_weights_are_refused():
    w = torch.zeros(2, 2)
    w[0, 0] = float("nan")
    with pytest.raises(ConfigError, match="non-finite"):
        CoinFlipLinear(w, None)


def _manual(x, layer, gens):
    """Reference: each sample's weight drawn from its generator, one matmul per sample."""
    outs = [x @ layer.sample_weight(g).T + layer.bias for g in gens]
    return torch.stack(outs, 1).reshape(-1, layer.out_features)  # item-major


def test_shared_mode_matches_per_sample_reference_for_broadcast_and_expanded_inputs():
    torch.manual_seed(0)
    layer = CoinFlipLinear(torch.rand(5, 7) * 2 - 1, torch.randn(5))
    x = torch.randn(3, 7)
    ctx = SamplingContext.for_samples(123, 0, 4, batch=3)
    layer.context = ctx
    got = layer(x)
    ref = _manual(x, layer, SamplingContext.for_samples(123, 0, 4, batch=3).generators)
    torch.testing.assert_close(got, ref)
    # an already expanded input (item i, sample k at row i * n + k)
    xe = torch.randn(12, 7)
    layer.context = SamplingContext.for_samples(5, 0, 4, batch=3)
    got = layer(xe)
    gens = SamplingContext.for_samples(5, 0, 4, batch=3).generators
    ws = [layer.sample_weight(g) for g in gens]
    ref = torch.stack([xe[i * 4 + k] @ ws[k].T + layer.bias for i in range(3) for k in range(4)])
    torch.testing.assert_close(got, ref)


def test_independent_mode_draws_differ_per_item_and_are_seeded():
    layer = CoinFlipLinear(torch.full((4, 50), 0.5), None)
    x = torch.ones(6, 50)  # identical items
    layer.context = SamplingContext.for_samples(9, 0, 2, batch=6, mode="independent")
    a = layer(x).reshape(6, 2, 4)
    assert not torch.equal(a[0], a[1])  # same input, own draws
    layer.context = SamplingContext.for_samples(9, 0, 2, batch=6, mode="independent")
    assert torch.equal(layer(x).reshape(6, 2, 4), a)


def test_bad_input_shape_is_a_clear_error():
    layer = CoinFlipLinear(torch.zeros(2, 3), None)
    with pytest.raises(ConfigError, match=r"expects \[batch, ..., 3\]"):
        layer(torch.zeros(4, 5))
    layer.context = SamplingContext.for_samples(0, 0, 2, batch=4)
    with pytest.raises(ConfigError, match="got 5 rows"):
        layer(torch.zeros(5, 3))


def test_integer_fast_paths_equal_the_fp32_path_bit_for_bit():
    from synsample import devices, engine, models
    from synsample.methods import scann

    net = models.build("mlp", seed=0, init="uniform")
    for coin in (devices.IdealCoin(), devices.QuantizedCoin(4)):
        sto = scann.convert(net, coin=coin)
        assert sto.body[0].input_scale == pytest.approx(1 / 255)  # the scaling was folded
        x = torch.randint(0, 256, (40, 1, 28, 28), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(1))
        ref = engine.predict(sto, x, samples=24, seed=5, tile=32)  # untuned: fp32
        for name in sto.body[0]._gemm_paths(x.flatten(1), 24 * 400)[1:]:
            for layer in sto.sampled_layers():
                layer.paths = {"gemm": name}
            fast = engine.predict(sto, x, samples=24, seed=5, tile=32)
            # same tiling: every integer path equals the fp32 path bit for bit, votes and means
            assert torch.equal(fast.votes, ref.votes), name
            assert torch.equal(fast.mean_probs, ref.mean_probs), name
        other_tile = engine.predict(sto, x, samples=24, seed=5, tile=7)
        # another tiling: the same votes; the means within fp32 rounding, since a CPU's fp32
        # GEMM may round a row differently with the number of rows (docs/determinism.md)
        assert torch.equal(other_tile.votes, fast.votes)
        torch.testing.assert_close(other_tile.mean_probs, fast.mean_probs, rtol=1e-5, atol=1e-6)


def test_folded_scale_gives_the_same_votes_as_scaling_first():
    from synsample import engine, models
    from synsample.methods import scann

    net = models.build("mlp", input_shape=(1, 8, 8), num_classes=4, seed=0, init="uniform")
    sto = scann.convert(net)
    unfolded = scann.convert(net)
    unfolded.prefix_net = torch.nn.Sequential(net[0], net[1])  # ScaleInput kept in the prefix
    unfolded.body[0].input_scale = 1.0
    x = torch.randint(0, 256, (50, 1, 8, 8), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(2))
    a = engine.predict(sto, x, samples=40, seed=1)
    b = engine.predict(unfolded, x, samples=40, seed=1)
    torch.testing.assert_close(a.mean_probs, b.mean_probs, rtol=1e-4, atol=1e-5)
    assert (a.votes != b.votes).sum() <= 2  # only exact near-ties may flip by rounding
