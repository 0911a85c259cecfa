"""``methods/spinbayes.py`` (paper 004, sections 3.2-3.5): every Bayesian layer becomes N
posterior samples quantized to Q bits (eq. 3), one crossbar chosen per layer and pass by an
SOT-MTJ arbiter (eq. 4), BatchNorm re-estimated on calibration images; the spec entry (Q = 4
by default); seeds; errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import synsample as ss
from synsample import devices
from synsample.errors import ConfigError
from synsample.methods import spinbayes
from synsample.nn.bayes import BayesLinear
from synsample.nn.crossbar import CrossbarLayer
from tests.helpers import assert_seeded

# chi-square quantiles at 99.9% (a uniform choice fails a check with probability 1e-3; the
# seeds are fixed, so a pass is reproducible)
CHI2_999 = {4: 18.47, 24: 51.18}


def _bnn(sigma: float = 0.1, seed: int = 0, batchnorm: bool = False) -> nn.Sequential:
    """A small synthetic Bayes-by-Backprop network 6-5-3 (no activation, so that the output
    of a pass tells which crossbars it used), posterior standard deviation ``sigma``."""
    torch.manual_seed(seed)
    first, second = BayesLinear(6, 5), BayesLinear(5, 3)
    for layer in (first, second):
        with torch.no_grad():
            layer.weight_mu.uniform_(-0.5, 0.5)
            layer.bias_mu.uniform_(-0.2, 0.2)
            for rho in (layer.weight_rho, layer.bias_rho):
                rho.fill_(float(torch.log(torch.expm1(torch.tensor(sigma)))))
    middle = [nn.BatchNorm1d(5)] if batchnorm else []
    return nn.Sequential(first, *middle, second)


def _crossbars(sto) -> list[CrossbarLayer]:
    return [m for m in sto.sampled_layers() if isinstance(m, CrossbarLayer)]


# -- convert --------------------------------------------------------------------------------------

def test_every_bayesian_layer_becomes_n_crossbars_behind_one_arbiter_device():
    net = _bnn()
    sto = ss.convert(net, "spinbayes")
    assert sto.method == "spinbayes" and sto.sampled_names == ["0", "1"]
    layers = _crossbars(sto)
    assert [m.layer_name for m in layers] == ["0", "1"]
    assert [tuple(m.levels.shape) for m in layers] == [(5, 5, 6), (5, 3, 5)]
    assert [tuple(m.bias_levels.shape) for m in layers] == [(5, 5), (5, 3)]
    (arbiter_coin,) = sto.devices()
    assert isinstance(arbiter_coin, devices.SOTSwitch)
    assert all(m.arbiter.coin is arbiter_coin and m.arbiter.crossbars == 5 for m in layers)
    assert sto.info == {"crossbars": 5, "bits": 4, "ways": 1, "gain": "layer",
                        "arbiter": arbiter_coin.describe(), "recalibrated": False}
    for m in layers:  # N samples of a posterior with sigma = 0.1: distinct crossbars
        assert len({tuple(c.flatten().tolist()) for c in m.levels}) == 5
    assert all(isinstance(m, BayesLinear) for m in net)  # the trained network is unchanged


@pytest.mark.parametrize("q", [2, 3, 4, 8])
def test_crossbars_hold_q_bit_levels_of_the_posterior(q):
    """Eq. 3, ``theta_hat = round(clip(theta, -1, 1) (2^(Q-1) - 1))`` after the layer gain
    ``g = max |mu|``: integer levels within +-(2^(Q-1) - 1), the top one used, and a crossbar's
    weights ``theta_hat g / (2^(Q-1) - 1)`` within half a level (plus 5 posterior standard
    deviations, the sample's spread) of the clipped posterior mean."""
    sigma = 1e-3
    net = _bnn(sigma=sigma)
    sto = ss.convert(net, "spinbayes", precision=q)
    top = 2 ** (q - 1) - 1
    assert sto.info["bits"] == q
    for layer, bayes in zip(_crossbars(sto), net, strict=True):
        levels = layer.levels.long()
        assert layer.levels.dtype == torch.int8 and levels.abs().max() == top
        g = float(max(bayes.weight_mu.detach().abs().max(), bayes.bias_mu.detach().abs().max()))
        assert layer.gain == pytest.approx(g) and layer.scale == pytest.approx(g / top)
        for c in range(layer.crossbars):
            w, b = layer.crossbar(torch.tensor([c]))
            for got, mu in ((w, bayes.weight_mu), (b, bayes.bias_mu)):
                gap = (got - mu.detach().clamp(-g, g)).abs().max()
                assert gap <= layer.scale / 2 + 5 * sigma + 1e-6


@pytest.mark.parametrize("q,dtype", [(9, torch.int16), (16, torch.int16), (24, torch.int32)])
def test_more_than_eight_bits_are_stored_exactly(q, dtype):
    """Wider levels are kept in the smallest integer type that holds them (no wrap-around)."""
    net = _bnn(sigma=1e-3)
    sto = ss.convert(net, "spinbayes", precision=q)
    for layer, bayes in zip(_crossbars(sto), net, strict=True):
        assert layer.levels.dtype == layer.bias_levels.dtype == dtype
        assert layer.levels.long().abs().max() == 2 ** (q - 1) - 1
        w, _ = layer.crossbar(torch.tensor([0]))
        assert (w - bayes.weight_mu).abs().max() <= layer.scale / 2 + 5e-3


@pytest.mark.parametrize("options,message", [
    ({"crossbars": 0}, "an arbiter needs 1 <= ways <= crossbars, got 1 of 0"),
    ({"crossbars": 2, "ways": 3}, "got 3 of 2"),
    ({"ways": 0}, "got 0 of 5"),
    ({"precision": 1}, r"SpinBayes needs at least 2 bits per weight \(eq. 3\), got 1"),
    ({"precision": 0}, r"at least 2 bits per weight \(eq. 3\), got 0"),
    ({"precision": 25}, "SpinBayes stores at most 24 bits per weight, got 25"),
    ({"precision": "fine"}, "unknown precision 'fine'"),
    ({"gain": "row"}, "unknown crossbar gain 'row'; use 'layer' or None"),
    ({"include": ["0"]}, "spinbayes converts the whole network; it takes no include"),
    ({"bits": 4}, "spinbayes takes no option bits; its options: crossbars, ways"),
])
def test_bad_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        ss.convert(_bnn(), "spinbayes", **options)


def test_a_fractional_number_of_crossbars_is_a_config_error():
    with pytest.raises(ConfigError, match="crossbars"):
        ss.convert(_bnn(), "spinbayes", crossbars=2.5)


def test_the_seed_option_fixes_the_crossbars_and_each_layer_draws_its_own():
    net = nn.Sequential(BayesLinear(4, 4), BayesLinear(4, 4))
    net[1].load_state_dict(net[0].state_dict())  # two identical posteriors
    for layer in net:
        layer.weight_rho.data.fill_(-1.0)
    a = _crossbars(spinbayes.convert(net, seed=1))
    b = _crossbars(spinbayes.convert(net, seed=1))
    c = _crossbars(spinbayes.convert(net, seed=2))
    assert all(torch.equal(x.levels, y.levels) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0].levels, c[0].levels)
    assert not torch.equal(a[0].levels, a[1].levels)


def test_batchnorm_is_re_estimated_on_the_calibration_images():
    """Section 3.2: quantization shifts the activations BatchNorm was trained on, so its
    running statistics are estimated again under the crossbars (a network without BatchNorm
    needs no images)."""
    plain = ss.convert(_bnn(), "spinbayes")
    assert plain.info["recalibrated"] is False
    net = _bnn(batchnorm=True)
    x = torch.randn(200, 6, generator=torch.Generator().manual_seed(0)) + 3.0
    sto = ss.convert(net, "spinbayes", calibration=x.numpy())
    norm = next(m for m in sto.modules() if isinstance(m, nn.BatchNorm1d))
    assert sto.info["recalibrated"] is True and not norm.training
    assert int(norm.num_batches_tracked) == 2  # two batches of 100 images
    assert not torch.allclose(norm.running_mean, torch.zeros(5), atol=0.1)
    assert torch.equal(net[1].running_mean, torch.zeros(5))  # the trained one is untouched
    with pytest.raises(ConfigError, match="at least one batch of 100 images, got 50"):
        ss.convert(net, "spinbayes", calibration=x[:50])


# -- the spec -------------------------------------------------------------------------------------

def test_the_spec_entry():
    spec = spinbayes.SPEC
    assert spec.name == "spinbayes" and spec.needs_data == "calibration"
    assert spec.options == ("crossbars", "ways", "coin", "seed", "gain", "calibration")
    assert spec.precision == "crossbar Q bits (full: 4)" and spinbayes.DEFAULT_BITS == 4
    assert spinbayes.DEFAULT_CROSSBARS == 5 and spec.exports and not spec.filters
    assert spec.reference == "posterior-mean network"
    net = _bnn()
    assert spec.reference_model(net) is net
    for full in ("full", None):
        assert ss.convert(net, "spinbayes", precision=full).info["bits"] == 4


# -- the distribution it samples (eq. 4) ----------------------------------------------------------

def _choices(sto, net_out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Which (first, second) crossbar pair produced each pass's output ``[n, 3]`` of item ``x``
    (``[6]``): the index ``5 c1 + c2``, checked to match exactly one pair."""
    first, second = _crossbars(sto)
    outs = []
    for c1 in range(5):
        h = F.linear(x, *first.crossbar(torch.tensor([c1])))
        for c2 in range(5):
            outs.append(F.linear(h, *second.crossbar(torch.tensor([c2]))))
    candidates = torch.stack(outs)  # [25, 3]
    gaps = (candidates[:, None] - net_out[None]).abs().amax(-1)  # [25, n]
    assert torch.cdist(candidates, candidates).add(torch.eye(25)).min() > 1e-3  # distinct
    match = gaps < 1e-4
    assert torch.all(match.sum(0) == 1)
    return match.int().argmax(0)


def test_each_layer_chooses_one_crossbar_per_pass_uniformly_and_independently():
    """Eq. 4, ``theta ~ Choose(S)``: per layer and pass, one of the N = 5 crossbars, uniformly
    (the default SOT-MTJ arbiter's bits are fair; 3 bits, a value of 5 or more drawn again),
    and the two layers choose independently: all 25 pairs equally likely (chi-square, 24
    degrees of freedom, below its 99.9% quantile)."""
    sto = ss.convert(_bnn(), "spinbayes")
    x = torch.randn(1, 6, generator=torch.Generator().manual_seed(1))
    n = 1250
    out = sto(x, n=n, generator=torch.Generator().manual_seed(2))[:, 0]  # [n, 3]
    pairs = _choices(sto, out, x[0])
    counts = torch.bincount(pairs, minlength=25).double()
    assert float(((counts - n / 25) ** 2 / (n / 25)).sum()) < CHI2_999[24]
    first_layer = torch.bincount(pairs // 5, minlength=5).double()
    assert float(((first_layer - n / 5) ** 2 / (n / 5)).sum()) < CHI2_999[4]


def test_in_shared_mode_a_pass_chooses_once_for_the_batch_and_independently_per_item():
    sto = ss.convert(_bnn(), "spinbayes")
    x = torch.randn(1, 6, generator=torch.Generator().manual_seed(1)).repeat(2, 1)
    shared = sto(x, n=50, generator=torch.Generator().manual_seed(3), mode="shared")
    assert torch.equal(_choices(sto, shared[:, 0], x[0]), _choices(sto, shared[:, 1], x[0]))
    own = sto(x, n=50, generator=torch.Generator().manual_seed(3), mode="independent")
    a, b = _choices(sto, own[:, 0], x[0]), _choices(sto, own[:, 1], x[0])
    # equal choices in all 50 passes would have probability (1/25)^50
    assert (a != b).any()
    assert len(a.unique()) > 10 and len(b.unique()) > 10


def test_n_way_inference_averages_distinct_crossbars():
    sto = ss.convert(_bnn(), "spinbayes", crossbars=4, ways=2)
    assert sto.info["ways"] == 2 and all(m.arbiter.ways == 2 for m in _crossbars(sto))
    first = _crossbars(sto)[0]
    h = first(torch.eye(6))  # outside a sampled call: crossbar 0
    w0, b0 = first.crossbar(torch.tensor([0]))
    torch.testing.assert_close(h, F.linear(torch.eye(6), w0, b0))
    pair_w, _ = first.crossbar(torch.tensor([1, 3]))
    torch.testing.assert_close(pair_w, (first.levels[1].float() + first.levels[3].float())
                               / 2 * first.scale)


# -- seeds ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_the_same_seed_gives_the_same_votes_and_another_seed_other_choices(mode):
    sto = ss.convert(_bnn(), "spinbayes")
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(5))
    assert_seeded(sto, x, mode, seed=1, other_seed=2, samples=8, n=6)
