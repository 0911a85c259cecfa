"""What imperfect devices do to a sampled network (``synsample reproduce robustness``).

For the scANN MLP of Table I (paper 000) on each dataset:

- accuracy, mean vote entropy and OoD AUROC (vote entropy against the other dataset) as each
  static non-ideality of :class:`~synsample.devices.NonIdealCoin` grows: a bias of every coin,
  device-to-device spread, stuck devices (half at 0, half at 1);
- paper 000's open question (section IV): how precision trades against the number of
  samples. Accuracy over bits x K from one run per precision (the votes after k passes are
  recorded on the way to K), and for each precision the K at which it first reaches the
  full-precision accuracy at ``reference_k`` passes.

Every training and evaluation is a cached job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synsample import checkpoint, data, devices, engine, methods
from synsample.data.ood import OTHER
from synsample.evaluate import evaluate_model
from synsample.experiments.jobs import Job, JobStore, LocalRunner
from synsample.experiments.scann_table1 import DEFAULT_EPOCHS, train_job
from synsample.report import robustness as report
from synsample.train import TrainConfig

NONIDEALITIES = {"bias": (0.0, 0.02, 0.05, 0.1, 0.2), "spread": (0.0, 0.02, 0.05, 0.1, 0.2),
                 "stuck": (0.0, 0.01, 0.02, 0.05, 0.1)}
PRECISIONS = ("2", "3", "4", "6", "8", "full")
SAMPLE_COUNTS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


@dataclass
class RobustnessConfig:
    datasets: tuple[str, ...] = ("mnist", "fashion-mnist")
    samples: int = 100
    seed: int = 0
    mode: str = "shared"
    nonidealities: dict[str, tuple[float, ...]] = field(
        default_factory=lambda: dict(NONIDEALITIES))
    precisions: tuple[str, ...] = PRECISIONS
    sample_counts: tuple[int, ...] = SAMPLE_COUNTS
    reference_k: int = 100
    ood_items: int = 2000
    epochs: int | None = None
    out: Path = Path("runs") / "robustness"
    jobs: Path = Path("runs") / "jobs"
    data_path: str | None = None
    limit: int | None = None
    progress: bool = True


def coin_for(kind: str, magnitude: float, seed: int) -> devices.NonIdealCoin:
    """The imperfect coin of one sweep point."""
    if kind == "bias":
        return devices.NonIdealCoin(bias=magnitude, seed=seed)
    if kind == "spread":
        return devices.NonIdealCoin(spread=magnitude, seed=seed)
    return devices.NonIdealCoin(stuck_at_0=magnitude / 2, stuck_at_1=magnitude / 2, seed=seed)


def _test_set(cfg: RobustnessConfig, dataset: str) -> data.Dataset:
    test = data.load(dataset, "test", path=cfg.data_path)
    return test if cfg.limit is None else test.subset(cfg.limit)


def nonideal_job(trained: Job, dataset: str, kind: str, magnitude: float,
                 cfg: RobustnessConfig, log: Callable[[str], None]) -> Job:
    config = {"train": trained.key, "kind": kind, "magnitude": magnitude,
              "samples": cfg.samples, "seed": cfg.seed, "mode": cfg.mode, "limit": cfg.limit,
              "ood_items": cfg.ood_items}

    def run(folder: Path) -> dict[str, Any]:
        model, _ = checkpoint.load_model(folder.parent / trained.name / "checkpoint")
        sto = methods.scann.convert(model, coin_for(kind, magnitude, cfg.seed))
        ood = "other" if dataset in OTHER else "gaussian-noise"
        result, _, _ = evaluate_model(sto, _test_set(cfg, dataset), samples=cfg.samples,
                                      seed=cfg.seed, mode=cfg.mode, ood_items=cfg.ood_items,
                                      ood_sets=(ood,), progress=cfg.progress,
                                      desc=f"{dataset} {kind} {magnitude:g}")
        s = result["summary"]
        auroc = result["ood"][ood]["by_score"]["vote-entropy"]["auroc"] \
            if ood in result["ood"] else None
        log(f"{dataset} {kind} {magnitude:g}: accuracy {100 * s['accuracy']:.2f}%")
        return {"accuracy": s["accuracy"], "mean_entropy": s["mean_entropy"],
                "ood_set": ood, "auroc": auroc}

    return Job("robustness-eval", config, run)


def precision_job(trained: Job, dataset: str, precision: str, cfg: RobustnessConfig,
                  log: Callable[[str], None]) -> Job:
    top = max(cfg.sample_counts)
    config = {"train": trained.key, "precision": precision, "samples": top,
              "checkpoints": sorted(cfg.sample_counts), "seed": cfg.seed, "mode": cfg.mode,
              "limit": cfg.limit}

    def run(folder: Path) -> dict[str, Any]:
        model, _ = checkpoint.load_model(folder.parent / trained.name / "checkpoint")
        test = _test_set(cfg, dataset)
        sto = methods.scann.convert(model, devices.coin_for_precision(precision))
        pred = engine.predict(sto, test, samples=top, seed=cfg.seed, mode=cfg.mode,
                              checkpoints=cfg.sample_counts, progress=cfg.progress,
                              desc=f"{dataset} {precision} bits")
        curve = pred.accuracy_vs_samples(test.labels)
        log(f"{dataset} {precision}: accuracy at K = {top}: {100 * curve[top]:.2f}%")
        return {"accuracy_vs_samples": {str(k): v for k, v in curve.items()},
                "random_bits": pred.random_bits}

    return Job("robustness-precision", config, run)


def run(cfg: RobustnessConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    runner = LocalRunner(JobStore(cfg.jobs), log)
    sweeps: dict[str, Any] = {}
    grids: dict[str, Any] = {}
    for dataset in cfg.datasets:
        if cfg.data_path is None:
            data.fetch(dataset, log=log)
        trained = train_job(TrainConfig(dataset=dataset, arch="mlp", seed=cfg.seed,
                                        epochs=cfg.epochs or DEFAULT_EPOCHS["mlp"]),
                            cfg.data_path, cfg.progress, log)
        runner.run([trained])
        sweeps[dataset] = {kind: [runner.run([nonideal_job(trained, dataset, kind, m, cfg,
                                                           log)])[0] for m in magnitudes]
                           for kind, magnitudes in cfg.nonidealities.items()}
        grids[dataset] = {p: runner.run([precision_job(trained, dataset, p, cfg, log)])[0]
                          for p in cfg.precisions}
    return report.write(cfg, sweeps, grids)
