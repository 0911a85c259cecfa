"""Paper 003's experiment (``sc-mnist``): quantized SC networks on MNIST, Figure 6 and the
bitstream-generation energy.

For each network (784-128-10, 784-392-196-98-10) and number of states (5, 11):

- Method 1: trained without SC (quantization-aware, exact arithmetic), one network;
- Method 2: trained with SC in the forward pass, one network per stream length L;

each inferred without SC (exact quantized arithmetic) and with SC at every L of the grid. The
SC accuracy of a network is that of one inference (one realisation of the streams), averaged
over ``samples`` passes, as the paper's figure gives one number per setting; the accuracy of
the passes' vote is reported beside it.

Energy: the stream bits one inference makes, counted by the bitstream device in an
independent-mode run (every stream made for that inference), times an energy per stream bit
(``SCConfig.energy_fj``: the paper's ~20 fJ for an s-MTJ at a 10 ns retention time and ~10 fJ
for a CMOS LFSR, the cost model's figures per random bit of each technology,
[`synsample.hardware.DEFAULT`][synsample.hardware.DEFAULT]), recomputing the paper's comparison of
~2100 nJ (784-128-10 at 1024 bits, its reference [24]) against 810-820 nJ (three hidden
layers at 100 bits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from synsample import checkpoint, data, devices, engine, hardware, methods, metrics, papers
from synsample.config_args import option, positive_int
from synsample.experiments.jobs import Job, JobStore
from synsample.experiments.options import RunOptions
from synsample.experiments.registry import Experiment
from synsample.experiments.training import train_job
from synsample.report import sc as sc_report
from synsample.train import TrainConfig

NETWORKS = ("sc-mlp", "sc-mlp3")
STATES = (5, 11)
#: the default grid's stream lengths; the paper's (100 ... 500) with ``--full``
#: the stream lengths run by default (the paper's figure: 100, 200, 300, 400, 500)
DEFAULT_LENGTHS = (100, 300, 500)
PAPER_LENGTHS = methods.sc.PAPER_LENGTHS


@dataclass(kw_only=True)
class SCConfig(RunOptions):
    """``reproduce sc-mnist``: paper 003's networks, states, stream lengths and bitstreams."""

    dataset: str = option("mnist", "the dataset (the paper's: mnist)")
    networks: tuple[str, ...] = option(NETWORKS, "the networks: sc-mlp (784-128-10), sc-mlp3 "
                                       "(784-392-196-98-10)", flag="--network", choices=NETWORKS)
    states: tuple[int, ...] = option(STATES, "quantization states of inputs and weights",
                                     choices=(3, 5, 7, 9, 11))
    lengths: tuple[int, ...] = option(DEFAULT_LENGTHS, "stream lengths in bits (the paper's "
                                      "figure: 100 200 300 400 500)", parse=positive_int,
                                      metavar="BITS")
    epochs: int = option(10, "training epochs of every network", parse=positive_int)
    samples: int = option(10, "SC inferences per test item, each one realisation of the "
                          "streams", parse=positive_int)
    bitstream: str = option("ideal", "the bitstream source at inference",
                            choices=("ideal", "lfsr", "mtj"))
    #: energy per stream bit (fJ) by source: assumptions, the paper's figures by default
    energy_fj: dict[str, float] = field(default_factory=lambda: {
        "mtj": 1000 * hardware.DEFAULT.random_bit("s-mtj"),
        "lfsr": 1000 * hardware.DEFAULT.random_bit("cmos")})


def _train(net: str, states: int, length: int | None, cfg: SCConfig,
           log: Callable[[str], None]) -> Job:
    tc = TrainConfig.for_arch(net, dataset=cfg.dataset, epochs=cfg.epochs, seed=cfg.seed,
                              states=states, sc_length=length)
    return train_job(tc, cfg, log)


def infer_job(trained: Job, length: int | None, cfg: SCConfig,
              log: Callable[[str], None] = print) -> Job:
    """Test accuracy of a trained SC network inferred with streams of ``length`` bits (None:
    without SC, one exact pass)."""
    samples = 1 if length is None else cfg.samples
    config = {"train": trained.key, "length": length, "samples": samples, "seed": cfg.seed,
              "mode": cfg.mode, "bitstream": cfg.bitstream, "limit": cfg.limit}

    def run(folder: Path) -> dict[str, Any]:
        model, ck = checkpoint.load_model(folder.parent / trained.name / "checkpoint")
        test = data.load(cfg.dataset, "test", path=cfg.data_path)
        if cfg.limit is not None:
            test = test.subset(cfg.limit)
        sto = methods.sc.convert(model, length, devices.bitstream_for(cfg.bitstream))
        pred = engine.predict(sto, test, samples=samples, seed=cfg.seed, mode=cfg.mode,
                              progress=cfg.progress, device=cfg.device,
                              desc=f"{ck['arch']} {ck['states']} states L={length}")
        summary = metrics.summarize(pred, test.labels)
        result = {"arch": ck["arch"], "states": ck["states"], "trained_length":
                  ck.get("sc_length"), "length": length, "items": len(test),
                  "samples": samples, "accuracy": summary["single_pass_accuracy"],
                  "vote_accuracy": summary["accuracy"], "random_bits": pred.random_bits,
                  "sampling_seconds": pred.seconds}
        log(f"{ck['arch']} {ck['states']} states, trained "
            f"{'with SC L=' + str(ck.get('sc_length')) if ck.get('sc_length') else 'without SC'}"
            f", inferred {'with SC L=' + str(length) if length else 'without SC'}: "
            f"{100 * result['accuracy']:.2f}%")
        return result

    return Job("sc-infer", config, run, needs=(trained,))


def stream_bits_per_inference(net: str, states: int, length: int, items: int = 4) -> float:
    """Stream bits one inference makes, counted by the device: ``items`` inferences of an
    untrained network in independent mode (every stream made for its inference)."""
    from synsample import models

    source = devices.bitstream_for("ideal")
    sto = methods.sc.convert(models.build(net, states=states, seed=0), length, source)
    images = torch.zeros(items, 1, 28, 28, dtype=torch.uint8)
    engine.predict(sto, images, samples=1, seed=0, mode="independent", progress=False)
    return source.draws / items


def energy_rows(cfg: SCConfig, accuracy: dict[tuple[str, int, int], float]
                ) -> list[dict[str, Any]]:
    """Bitstream-generation energy per inference for the paper's comparison points and the
    grid's settings, from counted stream bits."""
    points = sorted({*papers.SC_ENERGY, *((n, L) for n in cfg.networks for L in cfg.lengths)})
    rows = []
    for net, length in points:
        bits = stream_bits_per_inference(net, cfg.states[0], length)
        rows.append({"network": net, "length": length, "stream_bits": bits,
                     "energy_nj": {k: bits * fj * 1e-6 for k, fj in cfg.energy_fj.items()},
                     "paper_nj": papers.SC_ENERGY.get((net, length)),
                     "accuracy": {s: accuracy.get((net, s, length)) for s in cfg.states}})
    return rows


def plan(cfg: SCConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """The whole grid: every network trained by Method 1 and at each length by Method 2, each
    inferred without SC and with SC (Method 1: at every length; Method 2: at its own)."""
    nets: dict[str, Job] = {}
    cells: list[tuple[dict[str, Any], Job]] = []
    for net in cfg.networks:
        for states in cfg.states:
            for method, length in [(1, None), *((2, L) for L in cfg.lengths)]:
                job = _train(net, states, length, cfg, log)
                nets[f"{net}/{states}/{method}/{length}"] = job
                inferences = [None, *cfg.lengths] if method == 1 else [None, length]
                for infer in inferences:
                    cells.append(({"network": net, "states": states, "method": method,
                                   "trained_length": length}, infer_job(job, infer, cfg, log)))
    return {"nets": nets, "cells": cells}


def report(cfg: SCConfig, results: dict[str, Any], store: JobStore,
           log: Callable[[str], None]) -> dict[str, Any]:
    """Figure 6 beside the paper's, and the bitstream energy from counted stream bits."""
    cells = [{**cell, **result} for cell, result in results["cells"]]
    accuracy = {(c["network"], c["states"], c["length"]): c["accuracy"] for c in cells
                if c["method"] == 2 and c["length"] is not None}
    return sc_report.write(cfg, cells, results["nets"], energy_rows(cfg, accuracy))


EXPERIMENT = Experiment(
    title="paper 003 Fig. 6: quantized stochastic computing, Methods 1 and 2, 5 and 11 "
          "states, stream lengths, bitstream energy",
    config=SCConfig, plan=plan, report=report,
    heading="Figure 6, paper 003: test accuracy (%) by stream length",
    datasets=lambda cfg: (cfg.dataset,),
    presets={"full": ("the paper's stream lengths", {"lengths": PAPER_LENGTHS})})
