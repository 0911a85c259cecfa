"""Temperature scaling of a sampled predictive distribution (Guo et al. 2017).

The K passes' mean class probabilities ``p`` are re-read as logits ``z = log p`` and sharpened
or softened to ``softmax(z / T)``, one temperature ``T`` for all items, fitted on held-out
labelled items by minimising their negative log-likelihood. The accuracy does not change (the
order of the classes of an item is kept); only the confidence does.

The NLL is convex in ``beta = 1 / T`` (a log-sum-exp of a linear function minus a linear
function), and its derivative ``mean(E_softmax(beta z)[z] - z_y)`` rises monotonically, so the
fit is a bisection on that derivative in float64: exact to 1e-10 in ``log beta``, no optimiser
settings, the same answer on every machine.

Vote shares have zeros (a class no pass voted for), whose logarithm is ``-inf``; they are
scaled after Jeffreys' smoothing, ``(votes + 1/2) / (K + C/2)``, the usual prior for counts.
"""

from __future__ import annotations

import math

import torch

from synsample.errors import ConfigError
from synsample.metrics.labels import class_labels

#: the temperatures searched: 1/100 .. 100
LOG_BETA_RANGE = (-math.log(100.0), math.log(100.0))
#: probabilities are floored here before the logarithm (float32 softmax underflow)
FLOOR = 1e-30


def as_logits(probs: torch.Tensor) -> torch.Tensor:
    """``log p`` in float64, with ``p`` floored at [`FLOOR`][synsample.metrics.recalibration.FLOOR].

    Args:
        probs: class probabilities.

    Returns:
        The logits, same shape.
    """
    return torch.log(probs.to(torch.float64).clamp(min=FLOOR))


def smoothed_vote_shares(votes: torch.Tensor) -> torch.Tensor:
    """Jeffreys-smoothed vote shares ``(votes + 1/2) / (K + C/2)``, rows summing to 1.

    Args:
        votes: ``[N, C]`` vote counts.

    Returns:
        ``[N, C]`` float64.
    """
    v = votes.to(torch.float64) + 0.5
    return v / v.sum(1, keepdim=True)


def scale(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(log p / T)`` in float64.

    Args:
        probs: ``[N, C]`` class probabilities.
        temperature: ``T``.

    Returns:
        ``[N, C]`` float64 scaled probabilities.
    """
    return torch.softmax(as_logits(probs) / temperature, dim=1)


def fit_temperature(probs: torch.Tensor, labels: torch.Tensor, tol: float = 1e-10) -> float:
    """The temperature ``T`` minimising the NLL of ``softmax(log p / T)`` on labelled items;
    at the edge of `LOG_BETA_RANGE` when the optimum lies beyond it (a network that is
    right on every held-out item wants ``T -> 0``).

    Args:
        probs: ``[N, C]`` class probabilities of the held-out items.
        labels: ``[N]`` their true classes.
        tol: the bisection's tolerance in ``log beta``.

    Returns:
        ``T``.

    Raises:
        ConfigError: for shapes other than ``[N, C]`` and ``[N]`` with N > 0.
    """
    if probs.ndim != 2 or len(probs) == 0:
        raise ConfigError(f"temperature scaling needs probabilities [N, C], N > 0; got "
                          f"{tuple(probs.shape)}")
    labels = class_labels(labels, probs.shape[0], probs.shape[1], "calibration labels")
    z = as_logits(probs)
    z_true = z.gather(1, labels[:, None])[:, 0]

    def slope(log_beta: float) -> float:
        w = torch.softmax(math.exp(log_beta) * z, dim=1)
        return ((w * z).sum(1) - z_true).mean().item()

    lo, hi = LOG_BETA_RANGE
    if slope(lo) >= 0:
        return math.exp(-lo)
    if slope(hi) <= 0:
        return math.exp(-hi)
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if slope(mid) < 0:
            lo = mid
        else:
            hi = mid
    return math.exp(-0.5 * (lo + hi))


def recalibration_summary(cal_probs: torch.Tensor, cal_labels: torch.Tensor,
                          test_probs: torch.Tensor, test_labels: torch.Tensor,
                          n_bins: int = 15) -> dict:
    """The temperature fitted on the held-out items and the test items' calibration
    ([`calibration_summary`][synsample.metrics.calibration.calibration_summary]) before and after
    scaling.

    Args:
        cal_probs: ``[n, C]`` class probabilities of the held-out items.
        cal_labels: ``[n]`` their true classes.
        test_probs: ``[N, C]`` class probabilities of the test items.
        test_labels: ``[N]`` their true classes.
        n_bins: the calibration summary's bins.

    Returns:
        The fitted ``temperature``, ``calibration_items``, and the test items' summary
        ``before`` and ``after`` scaling.
    """
    from synsample.metrics.calibration import calibration_summary

    t = fit_temperature(cal_probs, cal_labels)
    return {"temperature": t, "calibration_items": len(cal_labels),
            "before": calibration_summary(test_probs, test_labels, n_bins),
            "after": calibration_summary(scale(test_probs, t), test_labels, n_bins)}
