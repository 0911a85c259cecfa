"""The experiment registry: every experiment reachable by name, its command line generated
from its config, and one way to run it (checked, locked, planned, reported)."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
import torch

from synsample import cli
from synsample.config_args import cli_fields, option, positive_int
from synsample.errors import ConfigError
from synsample.experiments import registry
from synsample.experiments.jobs import Job
from synsample.experiments.options import RunOptions
from synsample.experiments.registry import Experiment

SHARED = {f.name for f in fields(RunOptions)}


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", registry.names())
def test_every_experiment_has_a_config_plan_report_and_help(name):
    experiment = registry.get(name)
    cfg = experiment.config()
    assert isinstance(cfg, RunOptions) and experiment.title and experiment.heading
    cfg.check()  # the defaults are valid
    for f in cli_fields(experiment.config):
        assert f.metadata["help"].strip(), f.name


def test_an_experiments_help_lists_only_its_own_options(capsys):
    """The issue's test: Table I's help does not offer another experiment's options."""
    table = _help(capsys, "reproduce", "scann-table1")
    for foreign in ("--holdout-class", "--lengths", "--bitstream", "--no-sweep", "--method",
                    "--sampling-aware", "--cost-assumptions"):
        assert foreign not in table, foreign
    for own in ("--dataset", "--arch", "--precision", "--samples", "--all-rows", "--seed",
                "--runner", "--track", "--dry-run"):
        assert own in table, own
    assert "(default: 1000)" in table and "(default: runs/scann-table1)" in table
    sc = _help(capsys, "reproduce", "sc-mnist")
    assert "--lengths" in sc and "--full" in sc and "--arch" not in sc
    assert "(default: 10)" in sc  # its own number of passes, from its config
    robustness = _help(capsys, "reproduce", "robustness")
    assert "runs/robustness" in robustness and "--sampling-aware [COIN]" in robustness


def test_list_names_every_experiment_with_its_title(capsys):
    assert cli.main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for name in registry.names():
        assert name in out and registry.get(name).title in out


def test_an_unknown_experiment_is_refused_with_the_list():
    with pytest.raises(ConfigError, match="no experiment 'table9'.*scann-table1"):
        registry.get("table9")


def test_plans_and_results_keep_their_shape():
    a, b = Job("a", {"x": 1}, lambda f: {}), Job("b", {"x": 2}, lambda f: {})
    planned = {"rows": [({"label": "first"}, a), ({"label": "second"}, b)], "again": {1: a}}
    assert [j.kind for j in registry.jobs_of(planned)] == ["a", "b"]  # each job once
    results = registry.results_of(planned, {a.key: "ra", b.key: "rb"})
    assert results == {"rows": [({"label": "first"}, "ra"), ({"label": "second"}, "rb")],
                       "again": {1: "ra"}}


def test_a_config_of_another_experiment_is_refused(tmp_path):
    other = registry.get("sc-mnist").config(out=tmp_path / "r")
    with pytest.raises(ConfigError, match="scann-table1 takes a Table1Config, not a SCConfig"):
        registry.run("scann-table1", other)


def test_presets_set_their_fields(tmp_path, capsys):
    code = cli.main(["-q", "reproduce", "scann-table1", "--all-rows", "--dry-run",
                     "--jobs", str(tmp_path / "jobs"), "--out", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert code == 0 and "16 jobs, 0 cached, 16 to run" in out  # 4 rows x (train + 3 samples)
    assert not (tmp_path / "r").exists() and not (tmp_path / "jobs").exists()  # ran nothing


# A toy experiment, registered the way a new one is: a module with an Experiment and one
# line in registry.EXPERIMENTS.

@dataclass(kw_only=True)
class ToyConfig(RunOptions):
    """Squares of some numbers."""

    numbers: tuple[int, ...] = option((1, 2, 3), "numbers to square", parse=positive_int)
    offset: int = option(0, "added to every square")
    loud: bool = option(False, "say each square")


def _toy_plan(cfg: ToyConfig, log) -> dict[int, Job]:
    def square(n: int) -> Job:
        return Job("toy-square", {"n": n, "offset": cfg.offset},
                   lambda folder: {"square": n * n + cfg.offset})

    return {n: square(n) for n in cfg.numbers}


def _toy_report(cfg: ToyConfig, results: dict[int, Any], store, log) -> dict[str, Any]:
    squares = {n: r["square"] for n, r in results.items()}
    (cfg.out / "report.md").write_text(f"# Squares\n\n{squares}\n")
    return {"squares": squares, "count": len(squares),
            "terminal_table": "\n".join(f"{n} {s}" for n, s in squares.items())}


TOY = Experiment(title="squares of numbers, a test experiment", config=ToyConfig,
                 plan=_toy_plan, report=_toy_report, heading="{count} squares",
                 datasets=lambda cfg: ())


@pytest.fixture
def toy(monkeypatch):
    module = types.ModuleType("toy_experiment")
    module.TOY = TOY
    monkeypatch.setitem(sys.modules, "toy_experiment", module)
    monkeypatch.setitem(registry.EXPERIMENTS, "toy", "toy_experiment:TOY")


def test_one_registry_line_makes_a_new_experiment_a_command(toy, tmp_path, capsys):
    text = _help(capsys, "reproduce", "toy")
    assert "--numbers NUMBERS [NUMBERS ...]" in text and "(default: 1 2 3)" in text
    assert "--loud" in text and "--dataset" not in text
    out_dir, jobs = tmp_path / "toy", tmp_path / "jobs"
    argv = ["-q", "reproduce", "toy", "--numbers", "2,5", "7", "--offset", "1", "--out",
            str(out_dir), "--jobs", str(jobs)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "3 squares" in out and "7 50" in out and f"report: {out_dir / 'report.md'}" in out
    assert "{2: 5, 5: 26, 7: 50}" in (out_dir / "report.md").read_text()
    assert cli.main([*argv, "--dry-run"]) == 0
    assert "3 jobs, 3 cached, 0 to run" in capsys.readouterr().out
    assert cli.main(["reproduce", "toy", "--numbers", "0"]) == 2
    assert "expected a positive integer, got '0'" in capsys.readouterr().err


def test_python_users_run_the_same_experiment(toy, tmp_path):
    """The library call the command line makes; a second run is served from the job store
    (another process running into the same folder is refused: tests/test_cli_mistakes.py)."""
    logs: list[str] = []
    cfg = ToyConfig(numbers=(4,), out=tmp_path / "toy", jobs=tmp_path / "jobs", progress=False)
    assert registry.run("toy", cfg, log=logs.append)["squares"] == {4: 16}
    assert registry.run("toy", cfg, log=logs.append)["heading"] == "1 squares"
    assert sum(line.startswith("[cached] toy-square") for line in logs) == 1


def test_the_default_report_folder_is_named_for_the_experiment(toy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert registry.resolve("toy").out == Path("runs") / "toy"
    from synsample.experiments.robustness import RobustnessConfig

    assert registry.resolve("robustness", RobustnessConfig(method="mc-dropout")).out == \
        Path("runs") / "robustness-mc-dropout"


def test_table1_dropout_is_an_option_that_keeps_the_default_jobs_keys():
    from synsample.experiments import scann_table1 as t1
    from synsample.experiments.training import train_job
    from synsample.train import TrainConfig

    def train_key(**options):
        rows = t1.row_jobs(t1.Table1Config(progress=False, **options), lambda m: None)
        return rows["mnist mlp"]["train"]

    default = train_key()
    assert default.key == train_job(TrainConfig(dataset="mnist", arch="mlp", epochs=100,
                                                seed=0), t1.Table1Config(progress=False),
                                    lambda m: None).key
    short = train_key(dropout=0.2, epochs=10)
    assert short.key != default.key and short.config["dropout"] == 0.2
    with pytest.raises(ConfigError, match=r"dropout must lie in \[0, 1\)"):
        TrainConfig(dropout=1.5).check()


def test_table1_hidden_units_build_the_width_asked_and_name_the_row():
    from dataclasses import asdict

    from synsample import models
    from synsample.experiments import scann_table1 as t1
    from synsample.train import TrainConfig

    rows = t1.row_jobs(t1.Table1Config(progress=False, hidden=40, archs=("mlp", "conv")),
                       lambda m: None)
    assert rows["mnist mlp"]["train"].config["hidden"] == 40
    assert "hidden" not in t1.row_jobs(t1.Table1Config(progress=False), lambda m: None)[
        "mnist mlp"]["train"].config  # the default keeps the jobs' keys
    net = models.build_from_config(asdict(TrainConfig(hidden=40)), (1, 28, 28), 10)
    assert [m.out_features for m in net if isinstance(m, torch.nn.Linear)] == [40, 10]
    assert (t1.network("mlp", 40), t1.network("conv", 64), t1.network("mlp")) == (
        "784-40-10", "784-[32x3x3]-64-10", "784-400-10")
