"""The training job every experiment shares: one [`TrainConfig`][synsample.train.TrainConfig] in, a
checkpoint and its deterministic test outputs out, cached by the config's hash (so a network
trained for one experiment serves every other that asks for the same config)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from synsample import checkpoint, data, metrics
from synsample.config_args import option
from synsample.evaluate import deterministic_outputs
from synsample.experiments.jobs import Job
from synsample.experiments.options import RunOptions
from synsample.nn.sampling_aware import ESTIMATORS
from synsample.tracking import run as tracked
from synsample.train import SAMPLING_AWARE_DROPOUT, TrainConfig, train


def train_job(tc: TrainConfig, run: RunOptions, log: Callable[[str], None]) -> Job:
    """Train ``tc`` into the job's ``checkpoint/`` and record its deterministic test outputs.

    Args:
        tc: the training; its [`job_config`][synsample.train.TrainConfig.job_config] is the job's
            key.
        run: the run options it trains with (data path, progress, device, MLflow tracking);
            none of them is part of the key.
        log: where progress lines go.

    Returns:
        the job; its result holds the deterministic test accuracy, the training history and
        the class names.
    """
    def work(folder: Path) -> dict[str, Any]:
        start = time.perf_counter()
        ck = folder / "checkpoint"
        with tracked(run.tracking, f"train {tc.arch} {tc.dataset} ({folder.name})",
                     {"train": asdict(tc)}, {"synsample.job": folder.name}) as tr:
            cfg = train(tc, ck, data_path=run.data_path, progress=run.progress, log=log,
                        device=run.device, on_epoch=tr.epoch)
            tr.history(cfg["history"])
            model, _ = checkpoint.load_model(ck)
            test = data.load(tc.dataset, "test", path=run.data_path)
            torch.manual_seed(tc.seed)  # a network that samples in every pass (NSM) draws here
            logits = deterministic_outputs(model, test.images)
            checkpoint.save_deterministic(folder, logits, test.labels)
            accuracy = metrics.accuracy(logits.argmax(1), test.labels)
            tr.metrics({"deterministic_accuracy": accuracy})
            tr.artifact(ck / "config.json")
        return {"dataset": tc.dataset, "arch": tc.arch, "epochs": tc.epochs,
                "deterministic_accuracy": accuracy, "history": cfg["history"],
                "classes": list(test.classes),
                "train_seconds": sum(h["seconds"] for h in cfg["history"]),
                "wall_seconds": time.perf_counter() - start}

    return Job("train", tc.job_config(), work)


def sampling_aware_config(tc: TrainConfig, coin: str, estimator: str = "lrt") -> TrainConfig:
    """The sampling-aware twin of a post-hoc training config: through ``coin``, no dropout."""
    return replace(tc, sampling_aware=coin, sa_estimator=estimator,
                   dropout=SAMPLING_AWARE_DROPOUT)


@dataclass(kw_only=True)
class SamplingAwareOption(RunOptions):
    """An experiment whose network may be trained through its coins (issue 20) instead of the
    paper's ordinary training."""

    sampling_aware: str | None = option(None, "train through the coins of COIN (issue 20): "
                                        "full (when no COIN is given), 8, 4 or "
                                        "nonideal:bits=4,spread=S,...", metavar="COIN",
                                        const="full", default_text="off, the paper's post-hoc "
                                                                   "conversion")
    sa_estimator: str = option("lrt", "with --sampling-aware: the gradient estimator",
                               choices=ESTIMATORS)

    def as_asked(self, tc: TrainConfig) -> TrainConfig:
        """``tc``, or its sampling-aware twin when ``sampling_aware`` is set."""
        if self.sampling_aware is None:
            return tc
        return sampling_aware_config(tc, self.sampling_aware, self.sa_estimator)

    def folder_name(self, experiment: str) -> str:
        """``EXPERIMENT-sampling-aware`` when trained through the coins."""
        name = super().folder_name(experiment)
        return name if self.sampling_aware is None else f"{name}-sampling-aware"
