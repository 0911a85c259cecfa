import pytest
import torch

from synsample import devices, engine, models
from synsample.adaptive import AdaptiveStop, settled
from synsample.errors import ConfigError
from synsample.methods import scann


def test_settled_on_hand_made_votes():
    votes = torch.tensor([
        [32, 0, 0],    # unanimous: z = sqrt(32) = 5.66
        [16, 16, 0],   # tied: z = 0
        [20, 10, 2],   # z = 10 / sqrt(30) = 1.83
        [9, 0, 0],     # unanimous but below min_samples
        [60, 40, 0],   # z = 2.0
    ])
    assert settled(votes, z_crit=3.0, min_samples=10).tolist() == [True, False, False, False,
                                                                   False]
    assert settled(votes, z_crit=1.8, min_samples=10).tolist() == [True, False, True, False,
                                                                   True]
    assert settled(votes, z_crit=1.8, min_samples=1).tolist()[3] is True


def test_a_growing_vote_sequence_stops_when_the_margin_clears_the_bound():
    rule = AdaptiveStop(confidence=0.99, min_samples=8)
    z = rule.z_critical(looks=10)  # one-sided quantile of 0.01 / 10
    assert z == pytest.approx(3.0902, abs=1e-3)
    stopped_at = None
    for n in range(1, 200):  # a leader with 3 of every 4 votes
        a, b = (3 * n) // 4, n - (3 * n) // 4
        if rule.settled(torch.tensor([[a, b]]), looks=10).item():
            stopped_at = n
            break
    # (a - b) / sqrt(n) = n/2 / sqrt(n) = sqrt(n) / 2 >= 3.09 from about n = 38
    assert stopped_at is not None and 36 <= stopped_at <= 42


def test_bad_rules():
    with pytest.raises(ConfigError):
        AdaptiveStop(confidence=1.0)
    with pytest.raises(ConfigError):
        AdaptiveStop(min_samples=0)


def test_adaptive_votes_are_the_first_passes_of_the_full_run():
    net = models.build("mlp", input_shape=(1, 8, 8), num_classes=4, seed=0, init="uniform")
    sto = scann.convert(net, coin=devices.QuantizedCoin(8))
    x = torch.randint(0, 256, (60, 1, 8, 8), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(0))
    chunk = 8
    marks = range(chunk, 200, chunk)
    ad = engine.predict(sto, x, samples=200, seed=3, sample_chunk=chunk, checkpoints=marks,
                        adaptive=AdaptiveStop(0.99, min_samples=16))
    assert ad.passes is not None and ad.passes.min() >= 16 and ad.passes.max() <= 200
    assert torch.all(ad.votes.sum(1) == ad.passes)
    assert ad.passes.double().mean() < 200  # some items stopped early
    full = engine.predict(sto, x, samples=200, seed=3, sample_chunk=chunk,
                          checkpoints=marks)
    for i in range(60):
        n = int(ad.passes[i])
        ref = full.votes if n == 200 else full.votes_at[n]
        assert torch.equal(ad.votes[i], ref[i])
    never = engine.predict(sto, x, samples=50, seed=3, adaptive=AdaptiveStop(0.99, 1000))
    assert torch.equal(never.votes, engine.predict(sto, x, samples=50, seed=3).votes)


def test_checkpoints_after_every_item_stopped_keep_the_final_votes():
    net = models.build("mlp", input_shape=(1, 8, 8), num_classes=4, seed=0, init="uniform")
    with torch.no_grad():
        net[-1].bias.copy_(torch.tensor([100.0, 0, 0, 0]))  # class 0 always wins: all stop
    sto = scann.convert(net)
    x = torch.randint(0, 256, (30, 1, 8, 8), dtype=torch.uint8)
    pred = engine.predict(sto, x, samples=500, seed=0, batch_size=7, checkpoints=(10, 400),
                          adaptive=AdaptiveStop(0.99, min_samples=16))
    assert pred.votes_at[400].shape == (30, 4)
    assert torch.equal(pred.votes_at[400], pred.votes)
    assert torch.all(pred.passes < 500)
