"""Evaluating one trained checkpoint: deterministically, and sampled through a method."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from synsample import checkpoint, data, methods, shards, train
from synsample.adaptive import AdaptiveStop
from synsample.config_args import option, positive_int
from synsample.data import ood as ood_data
from synsample.errors import ConfigError
from synsample.nn.sampling import MODES
from synsample.prediction import Prediction

#: conformal miscoverage levels evaluated by default
ALPHAS = (0.05, 0.1)
#: items of each OoD set evaluated by default
OOD_ITEMS = 2000


@dataclass(kw_only=True)
class SampledRun:
    """What every run that samples a trained network sets: the seed, the sampling mode, the
    test items, where the data is and the torch device (``sample``, ``evaluate`` and every
    experiment,
    [`synsample.experiments.options.RunOptions`][synsample.experiments.options.RunOptions])."""

    seed: int = option(0, "seeds training, devices and passes: same seed, same votes")
    mode: str = option("shared", "shared: one draw per pass for all items; independent: fresh "
                       "draws per item (slow)", choices=MODES)
    limit: int | None = option(None, "sample only the first N test items", metavar="N",
                               parse=positive_int, default_text="all")
    data_path: str | None = option(None, "a local copy of the datasets instead of the cache",
                                   metavar="DIR", default_text="the cache, fetched when missing")
    device: str | None = option(None, "torch device, e.g. cuda", default_text="cpu")

    def check(self) -> None:
        """Refuse settings that cannot work, before any long work starts."""
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be at least 1, got {self.limit}")


@dataclass(kw_only=True)
class SamplingOptions(SampledRun):
    """K passes of a trained network, optionally stopped early per item
    ([`AdaptiveStop`][synsample.adaptive.AdaptiveStop]): ``synsample sample`` and ``evaluate``'s
    options, and the scANN experiments'."""

    samples: int = option(1000, "passes K per test item", parse=positive_int)
    adaptive: float | None = option(None, "stop sampling an item once its plurality is "
                                    "settled at this confidence, e.g. 0.999",
                                    metavar="CONFIDENCE", default_text="every item gets K passes")
    min_samples: int = option(AdaptiveStop.min_samples, "with --adaptive: passes every item "
                              "gets at least", parse=positive_int)

    def adaptive_stop(self) -> AdaptiveStop | None:
        """The stopping rule of ``adaptive`` (None: every item gets K passes)."""
        if self.adaptive is None:
            return None
        return AdaptiveStop(confidence=self.adaptive, min_samples=self.min_samples)

    def check(self) -> None:
        """The run's checks, an adaptive confidence in (0, 1), and ``min_samples`` only with
        ``adaptive``, at most ``samples``."""
        super().check()
        if self.adaptive is None and self.min_samples != AdaptiveStop.min_samples:
            raise ConfigError("--min-samples goes with --adaptive (without it every item gets "
                              "--samples passes)")
        if self.adaptive is not None and self.min_samples > self.samples:
            raise ConfigError(f"--min-samples {self.min_samples} is more than --samples "
                              f"{self.samples}; no item could stop early")
        self.adaptive_stop()


@torch.no_grad()
def deterministic_outputs(model: torch.nn.Module, images: torch.Tensor,
                          batch_size: int = 1000) -> torch.Tensor:
    """Logits of the ordinary (non-sampled) network, eval mode, ``[N, C]``.

    Args:
        model: the network (put in eval mode).
        images: the inputs.
        batch_size: items per forward call.

    Returns:
        ``[N, C]`` logits.
    """
    model.eval()
    return torch.cat([model(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def method_for(config: dict[str, Any], method: str | None) -> str:
    """``method``, or the one the checkpoint's architecture is sampled with by default.

    Args:
        config: the checkpoint's config.
        method: the method asked for, or None.

    Returns:
        The method's name.

    Raises:
        ConfigError: for an unknown architecture, or a deterministic one without a method.
    """
    from synsample import models
    from synsample.errors import ConfigError

    if method is not None:
        return method
    arch = models.ARCHS.get(config.get("arch", ""))
    if arch is None:
        raise ConfigError(f"the checkpoint's architecture {config.get('arch')!r} is not one this "
                          f"synsample knows ({', '.join(models.ARCHS)}); is it from a newer "
                          "version, or was its config.json edited?")
    if arch.method is None:
        raise ConfigError(f"the {config.get('arch')} network is deterministic, there is nothing "
                          "to sample; give --method scann to read its weights as coins")
    return arch.method


#: training images SpinBayes re-calibrates its BatchNorm on (20 batches of 100)
CALIBRATION_ITEMS = 2000


def convert_trained(method: str, nets: list[torch.nn.Module], dataset: str,
                    precision: str | int | None = "full",
                    options: dict[str, Any] | None = None,
                    data_path: str | Path | None = None, seed: int = 0):
    """The one way trained networks become a stochastic model: `synsample.convert` with
    what a checkpoint run adds from its method's spec. Several ``nets`` make an ensemble; a
    method that needs data (SpinBayes' BatchNorm re-calibration) gets the first
    `CALIBRATION_ITEMS` training images of ``dataset``; a method whose draws are fixed
    at conversion (SpinBayes' crossbars) is seeded by ``seed``, the run's seed.

    Args:
        method: the method's name.
        nets: the trained networks (one, or an ensemble's members).
        dataset: the dataset they were trained on.
        precision: ``full`` or bits.
        options: the method's own options.
        data_path: a local copy of the dataset (default: the cache).
        seed: the run's seed.

    Returns:
        (StochasticModel): the stochastic model.

    Raises:
        ConfigError: for several networks and a method that takes one.
    """
    from synsample.errors import ConfigError

    spec = methods.get(method)
    options = dict(options or {})
    if len(nets) > 1 and not spec.many_models:
        raise ConfigError(f"several checkpoints make an ensemble; {method} takes one")
    if spec.needs_data and options.get(spec.needs_data) is None:
        train = data.load(dataset, "train", path=data_path)
        options[spec.needs_data] = train.images[:CALIBRATION_ITEMS]
    if "seed" in spec.options:
        options.setdefault("seed", seed)
    return methods.convert(nets if spec.many_models else nets[0], method, precision=precision,
                           **options)


def convert_checkpoint_model(method: str, model: torch.nn.Module, config: dict[str, Any],
                             precision: str, method_options: dict[str, Any] | None,
                             data_path: str | Path | None, seed: int = 0):
    """[`convert_trained`][synsample.evaluate.convert_trained] for a checkpoint's network.

    Args:
        method: the method's name.
        model: the checkpoint's network.
        config: the checkpoint's config (its ``dataset``).
        precision: ``full`` or bits.
        method_options: the method's own options; ``members``: the folders of an ensemble's
            other members.
        data_path: a local copy of the dataset (default: the cache).
        seed: the run's seed.

    Returns:
        (StochasticModel): the stochastic model.
    """
    options = dict(method_options or {})
    members = [checkpoint.load_model(m)[0] for m in options.pop("members", ())]
    return convert_trained(method, [model, *members], config["dataset"], precision, options,
                           data_path, seed)


def sample_checkpoint(folder: str | Path, method: str | None = None, precision: str = "full",
                      samples: int = SamplingOptions.samples, seed: int = SampledRun.seed,
                      mode: str = SampledRun.mode,
                      data_path: str | Path | None = None, limit: int | None = None,
                      progress: bool = True, method_options: dict[str, Any] | None = None,
                      **predict_kw: Any) -> tuple[Prediction, data.Dataset, Any]:
    """Convert the checkpoint in ``folder`` with ``method`` (default: its architecture's) and a
    coin of ``precision``, sample it ``samples`` times on the test split of its dataset (the
    first ``limit`` items if given) and return the Prediction, that test set and the
    stochastic model.

    Args:
        folder: the checkpoint folder.
        method: the method (default: the checkpoint architecture's).
        precision: ``full`` or bits.
        samples: K, passes per item.
        seed: the run's seed.
        mode: ``shared`` or ``independent``.
        data_path: a local copy of the dataset (default: the cache).
        limit: sample only the first ``limit`` test items.
        progress: show a progress bar.
        method_options: the method's own options
            ([`convert_checkpoint_model`][synsample.evaluate.convert_checkpoint_model]).
        **predict_kw: passed to [`synsample.shards.predict`][synsample.shards.predict].

    Returns:
        ``(prediction, test set, stochastic model)``.
    """
    _, _, method, test, sto = _checkpoint_run(folder, method, precision, data_path, limit,
                                              method_options, seed)
    pred = shards.predict(sto, test, samples=samples, seed=seed, mode=mode, progress=progress,
                          desc=f"{method} {precision}", **predict_kw)
    return pred, test, sto


def _checkpoint_run(folder: str | Path, method: str | None, precision: str,
                    data_path: str | Path | None, limit: int | None,
                    method_options: dict[str, Any] | None, seed: int
                    ) -> tuple[torch.nn.Module, dict[str, Any], str, data.Dataset, Any]:
    """The checkpoint's network (unchanged by the conversion), its config, the method (default:
    the architecture's), the test set (its first ``limit`` items) and the converted network."""
    model, config = checkpoint.load_model(folder)
    method = method_for(config, method)
    test = data.load(config["dataset"], "test", path=data_path)
    if limit is not None:
        test = test.subset(limit)
    sto = convert_checkpoint_model(method, model, config, precision, method_options, data_path,
                                   seed)
    return model, config, method, test, sto


def sample_to_report(folder: str | Path, out: str | Path, method: str | None = None,
                     precision: str = "full", samples: int = SamplingOptions.samples,
                     seed: int = SampledRun.seed, mode: str = SampledRun.mode,
                     data_path: str | Path | None = None,
                     limit: int | None = None, progress: bool = True,
                     method_options: dict[str, Any] | None = None,
                     cost_assumptions: str | Path | None = None,
                     **predict_kw: Any) -> dict[str, Any]:
    """Sample a checkpoint ``samples`` times on its test set and write the report of
    ``synsample sample`` into ``out``: accuracy beside the method's reference network (the
    deterministic network, or one pass of a network that always samples), first and second
    choice, vote entropy, figures, and the hardware cost of one inference priced by
    ``cost_assumptions`` (None: the defaults of `synsample.hardware`).

    Args:
        folder: the checkpoint folder written by ``train``.
        out: the report folder.
        method: the method (default: the checkpoint architecture's).
        precision: the coin precision (``full`` or bits).
        samples: passes K.
        seed: same seed, same votes.
        mode: ``shared`` or ``independent``.
        data_path: a local copy of the dataset (default: the cache).
        limit: sample only the first ``limit`` test items.
        progress: show a progress bar.
        method_options: what the method needs beyond the precision
            ([`convert_checkpoint_model`][synsample.evaluate.convert_checkpoint_model]).
        cost_assumptions: a JSON file of energies, or None.
        **predict_kw: passed to the engine (``batch_size``, ``adaptive``, ``device``,
            ``runner``).

    Returns:
        the report's metrics, with ``cost`` and ``reference``.
    """
    from synsample import hardware
    from synsample.report.scann import write_sample_report

    assumptions = hardware.load_assumptions(cost_assumptions)  # fails before sampling
    model, config, method, test, sto = _checkpoint_run(folder, method, precision, data_path,
                                                       limit, method_options, seed)
    pred = shards.predict(sto, test, samples=samples, seed=seed, mode=mode, progress=progress,
                          desc=f"{method} {precision}", **predict_kw)
    cost = hardware.measure(sto, test.images, samples, seed=seed, assumptions=assumptions)
    spec = methods.get(method)
    reference = deterministic_outputs(spec.reference_model(model), test.images).argmax(1)
    return write_sample_report(Path(out), Path(folder), config, precision, pred, test,
                               reference, reference=spec.reference, cost=cost)


def evaluate_checkpoint(folder: str | Path, out: str | Path, method: str | None = None,
                        precision: str = "full", samples: int = SamplingOptions.samples,
                        seed: int = SampledRun.seed, mode: str = SampledRun.mode,
                        score: str = "vote-entropy",
                        ood_items: int = OOD_ITEMS, ood_sets: tuple[str, ...] | None = None,
                        data_path: str | Path | None = None, limit: int | None = None,
                        progress: bool = True, method_options: dict[str, Any] | None = None,
                        cost_assumptions: str | Path | None = None,
                        alphas: tuple[float, ...] = ALPHAS,
                        **predict_kw: Any) -> dict[str, Any]:
    """Every metric for one trained network and method
    ([`evaluate_model`][synsample.evaluate.evaluate_model]), with its hardware cost priced by the
    assumption file ``cost_assumptions`` (None: the defaults of `synsample.hardware`). The training
    items the checkpoint kept out of training (``train --calibration-items``; the first ``limit`` of
    them with ``limit``) calibrate temperature scaling and conformal sets at miscoverage ``alphas``;
    a checkpoint that kept none gets neither. Writes ``report.md``, ``metrics.json`` and figures
    into ``out``.

    Args:
        folder: the checkpoint folder.
        out: the report folder.
        method: the method (default: the checkpoint architecture's).
        precision: ``full`` or bits.
        samples: K, passes per item.
        seed: the run's seed.
        mode: ``shared`` or ``independent``.
        score: the uncertainty score of the ratios, selective prediction and OoD figures.
        ood_items: the most items of each OoD set.
        ood_sets: the OoD sets (default: every built-in one).
        data_path: a local copy of the dataset (default: the cache).
        limit: evaluate only the first ``limit`` test (and calibration) items.
        progress: show a progress bar.
        method_options: the method's own options
            ([`convert_checkpoint_model`][synsample.evaluate.convert_checkpoint_model]).
        cost_assumptions: a JSON file of energies, or None.
        alphas: the conformal miscoverage levels.
        **predict_kw: passed to [`synsample.shards.predict`][synsample.shards.predict].

    Returns:
        The metrics, with the checkpoint, dataset, architecture, method and precision.
    """
    from synsample import hardware
    from synsample.report.evaluation import write_evaluation

    assumptions = hardware.load_assumptions(cost_assumptions)
    _, config, method, test, sto = _checkpoint_run(folder, method, precision, data_path, limit,
                                                   method_options, seed)
    calibration = train.calibration_set(config, data_path)
    if limit is not None and calibration is not None:
        calibration = calibration.subset(limit)
    result, scores_in, ood_scores = evaluate_model(
        sto, test, samples=samples, seed=seed, mode=mode, score=score, ood_items=ood_items,
        ood_sets=ood_sets, progress=progress, desc=f"{method} {precision}",
        cost_assumptions=assumptions, calibration=calibration, alphas=alphas, **predict_kw)
    result = {"checkpoint": str(folder), "dataset": config["dataset"], "arch": config["arch"],
              "method": method, "precision": precision, **result}
    write_evaluation(Path(out), result, scores_in, ood_scores)
    return result


def evaluate_model(sto, test: data.Dataset, samples: int = SamplingOptions.samples,
                   seed: int = SampledRun.seed, mode: str = SampledRun.mode,
                   score: str = "vote-entropy", ood_items: int = OOD_ITEMS,
                   ood_sets: tuple[str, ...] | None = None, progress: bool = True,
                   desc: str = "", cost_assumptions=None, skip_ood: tuple[str, ...] = (),
                   calibration: data.Dataset | None = None,
                   alphas: tuple[float, ...] = ALPHAS, **predict_kw: Any
                   ) -> tuple[dict[str, Any], torch.Tensor, dict[str, torch.Tensor]]:
    """Sample a stochastic model on ``test`` and on every built-in OoD set made from it:
    accuracy, calibration, uncertainty scores and ratios (paper 004's R_cc, R_iu, UA), OoD
    detection (AUROC, AUPR, FPR@95TPR, paper 004's quantile rule), and, given
    ``cost_assumptions`` (a [`CostAssumptions`][synsample.hardware.CostAssumptions]), the hardware
    cost of one inference of ``samples`` passes
    ([`synsample.hardware.measure`][synsample.hardware.measure], under ``cost``). Given
    ``calibration`` (labelled items never trained on), also temperature scaling (``recalibration``)
    and split-conformal sets at each of ``alphas`` (``conformal``), from the mean probabilities and
    from the vote shares
    ([`recalibrate_and_conformalize`][synsample.evaluate.recalibrate_and_conformalize]). An OoD set
    that is defined for the test set's dataset but cannot be loaded is an error (before any
    sampling) unless it is in ``skip_ood``.

    Args:
        sto (StochasticModel): the stochastic model.
        test: the test set.
        samples: K, passes per item.
        seed: the run's seed (and the OoD sets').
        mode: ``shared`` or ``independent``.
        score: the uncertainty score of the ratios, selective prediction and the returned
            scores.
        ood_items: the most items of each OoD set.
        ood_sets: the OoD sets (default: every built-in one).
        progress: show a progress bar.
        desc: the progress bar's label.
        cost_assumptions (CostAssumptions | None): prices the hardware cost (None: no cost).
        skip_ood: OoD sets to leave out.
        calibration: labelled items never trained on, or None.
        alphas: the conformal miscoverage levels.
        **predict_kw: passed to [`synsample.shards.predict`][synsample.shards.predict].

    Returns:
        ``(metrics, the test items' score, each OoD set's score)``.

    Raises:
        DataError: for an OoD set that cannot be made and is not skipped.
    """
    from synsample import metrics
    from synsample.errors import DataError

    if not isinstance(test, data.Dataset):
        raise ConfigError(f"evaluate_model's test set must be a synsample Dataset (data.load, "
                          f"or data.labelled(your_dataset)), got {type(test).__name__}")
    if calibration is not None:
        calibration = data.labelled(calibration, "the calibration items")
    # before any pass: integer classes, one per item (their range is checked against the
    # predictions' classes once the first pass gives them)
    from synsample.metrics.labels import class_labels

    for name, labelled in (("the test labels", test),
                           ("the calibration labels", calibration)):
        if labelled is not None:
            class_labels(labelled.labels, len(labelled.images), 2**31, name)

    def run(images: torch.Tensor, what: str) -> Prediction:
        return shards.predict(sto, images, samples=samples, seed=seed, mode=mode,
                              progress=progress, desc=f"{desc} {what}".strip(), **predict_kw)

    oods, skipped = {}, {}
    for name in ood_sets or ood_data.OOD_SETS:  # made first: a missing set fails before sampling
        if name in skip_ood:
            skipped[name] = "left out on request"
        elif not ood_data.ood_applies(name, test.name):
            skipped[name] = f"not defined for {test.name}"
        else:
            try:
                oods[name] = ood_data.make_ood(name, test, items=ood_items, seed=seed)
            except DataError as exc:
                raise DataError(f"OoD set {name!r}: {exc}; or leave the set out with "
                                f"--skip-ood {name}") from exc
    pred = run(test.images, "test")
    correct = pred.first_choice() == test.labels
    scores_in = {name: metrics.uncertainty(pred, name) for name in metrics.SCORES}
    result: dict[str, Any] = {
        "samples": samples, "mode": mode, "seed": seed, "items": len(test), "score": score,
        "random_bits": pred.random_bits, "sampling_seconds": pred.seconds,
        "summary": metrics.summarize(pred, test.labels),
        "calibration": metrics.calibration_summary(pred.mean_probs, test.labels),
        "calibration_votes": metrics.calibration_summary(metrics.vote_probabilities(pred.votes),
                                                         test.labels),
        "reliability": metrics.reliability(pred.mean_probs, test.labels),
        "mean_scores": {k: {"correct": v[correct].mean().item() if correct.any() else None,
                            "incorrect": v[~correct].mean().item() if (~correct).any() else None}
                        for k, v in scores_in.items()},
        "ratios": metrics.ratio_sweep(scores_in[score], correct),
        "selective": metrics.selective_summary(scores_in[score], correct),
        "per_class": metrics.per_class(pred.mean_probs, test.labels, scores_in[score],
                                       test.classes),
        "ood": {}, "ood_skipped": skipped}
    ood_scores, ood_preds = {}, {}
    for name, ood in oods.items():
        out_pred = ood_preds[name] = run(ood.images, name)
        scores_out = {k: metrics.uncertainty(out_pred, k) for k in metrics.SCORES}
        ood_scores[name] = scores_out[score]
        result["ood"][name] = {
            "items": len(ood), "source": ood.source,
            "by_score": {k: metrics.detection_metrics(scores_in[k], scores_out[k])
                         for k in metrics.SCORES},
            "paper_004_rule": metrics.rule_summary(pred, out_pred)}
    if calibration is None:
        why = ("no held-out training items: train with --calibration-items N (never the test "
               "set)")
        result["recalibration"] = result["conformal"] = {"skipped": why}
    else:
        result.update(recalibrate_and_conformalize(
            run(calibration.images, "calibration"), calibration.labels, pred, test.labels,
            {name: (ood_preds[name], oods[name].labels) for name in oods}, alphas, seed))
    if cost_assumptions is not None:
        from synsample import hardware

        result["cost"] = hardware.measure(sto, test.images, samples, seed=seed,
                                          assumptions=cost_assumptions)
    return result, scores_in[score], ood_scores


def recalibrate_and_conformalize(cal: Prediction, cal_labels: torch.Tensor, test: Prediction,
                                 test_labels: torch.Tensor,
                                 ood: dict[str, tuple[Prediction, torch.Tensor]],
                                 alphas: tuple[float, ...] = ALPHAS, seed: int = 0
                                 ) -> dict[str, Any]:
    """Temperature scaling and split-conformal sets fitted on the calibration items' sampled
    predictions and applied to the test and OoD items', for two readings of the K passes: the
    mean class probabilities, and the vote shares (Jeffreys-smoothed for temperature scaling,
    whose logarithm needs no zeros; as they are for conformal sets).

    Args:
        cal: the calibration items' Prediction.
        cal_labels: their labels.
        test: the test items' Prediction.
        test_labels: their labels.
        ood: name -> (Prediction, labels) of each OoD set.
        alphas: the conformal miscoverage levels.
        seed: seeds the APS / RAPS randomisation.

    Returns:
        ``recalibration`` and ``conformal``, each by reading.
    """
    from synsample import metrics
    from synsample.metrics.recalibration import smoothed_vote_shares

    readings = {"mean_probabilities": lambda p: p.mean_probs,
                "vote_shares": lambda p: metrics.vote_probabilities(p.votes)}
    recal = {"mean_probabilities": metrics.recalibration_summary(
                 cal.mean_probs, cal_labels, test.mean_probs, test_labels),
             "vote_shares": metrics.recalibration_summary(
                 smoothed_vote_shares(cal.votes), cal_labels, smoothed_vote_shares(test.votes),
                 test_labels)}
    conformal = {name: metrics.conformal_summary(
                     probs(cal), cal_labels, probs(test), test_labels,
                     {k: (probs(p), y) for k, (p, y) in ood.items()}, alphas, seed=seed)
                 for name, probs in readings.items()}
    return {"recalibration": recal, "conformal": conformal}
