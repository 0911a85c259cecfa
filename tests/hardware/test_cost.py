"""The cost model against counts worked out by hand for small networks."""

import pytest
import torch

from synsample import devices, hardware, methods, models

DENSE = 784 * 400 + 400 * 10  # the Table I MLP's weights


@pytest.fixture(scope="module")
def images():
    return torch.randint(1, 256, (4, 1, 28, 28), generator=torch.Generator().manual_seed(0),
                         dtype=torch.uint8)


def test_scann_counts_adds_comparisons_coins_reads_and_memory(images):
    sto = methods.scann.convert(models.build("mlp", seed=0), coin=devices.QuantizedCoin(8))
    cost = hardware.measure(sto, images, samples=5)
    per = cost["per_inference"]
    stored = DENSE * (8 + 1) + (400 + 10) * 32  # an 8-bit probability and a sign per weight
    assert cost["memory_bits"] == stored
    assert per["operations"] == {"add": 5 * DENSE + 5, "compare": 5 * (400 + 9)}
    assert per["weight_bits_read"] == 5 * stored
    # every first-layer coin is drawn (no zero pixel); a second-layer coin only for a nonzero
    # hidden unit
    assert 5 * 784 * 400 * 8 <= per["random_bits"]["cmos"] <= 5 * DENSE * 8
    sample = cost["per_sample"]
    assert sample["operations"]["add"] == DENSE + 1
    assert abs(sample["energy_nj"] * 5 - per["energy_nj"]) < 1e-9  # no prefix cost here
    priced = sum(per["counts"][k] * per["pj_each"][k] for k in per["counts"])
    assert abs(per["energy_nj"] - priced * 1e-3) < 1e-9
    assert not any(m._forward_hooks for m in sto.modules())  # the counter left no hook


def test_a_deep_ensemble_computes_each_member_once_per_inference(images):
    members = [models.build("mlp", seed=s) for s in range(3)]
    cost = hardware.measure(methods.ensemble.convert(members), images, samples=7)
    per = cost["per_inference"]
    assert per["operations"] == {"mac": 3 * DENSE, "compare": 3 * 400 + 7 * 9, "add": 7}
    assert per["random_bits"] == {} and cost["memory_bits"] == 3 * (DENSE + 410) * 32


def test_stochastic_computing_counts_xnors_luts_and_mtj_stream_bits(images):
    net = models.build("sc-mlp", seed=0)
    sto = methods.sc.convert(net, length=16, source=devices.MTJBitstream())
    cost = hardware.measure(sto, images, samples=3)
    per = cost["per_inference"]
    assert per["operations"]["xnor"] == 3 * 16 * (784 * 128 + 128 * 10)
    assert per["operations"]["lut"] == 3 * 128  # hidden units only: the read-out is the count
    stream_bits = 3 * 16 * methods.sc.streams_per_inference(sto)
    assert per["random_bits"] == {"s-mtj": stream_bits}
    assert per["energy_pj"]["random bits (s-mtj)"] == pytest.approx(stream_bits * 0.020)
    assert cost["memory_bits"] == (784 * 128 + 128 * 10) * 3  # 5 states: 3 bits per weight


def test_the_prefix_is_counted_once_per_inference_and_the_sample_part_per_pass(images):
    sto = methods.mc_dropout.convert(models.build("lenet5-dropout", seed=0))
    one, many = (hardware.measure(sto, images, samples=k) for k in (2, 6))
    assert one["prefix"]["operations"] == many["prefix"]["operations"]
    assert one["prefix"]["operations"]["mac"] > 0
    for kind, count in many["per_sample"]["operations"].items():
        assert count == pytest.approx(one["per_sample"]["operations"][kind])
    inference = many["per_inference"]["energy_nj"]
    assert inference == pytest.approx(many["prefix"]["energy_nj"]
                                      + 6 * many["per_sample"]["energy_nj"])


def test_a_model_that_cannot_draw_per_item_is_measured_item_by_item_in_shared_mode():
    """A 4-bit Gaussian source on every synapse samples in shared mode only: one item per run
    is one inference, every synapse drawn once per pass."""
    from synsample.devices import QuantizedCoin

    net = models.build("nsm-mlp", input_shape=(1, 8, 8), num_classes=4, seed=0,
                       noise="gaussian:1")
    sto = methods.nsm.convert(net, coin=QuantizedCoin(4))
    x = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)
    cost = hardware.measure(sto, x, samples=5)
    synapses = 64 * 300 + 300 * 300 + 300 * 300
    assert cost["mode"] == "shared (one item at a time)" and cost["items"] == 3
    assert cost["per_inference"]["random_bits"] == {"cmos": 5 * synapses * 4}
    # Gaussian synapses multiply; the sign neurons compare; the read-out is a plain layer
    ops = cost["per_inference"]["operations"]
    assert ops["mac"] == 5 * (synapses + 300 * 4)
