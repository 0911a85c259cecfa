"""Every method on one task, at one number of passes: accuracy, OoD AUROC and what an
inference costs (``synsample reproduce costs``).

One row per method as its paper would run it on MNIST: scANN's MLP with 8- and 4-bit coins
(paper 000), the NSM MLP with blank-out synapses (paper 002), the deep stochastic-computing
MLP with s-MTJ streams of 100 bits (paper 003), and LeNet-5 under SpinBayes, Bayes-by-Backprop,
MC-Dropout, MC-DropConnect and a deep ensemble (paper 004). Each network is the cached training
job of its own experiment; each row's metrics
([`evaluate_model`][synsample.evaluate.evaluate_model]) and its cost
([`measure`][synsample.hardware.measure], priced by the assumption set, which is part of the cost
job's key) are cached jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from synsample import checkpoint, data, hardware
from synsample.config_args import option, positive_int
from synsample.data.ood import OTHER
from synsample.evaluate import convert_trained, evaluate_model
from synsample.experiments import nsm
from synsample.experiments.jobs import Job, JobStore
from synsample.experiments.options import RunOptions
from synsample.experiments.registry import Experiment
from synsample.experiments.scann_table1 import DEFAULT_EPOCHS
from synsample.experiments.training import train_job
from synsample.report import costs as report
from synsample.train import TrainConfig


@dataclass(frozen=True)
class Row:
    """One method as the comparison runs it: ``train(dataset, seed)`` gives its network's
    training config (one per ensemble member), ``options`` go to `methods.convert`."""

    label: str
    method: str
    randomness: str
    train: Callable[[str, int], TrainConfig]
    options: dict[str, Any] = field(default_factory=dict)
    members: int = 1


def _scann(dataset: str, seed: int) -> TrainConfig:
    return TrainConfig(dataset=dataset, arch="mlp", seed=seed, epochs=DEFAULT_EPOCHS["mlp"])


def _nsm(dataset: str, seed: int) -> TrainConfig:
    return nsm.network_config("nsm-mlp", nsm.PiMnistConfig(dataset=dataset, seed=seed),
                              "bernoulli:0.5")


def _sc(dataset: str, seed: int) -> TrainConfig:
    return TrainConfig.for_arch("sc-mlp3", dataset=dataset, epochs=10, seed=seed, states=5,
                                sc_length=100)


def _lenet(arch: str) -> Callable[[str, int], TrainConfig]:
    return lambda dataset, seed: TrainConfig.for_arch(arch, dataset=dataset, epochs=10,
                                                      seed=seed)


ROWS = (
    Row("scANN, MLP 784-400-10", "scann", "8-bit coins (CMOS)", _scann, {"precision": "8"}),
    Row("scANN, MLP 784-400-10", "scann", "4-bit coins (CMOS)", _scann, {"precision": "4"}),
    Row("NSM, MLP 784-300x3-10", "nsm", "blank-out coins, p = 0.5 (CMOS)", _nsm),
    Row("SC, MLP 784-392-196-98-10", "sc", "s-MTJ streams, L = 100, 5 states", _sc,
        {"stream_length": 100, "bitstream": "mtj"}),
    Row("SpinBayes, LeNet-5", "spinbayes", "SOT-MTJ arbiter, N = 5, Q = 4",
        _lenet("lenet5-bbb")),
    Row("Bayes-by-Backprop, LeNet-5", "bbb", "Gaussian weights (CMOS)", _lenet("lenet5-bbb")),
    Row("MC-Dropout, LeNet-5", "mc-dropout", "dropout coins (CMOS)", _lenet("lenet5-dropout")),
    Row("MC-DropConnect, LeNet-5", "mc-dropconnect", "DropConnect coins (CMOS)",
        _lenet("lenet5-dropconnect")),
    Row("deep ensemble, 5 x LeNet-5", "ensemble", "none (pass k: member k mod 5)",
        _lenet("lenet5"), members=5),
)
OOD_SETS = ("other", "gaussian-noise")
#: the uncertainty score every row's OoD AUROC uses (defined for every method)
SCORE = "predictive-entropy"


@dataclass(kw_only=True)
class CostsConfig(RunOptions):
    """``reproduce costs``: the methods priced and the cost assumptions."""

    dataset: str = option("mnist", "the dataset every method runs on", choices=tuple(OTHER))
    samples: int = option(20, "passes per inference", parse=positive_int)
    ood_items: int = option(2000, "items per OoD set", parse=positive_int)
    epochs: int | None = option(None, "training epochs of every network", parse=positive_int,
                                default_text="each network's own: scANN 100, NSM 30, SC and "
                                             "LeNet-5 10")
    assumptions: hardware.CostAssumptions = option(
        hardware.DEFAULT, "JSON file of energies per operation, random bit and weight bit read "
        "that replace the defaults (see synsample.hardware)", flag="--cost-assumptions",
        metavar="FILE", parse=str, build=hardware.load_assumptions,
        default_text="synsample.hardware's")
    #: the methods priced, one row each
    rows: tuple[Row, ...] = ROWS


def _model(row: Row, trained: list[Job], folder: Path, cfg: CostsConfig):
    nets = [checkpoint.load_model(folder.parent / j.name / "checkpoint")[0] for j in trained]
    options = dict(row.options)
    precision = options.pop("precision", "full")
    return convert_trained(row.method, nets, cfg.dataset, precision, options, cfg.data_path,
                           cfg.seed)


def _test(cfg: CostsConfig) -> data.Dataset:
    test = data.load(cfg.dataset, "test", path=cfg.data_path)
    return test if cfg.limit is None else test.subset(cfg.limit)


def _config(row: Row, trained: list[Job], cfg: CostsConfig) -> dict[str, Any]:
    return {"method": row.method, "options": row.options, "train": [j.key for j in trained],
            "samples": cfg.samples, "seed": cfg.seed}


def eval_job(row: Row, trained: list[Job], cfg: CostsConfig, log: Callable[[str], None]) -> Job:
    """Accuracy, calibration and OoD detection of one method's passes (the row's networks
    converted with its options).

    Args:
        row: the method as the comparison runs it.
        trained: its networks' training jobs (one per ensemble member).
        cfg: the experiment's config.
        log: where progress lines go.

    Returns:
        the job.
    """
    config = {**_config(row, trained, cfg), "mode": cfg.mode, "limit": cfg.limit,
              "ood_items": cfg.ood_items, "ood_sets": OOD_SETS, "score": SCORE}

    def run(folder: Path) -> dict[str, Any]:
        result, _, _ = evaluate_model(_model(row, trained, folder, cfg), _test(cfg),
                                      samples=cfg.samples, seed=cfg.seed, mode=cfg.mode,
                                      score=SCORE, ood_items=cfg.ood_items, ood_sets=OOD_SETS,
                                      progress=cfg.progress, desc=row.label, device=cfg.device)
        result.pop("reliability")
        log(f"{row.label}, {row.randomness}: accuracy "
            f"{100 * result['summary']['accuracy']:.2f}%")
        return result

    return Job("costs-eval", config, run, needs=tuple(trained))


def cost_job(row: Row, trained: list[Job], cfg: CostsConfig, log: Callable[[str], None]) -> Job:
    """The cost of one inference of the row's method
    ([`synsample.hardware.measure`][synsample.hardware.measure]), priced by ``cfg.assumptions``
    (part of the key: new prices, new job; the evaluation is reused).

    Args:
        row: the method as the comparison runs it.
        trained: its networks' training jobs.
        cfg: the experiment's config.
        log: where progress lines go.

    Returns:
        the job.
    """
    config = {**_config(row, trained, cfg), "assumptions": cfg.assumptions.as_dict()}

    def run(folder: Path) -> dict[str, Any]:
        cost = hardware.measure(_model(row, trained, folder, cfg), _test(cfg).images,
                                cfg.samples, seed=cfg.seed, assumptions=cfg.assumptions)
        log(f"{row.label}, {row.randomness}: {cost['per_inference']['energy_nj']:,.1f} nJ per "
            "inference")
        return cost

    return Job("costs-measure", config, run, needs=tuple(trained))


def plan(cfg: CostsConfig, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Per method: its networks, the evaluation of its passes and the measurement of its
    cost."""
    planned = []
    for row in cfg.rows:
        configs = [row.train(cfg.dataset, cfg.seed + i) for i in range(row.members)]
        if cfg.epochs is not None:
            configs = [replace(tc, epochs=cfg.epochs) for tc in configs]
        trained = [train_job(tc, cfg, log) for tc in configs]
        planned.append({"label": row.label, "method": row.method, "randomness": row.randomness,
                        "metrics": eval_job(row, trained, cfg, log),
                        "cost": cost_job(row, trained, cfg, log)})
    return planned


def write_report(cfg: CostsConfig, results: list[dict[str, Any]], store: JobStore,
                 log: Callable[[str], None]) -> dict[str, Any]:
    """Accuracy and OoD AUROC beside energy, random bits and weight memory, per method."""
    return report.write(cfg, results, SCORE)


EXPERIMENT = Experiment(
    title="every method on MNIST at 20 passes: accuracy and OoD AUROC beside the energy, random "
          "bits and weight memory of one inference",
    config=CostsConfig, plan=plan, report=write_report,
    heading="Every method on {dataset}, {samples} passes: accuracy, OoD AUROC and cost per "
            "inference",
    datasets=lambda cfg: (cfg.dataset, OTHER[cfg.dataset]))
