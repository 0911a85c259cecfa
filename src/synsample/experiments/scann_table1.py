"""Table I of paper 000: deterministic and scANN accuracy at full, 8- and 4-bit coin precision,
for MNIST and Fashion-MNIST, MLP 784-400-10 and conv 784-[32x3x3]-100-10.

Each row is a train job and one sample job per precision; every job is cached by its config's
hash in the job store, and the report is built from the job results alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from synsample import metrics, papers
from synsample.config_args import option, positive_int
from synsample.data.ood import OTHER
from synsample.evaluate import SamplingOptions, sample_checkpoint
from synsample.experiments.jobs import Job, JobStore
from synsample.experiments.options import RunOptions
from synsample.experiments.registry import Experiment
from synsample.experiments.training import train_job
from synsample.report import scann as scann_report
from synsample.train import TrainConfig

PRECISIONS = ("full", "8", "4")
NETWORK = {"mlp": "784-400-10", "conv": "784-[32x3x3]-100-10"}
ARCHS = tuple(NETWORK)
#: the datasets of paper 000's tables, each with the other as its out-of-distribution set
DATASETS = tuple(OTHER)
#: default epochs per architecture: the paper's 100 where 2 CPU cores allow it
DEFAULT_EPOCHS = {"mlp": 100, "conv": 10}


@dataclass(kw_only=True)
class ScannSampling(RunOptions, SamplingOptions):
    """The training and passes shared by paper 000's scANN experiments (K passes, adaptive
    stopping: [`SamplingOptions`][synsample.evaluate.SamplingOptions])."""

    epochs: int | None = option(None, "training epochs", parse=positive_int,
                                default_text="the architecture's: mlp 100 (the paper's), "
                                             "conv 10")

    dropout: float | None = option(None, "dropout rate after the hidden layers in training "
                                   "(the paper names dropout, not its rate)",
                                   default_text="0.5, the rate of the paper's reference [22]")

    def epochs_for(self, arch: str) -> int:
        """The training epochs of ``arch``: ``epochs``, else the architecture's default."""
        return self.epochs or DEFAULT_EPOCHS[arch]


@dataclass(kw_only=True)
class Table1Config(ScannSampling):
    """``reproduce scann-table1``: the rows (datasets x networks) and coin precisions."""

    datasets: tuple[str, ...] = option(("mnist",), "datasets of the rows", flag="--dataset",
                                       choices=DATASETS)
    archs: tuple[str, ...] = option(("mlp",), "networks of the rows: paper 000's MLP "
                                    "784-400-10 or conv net 784-[32x3x3]-100-10", flag="--arch",
                                    choices=ARCHS)
    precisions: tuple[str, ...] = option(PRECISIONS, "coin precisions sampled: full, or bits "
                                         "such as 8 or 4", flag="--precision")
    hidden: int | None = option(None, "hidden units of the rows' networks (paper 000: 400 in "
                                "Table I's MLP, 100 in its conv net; section II.B names 40)",
                                parse=positive_int, metavar="N",
                                default_text="the paper's: 400 (mlp), 100 (conv)")


def network(arch: str, hidden: int | None = None) -> str:
    """The row's network as the paper writes it, with ``hidden`` units when given."""
    if hidden is None:
        return NETWORK[arch]
    return f"784-{hidden}-10" if arch == "mlp" else f"784-[32x3x3]-{hidden}-10"


def sample_job(trained: Job, precision: str, cfg: ScannSampling,
               log: Callable[[str], None]) -> Job:
    """K scANN passes of a trained network at one coin precision; saves the Prediction."""
    config = {"train": trained.key, "method": "scann", "precision": precision,
              "samples": cfg.samples, "seed": cfg.seed, "mode": cfg.mode, "limit": cfg.limit}
    adaptive = cfg.adaptive_stop()
    if adaptive is not None:  # (absent otherwise, so full-K jobs keep their cache keys)
        config["adaptive"] = asdict(adaptive)

    def run(folder: Path) -> dict[str, Any]:
        ck = folder.parent / trained.name / "checkpoint"
        pred, test, _ = sample_checkpoint(ck, "scann", precision, cfg.samples, cfg.seed,
                                          cfg.mode, cfg.data_path, cfg.limit, cfg.progress,
                                          adaptive=adaptive, device=cfg.device)
        pred.save(folder / "prediction.safetensors")
        summary = metrics.summarize(pred, test.labels)
        log(f"scANN {precision}: first choice {100 * summary['accuracy']:.2f}% over "
            f"{cfg.samples} passes ({pred.seconds:.0f} s)")
        return {"precision": precision, "coin": pred.info.get("coin"), **summary}

    return Job("sample", config, run, needs=(trained,))


def row_jobs(cfg: ScannSampling, log: Callable[[str], None],
             precisions: tuple[str, ...] | None = None) -> dict[str, dict[str, Any]]:
    """Each row's training job and its sampling job per precision, by ``"dataset arch"``.

    Args:
        cfg: the rows are ``cfg.datasets`` x ``cfg.archs``.
        log: where progress lines go.
        precisions: the coin precisions sampled (default ``cfg.precisions``).
    """
    precisions = precisions or cfg.precisions
    rows = {}
    for dataset in cfg.datasets:
        for arch in cfg.archs:
            epochs = cfg.epochs_for(arch)
            hidden = getattr(cfg, "hidden", None)
            log(f"== {dataset} {network(arch, hidden)}: train {epochs} epochs, sample "
                f"{cfg.samples} passes at {', '.join(precisions)}")
            tc = TrainConfig.for_arch(arch, dataset=dataset, epochs=epochs, seed=cfg.seed,
                                      dropout=cfg.dropout, hidden=hidden)
            trained = train_job(tc, cfg, log)
            rows[f"{dataset} {arch}"] = {"train": trained, "sampled": {
                p: sample_job(trained, p, cfg, log) for p in precisions}}
    return rows


def row_results(results: dict[str, dict[str, Any]], hidden: int | None = None
                ) -> list[dict[str, Any]]:
    """The rows of [`row_jobs`][synsample.experiments.scann_table1.row_jobs] from their jobs'
    results, as the reports read them (``hidden``: the rows' hidden units, when set)."""
    rows = []
    for key, r in results.items():
        dataset, arch = key.split()
        rows.append({"dataset": dataset, "arch": arch, "network": network(arch, hidden),
                     "train": r["train"], "train_job": r["train"]["job"],
                     "sample_jobs": {p: s["job"] for p, s in r["sampled"].items()},
                     "sampled": r["sampled"], "paper": papers.SCANN_TABLE1.get((dataset, arch))})
    return rows


def report(cfg: Table1Config, results: dict[str, Any], store: JobStore,
           log: Callable[[str], None]) -> dict[str, Any]:
    """Table I beside the paper's: ``report.md``, ``metrics.json`` and figures."""
    return scann_report.write_table1(cfg, row_results(results, cfg.hidden), store.root)


EXPERIMENT = Experiment(
    title="paper 000 Table I: deterministic and scANN accuracy at full, 8- and 4-bit coins",
    config=Table1Config, plan=row_jobs, report=report,
    heading="Table I, paper 000 (accuracy %; each cell: ours (paper, difference in points))",
    datasets=lambda cfg: cfg.datasets,
    about="Default: the MNIST MLP row.",
    presets={"all-rows": ("all four rows: MNIST and Fashion-MNIST x MLP and conv net",
                          {"datasets": DATASETS, "archs": ARCHS})})
