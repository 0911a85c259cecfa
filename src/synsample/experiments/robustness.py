"""What imperfect devices do to a sampled network (``synsample reproduce robustness``).

For the scANN MLP of Table I (paper 000), or another method whose coins are per-weight devices
(:data:`METHODS`: MC-DropConnect's LeNet-5), on each dataset:

- accuracy, mean vote entropy and OoD AUROC (vote entropy against the other dataset) as each
  non-ideality grows: the static ones of :class:`~synsample.devices.NonIdealCoin` (a bias of
  every coin, device-to-device spread, stuck devices, half at 0 and half at 1) and the dynamic
  ones of :class:`~synsample.devices.TemporalCoin` (correlated successive bits, drift per
  pass);
- paper 000's open question (section IV): how precision trades against the number of
  samples. Accuracy over bits x K from one run per precision (the votes after k passes are
  recorded on the way to K), and for each precision the K at which it first reaches the
  full-precision accuracy at ``reference_k`` passes.

Every training and evaluation is a cached job.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synsample import checkpoint, data, devices, engine, methods
from synsample.data.ood import OTHER
from synsample.errors import ConfigError
from synsample.evaluate import evaluate_model
from synsample.experiments.jobs import Job, JobStore, RunnerConfig, make_runner
from synsample.experiments.scann_table1 import DEFAULT_EPOCHS, train_job
from synsample.report import robustness as report
from synsample.tracking import TrackingConfig
from synsample.train import TrainConfig

NONIDEALITIES = {"bias": (0.0, 0.02, 0.05, 0.1, 0.2), "spread": (0.0, 0.02, 0.05, 0.1, 0.2),
                 "stuck": (0.0, 0.01, 0.02, 0.05, 0.1),
                 "correlation": (0.0, 0.5, 0.8, 0.9, 0.95),
                 "drift": (0.0, 2e-4, 5e-4, 1e-3, 2e-3)}


@dataclass(frozen=True)
class Method:
    """A method the sweep runs: its network's training config on a dataset (``epochs`` None:
    the default), its conversion with one device model for every coin, and the
    non-idealities its coins can have (a method drawing per item has no time axis)."""

    network: str
    train: Callable[[str, int, int | None], TrainConfig]
    convert: Callable[[Any, devices.RandomSource], Any]
    kinds: tuple[str, ...] = tuple(NONIDEALITIES)


METHODS = {
    "scann": Method("MLP 784-400-10 (paper 000, Table I)",
                    lambda dataset, seed, epochs: TrainConfig(
                        dataset=dataset, arch="mlp", seed=seed,
                        epochs=epochs or DEFAULT_EPOCHS["mlp"]),
                    lambda model, coin: methods.scann.convert(model, coin)),
    "mc-dropconnect": Method("LeNet-5 with DropConnect (paper 004's baseline)",
                             lambda dataset, seed, epochs: TrainConfig.for_arch(
                                 "lenet5-dropconnect", dataset=dataset, seed=seed,
                                 epochs=epochs or 10),
                             lambda model, coin: methods.mc_dropconnect.convert(model, coin)),
    "mc-dropout": Method("LeNet-5 with dropout (paper 004's baseline)",
                         lambda dataset, seed, epochs: TrainConfig.for_arch(
                             "lenet5-dropout", dataset=dataset, seed=seed, epochs=epochs or 10),
                         lambda model, coin: methods.mc_dropout.convert(model, coin),
                         kinds=("bias", "spread", "stuck")),
}
#: the non-idealities whose devices are drawn at random: each point averages several draws
DRAWN = ("spread", "stuck")
PRECISIONS = ("2", "3", "4", "6", "8", "full")
SAMPLE_COUNTS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


@dataclass
class RobustnessConfig:
    """``reproduce robustness``: the method, datasets, device imperfections and run settings."""
    method: str = "scann"
    datasets: tuple[str, ...] = ("mnist", "fashion-mnist")
    samples: int = 100
    seed: int = 0
    mode: str = "shared"
    nonidealities: dict[str, tuple[float, ...]] = field(
        default_factory=lambda: dict(NONIDEALITIES))
    precisions: tuple[str, ...] = PRECISIONS
    sample_counts: tuple[int, ...] = SAMPLE_COUNTS
    reference_k: int = 100
    #: device draws (seeds) averaged per point of a drawn non-ideality (:data:`DRAWN`)
    device_draws: int = 3
    ood_items: int = 2000
    epochs: int | None = None
    #: scANN: train the network through these coins (issue 20, a coin spec such as ``full``,
    #: ``4`` or ``nonideal:spread=0.05``; None: post-hoc, the paper's training)
    sampling_aware: str | None = None
    sa_estimator: str = "lrt"
    out: Path = Path("runs") / "robustness"
    jobs: Path = Path("runs") / "jobs"
    data_path: str | None = None
    limit: int | None = None
    progress: bool = True
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    tracking: TrackingConfig | None = None


def coin_for(kind: str, magnitude: float, seed: int) -> devices.RandomSource:
    """The imperfect coin of one sweep point."""
    if kind == "bias":
        return devices.NonIdealCoin(bias=magnitude, seed=seed)
    if kind == "spread":
        return devices.NonIdealCoin(spread=magnitude, seed=seed)
    if kind == "stuck":
        return devices.NonIdealCoin(stuck_at_0=magnitude / 2, stuck_at_1=magnitude / 2,
                                    seed=seed)
    if kind == "correlation":
        return devices.TemporalCoin(autocorrelation=magnitude, seed=seed)
    if kind == "drift":
        return devices.TemporalCoin(drift=magnitude, seed=seed)
    raise ConfigError(f"unknown non-ideality {kind!r}; use one of {', '.join(NONIDEALITIES)}")


def _method(cfg: RobustnessConfig) -> Method:
    if cfg.method not in METHODS:
        raise ConfigError(f"the robustness sweep runs {', '.join(METHODS)} (methods whose coins "
                          f"are per-weight devices), not {cfg.method!r}")
    return METHODS[cfg.method]


def train_config(cfg: RobustnessConfig, dataset: str) -> TrainConfig:
    """The training of the swept network: the method's, or its sampling-aware twin (issue 20,
    :func:`synsample.experiments.sampling_aware.sampling_aware_config`)."""
    tc = _method(cfg).train(dataset, cfg.seed, cfg.epochs)
    if cfg.sampling_aware is None:
        return tc
    if cfg.method != "scann":
        raise ConfigError("sampling-aware training is for scANN networks; sweep --method scann")
    from synsample.experiments.sampling_aware import sampling_aware_config

    return sampling_aware_config(tc, cfg.sampling_aware, cfg.sa_estimator)


def _keyed(config: dict[str, Any], cfg: RobustnessConfig) -> dict[str, Any]:
    """A job config, naming the method unless it is scANN (whose jobs came first)."""
    return config if cfg.method == "scann" else {**config, "method": cfg.method}


def _test_set(cfg: RobustnessConfig, dataset: str) -> data.Dataset:
    test = data.load(dataset, "test", path=cfg.data_path)
    return test if cfg.limit is None else test.subset(cfg.limit)


def nonideal_job(trained: Job, dataset: str, kind: str, magnitude: float,
                 cfg: RobustnessConfig, log: Callable[[str], None],
                 device_seed: int | None = None) -> Job:
    """One point of a sweep: the devices drawn with ``device_seed`` (default: the run's
    seed), the passes with the run's seed."""
    device_seed = cfg.seed if device_seed is None else device_seed
    config = _keyed({"train": trained.key, "kind": kind, "magnitude": magnitude,
                     "samples": cfg.samples, "seed": cfg.seed, "mode": cfg.mode,
                     "limit": cfg.limit, "ood_items": cfg.ood_items}, cfg)
    if device_seed != cfg.seed:
        config["device_seed"] = device_seed

    def run(folder: Path) -> dict[str, Any]:
        model, _ = checkpoint.load_model(folder.parent / trained.name / "checkpoint")
        sto = _method(cfg).convert(model, coin_for(kind, magnitude, device_seed))
        ood = "other" if dataset in OTHER else "gaussian-noise"
        result, _, _ = evaluate_model(sto, _test_set(cfg, dataset), samples=cfg.samples,
                                      seed=cfg.seed, mode=cfg.mode, ood_items=cfg.ood_items,
                                      ood_sets=(ood,), progress=cfg.progress,
                                      desc=f"{dataset} {kind} {magnitude:g}")
        s = result["summary"]
        auroc = result["ood"][ood]["by_score"]["vote-entropy"]["auroc"] \
            if ood in result["ood"] else None
        log(f"{dataset} {kind} {magnitude:g} (devices {device_seed}): accuracy "
            f"{100 * s['accuracy']:.2f}%")
        return {"accuracy": s["accuracy"], "mean_entropy": s["mean_entropy"],
                "ood_set": ood, "auroc": auroc}

    return Job("robustness-eval", config, run, needs=(trained,))


def point_jobs(trained: Job, dataset: str, kind: str, magnitude: float,
               cfg: RobustnessConfig, log: Callable[[str], None]) -> list[Job]:
    """The jobs of one point: ``cfg.device_draws`` draws of the devices for a drawn
    non-ideality, else one."""
    draws = cfg.device_draws if kind in DRAWN and magnitude > 0 else 1
    return [nonideal_job(trained, dataset, kind, magnitude, cfg, log, cfg.seed + i)
            for i in range(draws)]


def sweep_point(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One point from its jobs' results: the mean over the draws of the devices (with the
    standard deviation between draws), else the one run."""
    draws = len(runs)
    if draws == 1:
        return runs[0]
    out: dict[str, Any] = {"ood_set": runs[0]["ood_set"], "draws": draws}
    for key in ("accuracy", "mean_entropy", "auroc"):
        values = [r[key] for r in runs if r[key] is not None]
        out[key] = sum(values) / len(values) if values else None
        out[f"{key}_std"] = (statistics.stdev(values) if len(values) > 1 else None)
    return out


def precision_job(trained: Job, dataset: str, precision: str, cfg: RobustnessConfig,
                  log: Callable[[str], None]) -> Job:
    top = max(cfg.sample_counts)
    config = _keyed({"train": trained.key, "precision": precision, "samples": top,
                     "checkpoints": sorted(cfg.sample_counts), "seed": cfg.seed,
                     "mode": cfg.mode, "limit": cfg.limit}, cfg)

    def run(folder: Path) -> dict[str, Any]:
        model, _ = checkpoint.load_model(folder.parent / trained.name / "checkpoint")
        test = _test_set(cfg, dataset)
        sto = _method(cfg).convert(model, devices.coin_for_precision(precision))
        pred = engine.predict(sto, test, samples=top, seed=cfg.seed, mode=cfg.mode,
                              checkpoints=cfg.sample_counts, progress=cfg.progress,
                              desc=f"{dataset} {precision} bits")
        curve = pred.accuracy_vs_samples(test.labels)
        log(f"{dataset} {precision}: accuracy at K = {top}: {100 * curve[top]:.2f}%")
        return {"accuracy_vs_samples": {str(k): v for k, v in curve.items()},
                "random_bits": pred.random_bits}

    return Job("robustness-precision", config, run, needs=(trained,))


def run(cfg: RobustnessConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    method = _method(cfg)
    runner = make_runner(cfg.runner, JobStore(cfg.jobs), log)
    points: dict[str, Any] = {}
    precision: dict[str, Any] = {}
    for dataset in cfg.datasets:
        if cfg.data_path is None:
            data.fetch(dataset, log=log)
        trained = train_job(train_config(cfg, dataset), cfg.data_path,
                            cfg.progress, log, tracking=cfg.tracking)
        points[dataset] = {kind: [point_jobs(trained, dataset, kind, m, cfg, log)
                                  for m in magnitudes]
                           for kind, magnitudes in cfg.nonidealities.items()
                           if kind in method.kinds}
        precision[dataset] = {p: precision_job(trained, dataset, p, cfg, log)
                              for p in cfg.precisions}
    every = [j for d in cfg.datasets for jobs in points[d].values() for point in jobs
             for j in point] + [j for d in cfg.datasets for j in precision[d].values()]
    results = dict(zip((j.key for j in every), runner.run(every), strict=True))
    sweeps = {d: {kind: [sweep_point([results[j.key] for j in point]) for point in jobs]
                  for kind, jobs in points[d].items()} for d in cfg.datasets}
    grids = {d: {p: results[j.key] for p, j in precision[d].items()} for d in cfg.datasets}
    return report.write(cfg, sweeps, grids, METHODS[cfg.method].network)
