"""Table I of paper 000 with sampling-aware training beside the paper's post-hoc conversion
(issue 20; ``synsample reproduce scann-table1 --training sampling-aware``).

For each row (dataset, architecture) three networks are trained:

- **post-hoc**: the paper's recipe (:class:`~synsample.train.TrainConfig` defaults; the same
  job as ``reproduce scann-table1``, so a cached one is reused);
- **sampling-aware**: the same network, trained through ideal coins
  (:mod:`synsample.nn.sampling_aware`) without dropout (:data:`SAMPLING_AWARE_DROPOUT`);
- **sampling-aware at the coin's bits**: trained through the b-bit coins it will be sampled
  with (``train_bits``, default 4).

Each is sampled ``samples`` times by the unchanged engine at full, 8- and 4-bit precision (the
b-bit network at its own bits), and at full precision (its own bits for the b-bit one) its
uncertainty is measured: vote entropy (eq. 4) of correct and incorrect items and the AUROC of
entropy separating them, OoD AUROC of vote entropy against the other dataset (MNIST against
Fashion-MNIST and back), and the expected calibration error of the vote shares and of the mean
softmax. Every step is a cached job; the report is built from the job results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from synsample import checkpoint, data, engine, methods, metrics
from synsample.checkpoint import load_deterministic
from synsample.data.ood import OTHER
from synsample.experiments import scann_table1 as t1
from synsample.experiments.jobs import Job, JobStore, LocalRunner
from synsample.prediction import Prediction
from synsample.report import sampling_aware as report
from synsample.train import SAMPLING_AWARE_DROPOUT, TrainConfig

NAME = "scann-table1-sampling-aware"
#: the trainings of a row: name -> (coin spec trained through or None, precisions sampled)
TRAININGS = ("post-hoc", "sampling-aware", "sampling-aware-bits")


@dataclass
class SamplingAwareConfig:
    """``reproduce scann-table1 --training sampling-aware``: the rows, coins and run settings."""
    #: rows, samples, seed, mode, epochs, job store, ... as Table I's (its ``out`` is ignored)
    table: t1.Table1Config = field(default_factory=t1.Table1Config)
    #: the gradient estimator (:data:`synsample.nn.sampling_aware.ESTIMATORS`)
    estimator: str = "lrt"
    #: the coin the sampling-aware network is trained through (``full``: ideal coins)
    coin: str = "full"
    #: the precision of the third network, trained and sampled at these bits (None: none)
    train_bits: str | None = "4"
    #: items of the other dataset for OoD detection
    ood_items: int = 2000
    out: Path = Path("runs") / NAME


def sampling_aware_config(tc: TrainConfig, coin: str, estimator: str = "lrt") -> TrainConfig:
    """The sampling-aware twin of a post-hoc training config: through ``coin``, no dropout."""
    return replace(tc, sampling_aware=coin, sa_estimator=estimator,
                   dropout=SAMPLING_AWARE_DROPOUT)


def entropy_auroc(pred: Prediction, labels: torch.Tensor) -> float | None:
    """AUROC of vote entropy (eq. 4) as a score that an item is misclassified (None when every
    item is right or every item wrong)."""
    correct = pred.first_choice() == labels
    if correct.all() or not correct.any():
        return None
    h = pred.vote_entropy()
    return metrics.detection_metrics(h[correct], h[~correct])["auroc"]


def uncertainty_job(trained: Job, sampled: Job, dataset: str, precision: str,
                    cfg: SamplingAwareConfig, log: Callable[[str], None]) -> Job:
    """Entropy of correct vs incorrect items, OoD AUROC against the other dataset and ECE, for
    the passes of ``sampled`` (same seed, same samples) and as many on the OoD items."""
    s = cfg.table
    config = {"sample": sampled.key, "ood": OTHER.get(dataset), "ood_items": cfg.ood_items}

    def run(folder: Path) -> dict[str, Any]:
        pred = Prediction.load(folder.parent / sampled.name / "prediction.safetensors")
        labels = load_deterministic(folder.parent / trained.name)["labels"][: pred.num_items]
        out: dict[str, Any] = {
            "entropy_auroc": entropy_auroc(pred, labels),
            "ece_votes": metrics.ece(metrics.vote_probabilities(pred.votes), labels),
            "ece_mean_softmax": metrics.ece(pred.mean_probs, labels), "ood": None}
        if dataset in OTHER:
            test = data.load(dataset, "test", path=s.data_path)
            ood = data.make_ood("other", test, items=cfg.ood_items, seed=s.seed)
            model, _ = checkpoint.load_model(folder.parent / trained.name / "checkpoint")
            sto = methods.scann.convert(model, precision=precision)
            out_pred = engine.predict(sto, ood.images, samples=s.samples, seed=s.seed,
                                      mode=s.mode, progress=s.progress,
                                      desc=f"{dataset} vs {OTHER[dataset]}")
            out["ood"] = OTHER[dataset]
            out["ood_auroc"] = metrics.detection_metrics(pred.vote_entropy(),
                                                         out_pred.vote_entropy())["auroc"]
            out["ood_mean_entropy"] = out_pred.vote_entropy().mean().item()
            log(f"{dataset} against {OTHER[dataset]}: OoD AUROC {out['ood_auroc']:.3f}")
        return out

    return Job("sampling-aware-uncertainty", config, run)


def run(cfg: SamplingAwareConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) every job, write the report, return ``metrics.json``."""
    s = cfg.table
    runner = LocalRunner(JobStore(s.jobs), log)
    rows = []
    for dataset, arch in s.rows:
        epochs = s.epochs or t1.DEFAULT_EPOCHS[arch]
        if s.data_path is None:
            data.fetch(dataset, log=log)
        post = TrainConfig(dataset=dataset, arch=arch, epochs=epochs, seed=s.seed)
        plans = {"post-hoc": (post, s.precisions, "full"),
                 "sampling-aware": (sampling_aware_config(post, cfg.coin, cfg.estimator),
                                    s.precisions, "full")}
        if cfg.train_bits is not None:
            plans["sampling-aware-bits"] = (sampling_aware_config(post, cfg.train_bits,
                                                                  cfg.estimator),
                                            (cfg.train_bits,), cfg.train_bits)
        row: dict[str, Any] = {"dataset": dataset, "arch": arch, "network": t1.NETWORK[arch],
                               "epochs": epochs, "trainings": {}}
        for training, (tc, precisions, own) in plans.items():
            log(f"== {dataset} {t1.NETWORK[arch]}, {training}: train {epochs} epochs, sample "
                f"{s.samples} passes at {', '.join(precisions)}")
            trained = t1.train_job(tc, s.data_path, s.progress, log, s.device)
            samplers = {p: t1.sample_job(trained, p, s, log) for p in precisions}
            unc = uncertainty_job(trained, samplers[own], dataset, own, cfg, log)
            results = runner.run([trained, *samplers.values(), unc])
            row["trainings"][training] = {
                "coin": tc.sampling_aware, "dropout": tc.dropout, "train": results[0],
                "train_job": trained.name,
                "sampled": dict(zip(precisions, results[1:-1], strict=True)),
                "uncertainty_precision": own, "uncertainty": results[-1]}
        rows.append(row)
    return report.write(cfg, rows)
