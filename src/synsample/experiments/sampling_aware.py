"""Table I of paper 000 with sampling-aware training beside the paper's post-hoc conversion
(issue 20; ``synsample reproduce scann-table1-sampling-aware``).

For each row (dataset, architecture) three networks are trained:

- **post-hoc**: the paper's recipe ([`TrainConfig`][synsample.train.TrainConfig] defaults; the same
  job as ``reproduce scann-table1``, so a cached one is reused);
- **sampling-aware**: the same network, trained through ideal coins
  (`synsample.nn.sampling_aware`) without dropout (`SAMPLING_AWARE_DROPOUT`);
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from synsample import checkpoint, data, engine, methods, metrics
from synsample.checkpoint import load_deterministic
from synsample.config_args import option, positive_int
from synsample.data import ood as ood_data
from synsample.data.ood import OTHER
from synsample.experiments import scann_table1 as t1
from synsample.experiments.jobs import Job, JobStore
from synsample.experiments.registry import Experiment
from synsample.experiments.training import sampling_aware_config, train_job
from synsample.nn.sampling_aware import ESTIMATORS
from synsample.prediction import Prediction
from synsample.report import sampling_aware as report
from synsample.train import TrainConfig

#: the trainings of a row: name -> (coin spec trained through or None, precisions sampled)
TRAININGS = ("post-hoc", "sampling-aware", "sampling-aware-bits")


@dataclass(kw_only=True)
class SamplingAwareConfig(t1.Table1Config):
    """``reproduce scann-table1-sampling-aware``: Table I's rows, and the coins trained
    through."""

    estimator: str = option("lrt", "the gradient estimator of sampling-aware training: lrt "
                            "(local reparameterisation) or ste (straight-through)",
                            flag="--sa-estimator", choices=ESTIMATORS)
    coin: str = option("full", "the coins the sampling-aware network is trained through: full "
                       "(ideal), 8, 4 or nonideal:bits=4,bias=B,spread=S,stuck=F,seed=N",
                       flag="--train-coin", metavar="COIN")
    train_bits: str | None = option("4", "the bits of each row's third network, trained "
                                    "through and sampled at them", metavar="BITS")
    ood_items: int = option(2000, "items of the other dataset for OoD detection",
                            parse=positive_int)


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
    s = cfg
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
            ood = ood_data.make_ood("other", test, items=cfg.ood_items, seed=s.seed)
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

    return Job("sampling-aware-uncertainty", config, run, needs=(trained, sampled))


def trainings(cfg: SamplingAwareConfig, dataset: str, arch: str
              ) -> dict[str, tuple[TrainConfig, tuple[str, ...], str]]:
    """A row's trainings: name -> (its config, the precisions sampled, the precision whose
    uncertainty is measured)."""
    post = TrainConfig(dataset=dataset, arch=arch, epochs=cfg.epochs_for(arch), seed=cfg.seed)
    plans = {"post-hoc": (post, cfg.precisions, "full"),
             "sampling-aware": (sampling_aware_config(post, cfg.coin, cfg.estimator),
                                cfg.precisions, "full")}
    if cfg.train_bits is not None:
        plans["sampling-aware-bits"] = (sampling_aware_config(post, cfg.train_bits,
                                                              cfg.estimator),
                                        (cfg.train_bits,), cfg.train_bits)
    return plans


def plan(cfg: SamplingAwareConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """Per row and training: the network, its passes per precision, its uncertainty."""
    rows: dict[str, Any] = {}
    for dataset in cfg.datasets:
        for arch in cfg.archs:
            row = rows[f"{dataset} {arch}"] = {}
            for training, (tc, precisions, own) in trainings(cfg, dataset, arch).items():
                log(f"== {dataset} {t1.NETWORK[arch]}, {training}: train {tc.epochs} epochs, "
                    f"sample {cfg.samples} passes at {', '.join(precisions)}")
                trained = train_job(tc, cfg, log)
                samplers = {p: t1.sample_job(trained, p, cfg, log) for p in precisions}
                row[training] = {"train": trained, "sampled": samplers, "uncertainty":
                                 uncertainty_job(trained, samplers[own], dataset, own, cfg, log)}
    return rows


def write_report(cfg: SamplingAwareConfig, results: dict[str, Any], store: JobStore,
                 log: Callable[[str], None]) -> dict[str, Any]:
    """The three trainings of every row side by side: accuracy, uncertainty, OoD, ECE."""
    rows = []
    for key, row in results.items():
        dataset, arch = key.split()
        plans = trainings(cfg, dataset, arch)
        rows.append({"dataset": dataset, "arch": arch, "network": t1.NETWORK[arch],
                     "epochs": cfg.epochs_for(arch), "trainings": {
                         training: {"coin": plans[training][0].sampling_aware,
                                    "dropout": plans[training][0].dropout, "train": r["train"],
                                    "train_job": r["train"]["job"], "sampled": r["sampled"],
                                    "uncertainty_precision": plans[training][2],
                                    "uncertainty": r["uncertainty"]}
                         for training, r in row.items()}})
    return report.write(cfg, rows)


EXPERIMENT = Experiment(
    title="paper 000 Table I with sampling-aware training beside the post-hoc conversion",
    config=SamplingAwareConfig, plan=plan, report=write_report,
    heading="Table I, paper 000: sampling-aware training beside post-hoc (accuracy %)",
    datasets=lambda cfg: (*cfg.datasets, *(OTHER[d] for d in cfg.datasets if d in OTHER)))
