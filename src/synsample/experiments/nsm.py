"""Paper 002's experiments: Neural Sampling Machines against their baselines.

- ``nsm-pi-mnist`` (Table 1, Fig. 2): permutation-invariant MNIST, 784-300-300-300-10, the
  blank-out NSM (p = 0.5) against the sigmoid stochastic network (StNN), and the NSM with its
  weights multiplied by 0.1 at inference; the 15/50/85th percentiles of the last hidden layer's
  input over the first training steps.
- ``nsm-mnist-conv`` (Table 2, SI 4.9): the conv net of Table 6 as bNSM and gNSM against the
  deterministic CNN (dCNN).
- ``nsm-scale-invariance`` (section 3.2, SI 4.5): every hidden layer's weights times 0.1 at
  inference (and, separately, weights and biases), for the NSM with and without biases, the
  StNN and ReLU and sigmoid networks of the same shape.

Errors are those of the paper's test: classification by the mean of the softmax outputs of
100 sampled passes (``mean_probs``); the vote (plurality) error and the mean error of one pass
are reported beside it. Every network is a cached train job and every evaluation a cached job,
shared through the job store (the NSM of Table 1 serves the scale experiment too).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from synsample import checkpoint, data, engine, methods, metrics, papers
from synsample.config_args import option, positive_int
from synsample.evaluate import deterministic_outputs
from synsample.experiments.jobs import Job, JobStore
from synsample.experiments.options import RunOptions
from synsample.experiments.registry import Experiment
from synsample.experiments.training import train_job
from synsample.nn.nsm import NSMLayer, StochasticSigmoidLinear
from synsample.report import nsm as nsm_report
from synsample.train import TrainConfig

#: passes of the paper's test (section 3.3: 100 samples)
SAMPLES = 100
TRACE_STEPS = 200
SCALE = 0.1


@dataclass(kw_only=True)
class NSMConfig(RunOptions):
    """What paper 002's experiments share: the dataset, epochs and passes."""

    #: the experiment's name (the report's title and the paper's epochs)
    experiment: ClassVar[str]
    dataset: str = option("mnist", "the dataset (the paper's: mnist)")
    epochs: int = option(30, "training epochs of every network (the paper: "
                         "nsm-pi-mnist 1000, nsm-mnist-conv 200; 2 CPU cores allow fewer)",
                         parse=positive_int)
    samples: int = option(SAMPLES, "sampled passes per test item (the paper's 100)",
                          parse=positive_int)


@dataclass(kw_only=True)
class PiMnistConfig(NSMConfig):
    """``reproduce nsm-pi-mnist``: Table 1 and Fig. 2."""

    experiment: ClassVar[str] = "nsm-pi-mnist"


@dataclass(kw_only=True)
class MnistConvConfig(NSMConfig):
    """``reproduce nsm-mnist-conv``: Table 2's MNIST row."""

    experiment: ClassVar[str] = "nsm-mnist-conv"
    epochs: int = option(10, "training epochs of every network (the paper: 200; 2 CPU cores "
                         "allow fewer)", parse=positive_int)


@dataclass(kw_only=True)
class ScaleInvarianceConfig(NSMConfig):
    """``reproduce nsm-scale-invariance``: section 3.2."""

    experiment: ClassVar[str] = "nsm-scale-invariance"


def scaled(model: nn.Module, factor: float, biases: bool) -> nn.Module:
    """A copy of ``model`` with the weights of every hidden layer (all weighted layers but the
    read-out) multiplied by ``factor``, and their biases too if ``biases``."""
    model = copy.deepcopy(model)
    layers = [m for m in model.modules()
              if isinstance(m, NSMLayer | StochasticSigmoidLinear | nn.Linear | nn.Conv2d)]
    with torch.no_grad():
        for layer in layers[:-1]:
            layer.weight.mul_(factor)
            if biases and getattr(layer, "bias", None) is not None:
                layer.bias.mul_(factor)
    return model


def network_config(arch: str, cfg: NSMConfig, noise: str | None = None,
                    bias: bool | None = None) -> TrainConfig:
    """The training of one of paper 002's networks in this experiment.

    Args:
        arch: the architecture (``nsm-mlp``, ``stnn-mlp``, ``nsm-conv``, ...).
        cfg: the experiment's config (dataset, epochs, seed).
        noise: the NSM noise (``bernoulli:P`` or ``gaussian:SIGMA``; None: the architecture's).
        bias: NSM hidden layers with biases (None: the architecture's).

    Returns:
        the training config (with Fig. 2's input percentiles traced for the MLPs).
    """
    return TrainConfig.for_arch(arch, dataset=cfg.dataset, epochs=cfg.epochs, seed=cfg.seed,
                                noise=noise, bias=bias, trace_steps=TRACE_STEPS
                                if arch in ("nsm-mlp", "stnn-mlp") else None)


def evaluate_job(trained: Job, cfg: NSMConfig, scale: float = 1.0, biases: bool = False,
                 log: Callable[[str], None] = print) -> Job:
    """Test error of a trained network: ``samples`` sampled passes through the engine for a
    stochastic network, one deterministic pass otherwise; weights scaled by ``scale``."""
    config = {"train": trained.key, "samples": cfg.samples, "seed": cfg.seed, "mode": cfg.mode,
              "limit": cfg.limit, "scale": scale, "scale_biases": biases}

    def run(folder: Path) -> dict[str, Any]:
        model, ck_config = checkpoint.load_model(folder.parent / trained.name / "checkpoint")
        if scale != 1.0:
            model = scaled(model, scale, biases)
        test = data.load(cfg.dataset, "test", path=cfg.data_path)
        if cfg.limit is not None:
            test = test.subset(cfg.limit)
        stochastic = any(isinstance(m, NSMLayer | StochasticSigmoidLinear)
                         for m in model.modules())
        result: dict[str, Any] = {"arch": ck_config["arch"], "noise": ck_config.get("noise"),
                                  "scale": scale, "scale_biases": biases, "items": len(test),
                                  "stochastic": stochastic}
        if stochastic:
            pred = engine.predict(methods.nsm.convert(model), test, samples=cfg.samples,
                                  seed=cfg.seed, mode=cfg.mode, progress=cfg.progress,
                                  desc=f"{ck_config['arch']} x{scale:g}", device=cfg.device)
            pred.save(folder / "prediction.safetensors")
            summary = metrics.summarize(pred, test.labels)
            result.update(error=1.0 - summary["mean_probs_accuracy"],
                          vote_error=1.0 - summary["accuracy"],
                          single_pass_error=1.0 - summary["single_pass_accuracy"],
                          mean_entropy=summary["mean_entropy"],
                          sampling_seconds=pred.seconds, random_bits=pred.random_bits)
        else:
            logits = deterministic_outputs(model, test.images)
            result["error"] = 1.0 - metrics.accuracy(logits.argmax(1), test.labels)
        log(f"{ck_config['arch']} {ck_config.get('noise') or ''} x{scale:g}"
            f"{' (with biases)' if biases else ''}: test error {100 * result['error']:.2f}%")
        return result

    return Job("nsm-evaluate", config, run, needs=(trained,))


def _train(arch: str, cfg: NSMConfig, log: Callable[[str], None],
           noise: str | None = None, bias: bool | None = None) -> Job:
    return train_job(network_config(arch, cfg, noise, bias), cfg, log)


def _trained(store: JobStore, results: dict[str, Any]) -> dict[str, Any]:
    """The trained networks' results, with what their checkpoints recorded in training."""
    out = {}
    for name, result in results.items():
        ck_config = checkpoint.read_config(store.root / result["job"] / "checkpoint")
        out[name] = {**result, "argument_percentiles": ck_config.get("argument_percentiles", []),
                     "data_init_stats": ck_config.get("data_init_stats")}
    return out


def plan_pi_mnist(cfg: PiMnistConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """Table 1 and Fig. 2: NSM and StNN on permutation-invariant MNIST; the NSM scaled."""
    nets = {"nsm": _train("nsm-mlp", cfg, log, "bernoulli:0.5"),
            "stnn": _train("stnn-mlp", cfg, log)}
    return {"nets": nets, "evals": {"nsm": evaluate_job(nets["nsm"], cfg, log=log),
                                    "stnn": evaluate_job(nets["stnn"], cfg, log=log),
                                    "nsm-scaled": evaluate_job(nets["nsm"], cfg, SCALE, log=log)}}


def report_pi_mnist(cfg: PiMnistConfig, results: dict[str, Any], store: JobStore,
                    log: Callable[[str], None]) -> dict[str, Any]:
    """Table 1 beside the paper's, Fig. 2's percentiles and the training curves."""
    return nsm_report.write_pi_mnist(cfg, _trained(store, results["nets"]), results["evals"],
                                     papers.NSM_PI_MNIST)


def plan_mnist_conv(cfg: MnistConvConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """Table 2 (MNIST row): bNSM and gNSM conv nets against the deterministic CNN."""
    nets = {"dcnn": _train("dcnn", cfg, log),
            "bnsm": _train("nsm-conv", cfg, log, "bernoulli:0.5"),
            "gnsm": _train("nsm-conv", cfg, log, "gaussian:1")}
    return {"nets": nets, "evals": {k: evaluate_job(j, cfg, log=log) for k, j in nets.items()}}


def report_mnist_conv(cfg: MnistConvConfig, results: dict[str, Any], store: JobStore,
                      log: Callable[[str], None]) -> dict[str, Any]:
    """Table 2's MNIST row beside the paper's, and the training curves."""
    return nsm_report.write_mnist_conv(cfg, _trained(store, results["nets"]), results["evals"],
                                       papers.NSM_MNIST_CONV)


def plan_scale_invariance(cfg: ScaleInvarianceConfig, log: Callable[[str], None]
                          ) -> dict[str, Any]:
    """Section 3.2: accuracy with the hidden weights (and biases) times 0.1 at inference."""
    nets = {"nsm": _train("nsm-mlp", cfg, log, "bernoulli:0.5"),
            "nsm-nobias": _train("nsm-mlp", cfg, log, "bernoulli:0.5", bias=False),
            "stnn": _train("stnn-mlp", cfg, log),
            "relu": _train("relu-mlp", cfg, log), "sigmoid": _train("sigmoid-mlp", cfg, log)}
    return {"nets": nets, "evals": {
        k: {"x1": evaluate_job(j, cfg, log=log), "weights": evaluate_job(j, cfg, SCALE, log=log),
            "weights+biases": evaluate_job(j, cfg, SCALE, True, log=log)}
        for k, j in nets.items()}}


def report_scale_invariance(cfg: ScaleInvarianceConfig, results: dict[str, Any],
                            store: JobStore, log: Callable[[str], None]) -> dict[str, Any]:
    """Each network's test error at x1, weights x0.1 and weights and biases x0.1."""
    return nsm_report.write_scale_invariance(cfg, _trained(store, results["nets"]),
                                             results["evals"])


def _datasets(cfg: NSMConfig) -> tuple[str, ...]:
    return (cfg.dataset,)


PI_MNIST = Experiment(
    title="paper 002 Table 1 and Fig. 2: NSM against the stochastic sigmoid network, "
          "784-300x3-10", config=PiMnistConfig, plan=plan_pi_mnist, report=report_pi_mnist,
    heading="nsm-pi-mnist: test error (%)", datasets=_datasets)
MNIST_CONV = Experiment(
    title="paper 002 Table 2: bNSM and gNSM conv nets against the deterministic CNN",
    config=MnistConvConfig, plan=plan_mnist_conv, report=report_mnist_conv,
    heading="nsm-mnist-conv: test error (%)", datasets=_datasets)
SCALE_INVARIANCE = Experiment(
    title="paper 002 section 3.2: test error with the hidden weights x 0.1 at inference",
    config=ScaleInvarianceConfig, plan=plan_scale_invariance, report=report_scale_invariance,
    heading="nsm-scale-invariance: test error (%)", datasets=_datasets)
