"""The Ray runner on a local 2-CPU cluster: the same job store as the local runner, failures
retried and reported by name, the dependency graph respected."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from synsample.cluster import RunnerConfig
from synsample.experiments import scann_table1 as t1
from synsample.experiments.jobs import (
    Job,
    JobsFailed,
    JobStore,
    LocalRunner,
    graph,
)
from synsample.experiments.runners import make_runner
from synsample.experiments.training import train_job
from synsample.prediction import Prediction
from synsample.train import TrainConfig


def _grid(data: Path) -> list[Job]:
    """Two trainings on the synthetic set and two sampling jobs for each (full and 4-bit
    coins): six jobs, the samplers needing their training."""
    cfg = t1.Table1Config(samples=16, seed=0, data_path=str(data), progress=False)
    quiet = lambda m: None  # noqa: E731
    jobs = []
    for seed in (0, 1):
        trained = train_job(TrainConfig(dataset="synthetic", arch="mlp", epochs=2, seed=seed),
                            cfg, quiet)
        jobs += [t1.sample_job(trained, p, cfg, quiet) for p in ("full", "4")]
    return jobs


def _timeless(obj):
    """A result without its timings (which differ from run to run)."""
    if isinstance(obj, dict):
        return {k: _timeless(v) for k, v in obj.items() if "seconds" not in k}
    if isinstance(obj, list):
        return [_timeless(v) for v in obj]
    return obj


def test_graph_puts_every_needed_job_first_once():
    a = Job("a", {"x": 1}, lambda f: {})
    b = Job("b", {"x": 1}, lambda f: {}, needs=(a,))
    c = Job("c", {"x": 1}, lambda f: {}, needs=(a, b))
    assert [j.kind for j in graph([c, b])] == ["a", "b", "c"]
    # a job's key is its config: what it needs is named there, not by the runner
    assert Job("b", {"x": 1}, lambda f: {}).key == b.key


def test_ray_runs_the_grid_into_the_store_the_local_runner_writes(ray_synthetic, tmp_path,
                                                                   monkeypatch):
    jobs = _grid(ray_synthetic)
    assert len(graph(jobs)) == 6
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each of the 2 Ray workers (training is bit-exact per count)
    try:
        local = LocalRunner(JobStore(tmp_path / "local"), lambda m: None).run(jobs)
    finally:
        torch.set_num_threads(threads)
    logs: list[str] = []
    ray_store = JobStore(tmp_path / "ray")
    runner = make_runner(RunnerConfig("ray", workers=2), ray_store, logs.append)
    remote = runner.run(jobs)
    assert any("2 worker(s) of 1 thread(s)" in m for m in logs)
    assert [_timeless(r) for r in remote] == [_timeless(r) for r in local]
    names = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "ray").iterdir()) and len(names) == 6
    for job in jobs:
        a = Prediction.load(tmp_path / "local" / job.name / "prediction.safetensors")
        b = Prediction.load(tmp_path / "ray" / job.name / "prediction.safetensors")
        assert torch.equal(a.votes, b.votes)
        torch.testing.assert_close(a.mean_probs, b.mean_probs)
        assert not list((tmp_path / "ray" / job.name).glob(".*.tmp"))  # written atomically
    # a re-run with either runner computes nothing
    logs.clear()
    assert [_timeless(r) for r in runner.run(jobs)] == [_timeless(r) for r in remote]
    assert logs and all(m.startswith("[cached]") for m in logs)
    cached: list[str] = []
    LocalRunner(ray_store, cached.append).run(jobs)
    assert len(cached) == 6 and all(m.startswith("[cached]") for m in cached)


def _flaky(folder: Path) -> dict:
    """Fails on its first try, then succeeds (counts its tries in a file beside the store)."""
    tries = folder.parent.parent / "flaky-tries"
    n = int(tries.read_text()) + 1 if tries.exists() else 1
    tries.write_text(str(n))
    if n == 1:
        raise RuntimeError("a passing fault")
    return {"tries": n}


def _dies(folder: Path) -> dict:
    """Kills its worker process on its first try."""
    marker = folder.parent.parent / "died-once"
    if not marker.exists():
        marker.write_text("x")
        os._exit(1)
    return {"survived": True}


def _broken(folder: Path) -> dict:
    raise ValueError("this job is broken")


def _misconfigured(folder: Path) -> dict:
    """A user's mistake (counts its tries): a retry would only repeat it."""
    from synsample.errors import ConfigError

    tries = folder.parent.parent / "misconfigured-tries"
    tries.write_text(str(int(tries.read_text()) + 1 if tries.exists() else 1))
    raise ConfigError("no such coin 'nonideal:bais=0.1'")


def test_a_failing_job_is_retried_then_reported_by_name_and_the_others_finish(ray_cluster,
                                                                             tmp_path):
    store = JobStore(tmp_path / "jobs")
    ok = [Job("ok", {"i": i}, lambda f, i=i: {"value": i}) for i in range(2)]
    flaky, dies = Job("flaky", {}, _flaky), Job("dies", {}, _dies)
    broken = Job("broken", {}, _broken)
    after = Job("after", {}, lambda f: {"never": True}, needs=(broken,))
    misconfigured = Job("misconfigured", {}, _misconfigured)
    runner = make_runner(RunnerConfig("ray", retries=1), store, lambda m: None)
    with pytest.raises(JobsFailed) as failure:
        runner.run([*ok, flaky, dies, broken, after, misconfigured])
    assert set(failure.value.failed) == {broken.name, after.name, misconfigured.name}
    assert "ConfigError: no such coin" in failure.value.failed[misconfigured.name]
    assert (tmp_path / "misconfigured-tries").read_text() == "1"  # a user error: not retried
    assert "ValueError: this job is broken" in failure.value.failed[broken.name]
    assert broken.name in failure.value.failed[after.name]  # not run: its input failed
    assert "finished and are kept" in str(failure.value)
    assert [store.result(j)["value"] for j in ok] == [0, 1]
    assert store.result(flaky)["tries"] == 2  # Ray's retry of a raising task
    assert store.result(dies)["survived"]  # and of a task whose worker died
    assert not store.done(broken) and not store.done(after)


def test_the_ray_runner_without_ray_names_the_extra(tmp_path, monkeypatch):
    import sys

    from synsample.errors import ConfigError

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"synsample\[ray\]"):
        make_runner(RunnerConfig("ray"), JobStore(tmp_path), print)
    with pytest.raises(ConfigError, match="--runner ray"):
        make_runner(RunnerConfig("local", workers=2), JobStore(tmp_path), print)


def test_sample_and_evaluate_with_the_ray_runner_shard_their_passes(ray_synthetic, tmp_path,
                                                                   capsys):
    import json

    from synsample import cli

    ck = tmp_path / "ck"
    data = ["--data-path", str(ray_synthetic)]
    assert cli.main(["-q", "train", "--dataset", "synthetic", "--epochs", "1", "--out", str(ck),
                     *data]) == 0
    for runner in (["--runner", "local"], ["--runner", "ray", "--workers", "2"]):
        out = tmp_path / runner[1]
        assert cli.main(["-q", "sample", "--checkpoint", str(ck), "--samples", "12", *data,
                         "--mode", "independent", "--out", str(out / "sample"), *runner]) == 0
        assert cli.main(["-q", "evaluate", "--checkpoint", str(ck), "--samples", "6", *data,
                         "--ood-items", "30", "--out", str(out / "evaluate"), *runner]) == 0
    capsys.readouterr()
    for what, key in (("sample", "sampled"), ("evaluate", "summary")):
        local, ray = (json.loads((tmp_path / r / what / "metrics.json").read_text())[key]
                      for r in ("local", "ray"))
        for name in ("accuracy", "mean_entropy"):
            assert local[name] == ray[name]
