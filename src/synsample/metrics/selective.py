"""Selective prediction: answer only the items the network is sure of, and say what that buys.

Items are accepted from the least to the most uncertain (by any uncertainty score, higher is
more uncertain). At coverage ``c`` (the fraction accepted) the **selective risk** is the error
rate among the accepted items (Geifman and El-Yaniv 2017), and the **generalized risk** is the
number of accepted errors over all items (Traub et al. 2024). Items of equal score are accepted
or refused together, so a curve point is taken only where the score changes; without ties this
is the usual per-item curve.

- ``aurc``: the area under the risk-coverage curve, each point weighted by the items it adds;
- ``augrc``: the same for the generalized risk (it does not over-weight the first few items);
- ``risk_at_coverage``: the selective risk at 80, 90 and 95% coverage (the smallest accepted
  set that covers at least that fraction);
- ``coverage_at_risk``: the largest coverage whose selective risk is at most 1, 2 and 5%
  (0 when even the surest items miss more often).

[`SelectiveMetrics`][synsample.metrics.selective.SelectiveMetrics] streams: it keeps two numbers per
item, never the probabilities.
"""

from __future__ import annotations

from typing import Any

import torch

from synsample.errors import ConfigError

COVERAGES = (0.8, 0.9, 0.95)
RISKS = (0.01, 0.02, 0.05)


def risk_coverage(scores: torch.Tensor, correct: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The risk-coverage curve: ``(coverage, selective_risk, generalized_risk)``, one point per
    distinct score, from the surest items to all of them (float64).

    Args:
        scores: one uncertainty score per item.
        correct: whether each item's prediction is right.

    Returns:
        ``(coverage, selective_risk, generalized_risk)``, one point per distinct score.

    Raises:
        ConfigError: for no items, mismatched sizes or non-finite scores.
    """
    scores, correct = scores.flatten().to(torch.float64), correct.flatten().to(torch.float64)
    if scores.numel() == 0 or scores.shape != correct.shape:
        raise ConfigError(f"selective prediction needs one score per item and at least one "
                          f"item, got {scores.numel()} scores and {correct.numel()} outcomes")
    if not torch.isfinite(scores).all():
        raise ConfigError("selective prediction needs finite uncertainty scores")
    order = torch.argsort(scores, stable=True)
    ranked, errors = scores[order], (1.0 - correct[order]).cumsum(0)
    ends = torch.nonzero(torch.cat([ranked[1:] != ranked[:-1],
                                    torch.tensor([True])]))[:, 0]  # last item of each tie run
    accepted = (ends + 1).to(torch.float64)
    n = float(len(scores))
    return accepted / n, errors[ends] / accepted, errors[ends] / n


def _areas(scores: torch.Tensor, correct: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The curve, the items each point adds (as a fraction), and the two risks."""
    coverage, risk, general = risk_coverage(scores, correct)
    weights = torch.diff(coverage, prepend=torch.zeros(1, dtype=torch.float64))
    return coverage, weights, risk, general


def aurc(scores: torch.Tensor, correct: torch.Tensor) -> float:
    """Area under the risk-coverage curve (Geifman and El-Yaniv 2017), each point weighted by
    the items it adds; lower is better.

    Args:
        scores: one uncertainty score per item (higher: less sure).
        correct: whether each item's prediction is right.

    Returns:
        The AURC.
    """
    _, weights, risk, _ = _areas(scores, correct)
    return (weights * risk).sum().item()


def augrc(scores: torch.Tensor, correct: torch.Tensor) -> float:
    """Area under the generalized risk-coverage curve (Traub et al. 2024): accepted errors over
    all items, so the first few accepted items are not over-weighted; lower is better.

    Args:
        scores: one uncertainty score per item (higher: less sure).
        correct: whether each item's prediction is right.

    Returns:
        The AUGRC.
    """
    _, weights, _, general = _areas(scores, correct)
    return (weights * general).sum().item()


def selective_summary(scores: torch.Tensor, correct: torch.Tensor) -> dict[str, Any]:
    """AURC, AUGRC, risk at 80/90/95% coverage and coverage at 1/2/5% risk (module docstring),
    and the curve itself (``curve``: coverage and selective risk, for the report's figure).

    Args:
        scores: one uncertainty score per item.
        correct: whether each item's prediction is right.

    Returns:
        ``aurc``, ``augrc``, ``risk_at_coverage``, ``coverage_at_risk`` and ``curve``.
    """
    coverage, weights, risk, general = _areas(scores, correct)
    at_coverage = {}
    for c in COVERAGES:
        first = int(torch.searchsorted(coverage, torch.tensor(c - 1e-12, dtype=torch.float64)))
        at_coverage[f"{c:g}"] = risk[min(first, len(risk) - 1)].item()
    at_risk = {}
    for r in RISKS:
        ok = torch.nonzero(risk <= r + 1e-12)[:, 0]
        at_risk[f"{r:g}"] = coverage[ok[-1]].item() if len(ok) else 0.0
    return {"aurc": (weights * risk).sum().item(), "augrc": (weights * general).sum().item(),
            "risk_at_coverage": at_coverage, "coverage_at_risk": at_risk,
            "curve": {"coverage": coverage.tolist(), "risk": risk.tolist()}}


class SelectiveMetrics:
    """Streaming [`selective_summary`][synsample.metrics.selective.selective_summary]:
    ``update(scores, correct)`` batch by batch, then
    [`compute`][synsample.metrics.selective.SelectiveMetrics.compute] (equal to the function on all
    batches) and [`reset`][synsample.metrics.selective.SelectiveMetrics.reset]."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every item seen."""
        self._scores: list[torch.Tensor] = []
        self._correct: list[torch.Tensor] = []

    def update(self, scores: torch.Tensor, correct: torch.Tensor) -> None:
        """Add a batch of items.

        Args:
            scores: each item's uncertainty score.
            correct: whether each item's prediction was right.
        """
        self._scores.append(scores.detach().flatten().cpu())
        self._correct.append(correct.detach().flatten().cpu())

    def compute(self) -> dict[str, Any]:
        """[`selective_summary`][synsample.metrics.selective.selective_summary] of every item seen.

        Returns:
            The same keys as [`selective_summary`][synsample.metrics.selective.selective_summary].

        Raises:
            ConfigError: when no item was added.
        """
        if not self._scores:
            raise ConfigError("no items: call update() before compute()")
        return selective_summary(torch.cat(self._scores), torch.cat(self._correct))
