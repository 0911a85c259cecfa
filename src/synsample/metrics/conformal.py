"""Split-conformal prediction sets from a sampled predictive distribution.

A stochastic network's K passes give class probabilities per item (the mean probabilities or
the vote shares). Split conformal prediction (Vovk et al. 2005; Angelopoulos and Bates 2021,
"A gentle introduction") turns them into **sets of classes** with a coverage guarantee: fit one
threshold on ``n`` held-out labelled items, and on any new item exchangeable with them the set
holds the true class with probability

    1 - alpha <= P(y in C(x)) <= 1 - alpha + 1 / (n + 1)

(the upper bound when scores do not tie). The threshold is the ``ceil((n + 1)(1 - alpha))``-th
smallest calibration score; when that rank exceeds ``n`` every set is the full label set.

Scores (higher: the label fits worse), each with its set rule:

- ``lac`` (least ambiguous classifier, Sadinle et al. 2019): ``s = 1 - p_y``; the set holds
  every class with ``1 - p_c <= q``. Smallest sets on average; may be empty on items the
  network finds none of the classes plausible for, which is itself a signal.
- ``aps`` (adaptive prediction sets, Romano et al. 2020): ``s = sum of p_j ranked above y +
  u p_y`` with ``u ~ U(0, 1)`` (the randomisation that makes coverage exact, seeded here); the set
  holds the classes, taken from the most probable, while their score is at most ``q``. Sets grow
  where the distribution is flat.
- ``raps`` (regularised APS, Angelopoulos et al. 2021): APS plus ``lam * max(0, rank - k_reg)``,
  which keeps the sets small when many classes each hold a little probability.

[`conformal_summary`][synsample.metrics.conformal.conformal_summary] reports, per score and alpha,
the threshold, the empirical coverage and mean set size on the test items, the share of empty and of
single-class sets, the worst per-class coverage, and on every OoD set the mean set size (larger sets
on OoD inputs make the set size a detector) with the coverage where that set still has classes (the
noisy test images).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from synsample.errors import ConfigError
from synsample.metrics.labels import class_labels

SCORES = ("lac", "aps", "raps")
ALPHAS = (0.05, 0.1)
#: RAPS' penalty per rank beyond ``RAPS_K_REG`` (the values of Angelopoulos et al.'s ImageNet
#: runs scaled to ten classes: a small penalty from the third class on)
RAPS_LAMBDA = 0.01
RAPS_K_REG = 2


def _check(probs: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise ConfigError(f"conformal sets need probabilities [N, C] with N > 0, got "
                          f"{tuple(probs.shape)}")
    if labels is not None:
        class_labels(labels, probs.shape[0], probs.shape[1], "conformal calibration labels")
    if not torch.isfinite(probs).all():
        raise ConfigError("conformal sets need finite probabilities")
    return probs.to(torch.float64)


def _uniforms(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _all_scores(probs: torch.Tensor, kind: str, u: torch.Tensor) -> torch.Tensor:
    """The score every class would have, ``[N, C]``."""
    if kind == "lac":
        return 1.0 - probs
    order = torch.argsort(probs, dim=1, descending=True, stable=True)
    ranked = probs.gather(1, order)
    above = ranked.cumsum(1) - ranked  # probability of the classes ranked before each
    sorted_scores = above + u[:, None] * ranked
    if kind == "raps":
        rank = torch.arange(1, probs.shape[1] + 1, dtype=torch.float64)
        sorted_scores = sorted_scores + RAPS_LAMBDA * (rank - RAPS_K_REG).clamp(min=0)
    return torch.empty_like(sorted_scores).scatter_(1, order, sorted_scores)


def _kind(kind: str) -> str:
    if kind not in SCORES:
        raise ConfigError(f"unknown conformal score {kind!r}; use one of {', '.join(SCORES)}")
    return kind


def _true_scores(probs: torch.Tensor, labels: torch.Tensor, kind: str, seed: int
                 ) -> torch.Tensor:
    """The calibration items' scores of their true class, sorted."""
    p = _check(probs, labels)
    scores = _all_scores(p, _kind(kind), _uniforms(len(p), seed))
    return torch.sort(scores.gather(1, labels.long()[:, None])[:, 0]).values


def _threshold(true_sorted: torch.Tensor, alpha: float) -> float:
    """The ``ceil((n + 1)(1 - alpha))``-th smallest calibration score (``inf`` past ``n``)."""
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    n = len(true_sorted)
    rank = math.ceil((n + 1) * (1.0 - alpha))
    return math.inf if rank > n else true_sorted[rank - 1].item()


def calibrate(probs: torch.Tensor, labels: torch.Tensor, alpha: float, kind: str = "aps",
              seed: int = 0) -> float:
    """The threshold ``q`` of split conformal prediction at miscoverage ``alpha`` from the
    calibration items' probabilities and labels (``inf``: every set is the full label set).

    Args:
        probs: ``[n, C]`` class probabilities of the calibration items.
        labels: ``[n]`` their true classes.
        alpha: the miscoverage, in (0, 1).
        kind: the score, one of [`SCORES`][synsample.metrics.conformal.SCORES].
        seed: draws the APS / RAPS randomisation of the calibration items.

    Returns:
        The ``ceil((n + 1)(1 - alpha))``-th smallest calibration score, or ``inf``.

    Raises:
        ConfigError: for alpha outside (0, 1), an unknown score, or bad probabilities or
            labels.
    """
    if not 0.0 < alpha < 1.0:  # before the scores are made
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    return _threshold(_true_scores(probs, labels, kind, seed), alpha)


def _scores(probs: torch.Tensor, kind: str, seed: int) -> torch.Tensor:
    p = _check(probs)
    return _all_scores(p, _kind(kind), _uniforms(len(p), seed))


def prediction_sets(probs: torch.Tensor, threshold: float, kind: str = "aps",
                    seed: int = 1) -> torch.Tensor:
    """The conformal sets, ``[N, C]`` bool, for the threshold from
    [`calibrate`][synsample.metrics.conformal.calibrate]. ``seed`` draws the test items' APS / RAPS
    randomisation (keep it apart from the calibration's).

    Args:
        probs: ``[N, C]`` class probabilities.
        threshold: ``q`` from [`calibrate`][synsample.metrics.conformal.calibrate].
        kind: the score it was calibrated with.
        seed: draws the randomisation of these items.

    Returns:
        ``[N, C]`` bool: the classes whose score is at most ``q``.
    """
    return _scores(probs, kind, seed) <= threshold


def set_metrics(sets: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, Any]:
    """Mean set size, the share of empty and of single-class sets, and with labels (``-1``: no
    class) the empirical coverage and the smallest coverage of a class.

    Args:
        sets: ``[N, C]`` bool prediction sets.
        labels: ``[N]`` true classes (-1: none), or None.

    Returns:
        ``items``, ``mean_size``, ``empty``, ``singleton``, ``size_counts``, ``coverage`` and
        ``worst_class_coverage`` (the last two None without labels).
    """
    size = sets.sum(1).to(torch.float64)
    out: dict[str, Any] = {"items": len(sets), "mean_size": size.mean().item(),
                           "empty": (size == 0).double().mean().item(),
                           "singleton": (size == 1).double().mean().item(),
                           "size_counts": torch.bincount(size.long(),
                                                         minlength=sets.shape[1] + 1).tolist(),
                           "coverage": None, "worst_class_coverage": None}
    if labels is not None and (labels >= 0).any():
        known = labels >= 0
        hit = sets[known].gather(1, labels[known].long()[:, None])[:, 0].double()
        out["coverage"] = hit.mean().item()
        per_class = [hit[labels[known] == c].mean().item()
                     for c in labels[known].unique().tolist()]
        out["worst_class_coverage"] = min(per_class)
    return out


def conformal_summary(cal_probs: torch.Tensor, cal_labels: torch.Tensor,
                      test_probs: torch.Tensor, test_labels: torch.Tensor,
                      ood: dict[str, tuple[torch.Tensor, torch.Tensor | None]] | None = None,
                      alphas: tuple[float, ...] = ALPHAS, kinds: tuple[str, ...] = SCORES,
                      seed: int = 0) -> dict[str, Any]:
    """Per score kind and alpha: the threshold, the test set's `set_metrics`, and each
    OoD set's (``ood``: name -> (probabilities, labels or None)). ``seed`` seeds the
    randomisation of APS / RAPS (calibration and test items draw from different seeds).

    Args:
        cal_probs: ``[n, C]`` class probabilities of the calibration items.
        cal_labels: ``[n]`` their true classes.
        test_probs: ``[N, C]`` class probabilities of the test items.
        test_labels: ``[N]`` their true classes.
        ood: name -> (probabilities, labels or None) of each OoD set.
        alphas: the miscoverages.
        kinds: the scores.
        seed: the calibration items' seed (test ``seed + 1``, OoD ``seed + 2``).

    Returns:
        ``calibration_items``, ``alphas`` and ``by_score[kind][alpha]`` with ``threshold``
        (None for ``inf``), ``test`` and ``ood``.
    """
    out: dict[str, Any] = {"calibration_items": len(cal_labels), "alphas": list(alphas),
                           "by_score": {}}
    for kind in kinds:  # scores once per kind, thresholds once per alpha
        true_sorted = _true_scores(cal_probs, cal_labels, kind, seed)
        test_scores = _scores(test_probs, kind, seed + 1)
        ood_scores = {name: (_scores(p, kind, seed + 2), y) for name, (p, y) in (ood or {}).items()}
        per_alpha = {}
        for alpha in alphas:
            q = _threshold(true_sorted, alpha)
            per_alpha[f"{alpha:g}"] = {
                "threshold": q if math.isfinite(q) else None,
                "test": set_metrics(test_scores <= q, test_labels),
                "ood": {name: set_metrics(sc <= q, y) for name, (sc, y) in ood_scores.items()}}
        out["by_score"][kind] = per_alpha
    return out
