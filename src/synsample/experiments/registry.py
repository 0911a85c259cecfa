"""Every experiment by name, and the one way an experiment runs.

An experiment is a config dataclass (extending
[`RunOptions`][synsample.experiments.options.RunOptions]), a *plan* that turns a config into its
graph of cached jobs, and a *report* that turns the jobs' results into ``report.md``,
``metrics.json`` and figures. [`run`][synsample.experiments.registry.run] is the same for all of
them: check the config, take the report folder's lock, fetch the data, run the graph (locally or on
Ray), write the report.

Adding an experiment: a module that defines an
[`Experiment`][synsample.experiments.registry.Experiment], and one line in `EXPERIMENTS`. The
command line (``synsample reproduce NAME``) is generated from it, and the list in
``docs/command-line.md`` is checked against it.

From Python::

    from synsample.experiments import registry

    cfg = registry.get("scann-table1").config(samples=100, epochs=2)
    result = registry.run("scann-table1", cfg)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from synsample.errors import ConfigError
from synsample.experiments.jobs import Job, JobStore, graph
from synsample.experiments.options import RunOptions
from synsample.experiments.runners import make_runner

Log = Callable[[str], None]

#: name -> ``module:attribute`` of its [`Experiment`][synsample.experiments.registry.Experiment]
#: (imported when first asked for)
EXPERIMENTS = {
    "scann-table1": "synsample.experiments.scann_table1:EXPERIMENT",
    "scann-table1-sampling-aware": "synsample.experiments.sampling_aware:EXPERIMENT",
    "scann-entropy": "synsample.experiments.scann_entropy:EXPERIMENT",
    "scann-holdout": "synsample.experiments.scann_holdout:EXPERIMENT",
    "nsm-pi-mnist": "synsample.experiments.nsm:PI_MNIST",
    "nsm-mnist-conv": "synsample.experiments.nsm:MNIST_CONV",
    "nsm-scale-invariance": "synsample.experiments.nsm:SCALE_INVARIANCE",
    "sc-mnist": "synsample.experiments.sc:EXPERIMENT",
    "spinbayes-mnist": "synsample.experiments.spinbayes:EXPERIMENT",
    "robustness": "synsample.experiments.robustness:EXPERIMENT",
    "costs": "synsample.experiments.costs:EXPERIMENT",
}


@dataclass(frozen=True)
class Experiment:
    """One reproducible experiment.

    Attributes:
        title: one line: what it reproduces (``reproduce --list``, the top of ``--help``).
        config: its config dataclass, a [`RunOptions`][synsample.experiments.options.RunOptions]
            with the experiment's fields.
        plan: ``plan(cfg, log)``: its jobs, as a Job or a dict, list or tuple of them
            (nested as deep as the experiment likes); jobs they need come along.
        report: ``report(cfg, results, store, log)``: ``results`` has the plan's shape with
            each job's result in its place; writes the report into ``cfg.out`` and returns
            ``metrics.json``'s content with a ``terminal_table`` to print.
        heading: the printed table's heading, formatted with the report's result
            (``{dataset}`` and the like).
        datasets: ``datasets(cfg)``: the datasets to fetch (and verify) before planning.
        about: more on what it does, for ``--help`` (default: none).
        presets: named sets of field values, each a switch on the command line:
            ``name -> (help, {field: value})`` (``--all-rows`` sets Table I's datasets and
            networks).
    """

    title: str
    config: type[RunOptions]
    plan: Callable[[Any, Log], Any]
    report: Callable[[Any, Any, JobStore, Log], dict[str, Any]]
    heading: str
    datasets: Callable[[Any], Iterable[str]]
    about: str = ""
    presets: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)


def names() -> list[str]:
    """The experiments' names, in the registry's order."""
    return list(EXPERIMENTS)


def get(name: str) -> Experiment:
    """The experiment called ``name``.

    Raises:
        ConfigError: no experiment has that name (the message lists them).
    """
    if name not in EXPERIMENTS:
        raise ConfigError(f"no experiment {name!r}; use one of {', '.join(EXPERIMENTS)} "
                          "(synsample reproduce --list)")
    module, attribute = EXPERIMENTS[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def jobs_of(planned: Any) -> list[Job]:
    """The jobs of a plan (a Job, or dicts, lists and tuples holding jobs and other values),
    in order, each once."""
    if isinstance(planned, Job):
        return [planned]
    if not isinstance(planned, dict | list | tuple):
        return []
    items = planned.values() if isinstance(planned, dict) else planned
    found: dict[str, Job] = {}
    for item in items:
        for job in jobs_of(item):
            found.setdefault(job.key, job)
    return list(found.values())


def results_of(planned: Any, results: dict[str, Any]) -> Any:
    """The plan's shape with each job replaced by its result (``results``: by job key); other
    values are kept."""
    if isinstance(planned, Job):
        return results[planned.key]
    if isinstance(planned, dict):
        return {k: results_of(v, results) for k, v in planned.items()}
    if isinstance(planned, list | tuple):
        return type(planned)(results_of(v, results) for v in planned)
    return planned


def resolve(name: str, cfg: RunOptions | None = None) -> RunOptions:
    """``cfg`` (default: the experiment's defaults) checked, with its report folder set."""
    experiment = get(name)
    cfg = experiment.config() if cfg is None else cfg
    if not isinstance(cfg, experiment.config):
        raise ConfigError(f"{name} takes a {experiment.config.__name__}, not a "
                          f"{type(cfg).__name__}")
    cfg.check()
    out = Path(cfg.out) if cfg.out is not None else Path("runs") / cfg.folder_name(name)
    return replace(cfg, out=out, jobs=Path(cfg.jobs))


def plan(name: str, cfg: RunOptions | None = None, log: Log = print
         ) -> list[tuple[Job, bool]]:
    """Every job ``name`` would run with ``cfg`` (those its jobs need first) and whether each
    is already in the job store; runs nothing."""
    cfg = resolve(name, cfg)
    store = JobStore(cfg.jobs)
    return [(job, store.done(job)) for job in graph(jobs_of(get(name).plan(cfg, log)))]


def run(name: str, cfg: RunOptions | None = None, log: Log = print) -> dict[str, Any]:
    """Run (or resume) experiment ``name`` with ``cfg`` (default: its defaults).

    Checks the config and the folders first, holds the report folder's lock (a second run
    into the same folder is refused), fetches the data, runs every job not yet in the job
    store, then writes the report. Tracked in MLflow when ``cfg.tracking`` says so.

    Returns:
        the report's metrics (``metrics.json``), with ``terminal_table`` and ``heading`` (what
        the command line prints) and ``report`` (the path of ``report.md``).
    """
    from synsample import checks, data, tracking
    from synsample.io import folder_lock

    experiment = get(name)
    cfg = resolve(name, cfg)
    checks.writable_folder(cfg.out, "report folder")
    checks.writable_folder(cfg.jobs, "job store (--jobs)")
    params = {k: v for k, v in asdict(cfg).items() if k != "tracking"}
    with folder_lock(cfg.out), tracking.run(cfg.tracking, f"reproduce {name}", params,
                                            {"synsample.command": "reproduce"}) as tracker:
        if cfg.data_path is None:
            for dataset in dict.fromkeys(experiment.datasets(cfg)):
                data.fetch(dataset, log=log)
        store = JobStore(cfg.jobs)
        planned = experiment.plan(cfg, log)
        every = jobs_of(planned)
        done = dict(zip((j.key for j in every), make_runner(cfg.runner, store, log).run(every),
                        strict=True))
        result = experiment.report(cfg, results_of(planned, done), store, log)
        result["heading"] = experiment.heading.format(**result)
        result["report"] = str(cfg.out / "report.md")
        tracker.artifact(cfg.out)  # the report, its figures and metrics.json
    return result
