"""Sharded sampling: the merged shards are the one-process run (votes bit for bit, means
within fp32 rounding), in both modes, cut by items or by passes, here and on 2 Ray workers."""

import pytest
import torch

from synsample import devices, engine, metrics, models, shards
from synsample.cluster import RunnerConfig
from synsample.errors import ConfigError
from synsample.methods import mc_dropout
from tests.helpers import tiny_scann_mlp, uint8_images

CHECKPOINTS = (1, 5, 10, 20)


@pytest.fixture(scope="module")
def model():
    return tiny_scann_mlp()


@pytest.fixture(scope="module")
def x():
    return uint8_images(53)


def _same(got, ref):
    """The contract of docs/determinism.md between a merged and a one-process Prediction."""
    assert got.samples == ref.samples and got.num_items == ref.num_items
    assert torch.equal(got.votes, ref.votes)
    assert sorted(got.votes_at) == sorted(ref.votes_at)
    for k in ref.votes_at:
        assert torch.equal(got.votes_at[k], ref.votes_at[k]), k
    assert torch.equal(got.max_prob_hist, ref.max_prob_hist)
    torch.testing.assert_close(got.mean_probs, ref.mean_probs)
    torch.testing.assert_close(got.expected_entropy, ref.expected_entropy)
    assert got.random_bits == ref.random_bits


@pytest.mark.parametrize("mode", ["shared", "independent"])
@pytest.mark.parametrize("by,count", [("items", 3), ("passes", 3), ("passes", 2)])
def test_merged_shards_equal_one_process(model, x, mode, by, count):
    ref = engine.predict(model, x, samples=24, seed=3, mode=mode, checkpoints=CHECKPOINTS)
    parts = [shards.predict_shard(model, x, s, seed=3, mode=mode, checkpoints=CHECKPOINTS)
             for s in shards.plan(len(x), 24, count, by)]
    got = shards.merge(parts[::-1])  # in any order
    _same(got, ref)
    assert got.info["shards"] == 1 if by == "passes" else count
    labels = torch.arange(len(x)) % 4
    assert got.accuracy_vs_samples(labels) == ref.accuracy_vs_samples(labels)
    # the statistics computed from it are the one-process run's (within fp32 rounding)
    a, b = (metrics.calibration_summary(p.mean_probs, labels) for p in (got, ref))
    assert a == pytest.approx(b, rel=1e-5, abs=1e-6)
    assert metrics.summarize(got, labels)["accuracy"] == metrics.summarize(ref, labels)["accuracy"]


def test_streaming_metrics_fed_shard_by_shard_equal_the_whole(model, x):
    labels = torch.arange(len(x)) % 4
    ref = engine.predict(model, x, samples=12, seed=1)
    stream = metrics.CalibrationMetrics()
    for s in shards.plan(len(x), 12, 3, "items"):
        part = shards.predict_shard(model, x, s, seed=1)
        stream.update(part.mean_probs, labels[s.items[0]:s.items[1]])
    assert stream.compute() == pytest.approx(metrics.calibration_summary(ref.mean_probs, labels),
                                             rel=1e-5, abs=1e-6)


def test_an_adaptive_run_shards_by_items_only(model, x):
    from synsample.adaptive import AdaptiveStop

    rule = AdaptiveStop(confidence=0.99, min_samples=8)
    ref = engine.predict(model, x, samples=40, seed=2, adaptive=rule)
    got = shards.merge([shards.predict_shard(model, x, s, seed=2, adaptive=rule)
                        for s in shards.plan(len(x), 40, 2, "items")])
    assert torch.equal(got.votes, ref.votes) and torch.equal(got.passes, ref.passes)
    with pytest.raises(ConfigError, match="by items"):
        shards.predict_shard(model, x, shards.Shard((0, len(x)), (8, 40)), seed=2, adaptive=rule)


def test_merge_refuses_shards_that_do_not_cover_the_run(model, x):
    parts = [shards.predict_shard(model, x, s, seed=0)
             for s in shards.plan(len(x), 10, 3, "passes")]
    with pytest.raises(ConfigError, match="do not cover"):
        shards.merge([parts[0], parts[2]])
    with pytest.raises(ConfigError, match="synsample.shards"):
        shards.merge([engine.predict(model, x, samples=4)])


@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_predict_sharded_over_two_ray_workers_equals_one_process(ray_cluster, model, x, mode):
    ref = engine.predict(model, x, samples=30, seed=5, mode=mode)
    got = shards.predict(model, x, samples=30, seed=5, mode=mode,
                         runner=RunnerConfig("ray", workers=2))
    assert got.info["shards"] == 2
    _same(got, ref)
    by_passes = shards.predict(model, x, samples=30, seed=5, mode=mode, by="passes",
                               runner=RunnerConfig("ray", workers=2))
    _same(by_passes, ref)


def test_a_method_with_per_item_draws_merges_exactly_too(x):
    sto = mc_dropout.convert(models.build("mlp", input_shape=(1, 8, 8), num_classes=4, seed=0),
                             devices.IdealCoin())
    for mode in ("shared", "independent"):
        ref = engine.predict(sto, x, samples=16, seed=7, mode=mode)
        got = shards.merge([shards.predict_shard(sto, x, s, seed=7, mode=mode)
                            for s in shards.plan(len(x), 16, 2, "items")])
        _same(got, ref)


def test_shards_without_a_seed_share_the_generator_seed(model, x):
    """No ``seed``: one base seed from the generator for every shard, so the merge is the
    one-process run with that generator."""
    got = shards.predict(model, x, samples=20, shards=2,
                         generator=torch.Generator().manual_seed(5))
    ref = engine.predict(model, x, samples=20, generator=torch.Generator().manual_seed(5))
    assert torch.equal(got.votes, ref.votes)
