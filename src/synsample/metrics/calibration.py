"""Calibration of the mean class probabilities: NLL, Brier, ECE, adaptive ECE, reliability.

ECE is the L1 calibration error over equal-width confidence bins, the definition torchmetrics'
``multiclass_calibration_error`` and other papers use. Its bins are made in float64 by one
function, [`confidence_bins`][synsample.metrics.calibration.confidence_bins], shared with the
reliability diagram, so the diagram adds up
to the ECE exactly: a confidence within 1e-9 of a bin edge counts as on the edge, so vote shares
``k / K`` that equal an edge fall in the upper bin whatever the rounding of ``k / K`` (float32
binning put 2,008 of 10,000 twenty-pass vote shares in the bin below). Adaptive ECE (equal-mass
bins, Nguyen and O'Connor 2015) never splits items of equal confidence across bins, so it does
not depend on the order of the items.

Every function has a streaming twin in
[`CalibrationMetrics`][synsample.metrics.calibration.CalibrationMetrics] (update / compute / reset):
accuracy, NLL and Brier as running sums, ECE in torchmetrics' module, adaptive ECE from each item's
confidence and correctness (equal-mass bins need them all: two numbers per item, never the
``[N, C]`` probabilities).

The probabilities may be a method's mean class probabilities or its vote shares
([`vote_probabilities`][synsample.metrics.calibration.vote_probabilities]): scANN decides by votes,
Bayesian baselines by mean probabilities, and the report shows both.
"""

from __future__ import annotations

from typing import Any

import torch


def _check(probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from synsample.errors import ConfigError
    from synsample.metrics.labels import class_labels

    if probs.ndim != 2:
        raise ConfigError(f"probabilities [N, C] needed, got {tuple(probs.shape)}")
    return probs.to(torch.float64), class_labels(labels, probs.shape[0], probs.shape[1])


def nll(probs: torch.Tensor, labels: torch.Tensor, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of the labels, in nats (probabilities floored at ``eps``).

    Args:
        probs: ``[N, C]`` class probabilities.
        labels: ``[N]`` true classes.
        eps: the floor of a label's probability.

    Returns:
        The mean NLL.

    Raises:
        ConfigError: for shapes other than ``[N, C]`` and ``[N]``.
    """
    p, y = _check(probs, labels)
    return -torch.log(p.gather(1, y[:, None])[:, 0].clamp(min=eps)).mean().item()


def brier(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over items of ``sum_c (p_c - [y = c])^2`` (0 perfect, 2 worst).

    Args:
        probs: ``[N, C]`` class probabilities.
        labels: ``[N]`` true classes.

    Returns:
        The Brier score.
    """
    p, y = _check(probs, labels)
    onehot = torch.nn.functional.one_hot(y, p.shape[1]).to(p.dtype)
    return ((p - onehot) ** 2).sum(dim=1).mean().item()


#: a confidence this close below a bin edge counts as on it (see the module's docstring)
EDGE_TOLERANCE = 1e-9


def confidence_bins(conf: torch.Tensor, n_bins: int) -> torch.Tensor:
    """The equal-width bin of each confidence in [0, 1]: ``floor(conf * n_bins)``, in float64,
    with [`EDGE_TOLERANCE`][synsample.metrics.calibration.EDGE_TOLERANCE] at the edges, the last bin
    closed.

    Args:
        conf: confidences in [0, 1].
        n_bins: the number of bins.

    Returns:
        int64 bin indices in ``0 .. n_bins - 1``, shaped as ``conf``.
    """
    return torch.floor(conf.to(torch.float64) * n_bins + EDGE_TOLERANCE).long().clamp_(
        0, n_bins - 1)


def _bin_gaps(conf: torch.Tensor, hit: torch.Tensor, n_bins: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per equal-width bin: the item count and the summed ``conf - hit``."""
    conf, hit = conf.to(torch.float64), hit.to(torch.float64)
    bins = confidence_bins(conf, n_bins)
    count = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, bins, torch.ones_like(conf))
    gap = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, bins, conf - hit)
    return count, gap


def _ece(conf: torch.Tensor, hit: torch.Tensor, n_bins: int, norm: str = "l1") -> float:
    """The calibration error over equal-width bins: ``l1`` (ECE), ``l2`` (the root of the
    count-weighted squared gaps) or ``max`` (MCE, the largest gap of a non-empty bin)."""
    count, gap = _bin_gaps(conf, hit, n_bins)
    filled = count > 0
    per_bin = gap[filled].abs() / count[filled]
    if norm == "max":
        return per_bin.max().item()
    weights = count[filled] / count.sum()
    if norm == "l2":
        return (weights * per_bin ** 2).sum().sqrt().item()
    return (weights * per_bin).sum().item()


def classwise_ece(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """Class-wise ECE (Kull et al. 2019): for every class, the L1 calibration error of its
    probability against whether the label is that class, over equal-width bins; the mean over
    classes.

    Args:
        probs: ``[N, C]`` class probabilities.
        labels: ``[N]`` true classes.
        n_bins: equal-width bins per class.

    Returns:
        The class-wise ECE.
    """
    p, y = _check(probs, labels)
    onehot = torch.nn.functional.one_hot(y, p.shape[1]).to(torch.float64)
    return sum(_ece(p[:, c], onehot[:, c], n_bins) for c in range(p.shape[1])) / p.shape[1]


def mce(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """Maximum calibration error: the largest ``|acc_b - conf_b|`` of a non-empty bin.

    Args:
        probs: ``[N, C]`` class probabilities.
        labels: ``[N]`` true classes.
        n_bins: equal-width confidence bins.

    Returns:
        The MCE.
    """
    p, y = _check(probs, labels)
    conf, pred = p.max(dim=1)
    return _ece(conf, pred == y, n_bins, "max")


def l2_ece(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """L2 calibration error: ``sqrt(sum_b |B_b|/N (acc_b - conf_b)^2)`` over equal-width
    confidence bins (Kumar et al. 2019).

    Args:
        probs: ``[N, C]`` class probabilities.
        labels: ``[N]`` true classes.
        n_bins: equal-width confidence bins.

    Returns:
        The L2 ECE.
    """
    p, y = _check(probs, labels)
    conf, pred = p.max(dim=1)
    return _ece(conf, pred == y, n_bins, "l2")


def ece(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """Expected calibration error with ``n_bins`` equal-width confidence bins:
    ``sum_b |B_b|/N |acc_b - conf_b|`` (L1).

    Args:
        probs: ``[N, C]`` class probabilities.
        labels: ``[N]`` true classes.
        n_bins: equal-width confidence bins.

    Returns:
        The ECE.
    """
    p, y = _check(probs, labels)
    conf, pred = p.max(dim=1)
    return _ece(conf, pred == y, n_bins)


def reliability(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15,
                adaptive: bool = False) -> list[dict[str, Any]]:
    """Per confidence bin: its range, item count, mean confidence and accuracy.

    Args:
        probs: ``[N, C]`` class probabilities.
        labels: ``[N]`` true classes.
        n_bins: the number of bins.
        adaptive: bins of equal item count instead of equal width.

    Returns:
        One row per bin: ``low``, ``high``, ``count``, ``confidence`` and ``accuracy`` (None
        for an empty bin).
    """
    p, y = _check(probs, labels)
    conf, pred = p.max(dim=1)
    correct = (pred == y).to(torch.float64)
    if adaptive:
        groups = _equal_mass_groups(conf, n_bins)
    else:
        idx = confidence_bins(conf, n_bins)
        groups = [torch.nonzero(idx == b)[:, 0] for b in range(n_bins)]
    out = []
    for b, g in enumerate(groups):
        lo, hi = ((conf[g].min().item(), conf[g].max().item()) if adaptive and len(g)
                  else (b / n_bins, (b + 1) / n_bins))
        out.append({"low": lo, "high": hi, "count": len(g),
                    "confidence": conf[g].mean().item() if len(g) else None,
                    "accuracy": correct[g].mean().item() if len(g) else None})
    return out


def _equal_mass_groups(conf: torch.Tensor, n_bins: int) -> list[torch.Tensor]:
    """Item indices in up to ``n_bins`` groups of about equal count by confidence; a run of
    equal confidences is never split (a cut moves to the run's end), so the groups as sets do
    not depend on the items' order."""
    order = torch.argsort(conf, stable=True)
    ranked = conf[order]
    n = len(conf)
    cuts = []
    for b in range(1, n_bins):
        cut = round(b * n / n_bins)
        if 0 < cut < n:  # the first index of the tie run holding cut, or its end
            cut = int(torch.searchsorted(ranked, ranked[cut - 1], right=True))
        if 0 < cut < n and (not cuts or cut > cuts[-1]):
            cuts.append(cut)
    return [g for g in torch.tensor_split(order, cuts) if len(g)]


def _adaptive_ece(conf: torch.Tensor, hit: torch.Tensor, n_bins: int) -> float:
    total = 0.0
    for g in _equal_mass_groups(conf, n_bins):
        total += len(g) * abs(hit[g].to(torch.float64).mean().item() - conf[g].mean().item())
    return total / len(conf)


def adaptive_ece(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """ECE over ``n_bins`` bins of equal item count: ``sum_b |B_b|/N |acc_b - conf_b|``.

    Args:
        probs: ``[N, C]`` class probabilities.
        labels: ``[N]`` true classes.
        n_bins: the number of equal-mass bins (fewer when ties merge them).

    Returns:
        The adaptive ECE.
    """
    p, y = _check(probs, labels)
    conf, pred = p.max(dim=1)
    return _adaptive_ece(conf, pred == y, n_bins)


def per_class(probs: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor,
              classes: list[str] | tuple[str, ...] | None = None, n_bins: int = 15
              ) -> list[dict[str, Any]]:
    """Per true class: its items, the accuracy of the probabilities' argmax, the mean of an
    uncertainty score and the ECE over its items (a class the network learnt badly, such as
    paper 000's under-represented one, shows here).

    Args:
        probs: ``[N, C]`` class probabilities.
        labels: ``[N]`` true classes.
        scores: ``[N]`` an uncertainty score per item.
        classes: the class names (default: their indices).
        n_bins: equal-width bins of each class's ECE.

    Returns:
        One row per class: ``class``, ``items``, ``accuracy``, ``mean_score``, ``ece``
        (None for a class without items).
    """
    p, y = _check(probs, labels)
    conf, pred = p.max(dim=1)
    hit = pred == y
    rows = []
    for c in range(p.shape[1]):
        mask = y == c
        n = int(mask.sum())
        rows.append({"class": classes[c] if classes is not None else str(c), "items": n,
                     "accuracy": hit[mask].double().mean().item() if n else None,
                     "mean_score": scores[mask].double().mean().item() if n else None,
                     "ece": _ece(conf[mask], hit[mask], n_bins) if n else None})
    return rows


def vote_probabilities(votes: torch.Tensor) -> torch.Tensor:
    """The vote shares ``votes / K`` as a probability vector per item ``[N, C]``.

    Args:
        votes: ``[N, C]`` vote counts.

    Returns:
        ``[N, C]`` float64 shares.
    """
    v = votes.to(torch.float64)
    return v / v.sum(dim=1, keepdim=True).clamp(min=1)


class CalibrationMetrics:
    """Streaming accuracy, NLL, Brier, ECE and adaptive ECE over batches of probabilities;
    [`compute`][synsample.metrics.calibration.CalibrationMetrics.compute] equals
    [`calibration_summary`][synsample.metrics.calibration.calibration_summary] of all batches at
    once.

    Args:
        n_bins: equal-width (and equal-mass) confidence bins.
        eps: the floor of a label's probability in the NLL.
    """

    def __init__(self, n_bins: int = 15, eps: float = 1e-12) -> None:
        self.n_bins, self.eps = n_bins, eps
        self.reset()

    def reset(self) -> None:
        """Forget every item seen."""
        self.count = 0
        self._correct = self._nll = self._brier = 0.0
        self._confidence: list[torch.Tensor] = []
        self._hit: list[torch.Tensor] = []
        #: per class and bin: items and summed p_c - [y = c] (class-wise ECE, no [N, C] kept)
        self._class_count = self._class_gap = None

    def update(self, probs: torch.Tensor, labels: torch.Tensor) -> None:
        """Add a batch of items.

        Args:
            probs: ``[B, C]`` class probabilities.
            labels: ``[B]`` true classes.
        """
        p, y = _check(probs, labels)
        p, y = p.cpu(), y.cpu()
        conf, pred = p.max(dim=1)
        hit = pred == y
        self.count += len(y)
        self._correct += hit.sum().item()
        self._nll -= torch.log(p.gather(1, y[:, None])[:, 0].clamp(min=self.eps)).sum().item()
        onehot = torch.nn.functional.one_hot(y, p.shape[1]).to(p.dtype)
        self._brier += ((p - onehot) ** 2).sum().item()
        self._confidence.append(conf)
        self._hit.append(hit)
        if self._class_count is None:
            self._class_count = torch.zeros(p.shape[1], self.n_bins, dtype=torch.float64)
            self._class_gap = torch.zeros(p.shape[1], self.n_bins, dtype=torch.float64)
        for c in range(p.shape[1]):
            count, gap = _bin_gaps(p[:, c], onehot[:, c], self.n_bins)
            self._class_count[c] += count
            self._class_gap[c] += gap

    def compute(self) -> dict[str, float]:
        """The metrics of every item seen, equal to
        [`calibration_summary`][synsample.metrics.calibration.calibration_summary] of them all.

        Returns:
            The same keys as
            [`calibration_summary`][synsample.metrics.calibration.calibration_summary].

        Raises:
            ConfigError: when no item was added.
        """
        from synsample.errors import ConfigError

        if self.count == 0:
            raise ConfigError("no items: call update() before compute()")
        conf, hit = torch.cat(self._confidence), torch.cat(self._hit)
        return {"accuracy": self._correct / self.count, "nll": self._nll / self.count,
                "brier": self._brier / self.count, "ece": _ece(conf, hit, self.n_bins),
                "l2_ece": _ece(conf, hit, self.n_bins, "l2"),
                "mce": _ece(conf, hit, self.n_bins, "max"),
                "classwise_ece": self._classwise(),
                "adaptive_ece": _adaptive_ece(conf, hit, self.n_bins), "bins": self.n_bins}

    def _classwise(self) -> float:
        count, gap = self._class_count, self._class_gap
        filled = count > 0
        per_class = (gap.abs() * filled).sum(1) / count.sum(1).clamp(min=1)
        return per_class.mean().item()


def calibration_summary(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15
                        ) -> dict[str, float]:
    """Accuracy of the probabilities' argmax, NLL, Brier, ECE (L1), L2 ECE, MCE, class-wise ECE
    and adaptive ECE.

    Args:
        probs: ``[N, C]`` class probabilities.
        labels: ``[N]`` true classes.
        n_bins: equal-width (and equal-mass) confidence bins.

    Returns:
        ``accuracy``, ``nll``, ``brier``, ``ece``, ``l2_ece``, ``mce``, ``classwise_ece``,
        ``adaptive_ece`` and ``bins``.
    """
    p, y = _check(probs, labels)
    conf, pred = p.max(dim=1)
    return {"accuracy": (pred == y).to(torch.float64).mean().item(), "nll": nll(p, y),
            "brier": brier(p, y), "ece": ece(p, y, n_bins),
            "l2_ece": l2_ece(p, y, n_bins), "mce": mce(p, y, n_bins),
            "classwise_ece": classwise_ece(p, y, n_bins),
            "adaptive_ece": adaptive_ece(p, y, n_bins), "bins": n_bins}
