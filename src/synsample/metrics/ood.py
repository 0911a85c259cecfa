"""Out-of-distribution detection. The positive class is *OoD*: a score that is higher for OoD
items detects them. AUROC, AUPR and the ROC come from torchmetrics.

- ``auroc``: area under the ROC of OoD (positive) against in-distribution (negative);
- ``aupr_out``: average precision with OoD positive; ``aupr_in``: with in-distribution
  positive and the score negated;
- ``fpr_at_95_tpr``: the share of in-distribution items flagged when 95% of OoD items are;
- paper 004's rule ([`quantile_rule`][synsample.metrics.ood.quantile_rule]): reject an input when
  the 99% quantile of its per-pass max softmax probabilities is below 90%; the detection rate is the
  share rejected.

[`DetectionMetrics`][synsample.metrics.ood.DetectionMetrics] is the streaming twin of
[`detection_metrics`][synsample.metrics.ood.detection_metrics] (one score per
item is kept: the exact ROC needs them all).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from synsample.prediction import Prediction


def detection_metrics(in_scores: torch.Tensor, out_scores: torch.Tensor) -> dict[str, float]:
    """AUROC, AUPR (out and in) and FPR at 95% TPR; OoD is the positive class.

    Scores are compared in float64: scores that differ below float32's resolution are not
    ties. Both sets must be non-empty (the metrics are undefined otherwise).

    Args:
        in_scores: uncertainty scores of in-distribution items.
        out_scores: uncertainty scores of OoD items.

    Returns:
        ``auroc``, ``aupr_out``, ``aupr_in`` and ``fpr_at_95_tpr``.

    Raises:
        ConfigError: when either set is empty.
    """
    if len(in_scores) == 0 or len(out_scores) == 0:
        from synsample.errors import ConfigError

        raise ConfigError("OoD detection needs scores of in-distribution and OoD items; "
                          f"got {len(in_scores)} and {len(out_scores)}")
    # imported here: torchmetrics takes about 2 s to import, which every command line would pay
    from torchmetrics.functional.classification import (
        binary_auroc,
        binary_average_precision,
        binary_roc,
    )

    scores = torch.cat([in_scores, out_scores]).to(torch.float64)
    target = torch.cat([torch.zeros(len(in_scores)), torch.ones(len(out_scores))]).long()
    fpr, tpr, _ = binary_roc(scores, target)
    reach = torch.nonzero(tpr >= 0.95)
    return {
        "auroc": binary_auroc(scores, target).item(),
        "aupr_out": binary_average_precision(scores, target).item(),
        "aupr_in": binary_average_precision(-scores, 1 - target).item(),
        "fpr_at_95_tpr": fpr[reach[0, 0]].item() if len(reach) else 1.0,
    }


class DetectionMetrics:
    """Streaming OoD detection: ``update(scores, ood=...)`` batch by batch, then
    [`compute`][synsample.metrics.ood.DetectionMetrics.compute] (equal to
    [`detection_metrics`][synsample.metrics.ood.detection_metrics] of all batches) and
    [`reset`][synsample.metrics.ood.DetectionMetrics.reset]."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every score seen."""
        self._scores: dict[bool, list[torch.Tensor]] = {False: [], True: []}

    def update(self, scores: torch.Tensor, ood: bool) -> None:
        """Add a batch of uncertainty scores.

        Args:
            scores: the items' scores (flattened).
            ood: whether the items are OoD.
        """
        self._scores[bool(ood)].append(scores.detach().flatten().cpu())

    def compute(self) -> dict[str, float]:
        """[`detection_metrics`][synsample.metrics.ood.detection_metrics] of every score seen.

        Returns:
            The same keys as [`detection_metrics`][synsample.metrics.ood.detection_metrics].

        Raises:
            ConfigError: without scores of both kinds.
        """
        if not self._scores[False] or not self._scores[True]:
            from synsample.errors import ConfigError

            raise ConfigError("OoD detection needs scores of in-distribution and OoD items")
        return detection_metrics(torch.cat(self._scores[False]), torch.cat(self._scores[True]))


def max_prob_quantile(hist: torch.Tensor, q: float = 0.99) -> torch.Tensor:
    """The ``q`` quantile (nearest rank) of each item's per-pass max probabilities, from the
    engine's histogram ``[N, B]`` (resolution 1/B; the value returned is the bin's lower edge).

    Args:
        hist: ``[N, B]`` counts of passes per max-probability bin.
        q: the quantile, in (0, 1].

    Returns:
        ``[N]`` float64 quantiles.
    """
    bins = hist.shape[1]
    cum = hist.to(torch.int64).cumsum(dim=1)
    need = torch.ceil(q * cum[:, -1].to(torch.float64)).clamp(min=1)
    idx = (cum < need[:, None]).sum(dim=1)
    return idx.to(torch.float64) / bins


def quantile_rule(pred: Prediction, q: float = 0.99, threshold: float = 0.9) -> torch.Tensor:
    """Bool ``[N]``: rejected as OoD by paper 004's rule (the ``q`` quantile of the per-pass
    max probability is below ``threshold``; paper 004, section 4.1). Thresholds are read at the
    histogram's 1/100 resolution, exactly at 0.90.

    Args:
        pred: the sampling run's statistics (with ``max_prob_hist``).
        q: the quantile of the per-pass max probabilities.
        threshold: the probability it must fall below.

    Returns:
        ``[N]`` bool, True for a rejected item.

    Raises:
        ConfigError: for a Prediction without the histogram.
    """
    if pred.max_prob_hist is None:
        from synsample.errors import ConfigError

        raise ConfigError("the quantile rule needs per-pass max probabilities; sample again with "
                          "this version of synsample")
    return max_prob_quantile(pred.max_prob_hist, q) < threshold - 1e-9


#: the two readings of paper 004's rule ("an input is rejected if the 99% prediction
#: probabilities for T sub-inferences are below 90%"), as the quantile of the passes' max
#: probability that must fall below the threshold: every pass unsure (the 99% quantile, the
#: reading used so far) or at least about 1% of the passes unsure (the 1% quantile)
RULE_READINGS = {"all-passes": 0.99, "any-percent": 0.01}


def rule_summary(in_pred: Prediction, out_pred: Prediction, q: float = 0.99,
                 threshold: float = 0.9) -> dict[str, Any]:
    """Detection rate on the OoD set and false rejection rate on the in-distribution set, for
    the quantile ``q``; ``readings`` gives both of `RULE_READINGS`.

    Args:
        in_pred: the in-distribution run.
        out_pred: the OoD run.
        q: the quantile of the per-pass max probabilities.
        threshold: the probability it must fall below.

    Returns:
        ``rule``, ``detection_rate``, ``false_rejection_rate`` and ``readings`` (the same
        three per reading).
    """
    def one(q: float) -> dict[str, Any]:
        return {"rule": f"reject if the {q:.0%} quantile of per-pass max probability < "
                        f"{threshold:.0%}",
                "detection_rate": quantile_rule(out_pred, q, threshold).double().mean().item(),
                "false_rejection_rate": quantile_rule(in_pred, q, threshold).double().mean(
                ).item()}

    return {**one(q), "readings": {name: one(rq) for name, rq in RULE_READINGS.items()}}
