"""Fig. 6 of paper 000: vote entropy of correct and incorrect items, MNIST and Fashion-MNIST.

The networks and samples are the Table I jobs at full precision (same configs, so a Table I run
serves this one from the shared job store, and the other way round).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from synsample import metrics
from synsample.checkpoint import load_deterministic
from synsample.config_args import option
from synsample.experiments import scann_table1 as t1
from synsample.experiments.jobs import JobStore
from synsample.experiments.registry import Experiment
from synsample.io import write_json, write_text
from synsample.prediction import Prediction
from synsample.report import plots
from synsample.report.markdown import pct, table, text_table

NAME = "scann-entropy"
#: entropy thresholds (bits) at which the share of errors among items above is reported
THRESHOLDS = (0.5, 1.0, 1.5, 2.0, 2.5)


def entropy_groups(entropy: torch.Tensor, correct: torch.Tensor) -> dict[str, Any]:
    """Mean entropy of correct and incorrect items, the share of errors above thresholds, and
    how well entropy separates errors from correct items (AUROC, errors positive)."""
    def mean(x: torch.Tensor) -> float | None:
        return x.mean().item() if x.numel() else None

    above = {str(t): {"items": int((entropy >= t).sum()),
                      "error_share": mean((~correct[entropy >= t]).to(torch.float64))}
             for t in THRESHOLDS}
    detect = (metrics.detection_metrics(entropy[correct], entropy[~correct])
              if correct.any() and (~correct).any() else None)
    return {"mean_entropy_correct": mean(entropy[correct]),
            "mean_entropy_incorrect": mean(entropy[~correct]),
            "correct": int(correct.sum()), "incorrect": int((~correct).sum()),
            "above": above, "error_detection": detect}


@dataclass(kw_only=True)
class EntropyConfig(t1.ScannSampling):
    """``reproduce scann-entropy``: the rows whose full-precision passes are read."""

    datasets: tuple[str, ...] = option(t1.DATASETS, "datasets of the rows", flag="--dataset",
                                       choices=t1.DATASETS)
    archs: tuple[str, ...] = option(("mlp",), "networks of the rows (paper 000's MLP or conv "
                                    "net)", flag="--arch", choices=t1.ARCHS)


def plan(cfg: EntropyConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """Table I's full-precision jobs of each row (shared with ``scann-table1``)."""
    return t1.row_jobs(cfg, log, precisions=("full",))


def report(cfg: EntropyConfig, results: dict[str, Any], store: JobStore,
           log: Callable[[str], None]) -> dict[str, Any]:
    """Entropy histograms of correct and incorrect items per row, and the error detection."""
    rows = t1.row_results(results)
    out = cfg.out
    result_rows, sections, summary = [], [], []
    for row in rows:
        pred = Prediction.load(store.root / row["sample_jobs"]["full"] / "prediction.safetensors")
        labels = load_deterministic(store.root / row["train_job"])["labels"][: pred.num_items]
        entropy = pred.vote_entropy()
        correct = pred.first_choice() == labels
        groups = entropy_groups(entropy, correct)
        slug = f"{row['dataset']}-{row['arch']}"
        fig = plots.entropy_histograms(entropy, correct, math.log2(pred.num_classes),
                                       out / "figures" / f"{slug}-entropy.png",
                                       title=f"{row['dataset']} {row['network']}")
        result_rows.append({"dataset": row["dataset"], "arch": row["arch"],
                            "epochs": row["train"]["epochs"], "samples": pred.samples,
                            "accuracy": pred.accuracy(labels), **groups,
                            "figure": str(fig.relative_to(out))})
        det = groups["error_detection"]
        summary.append([f"{row['dataset']} {row['network']}", pct(pred.accuracy(labels), 2),
                        _f(groups["mean_entropy_correct"]), _f(groups["mean_entropy_incorrect"]),
                        "-" if det is None else f"{det['auroc']:.3f}"])
        sections += [f"## {row['dataset']}, {row['network']}", "",
                     table(["entropy at least (bits)", "items", "share of errors among them"],
                           [[t, v["items"], pct(v["error_share"])]
                            for t, v in groups["above"].items()]), "",
                     f"![entropy]({fig.relative_to(out)})", ""]
    header = ["row", "first choice", "mean H correct", "mean H incorrect",
              "AUROC of H for errors"]
    result = {"experiment": NAME, "rows": result_rows, "samples": cfg.samples, "seed": cfg.seed}
    write_json(out / "metrics.json", result)
    write_text(out / "report.md", "\n".join([
        "# scANN vote entropy of correct and incorrect items (paper 000, Fig. 6)", "",
        f"{cfg.samples} passes, full-precision coins, seed {cfg.seed}. The paper's finding: "
        "correct items are mostly low-entropy, incorrect items much more often high-entropy.", "",
        table(header, summary), "", *sections, f"Jobs: `{store.root}`.", ""]))
    result["terminal_table"] = text_table(header, summary)
    return result


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


EXPERIMENT = Experiment(
    title="paper 000 Fig. 6: vote entropy of correct and incorrect items",
    config=EntropyConfig, plan=plan, report=report,
    heading="Vote entropy (bits) of correct and incorrect items, paper 000 Fig. 6",
    datasets=lambda cfg: cfg.datasets)
