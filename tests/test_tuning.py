"""Tile and sample-chunk sizes tuned on first use: measured once per CPU and model shape,
cached as JSON, read back; off, or for small runs, the fixed defaults; votes and counted bits
never depend on them."""

from __future__ import annotations

import json

import pytest
import torch

from synsample import devices, engine, machine, models, tuning
from synsample.adaptive import AdaptiveStop
from synsample.data.cache import home
from synsample.methods import scann

CPU = torch.device("cpu")


@pytest.fixture
def model():
    return scann.convert(models.build("mlp", input_shape=(1, 8, 8), num_classes=4, seed=0,
                                      init="uniform"), coin=devices.QuantizedCoin(8))


@pytest.fixture
def x():
    return torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(0))


@pytest.fixture
def tuned(monkeypatch):
    """Tuning on for every run, over a few small candidates (cheap to time)."""
    monkeypatch.setenv("SYNSAMPLE_TUNING", "on")
    monkeypatch.setattr(tuning, "MIN_PASSES", 0)
    for mode in tuning.TILES:
        monkeypatch.setitem(tuning.TILES, mode, (8, 16, 32))
        monkeypatch.setitem(tuning.CHUNKS, mode, (2, 4))


def _files():
    return sorted((home() / "tuning").glob("sizes-*.json"))


def _candidates(model, mode, chunk=None):
    """The pairs tuning may time: the default pair, then the grid."""
    items, c = max(tuning.TILES[mode]), chunk or engine.SAMPLE_CHUNK[mode]
    default = (min(engine._default_tile(model, mode, c, items), items), c)
    return tuning.candidates(mode, default, chunk)


@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_sizes_are_measured_once_cached_and_read_back(tuned, monkeypatch, model, x, mode):
    chunk, tile = engine.run_sizes(model, x, mode, CPU, 50, None, None, None)
    assert (tile, chunk) in _candidates(model, mode)
    [path] = _files()
    saved = json.loads(path.read_text())
    assert saved["chosen"] == {"tile": tile, "sample_chunk": chunk}
    timed = [(t["tile"], t["sample_chunk"]) for t in saved["timings"]]
    assert timed[0] == _candidates(model, mode)[0] and set(timed) <= set(_candidates(model, mode))
    again = [(t["tile"], t["sample_chunk"]) for t in saved["timed_again"]]
    assert (tile, chunk) == timed[0] or (tile, chunk) in again  # not the default: confirmed
    assert saved["key"]["mode"] == mode and saved["key"]["cpu"] == machine.cpu_model()
    assert saved["key"]["layers"] == [["CoinFlipLinear", list(m.weight.shape)]
                                      for m in model.sampled_layers()]

    def no_measuring(*args):
        raise AssertionError("the cached sizes should have been read")

    monkeypatch.setattr(tuning, "measure", no_measuring)
    assert engine.run_sizes(model, x, mode, CPU, 50, None, None, None) == (chunk, tile)
    assert _files() == [path]


def test_off_small_runs_and_given_sizes_use_the_defaults(tuned, monkeypatch, model, x):
    defaults = (engine.SAMPLE_CHUNK["shared"], engine.auto_tile(model, 8))
    monkeypatch.setenv("SYNSAMPLE_TUNING", "off")
    assert engine.run_sizes(model, x, "shared", CPU, 50, None, None, None) == defaults
    monkeypatch.setenv("SYNSAMPLE_TUNING", "on")
    monkeypatch.setattr(tuning, "MIN_PASSES", 40 * 50 + 1)
    assert engine.run_sizes(model, x, "shared", CPU, 50, None, None, None) == defaults
    monkeypatch.setattr(tuning, "MIN_PASSES", 0)
    assert engine.run_sizes(model, x, "shared", CPU, 50, 3, 5, None) == (3, 5)
    assert _files() == []
    # a given chunk is kept and the tile tuned for it; an adaptive rule keeps the default chunk
    chunk, tile = engine.run_sizes(model, x, "shared", CPU, 50, 3, None, None)
    assert (tile, chunk) in _candidates(model, "shared", 3)
    chunk, tile = engine.run_sizes(model, x, "shared", CPU, 50, None, None, AdaptiveStop())
    assert (tile, chunk) in _candidates(model, "shared", 8) and chunk == 8
    # a given tile is kept as given, whether measured or read from the cache
    for _ in range(2):
        assert engine.run_sizes(model, x, "shared", CPU, 50, None, 1 << 30, None)[1] == 1 << 30


@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_tuned_runs_give_the_same_votes_and_bits(tuned, monkeypatch, model, x, mode):
    got = engine.predict(model, x, samples=12, seed=3, mode=mode)
    assert len(_files()) == 1
    monkeypatch.setenv("SYNSAMPLE_TUNING", "off")
    ref = engine.predict(model, x, samples=12, seed=3, mode=mode)
    assert torch.equal(got.votes, ref.votes)
    assert got.random_bits == ref.random_bits > 0  # the measurement's draws are not counted
    for layer in model.sampled_layers():
        assert layer._shared is None


@pytest.mark.parametrize("edit", [
    lambda e: e["chosen"].update(tile=0),
    lambda e: e["chosen"].update(tile=10**12),
    lambda e: e["chosen"].update(sample_chunk="8"),
    lambda e: e.update(chosen=[1, 2]),
    lambda e: e["key"].update(mode="other"),
])
def test_an_edited_cache_file_is_ignored_with_a_warning_and_measured_again(tuned, model, x,
                                                                           edit):
    first = engine.run_sizes(model, x, "shared", CPU, 50, None, None, None)
    [path] = _files()
    entry = json.loads(path.read_text())
    edit(entry)
    path.write_text(json.dumps(entry))
    with pytest.warns(RuntimeWarning, match="ignoring the tuning cache"):
        again = engine.run_sizes(model, x, "shared", CPU, 50, None, None, None)
    assert (again[1], again[0]) in _candidates(model, "shared") or again == first
    rewritten = json.loads(path.read_text())
    assert (rewritten["chosen"]["tile"], rewritten["chosen"]["sample_chunk"]) == (again[1],
                                                                                  again[0])
