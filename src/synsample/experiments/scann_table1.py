"""Table I of paper 000: deterministic and scANN accuracy at full, 8- and 4-bit coin precision,
for MNIST and Fashion-MNIST, MLP 784-400-10 and conv 784-[32x3x3]-100-10.

Each row is a train job and one sample job per precision; every job is cached by its config's
hash under ``<out>/jobs``, and the report is built from the job results alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from synsample import checkpoint, data, metrics, papers
from synsample.adaptive import AdaptiveStop
from synsample.evaluate import deterministic_outputs, sample_checkpoint
from synsample.experiments.jobs import Job, JobStore, RunnerConfig, make_runner
from synsample.report import scann as scann_report
from synsample.tracking import TrackingConfig
from synsample.tracking import run as tracked
from synsample.train import TrainConfig, train

NAME = "scann-table1"
PRECISIONS = ("full", "8", "4")
NETWORK = {"mlp": "784-400-10", "conv": "784-[32x3x3]-100-10"}
#: default epochs per architecture: the paper's 100 where 2 CPU cores allow it
DEFAULT_EPOCHS = {"mlp": 100, "conv": 10}


@dataclass
class Table1Config:
    """``reproduce scann-table1``: the rows, passes, epochs and where results go."""
    rows: list[tuple[str, str]] = field(default_factory=lambda: [("mnist", "mlp")])
    samples: int = 1000
    epochs: int | None = None
    seed: int = 0
    mode: str = "shared"
    precisions: tuple[str, ...] = PRECISIONS
    out: Path = Path("runs") / NAME
    #: the job store, shared by every experiment (a network trained once serves them all)
    jobs: Path = Path("runs") / "jobs"
    data_path: str | None = None
    limit: int | None = None
    progress: bool = True
    adaptive: AdaptiveStop | None = None
    device: str | None = None
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    #: MLflow tracking of the training jobs (off by default)
    tracking: TrackingConfig | None = None


def train_job(tc: TrainConfig, data_path: str | None, progress: bool,
              log: Callable[[str], None], device: str | None = None,
              tracking: TrackingConfig | None = None) -> Job:
    """Train ``tc`` into the job's ``checkpoint/`` and record its deterministic test outputs;
    tracked in MLflow when ``tracking`` is on (not part of the job's key)."""
    def run(folder: Path) -> dict[str, Any]:
        start = time.perf_counter()
        ck = folder / "checkpoint"
        with tracked(tracking, f"train {tc.arch} {tc.dataset} ({folder.name})",
                     {"train": asdict(tc)}, {"synsample.job": folder.name}) as tr:
            cfg = train(tc, ck, data_path=data_path, progress=progress, log=log, device=device,
                        on_epoch=tr.epoch)
            tr.history(cfg["history"])
            model, _ = checkpoint.load_model(ck)
            test = data.load(tc.dataset, "test", path=data_path)
            torch.manual_seed(tc.seed)  # a network that samples in every pass (NSM) draws here
            logits = deterministic_outputs(model, test.images)
            checkpoint.save_deterministic(folder, logits, test.labels)
            tr.metrics({"deterministic_accuracy":
                        metrics.accuracy(logits.argmax(1), test.labels)})
            tr.artifact(ck / "config.json")
        return {"dataset": tc.dataset, "arch": tc.arch, "epochs": tc.epochs,
                "deterministic_accuracy": metrics.accuracy(logits.argmax(1), test.labels),
                "history": cfg["history"], "classes": list(test.classes),
                "train_seconds": sum(h["seconds"] for h in cfg["history"]),
                "wall_seconds": time.perf_counter() - start}

    return Job("train", tc.job_config(), run)


def sample_job(trained: Job, precision: str, cfg: Table1Config,
               log: Callable[[str], None]) -> Job:
    config = {"train": trained.key, "method": "scann", "precision": precision,
              "samples": cfg.samples, "seed": cfg.seed, "mode": cfg.mode, "limit": cfg.limit}
    if cfg.adaptive is not None:  # (absent otherwise, so full-K jobs keep their cache keys)
        config["adaptive"] = asdict(cfg.adaptive)

    def run(folder: Path) -> dict[str, Any]:
        ck = folder.parent / trained.name / "checkpoint"
        pred, test, _ = sample_checkpoint(ck, "scann", precision, cfg.samples, cfg.seed,
                                          cfg.mode, cfg.data_path, cfg.limit, cfg.progress,
                                          adaptive=cfg.adaptive, device=cfg.device)
        pred.save(folder / "prediction.safetensors")
        summary = metrics.summarize(pred, test.labels)
        log(f"scANN {precision}: first choice {100 * summary['accuracy']:.2f}% over "
            f"{cfg.samples} passes ({pred.seconds:.0f} s)")
        return {"precision": precision, "coin": pred.info.get("coin"), **summary}

    return Job("sample", config, run, needs=(trained,))


def run_rows(cfg: Table1Config, log: Callable[[str], None] = print
             ) -> tuple[list[dict[str, Any]], JobStore]:
    """Run (or resume) the train and sample jobs of every row; return the rows and the store."""
    store = JobStore(cfg.jobs)
    runner = make_runner(cfg.runner, store, log)
    planned = []
    for dataset, arch in cfg.rows:
        epochs = cfg.epochs or DEFAULT_EPOCHS[arch]
        if cfg.data_path is None:
            data.fetch(dataset, log=log)
        log(f"== {dataset} {NETWORK[arch]}: train {epochs} epochs, sample {cfg.samples} passes "
            f"at {', '.join(cfg.precisions)}")
        trained = train_job(TrainConfig(dataset=dataset, arch=arch, epochs=epochs, seed=cfg.seed),
                            cfg.data_path, cfg.progress, log, cfg.device, cfg.tracking)
        samplers = [sample_job(trained, p, cfg, log) for p in cfg.precisions]
        planned.append((dataset, arch, trained, samplers))
    every = [j for _, _, trained, samplers in planned for j in (trained, *samplers)]
    done = dict(zip((j.key for j in every), runner.run(every), strict=True))
    rows = []
    for dataset, arch, trained, samplers in planned:
        results = [done[j.key] for j in (trained, *samplers)]
        rows.append({"dataset": dataset, "arch": arch, "network": NETWORK[arch],
                     "train": results[0], "train_job": trained.name,
                     "sample_jobs": {p: j.name for p, j in zip(cfg.precisions, samplers,
                                                               strict=True)},
                     "sampled": dict(zip(cfg.precisions, results[1:], strict=True)),
                     "paper": papers.SCANN_TABLE1.get((dataset, arch))})
    return rows, store


def run(cfg: Table1Config, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) every job of the table, write the report, return ``metrics.json``."""
    rows, store = run_rows(cfg, log)
    return scann_report.write_table1(cfg, rows, store.root)
