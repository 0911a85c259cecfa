import pytest
import torch

from synsample import devices, engine, models
from synsample.errors import ConfigError
from synsample.methods import scann
from tests.helpers import tiny_scann_mlp, uint8_images


@pytest.fixture(scope="module")
def model():
    return tiny_scann_mlp()


@pytest.fixture(scope="module")
def x():
    return uint8_images(37)


def test_same_seed_same_votes_different_seed_different_votes(model, x):
    a = engine.predict(model, x, samples=50, seed=1)
    b = engine.predict(model, x, samples=50, generator=torch.Generator().manual_seed(0))
    c = engine.predict(model, x, samples=50, generator=torch.Generator().manual_seed(0))
    assert torch.equal(b.votes, c.votes)
    assert not torch.equal(a.votes, b.votes) or not torch.equal(a.mean_probs, b.mean_probs)


@pytest.mark.parametrize("batch_size,chunk,tile",
                         [(1, 1, 1), (10, 3, 4), (37, 50, 256), (100, 7, 5)])
def test_shared_votes_do_not_depend_on_blocking(model, x, batch_size, chunk, tile):
    ref = engine.predict(model, x, samples=30, seed=4, batch_size=37, sample_chunk=8)
    got = engine.predict(model, x, samples=30, seed=4, batch_size=batch_size, sample_chunk=chunk,
                         tile=tile)
    assert torch.equal(got.votes, ref.votes)
    torch.testing.assert_close(got.mean_probs, ref.mean_probs)
    for k in ref.votes_at:
        assert torch.equal(got.votes_at[k], ref.votes_at[k])


def test_votes_are_counts_of_sample_argmax(model, x):
    pred = engine.predict(model, x, samples=23, seed=2, checkpoints=(1, 5, 10))
    assert torch.all(pred.votes.sum(1) == 23)
    assert sorted(pred.votes_at) == [1, 5, 10]
    for k, v in pred.votes_at.items():
        assert torch.all(v.sum(1) == k) and torch.all(v <= pred.votes)
    torch.testing.assert_close(pred.mean_probs.sum(1), torch.ones(37))
    # the engine's votes equal the argmax of the model's own sampled outputs
    from synsample.nn import SamplingContext

    logits = torch.cat([model.sample(model.prefix(x), SamplingContext.for_samples(
        pred.seed, k, 1, 37)) for k in range(23)])
    ref = torch.zeros(37, 4, dtype=torch.int64)
    ref.scatter_add_(1, logits.argmax(-1).T, torch.ones(37, 23, dtype=torch.int64))
    assert torch.equal(ref, pred.votes)


def test_random_bits_are_counted_once_per_sample_in_shared_mode(model, x):
    pred = engine.predict(model, x, samples=10, seed=0, batch_size=10)
    weights = sum(m.weight.numel() for m in model.sampled_layers())
    assert pred.random_bits == 10 * weights * 8
    # 4 item blocks re-create the same draws; the hardware draws them once
    assert engine.predict(model, x, samples=10, seed=0).random_bits == pred.random_bits


def test_independent_mode_is_reproducible_and_differs_from_shared(model, x):
    a = engine.predict(model, x[:6], samples=5, seed=3, mode="independent")
    b = engine.predict(model, x[:6], samples=5, seed=3, mode="independent")
    assert torch.equal(a.votes, b.votes)
    # a coin is drawn per (item, sample, weight) whose input is nonzero (8 bits each)
    first, second = model.sampled_layers()
    at_least = int((x[:6] != 0).sum()) * 5 * first.out_features * 8
    at_most = 6 * 5 * (first.weight.numel() + second.weight.numel()) * 8
    assert at_least < a.random_bits <= at_most


@pytest.mark.parametrize("batch_size,chunk", [(1, 1), (7, 3), (37, 50), (256, 8)])
def test_independent_votes_do_not_depend_on_blocking(model, x, batch_size, chunk):
    ref = engine.predict(model, x, samples=12, seed=4, mode="independent", batch_size=37,
                         sample_chunk=8, checkpoints=(5,))
    got = engine.predict(model, x, samples=12, seed=4, mode="independent",
                         batch_size=batch_size, sample_chunk=chunk, checkpoints=(5,))
    assert torch.equal(got.votes, ref.votes) and torch.equal(got.votes_at[5], ref.votes_at[5])
    torch.testing.assert_close(got.mean_probs, ref.mean_probs)
    assert got.random_bits == ref.random_bits


def test_bad_arguments_are_clear_errors(model, x):
    with pytest.raises(ConfigError, match="samples must be a positive integer"):
        engine.predict(model, x, samples=0)
    with pytest.raises(ConfigError, match="unknown sampling mode"):
        engine.predict(model, x, samples=2, mode="per-item")
    with pytest.raises(ConfigError, match="at least one item"):
        engine.predict(model, x[:0], samples=2)


def test_a_run_draws_and_counts_anew_whatever_the_run_before():
    """Layers keep a chunk's draws for the tiles of that chunk only: a second run with the same
    seed and one chunk counts its draws again, and a changed coin is not served stale draws."""
    net = models.build("mlp", input_shape=(1, 8, 8), num_classes=4, seed=0)
    sto = scann.convert(net, devices.IdealCoin())
    x = torch.randint(0, 256, (6, 1, 8, 8), dtype=torch.uint8)
    runs = [engine.predict(sto, x, samples=5, seed=0, sample_chunk=5, checkpoints=())
            for _ in range(2)]
    assert runs[0].random_bits == runs[1].random_bits > 0
    for layer in sto.sampled_layers():
        layer.coin = devices.NonIdealCoin(stuck_at_0=1.0)  # every coin says 0
    dead = engine.predict(sto, x, samples=5, seed=0, sample_chunk=5, checkpoints=())
    assert not torch.equal(dead.votes, runs[0].votes)
    assert dead.votes.argmax(1).unique().numel() == 1  # the bias alone decides
