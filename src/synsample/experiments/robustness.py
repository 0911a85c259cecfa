"""What imperfect devices do to a sampled network (``synsample reproduce robustness``).

For the scANN MLP of Table I (paper 000), or another method whose coins are per-weight devices
([`METHODS`][synsample.experiments.robustness.METHODS]: MC-DropConnect's LeNet-5), on each dataset:

- accuracy, mean vote entropy and OoD AUROC (vote entropy against the other dataset) as each
  non-ideality grows: the static ones of [`NonIdealCoin`][synsample.devices.NonIdealCoin] (a bias of
  every coin, device-to-device spread, stuck devices, half at 0 and half at 1) and the dynamic
  ones of [`TemporalCoin`][synsample.devices.TemporalCoin] (correlated successive bits, drift per
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
from synsample.config_args import option, positive_int
from synsample.data.ood import OTHER
from synsample.errors import ConfigError
from synsample.evaluate import evaluate_model
from synsample.experiments.jobs import Job, JobStore
from synsample.experiments.registry import Experiment
from synsample.experiments.scann_table1 import DEFAULT_EPOCHS
from synsample.experiments.training import SamplingAwareOption, train_job
from synsample.report import robustness as report
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


@dataclass(kw_only=True)
class RobustnessConfig(SamplingAwareOption):
    """``reproduce robustness``: the method, datasets, device imperfections and precisions."""

    method: str = option("scann", "the method whose coins are imperfect: scann (paper 000's "
                         "MLP), mc-dropconnect or mc-dropout (LeNet-5's mask coins)",
                         choices=tuple(METHODS))
    datasets: tuple[str, ...] = option(tuple(OTHER), "the datasets, each with the other as its "
                                       "OoD set", flag="--dataset", choices=tuple(OTHER))
    samples: int = option(100, "passes per test item at each point", parse=positive_int)
    epochs: int | None = option(None, "training epochs", parse=positive_int,
                                default_text="the method's: scann 100, LeNet-5 10")
    nonidealities: dict[str, tuple[float, ...]] = field(
        default_factory=lambda: dict(NONIDEALITIES))
    precisions: tuple[str, ...] = option(PRECISIONS, "coin precisions of the precision x "
                                         "samples grid", flag="--precision")
    sample_counts: tuple[int, ...] = option(SAMPLE_COUNTS, "passes K of the grid",
                                            flag="--sample-counts", parse=positive_int)
    reference_k: int = option(100, "K of the full-precision accuracy each precision must "
                              "reach", parse=positive_int)
    device_draws: int = option(3, "device draws (seeds) averaged per point of a drawn "
                               "non-ideality (spread, stuck)", parse=positive_int)
    ood_items: int = option(2000, "items of the OoD set", parse=positive_int)
    def folder_name(self, experiment: str) -> str:
        """``robustness``, ``robustness-METHOD`` (another method) or
        ``robustness-sampling-aware``."""
        if self.method != "scann":
            return f"{experiment}-{self.method}"
        return super().folder_name(experiment)

    def check(self) -> None:
        """The run options' checks, sampling-aware training only for scANN, known non-idealities."""
        super().check()
        if self.sampling_aware is not None and self.method != "scann":
            raise ConfigError("sampling-aware training is for scANN networks; sweep --method "
                              "scann")
        unknown = [k for k in self.nonidealities if k not in NONIDEALITIES]
        if unknown:
            raise ConfigError(f"unknown non-ideality {unknown[0]!r}; use one of "
                              f"{', '.join(NONIDEALITIES)}")


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
    [`synsample.experiments.training.sampling_aware_config`][synsample.experiments.training.sampling_aware_config])."""
    return cfg.as_asked(_method(cfg).train(dataset, cfg.seed, cfg.epochs))


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
                                      desc=f"{dataset} {kind} {magnitude:g}",
                                      device=cfg.device)
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
    """Accuracy after each of ``cfg.sample_counts`` passes at one coin precision (one run of
    the largest count, the votes recorded on the way).

    Args:
        trained: the network's training job.
        dataset: its dataset.
        precision: the coin precision (``full`` or bits).
        cfg: the experiment's config.
        log: where progress lines go.

    Returns:
        the job.
    """
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
                              desc=f"{dataset} {precision} bits", device=cfg.device)
        curve = pred.accuracy_vs_samples(test.labels)
        log(f"{dataset} {precision}: accuracy at K = {top}: {100 * curve[top]:.2f}%")
        return {"accuracy_vs_samples": {str(k): v for k, v in curve.items()},
                "random_bits": pred.random_bits}

    return Job("robustness-precision", config, run, needs=(trained,))


def plan(cfg: RobustnessConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """Per dataset: the network, every point of every sweep (a list of device draws each) and
    the precision x samples grid."""
    method = _method(cfg)
    planned: dict[str, Any] = {}
    for dataset in cfg.datasets:
        trained = train_job(train_config(cfg, dataset), cfg, log)
        planned[dataset] = {
            "points": {kind: [point_jobs(trained, dataset, kind, m, cfg, log) for m in magnitudes]
                       for kind, magnitudes in cfg.nonidealities.items()
                       if kind in method.kinds},
            "precision": {p: precision_job(trained, dataset, p, cfg, log)
                          for p in cfg.precisions}}
    return planned


def write_report(cfg: RobustnessConfig, results: dict[str, Any], store: JobStore,
                 log: Callable[[str], None]) -> dict[str, Any]:
    """Accuracy, entropy and OoD AUROC against each non-ideality; precision against K."""
    sweeps = {d: {kind: [sweep_point(point) for point in points]
                  for kind, points in r["points"].items()} for d, r in results.items()}
    grids = {d: r["precision"] for d, r in results.items()}
    return report.write(cfg, sweeps, grids, METHODS[cfg.method].network)


EXPERIMENT = Experiment(
    title="paper 000 section IV: a sampled network against device bias, spread, stuck devices, "
          "correlated bits and drift; precision against the number of passes",
    config=RobustnessConfig, plan=plan, report=write_report,
    heading="Accuracy (%) against each non-ideality's magnitude (columns: the report's)",
    datasets=lambda cfg: (*cfg.datasets, *(OTHER[d] for d in cfg.datasets)))
