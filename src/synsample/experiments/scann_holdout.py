"""Fig. 7 of paper 000: one class under-represented in training, its uncertainty after sampling.

For each fraction removed (default 0, 50, 90, 99%) the network is retrained without that share
of the class's training items (a seeded random subset) and sampled at full precision; reported
are the mean vote entropy and information (eq. 4-5) of the test items of the held-out class
(H-Out, I-Out) and of the other classes (H-In, I-In), and the accuracies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from synsample import data
from synsample.checkpoint import load_deterministic
from synsample.config_args import option, percentage
from synsample.errors import ConfigError
from synsample.experiments import scann_table1 as t1
from synsample.experiments.jobs import JobStore
from synsample.experiments.registry import Experiment
from synsample.experiments.training import SamplingAwareOption, train_job
from synsample.io import write_json, write_text
from synsample.prediction import Prediction
from synsample.report import plots
from synsample.report.markdown import pct, table, text_table
from synsample.train import TrainConfig

NAME = "scann-holdout"


@dataclass(kw_only=True)
class HoldoutConfig(SamplingAwareOption, t1.ScannSampling):
    """``reproduce scann-holdout``: the class kept rare and the fractions of it removed."""

    dataset: str = option("mnist", "the dataset", choices=t1.DATASETS)
    arch: str = option("mlp", "the network: paper 000's MLP or conv net", choices=t1.ARCHS)
    holdout_class: int = option(9, "the class to under-represent in training")
    fractions: tuple[float, ...] = option((0.0, 0.5, 0.9, 0.99), "percentages of the class's "
                                          "training items removed, one network each",
                                          parse=percentage, metavar="PERCENT",
                                          default_text="0 50 90 99")
    def check(self) -> None:
        """The run options' checks, and a held-out class the dataset has."""
        super().check()
        classes = data.spec(self.dataset).classes
        if not 0 <= self.holdout_class < len(classes):
            raise ConfigError(f"--holdout-class must be 0 to {len(classes) - 1}")


def class_statistics(pred: Prediction, labels: torch.Tensor, cls: int) -> dict[str, Any]:
    """H-Out, I-Out (items of class ``cls``), H-In, I-In (the others) and accuracies."""
    entropy, info = pred.vote_entropy(), pred.information()
    out = labels == cls
    first = pred.first_choice()
    return {"H_out": entropy[out].mean().item(), "I_out": info[out].mean().item(),
            "H_in": entropy[~out].mean().item(), "I_in": info[~out].mean().item(),
            "accuracy": (first == labels).double().mean().item(),
            "accuracy_out": (first[out] == labels[out]).double().mean().item(),
            "accuracy_in": (first[~out] == labels[~out]).double().mean().item()}


def plan(cfg: HoldoutConfig, log: Callable[[str], None]) -> dict[float, Any]:
    """A network per fraction removed, each sampled at full precision (0%: the ordinary
    network)."""
    classes = data.spec(cfg.dataset).classes
    epochs = cfg.epochs_for(cfg.arch)
    jobs = {}
    for fraction in cfg.fractions:
        held = cfg.holdout_class if fraction > 0 else None
        tc = TrainConfig(dataset=cfg.dataset, arch=cfg.arch, epochs=epochs, seed=cfg.seed,
                         holdout_class=held, holdout_fraction=fraction if held is not None
                         else 0.0)
        tc = cfg.as_asked(tc)
        log(f"== {cfg.dataset} {cfg.arch}: class {classes[cfg.holdout_class]} with "
            f"{100 * fraction:g}% of its training items removed")
        trained = train_job(tc, cfg, log)
        jobs[fraction] = {"train": trained, "sampled": t1.sample_job(trained, "full", cfg, log)}
    return jobs


def report(cfg: HoldoutConfig, results: dict[float, Any], store: JobStore,
           log: Callable[[str], None]) -> dict[str, Any]:
    """The held-out class's entropy and information against the fraction removed."""
    rows = []
    for fraction, r in results.items():
        pred = Prediction.load(store.root / r["sampled"]["job"] / "prediction.safetensors")
        labels = load_deterministic(store.root / r["train"]["job"])["labels"][: pred.num_items]
        rows.append({"fraction": fraction, **class_statistics(pred, labels, cfg.holdout_class),
                     "train_job": r["train"]["job"], "sample_job": r["sampled"]["job"]})
    return _report(cfg, rows, data.spec(cfg.dataset).classes, cfg.epochs_for(cfg.arch), store)


def _report(cfg: HoldoutConfig, rows: list[dict[str, Any]], classes: tuple[str, ...],
            epochs: int, store: JobStore) -> dict[str, Any]:
    out = Path(cfg.out)
    fractions = [r["fraction"] for r in rows]
    fig = plots.holdout_curves(fractions, {k.replace("_", "-").replace("H-out", "H-Out")
                                           .replace("I-out", "I-Out").replace("H-in", "H-In")
                                           .replace("I-in", "I-In"): [r[k] for r in rows]
                                           for k in ("H_out", "H_in", "I_out", "I_in")},
                               out / "figures" / "holdout.png",
                               f"{cfg.dataset} {cfg.arch}, class {classes[cfg.holdout_class]}")
    header = ["removed", "H-Out", "H-In", "I-Out", "I-In", "accuracy", "held-out class",
              "other classes"]
    table_rows = [[f"{100 * r['fraction']:g}%", f"{r['H_out']:.3f}", f"{r['H_in']:.3f}",
                   f"{r['I_out']:.3f}", f"{r['I_in']:.3f}", pct(r["accuracy"], 2),
                   pct(r["accuracy_out"], 2), pct(r["accuracy_in"], 2)] for r in rows]
    rising = all(b["H_out"] >= a["H_out"] for a, b in zip(rows, rows[1:], strict=False))
    finding = ("The held-out class's entropy rises with every step of the fraction removed, as the "
               "paper found." if rising else "The held-out class's entropy does not rise at every "
               "step of the fraction removed: the paper's finding holds only in part here.")
    result = {"experiment": NAME, "dataset": cfg.dataset, "arch": cfg.arch,
              "holdout_class": cfg.holdout_class, "class_name": classes[cfg.holdout_class],
              "sampling_aware": cfg.sampling_aware,
              "epochs": epochs, "samples": cfg.samples, "seed": cfg.seed,
              "rows": rows, "entropy_rises": rising, "figure": str(fig.relative_to(out))}
    write_json(out / "metrics.json", result)
    write_text(out / "report.md", "\n".join([
        f"# scANN with an under-represented class (paper 000, Fig. 7): {cfg.dataset}, "
        f"{cfg.arch}, class {classes[cfg.holdout_class]}", "",
        f"Trained {epochs} epochs per fraction"
        + ("" if cfg.sampling_aware is None else
           f" through `{cfg.sampling_aware}` coins (sampling-aware, issue 20)")
        + f", {cfg.samples} passes at full precision, "
        f"seed {cfg.seed}. H: mean vote entropy (eq. 4), I: mean information (eq. 5), "
        "in bits; Out: test items of the held-out class, In: the other classes.", "",
        table(header, table_rows), "", finding, "", f"![holdout]({fig.relative_to(out)})", "",
        f"Jobs: `{store.root}`.", ""]))
    result["terminal_table"] = text_table(header, table_rows)
    return result


EXPERIMENT = Experiment(
    title="paper 000 Fig. 7: entropy and information of a class under-represented in training",
    config=HoldoutConfig, plan=plan, report=report,
    heading="Class {class_name} under-represented, paper 000 Fig. 7",
    datasets=lambda cfg: (cfg.dataset,))
