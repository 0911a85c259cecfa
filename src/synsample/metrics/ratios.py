"""Uncertainty ratios of paper 004 (defined in MC-DropConnect, Mobiny et al.).

An item is *uncertain* when its uncertainty score is at or above
``u_T = u_min + T (u_max - u_min)`` (``u_min``, ``u_max`` over the items scored). With
``n_cc`` correct-certain, ``n_cu`` correct-uncertain, ``n_ic`` incorrect-certain and ``n_iu``
incorrect-uncertain items:
``R_cc = n_cc / (n_cc + n_ic)``, ``R_iu = n_iu / (n_iu + n_ic)``,
``UA = (n_cc + n_iu) / N``. A ratio whose denominator is 0 is ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def uncertainty_ratios(scores: torch.Tensor, correct: torch.Tensor, t: float) -> dict[str, Any]:
    """The counts, ``R_cc``, ``R_iu`` and ``UA`` at threshold fraction ``t`` in [0, 1].

    Args:
        scores: ``[N]`` uncertainty scores (higher: more uncertain).
        correct: ``[N]`` whether each item's prediction is right.
        t: ``T``, the threshold as a fraction of the scores' range.

    Returns:
        ``T``, ``u_T``, the four counts, ``R_cc``, ``R_iu`` and ``UA``.
    """
    s = scores.to(torch.float64)
    u_t = s.min() + t * (s.max() - s.min())
    uncertain = s >= u_t
    c = correct.bool()
    n_cc = int((c & ~uncertain).sum())
    n_cu = int((c & uncertain).sum())
    n_ic = int((~c & ~uncertain).sum())
    n_iu = int((~c & uncertain).sum())

    def ratio(a: int, b: int) -> float | None:
        return a / b if b else None

    return {"T": t, "u_T": u_t.item(), "n_cc": n_cc, "n_cu": n_cu, "n_ic": n_ic, "n_iu": n_iu,
            "R_cc": ratio(n_cc, n_cc + n_ic), "R_iu": ratio(n_iu, n_iu + n_ic),
            "UA": (n_cc + n_iu) / len(s)}


def ratio_sweep(scores: torch.Tensor, correct: torch.Tensor,
                thresholds: Iterable[float] | None = None) -> list[dict[str, Any]]:
    """[`uncertainty_ratios`][synsample.metrics.ratios.uncertainty_ratios] for every threshold
    (default 0, 0.05, ..., 1).

    Args:
        scores: ``[N]`` uncertainty scores.
        correct: ``[N]`` whether each item's prediction is right.
        thresholds: the fractions ``T``.

    Returns:
        One result of [`uncertainty_ratios`][synsample.metrics.ratios.uncertainty_ratios] per
        threshold.
    """
    ts = [i / 20 for i in range(21)] if thresholds is None else list(thresholds)
    return [uncertainty_ratios(scores, correct, t) for t in ts]
