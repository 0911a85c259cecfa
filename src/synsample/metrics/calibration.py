"""Calibration of the mean class probabilities: NLL, Brier, ECE, adaptive ECE, reliability.

ECE comes from torchmetrics (``multiclass_calibration_error``, L1 norm, equal-width bins):
well kept and streaming. Adaptive ECE (equal-mass bins, Nguyen and O'Connor 2015) is not in
torchmetrics and is written here. Each function has a streaming twin in
:class:`CalibrationMetrics` (update / compute / reset).
"""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics.functional.classification import multiclass_calibration_error


def _check(probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from synsample.errors import ConfigError

    if probs.ndim != 2 or labels.ndim != 1 or probs.shape[0] != labels.shape[0]:
        raise ConfigError(f"probabilities [N, C] and labels [N] needed, got {tuple(probs.shape)} "
                          f"and {tuple(labels.shape)}")
    return probs.to(torch.float64), labels.long()


def nll(probs: torch.Tensor, labels: torch.Tensor, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of the labels, in nats (probabilities floored at ``eps``)."""
    p, y = _check(probs, labels)
    return -torch.log(p.gather(1, y[:, None])[:, 0].clamp(min=eps)).mean().item()


def brier(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over items of ``sum_c (p_c - [y = c])^2`` (0 perfect, 2 worst)."""
    p, y = _check(probs, labels)
    onehot = torch.nn.functional.one_hot(y, p.shape[1]).to(p.dtype)
    return ((p - onehot) ** 2).sum(dim=1).mean().item()


def ece(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """Expected calibration error with ``n_bins`` equal-width confidence bins (torchmetrics)."""
    p, y = _check(probs, labels)
    return multiclass_calibration_error(p.float(), y, num_classes=p.shape[1], n_bins=n_bins,
                                        norm="l1").item()


def reliability(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15,
                adaptive: bool = False) -> list[dict[str, Any]]:
    """Per confidence bin: its range, item count, mean confidence and accuracy.

    ``adaptive``: bins of equal item count instead of equal width.
    """
    p, y = _check(probs, labels)
    conf, pred = p.max(dim=1)
    correct = (pred == y).to(torch.float64)
    if adaptive:
        order = torch.argsort(conf)
        groups = [g for g in torch.tensor_split(order, n_bins) if len(g)]
    else:
        idx = (conf * n_bins).long().clamp(max=n_bins - 1)
        groups = [torch.nonzero(idx == b)[:, 0] for b in range(n_bins)]
    out = []
    for b, g in enumerate(groups):
        lo, hi = ((conf[g].min().item(), conf[g].max().item()) if adaptive and len(g)
                  else (b / n_bins, (b + 1) / n_bins))
        out.append({"low": lo, "high": hi, "count": len(g),
                    "confidence": conf[g].mean().item() if len(g) else None,
                    "accuracy": correct[g].mean().item() if len(g) else None})
    return out


def adaptive_ece(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """ECE over ``n_bins`` bins of equal item count: ``sum_b |B_b|/N |acc_b - conf_b|``."""
    bins = reliability(probs, labels, n_bins, adaptive=True)
    n = sum(b["count"] for b in bins)
    return sum(b["count"] / n * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"])


class CalibrationMetrics:
    """Streaming accuracy, NLL, Brier, ECE and adaptive ECE over batches of probabilities."""

    def __init__(self, n_bins: int = 15) -> None:
        self.n_bins = n_bins
        self.reset()

    def reset(self) -> None:
        self._probs: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []

    def update(self, probs: torch.Tensor, labels: torch.Tensor) -> None:
        p, y = _check(probs, labels)
        self._probs.append(p.cpu())
        self._labels.append(y.cpu())

    def compute(self) -> dict[str, float]:
        p, y = torch.cat(self._probs), torch.cat(self._labels)
        return calibration_summary(p, y, self.n_bins)


def calibration_summary(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15
                        ) -> dict[str, float]:
    """Accuracy of the mean probabilities, NLL, Brier, ECE and adaptive ECE."""
    p, y = _check(probs, labels)
    return {"accuracy": (p.argmax(1) == y).to(torch.float64).mean().item(), "nll": nll(p, y),
            "brier": brier(p, y), "ece": ece(p, y, n_bins),
            "adaptive_ece": adaptive_ece(p, y, n_bins), "bins": n_bins}
