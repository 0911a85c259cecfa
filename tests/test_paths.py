"""The dispatcher between ways of computing the same thing: measured, cached, never slower than
the reference, forced where asked; and the coin-flip layer's paths chosen by it."""

from __future__ import annotations

import json
import time

import pytest
import torch

from synsample import engine, models, paths
from synsample.methods import scann
from synsample.nn import CoinFlipLinear


@pytest.fixture
def measuring(monkeypatch):
    monkeypatch.setenv("SYNSAMPLE_TUNING", "on")
    monkeypatch.delenv("SYNSAMPLE_PATHS", raising=False)
    paths.forget()
    yield
    paths.forget()


def _runner(delays: dict[str, float], calls: list | None = None):
    def run(name: str, size: int) -> str:
        if calls is not None:
            calls.append((name, size))
        time.sleep(delays[name] * size)
        return name
    return run


def test_the_fastest_candidate_is_chosen_and_cached(measuring):
    calls: list = []
    run = _runner({"ref": 2e-4, "fast": 5e-5, "slow": 2e-3}, calls)
    shape = {"case": "toy"}
    assert paths.choose("toy", ["ref", "fast", "slow"], run, [1, 4], shape,
                        reference="ref") == "fast"
    # the 10-times-slower candidate was dropped after the small size
    assert ("slow", 4) not in calls and ("slow", 1) in calls
    entry = json.loads(paths.cache_path(paths.signature("toy", **shape)).read_text())
    assert entry["chosen"] == "fast" and set(entry["timings_ms"]) == {"ref", "fast", "slow"}
    paths.forget()  # a new process: the file answers, nothing is timed
    calls.clear()
    assert paths.choose("toy", ["ref", "fast", "slow"], run, [1, 4], shape,
                        reference="ref") == "fast"
    assert calls == []


def test_a_candidate_slower_than_the_reference_is_never_chosen(measuring):
    run = _runner({"ref": 2e-3, "slower": 6e-3})
    assert paths.choose("toy2", ["slower", "ref"], run, [1, 2], {}, reference="ref") == "ref"
    # without a reference the fastest wins, and a slow candidate is timed once, not repeated
    calls: list = []
    run = _runner({"a": 2e-4, "b": 1e-4, "c": 5e-3}, calls)
    assert paths.choose("toy2b", ["a", "b", "c"], run, [1, 8], {}) == "b"
    assert calls.count(("c", 1)) == 2 and ("c", 8) not in calls


def test_a_bad_cache_file_is_ignored_with_a_warning_and_rewritten(measuring):
    shape = {"case": "bad"}
    path = paths.cache_path(paths.signature("toy3", **shape))
    path.parent.mkdir(parents=True, exist_ok=True)
    run = _runner({"ref": 3e-4, "fast": 1e-5})
    for text in ("not json", json.dumps({"key": paths.signature("toy3", **shape),
                                         "chosen": "rm -rf /"}), json.dumps([1, 2])):
        path.write_text(text)
        paths.forget()
        with pytest.warns(RuntimeWarning, match="ignoring the path cache"):
            assert paths.choose("toy3", ["ref", "fast"], run, [1], shape) == "fast"
        assert json.loads(path.read_text())["chosen"] == "fast"


def test_forced_paths_and_no_measurement_when_tuning_is_off(monkeypatch, measuring):
    calls: list = []
    run = _runner({"ref": 0, "fast": 0}, calls)
    monkeypatch.setenv("SYNSAMPLE_PATHS", "other=x, toy4=fast")
    assert paths.choose("toy4", ["ref", "fast"], run, [1], {}) == "fast"
    assert paths.choose("toy4", ["ref", "fast"], run, [1], {}, layer_paths={"toy4": "ref"}) \
        == "ref"
    monkeypatch.delenv("SYNSAMPLE_PATHS")
    monkeypatch.setenv("SYNSAMPLE_TUNING", "off")
    assert paths.choose("toy4", ["ref", "fast"], run, [1], {}, default="fast") == "fast"
    assert paths.choose("toy4", ["ref", "fast"], run, [1], {}) == "ref"
    assert calls == [] and paths.last["toy4"] == "ref"


def _slowed(monkeypatch, slow) -> None:
    """Every gemm path whose name ``slow(name)`` holds sleeps 30 ms per call (far above the
    jitter of a loaded machine, where 5 ms once lost to it)."""
    real = CoinFlipLinear._shared_gemm

    def gemm(self, name, x, ctx):
        if slow(name):
            time.sleep(0.03)
        return real(self, name, x, ctx)

    monkeypatch.setattr(CoinFlipLinear, "_shared_gemm", gemm)


@pytest.mark.parametrize("slow", ["integer", "fp32"])
def test_the_layer_takes_the_path_that_is_faster_here_with_the_same_votes(monkeypatch, measuring,
                                                                           slow):
    net = models.build("mlp", seed=0, init="uniform")
    sto = scann.convert(net)
    x = torch.randint(0, 256, (200, 1, 28, 28), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(2))
    names = sto.body[0]._gemm_paths(x.flatten(1), 8 * 400)
    if len(names) == 1:
        pytest.skip("no integer path runs here")
    sto.body[0].paths = {"gemm": "fp32"}  # forced: nothing measured yet
    ref = engine.predict(sto, x, samples=16, seed=3, tile=100)
    sto.body[0].paths = {}
    _slowed(monkeypatch, (lambda n: n != "fp32") if slow == "integer" else (lambda n: n == "fp32"))
    got = engine.predict(sto, x, samples=16, seed=3, tile=100)
    chosen = paths.last["gemm"]
    assert (chosen == "fp32") == (slow == "integer")
    assert torch.equal(got.votes, ref.votes) and torch.equal(got.mean_probs, ref.mean_probs)


def test_trials_stop_growing_once_a_call_is_long_enough(measuring, monkeypatch):
    """A large layer's full call is not timed again and again: the choice is made at the first
    size whose best call takes LONG_TRIAL seconds."""
    monkeypatch.setattr(paths, "LONG_TRIAL", 0.002)
    calls: list = []
    run = _runner({"a": 1e-3, "b": 5e-4}, calls)
    assert paths.choose("toy5", ["a", "b"], run, [1, 4, 1000], {}) == "b"
    assert all(size < 1000 for _, size in calls)


@pytest.mark.parametrize("method", ["scann", "mc-dropconnect"])
def test_draws_on_several_threads_give_the_bits_of_one_thread(monkeypatch, method):
    """Each pass has its own generator: filling the passes' uniforms on two threads (op
    ``draw``) changes nothing, neither the votes nor the bits counted."""
    import synsample as ss

    net = models.build("mlp", input_shape=(1, 8, 8), num_classes=4, seed=0, init="uniform")
    x = torch.randint(0, 256, (30, 1, 8, 8), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(1))
    runs = []
    for path in ("serial", "threads-2"):
        monkeypatch.setenv("SYNSAMPLE_PATHS", f"draw={path}")
        paths.forget()
        sto = ss.convert(net, method)
        pred = engine.predict(sto, x, samples=12, seed=4, sample_chunk=6)
        assert paths.last["draw"] == path
        runs.append((pred.votes, pred.mean_probs, pred.random_bits))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert runs[0][2] == runs[1][2] > 0


def test_a_draw_trial_neither_counts_bits_nor_moves_the_runs_generators(measuring):
    from synsample import devices
    from synsample.nn.sampling import SamplingContext, pass_draws

    layer = CoinFlipLinear(torch.rand(50, 40) * 2 - 1, None, devices.IdealCoin())
    prob = layer.probability()
    ctx = SamplingContext.for_samples(7, 0, 4, batch=1)
    expected = torch.stack([torch.rand(50, 40, generator=g) < prob
                            for g in SamplingContext.for_samples(7, 0, 4, batch=1).generators])
    got = pass_draws(layer, layer.coin, prob, ctx)  # measured first, on trial generators
    assert "draw" in paths.last and torch.equal(got, expected)
    assert layer.coin.draws == 4 * 50 * 40
