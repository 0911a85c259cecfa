"""Paper 004's experiments on MNIST with LeNet-5 (``spinbayes-mnist``): SpinBayes against
Bayes-by-Backprop, MC-Dropout, MC-DropConnect and a deep ensemble, through one engine and one
set of metrics.

- Table 1 (MNIST row): prediction error (classification by the mean of the passes' softmax,
  eq. 4), R_iu, R_cc and UA at the threshold fraction ``ratio_threshold`` of the predictive
  entropy (the full sweep is in ``metrics.json``);
- Table 3 (MNIST row): OoD detection with the paper's rule (an input is rejected when the 99%
  quantile of its passes' maximum probability is below 90%) and by AUROC, on every OoD set we
  have (SVHN and STL10 are not reachable from these machines);
- section 4.4: n-way inference, n = 1, 2, 3;
- a sweep of Q (bits) x N (crossbars): error, mean predictive entropy, OoD AUROC;
- Fig. 7 / section 4.3.2: memory of each method from the parameter counts (LeNet-5 and a
  ResNet-18-shaped network built locally), SpinBayes at N x Q bits per parameter against
  32-bit MC methods, Bayes-by-Backprop (mean and standard deviation) and a 5-member ensemble;
- Tables 4 and 5: SpinBayes' energy per image for 10 passes, from the operations and arbiter
  bits counted on test images by `synsample.hardware`, priced with Table 4's energies.

Every network is a cached train job and every evaluation a cached job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synsample import checkpoint, data, methods
from synsample.config_args import option, positive_int
from synsample.data.ood import OTHER
from synsample.evaluate import convert_trained, evaluate_model
from synsample.experiments.jobs import Job, JobStore
from synsample.experiments.options import RunOptions
from synsample.experiments.registry import Experiment
from synsample.experiments.training import train_job
from synsample.report import spinbayes as report
from synsample.train import TrainConfig

METHODS = ("mc-dropout", "mc-dropconnect", "bbb", "spinbayes", "ensemble")
ARCH_OF = {"mc-dropout": "lenet5-dropout", "mc-dropconnect": "lenet5-dropconnect",
           "bbb": "lenet5-bbb", "spinbayes": "lenet5-bbb", "ensemble": "lenet5"}
WAYS = (1, 2, 3)
#: how SpinBayes scales a layer before eq. 3 (part of the evaluation's cache key)
GAIN_RULE = "per-layer max |posterior mean|"
SWEEP_BITS = (2, 3, 4, 6, 8)
#: Table 5 compares the energy of one MNIST image's 10 passes; counted on this many images
ENERGY_PASSES, ENERGY_ITEMS = 10, 100
SWEEP_CROSSBARS = (2, 4, 8, 16)


@dataclass(kw_only=True)
class SpinBayesConfig(RunOptions):
    """``reproduce spinbayes-mnist``: paper 004's networks, crossbars and Q x N sweep."""

    dataset: str = option("mnist", "the dataset (the paper's: mnist)")
    epochs: int = option(10, "training epochs of every LeNet-5", parse=positive_int)
    samples: int = option(20, "passes per test item", parse=positive_int)
    crossbars: int = option(methods.spinbayes.DEFAULT_CROSSBARS, "SpinBayes: crossbars N per "
                            "layer (posterior samples)", parse=positive_int)
    bits: int = option(methods.spinbayes.DEFAULT_BITS, "SpinBayes: crossbar weight bits Q",
                       parse=positive_int)
    members: int = option(methods.ensemble.DEFAULT_MEMBERS, "deep ensemble: members",
                          parse=positive_int)
    ratio_threshold: float = option(0.5, "threshold fraction T of the uncertainty ratios "
                                    "R_cc, R_iu, UA (0.5 gives the paper's pattern; with errors "
                                    "this rare the UA-maximising T is degenerate, near 1)")
    ood_items: int = option(2000, "items per OoD set", parse=positive_int)
    sweep: bool = option(True, "the Q x N quantization sweep")
    sweep_bits: tuple[int, ...] = option(SWEEP_BITS, "the sweep's Q", parse=positive_int)
    sweep_crossbars: tuple[int, ...] = option(SWEEP_CROSSBARS, "the sweep's N",
                                              parse=positive_int)


def _train(arch: str, cfg: SpinBayesConfig, log: Callable[[str], None], seed: int) -> Job:
    tc = TrainConfig.for_arch(arch, dataset=cfg.dataset, epochs=cfg.epochs, seed=seed)
    return train_job(tc, cfg, log)


def eval_job(method: str, trained: list[Job], cfg: SpinBayesConfig,
             log: Callable[[str], None], crossbars: int | None = None, bits: int | None = None,
             ways: int = 1, ood_sets: tuple[str, ...] | None = None) -> Job:
    """Every metric of one method (its model made from the ``trained`` jobs' checkpoints)."""
    spin = method == "spinbayes"
    config = {"method": method, "train": [j.key for j in trained], "samples": cfg.samples,
              "seed": cfg.seed, "mode": cfg.mode, "limit": cfg.limit,
              "ood_items": cfg.ood_items, "ood_sets": ood_sets,
              **({"crossbars": crossbars or cfg.crossbars, "bits": bits or cfg.bits,
                  "ways": ways, "gain": GAIN_RULE} if spin else {})}

    def run(folder: Path) -> dict[str, Any]:
        nets = [checkpoint.load_model(folder.parent / j.name / "checkpoint")[0] for j in trained]
        test = data.load(cfg.dataset, "test", path=cfg.data_path)
        if cfg.limit is not None:
            test = test.subset(cfg.limit)
        options = {"crossbars": config["crossbars"], "ways": ways} if spin else {}
        sto = convert_trained(method, nets, cfg.dataset, config["bits"] if spin else "full",
                              options, cfg.data_path, cfg.seed)
        result, _, _ = evaluate_model(sto, test, samples=cfg.samples, seed=cfg.seed,
                                      mode=cfg.mode, score="predictive-entropy",
                                      ood_items=cfg.ood_items, ood_sets=ood_sets,
                                      progress=cfg.progress, desc=method, device=cfg.device)
        result.pop("reliability")
        s = result["summary"]
        setting = (f" N={config['crossbars']} Q={config['bits']} n={ways}" if spin else "")
        log(f"{method}{setting}: error {100 * (1 - s['mean_probs_accuracy']):.2f}%")
        return {"method": method, "model": sto.describe(), **result}

    return Job("spinbayes-eval", config, run, needs=tuple(trained))


def memory_rows(cfg: SpinBayesConfig) -> list[dict[str, Any]]:
    """Model size (MB) of each method for LeNet-5 and larger topologies (parameter counts of
    the networks, built locally)."""
    from synsample.models.sizes import parameter_counts

    rows = []
    for name, params in parameter_counts().items():
        bits = {"mc-dropout / mc-dropconnect": 32, "bbb": 64,
                f"ensemble ({cfg.members} members)": 32 * cfg.members,
                f"spinbayes (N = {cfg.crossbars}, Q = {cfg.bits})": cfg.crossbars * cfg.bits}
        rows.append({"network": name, "parameters": params,
                     "megabytes": {k: params * b / 8 / 1e6 for k, b in bits.items()}})
    return rows


def plan(cfg: SpinBayesConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """Every method's networks and evaluation, the n-way evaluations and the Q x N sweep."""
    trained = {m: [_train(ARCH_OF[m], cfg, log, cfg.seed)] for m in METHODS if m != "ensemble"}
    trained["ensemble"] = [_train("lenet5", cfg, log, cfg.seed + i) for i in range(cfg.members)]
    main = {m: eval_job(m, trained[m], cfg, log) for m in METHODS}
    ways = {n: main["spinbayes"] if n == 1 else
            eval_job("spinbayes", trained["spinbayes"], cfg, log, ways=n) for n in WAYS}
    sweep = {f"{q}x{n}": eval_job("spinbayes", trained["spinbayes"], cfg, log, n, q,
                                  ood_sets=("gaussian-noise", "other"))
             for q in cfg.sweep_bits for n in cfg.sweep_crossbars} if cfg.sweep else {}
    return {"training": trained, "main": main, "ways": ways, "sweep": sweep}


def write_report(cfg: SpinBayesConfig, results: dict[str, Any], store: JobStore,
                 log: Callable[[str], None]) -> dict[str, Any]:
    """Tables 1 and 3 beside the paper's, n-way inference, the sweep, memory and Table 5's
    energy (counted on test images with the trained posterior)."""
    bbb, _ = checkpoint.load_model(store.root / results["training"]["spinbayes"][0]["job"]
                                   / "checkpoint")
    test = data.load(cfg.dataset, "test", path=cfg.data_path)
    energy = methods.spinbayes.energy_per_image(
        methods.spinbayes.convert(bbb, cfg.crossbars, cfg.bits, seed=cfg.seed),
        test.images[:ENERGY_ITEMS], passes=ENERGY_PASSES, seed=cfg.seed)
    return report.write(cfg, results["training"], results["main"], results["ways"],
                        results["sweep"], memory_rows(cfg), energy)


EXPERIMENT = Experiment(
    title="paper 004 Tables 1, 3-5 on MNIST, LeNet-5: SpinBayes against Bayes-by-Backprop, "
          "MC-Dropout, MC-DropConnect and a deep ensemble",
    config=SpinBayesConfig, plan=plan, report=write_report,
    heading="Table 1, paper 004 (MNIST, LeNet-5; %, ours beside the paper's)",
    datasets=lambda cfg: (cfg.dataset, *((OTHER[cfg.dataset],) if cfg.dataset in OTHER
                                         else ())))
