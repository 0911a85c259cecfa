"""The MC baselines of paper 004: MC-Dropout and MC-DropConnect masks (their rates, one per
pass or per item), and the deep ensemble's passes."""

import math

import pytest
import torch

from synsample import engine, methods, models
from synsample.devices import QuantizedCoin
from synsample.errors import ConfigError
from synsample.nn.dropout import DropConnectConv2d, DropConnectLinear, MCDropout
from synsample.nn.sampling import SamplingContext
from tests.helpers import assert_votes_do_not_depend_on_tiling


def _call(layer, x, n, mode, seed=0):
    layer.context = SamplingContext.for_samples(seed, 0, n, x.shape[0], mode)
    try:
        return layer(x)
    finally:
        layer.context = None


@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_dropout_keeps_units_at_one_minus_p_and_rescales(mode):
    layer = MCDropout(0.3)
    x = torch.ones(4, 500)
    y = _call(layer, x, 50, mode).reshape(4, 50, 500)
    kept = (y != 0).double()
    n = kept.numel()
    assert abs(kept.mean().item() - 0.7) < 4.5 * math.sqrt(0.21 / n)
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.7))
    same = torch.equal(kept[0], kept[1])
    assert same == (mode == "shared")  # one mask per pass for the batch, or per item
    assert layer.coin.draws == (50 * 500 if mode == "shared" else 4 * 50 * 500)


@pytest.mark.parametrize("mode", ["shared", "independent"])
@pytest.mark.parametrize("conv", [False, True])
def test_dropconnect_masks_weights_at_rate_p(mode, conv):
    torch.manual_seed(0)
    layer = DropConnectConv2d(3, 4, 3, p=0.25) if conv else DropConnectLinear(30, 4, p=0.25)
    x = torch.randn(2, 3, 5, 5) if conv else torch.randn(2, 30)
    y = _call(layer, x, 400, mode)
    assert layer.coin.draws == layer.weight.numel() * 400 * (1 if mode == "shared" else 2)
    # the mean over passes is the full layer (inverted scaling), within a few SE
    full = layer._op(x, layer.weight, layer.bias)
    mean = y.reshape(2, 400, *full.shape[1:]).mean(1)
    spread = y.reshape(2, 400, *full.shape[1:]).std(1) / math.sqrt(400)
    assert torch.all((mean - full).abs() < 5 * spread + 1e-5)
    # one pass: every weight kept or dropped, so the output is the layer with some weights
    # zeroed and the rest scaled by 1 / (1 - p); check the mask rate with a single input unit
    probe = DropConnectLinear(1, 2000, p=0.25)
    probe.bias.data.zero_()
    out = _call(probe, torch.ones(1, 1), 10, mode)
    kept = (out != 0).double().mean().item()
    assert abs(kept - 0.75) < 4.5 * math.sqrt(0.75 * 0.25 / out.numel())


@pytest.mark.parametrize("arch", ["lenet5-dropout", "lenet5-dropconnect"])
@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_votes_do_not_depend_on_blocks_and_chunks(arch, mode):
    net = models.build(arch, seed=0, dropout=0.3)
    sto = methods.get(models.ARCHS[arch].method).convert(net)
    x = (torch.rand(12, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 255).to(
        torch.uint8)
    assert_votes_do_not_depend_on_tiling(sto, x, 6, mode, batch_size=5, sample_chunk=4, tile=2)


def test_the_ensemble_cycles_through_its_members():
    members = [models.build("lenet5", seed=s) for s in range(3)]
    x = (torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 255).to(
        torch.uint8)
    pred = engine.predict(methods.ensemble.convert(members), x, samples=6, sample_chunk=4)
    own = [m.eval()(x).argmax(1) for m in members]
    expected = torch.zeros(5, 10, dtype=torch.int64)
    for k in range(6):
        expected[torch.arange(5), own[k % 3]] += 1
    assert torch.equal(pred.votes, expected) and pred.random_bits == 0


def test_bad_rates_and_methods_are_clear_errors():
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        MCDropout(1.0)
    with pytest.raises(ConfigError, match="no nn.Dropout to keep on.*insert_before"):
        methods.mc_dropout.convert(models.build("lenet5"))
    with pytest.raises(ConfigError, match="no precision"):
        methods.convert(models.build("lenet5-bbb"), "bbb", precision="4")
    with pytest.raises(ConfigError, match="BatchNorm.*calibration"):
        methods.convert(models.build("lenet5-bbb"), "spinbayes")
    assert isinstance(MCDropout(0.1, QuantizedCoin(4)).coin, QuantizedCoin)


@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_every_mask_bit_is_its_own_device_for_an_imperfect_coin(mode):
    """Stuck-at-0 devices: a fraction of the weights (DropConnect) or units (dropout) that is
    never kept, whatever the pass; the others keep at 1 - p."""
    from synsample.devices import NonIdealCoin

    coin = NonIdealCoin(stuck_at_0=0.3, seed=1)
    probe = DropConnectLinear(1, 3000, p=0.25)
    probe.coin = coin
    probe.bias.data.zero_()
    never = (_call(probe, torch.ones(1, 1), 30, mode) == 0).all(0).double().mean().item()
    # a working weight is dropped in all 30 passes with probability 0.25^30, never in practice
    assert abs(never - 0.3) < 4.5 * math.sqrt(0.21 / 3000)
    dropout = MCDropout(0.25, coin=coin)
    units = _call(dropout, torch.ones(2, 3000), 30, mode).reshape(2, 30, 3000)
    never = (units == 0).all(1).double().mean().item()
    assert abs(never - 0.3) < 4.5 * math.sqrt(0.21 / 3000)
