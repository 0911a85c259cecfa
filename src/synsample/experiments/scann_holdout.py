"""Fig. 7 of paper 000: one class under-represented in training, its uncertainty after sampling.

For each fraction removed (default 0, 50, 90, 99%) the network is retrained without that share
of the class's training items (a seeded random subset) and sampled at full precision; reported
are the mean vote entropy and information (eq. 4-5) of the test items of the held-out class
(H-Out, I-Out) and of the other classes (H-In, I-In), and the accuracies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from synsample import data
from synsample.checkpoint import load_deterministic
from synsample.experiments import scann_table1 as t1
from synsample.experiments.jobs import JobStore, make_runner
from synsample.io import write_json, write_text
from synsample.prediction import Prediction
from synsample.report import plots
from synsample.report.markdown import pct, table, text_table
from synsample.train import TrainConfig

NAME = "scann-holdout"


@dataclass
class HoldoutConfig:
    """``reproduce scann-holdout``: the class kept rare, the fractions removed, run settings."""
    dataset: str = "mnist"
    arch: str = "mlp"
    holdout_class: int = 9
    fractions: tuple[float, ...] = (0.0, 0.5, 0.9, 0.99)
    #: train through these coins (issue 20, e.g. ``full``; None: post-hoc, the paper's)
    sampling_aware: str | None = None
    sa_estimator: str = "lrt"
    sampling: t1.Table1Config = field(default_factory=t1.Table1Config)


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


def run(cfg: HoldoutConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    s = cfg.sampling
    if s.data_path is None:
        data.fetch(cfg.dataset, log=log)
    classes = data.spec(cfg.dataset).classes
    if not 0 <= cfg.holdout_class < len(classes):
        from synsample.errors import ConfigError

        raise ConfigError(f"--holdout-class must be 0 to {len(classes) - 1}")
    store = JobStore(s.jobs)
    runner = make_runner(s.runner, store, log)
    epochs = s.epochs or t1.DEFAULT_EPOCHS[cfg.arch]
    planned = []
    for fraction in cfg.fractions:
        held = cfg.holdout_class if fraction > 0 else None  # 0%: the ordinary network
        tc = TrainConfig(dataset=cfg.dataset, arch=cfg.arch, epochs=epochs, seed=s.seed,
                         holdout_class=held, holdout_fraction=fraction if held is not None
                         else 0.0)
        if cfg.sampling_aware is not None:
            from synsample.experiments.sampling_aware import sampling_aware_config

            tc = sampling_aware_config(tc, cfg.sampling_aware, cfg.sa_estimator)
        log(f"== {cfg.dataset} {cfg.arch}: class {classes[cfg.holdout_class]} with "
            f"{100 * fraction:g}% of its training items removed")
        trained = t1.train_job(tc, s.data_path, s.progress, log, s.device, s.tracking)
        planned.append((fraction, trained, t1.sample_job(trained, "full", s, log)))
    runner.run([sampled for _, _, sampled in planned])  # with the training jobs they need
    rows = []
    for fraction, trained, sampled in planned:
        pred = Prediction.load(store.folder(sampled) / "prediction.safetensors")
        labels = load_deterministic(store.folder(trained))["labels"][: pred.num_items]
        rows.append({"fraction": fraction, **class_statistics(pred, labels, cfg.holdout_class),
                     "train_job": trained.name, "sample_job": sampled.name})
    return _report(cfg, rows, classes, epochs, store)


def _report(cfg: HoldoutConfig, rows: list[dict[str, Any]], classes: tuple[str, ...],
            epochs: int, store: JobStore) -> dict[str, Any]:
    out = Path(cfg.sampling.out)
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
              "epochs": epochs, "samples": cfg.sampling.samples, "seed": cfg.sampling.seed,
              "rows": rows, "entropy_rises": rising, "figure": str(fig.relative_to(out))}
    write_json(out / "metrics.json", result)
    write_text(out / "report.md", "\n".join([
        f"# scANN with an under-represented class (paper 000, Fig. 7): {cfg.dataset}, "
        f"{cfg.arch}, class {classes[cfg.holdout_class]}", "",
        f"Trained {epochs} epochs per fraction"
        + ("" if cfg.sampling_aware is None else
           f" through `{cfg.sampling_aware}` coins (sampling-aware, issue 20)")
        + f", {cfg.sampling.samples} passes at full precision, "
        f"seed {cfg.sampling.seed}. H: mean vote entropy (eq. 4), I: mean information (eq. 5), "
        "in bits; Out: test items of the held-out class, In: the other classes.", "",
        table(header, table_rows), "", finding, "", f"![holdout]({fig.relative_to(out)})", "",
        f"Jobs: `{store.root}`.", ""]))
    result["terminal_table"] = text_table(header, table_rows)
    return result
