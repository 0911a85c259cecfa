"""The defects the metrics cross-check found (issue 18), each pinned by a test that failed
before its fix: float32 ties in detection, empty sets, the reliability diagram's bins against
the ECE's, and adaptive ECE's dependence on the order of tied items."""

import pytest
import torch
from torchmetrics.functional.classification import multiclass_calibration_error

from synsample import metrics
from synsample.errors import ConfigError
from synsample.metrics.calibration import adaptive_ece, ece, reliability


def test_scores_that_differ_below_float32_resolution_are_not_ties():
    g = torch.Generator().manual_seed(0)
    inside = 1 + 1e-10 * torch.rand(1000, generator=g, dtype=torch.float64)
    outside = 1 + 1e-10 * (1 + torch.rand(300, generator=g, dtype=torch.float64))
    d = metrics.detection_metrics(inside, outside)
    assert d["auroc"] == 1.0 and d["fpr_at_95_tpr"] == 0.0
    assert d["aupr_out"] == pytest.approx(1.0) and d["aupr_in"] == pytest.approx(1.0)


def test_detection_with_an_empty_set_is_an_error_and_aupr_stays_in_range():
    with pytest.raises(ConfigError, match="got 0 and 3"):
        metrics.detection_metrics(torch.empty(0), torch.rand(3))
    with pytest.raises(ConfigError, match="got 3 and 0"):
        metrics.detection_metrics(torch.rand(3), torch.empty(0))
    d = metrics.detection_metrics(torch.rand(50), torch.rand(40) + 0.5)
    assert all(0.0 <= d[k] <= 1.0 for k in ("auroc", "aupr_in", "aupr_out", "fpr_at_95_tpr"))


def _vote_shares(n: int = 2000, passes: int = 20, classes: int = 10, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, generator=g) * 2
    votes = torch.zeros(n, classes, dtype=torch.int64)
    for _ in range(passes):
        noisy = logits + torch.randn(n, classes, generator=g)
        votes.scatter_add_(1, noisy.argmax(1, keepdim=True), torch.ones(n, 1, dtype=torch.int64))
    labels = (logits + torch.randn(n, classes, generator=g)).argmax(1)
    return metrics.vote_probabilities(votes), labels


def test_the_reliability_diagram_adds_up_to_the_ece_on_vote_shares():
    probs, labels = _vote_shares()
    conf = probs.max(1).values
    on_edges = torch.isclose(conf * 15, torch.round(conf * 15), atol=1e-9)
    assert on_edges.sum() > 100  # many 20-pass shares sit on an edge of 15 bins (3/15, 6/15..)
    rebuilt = sum(b["count"] * abs(b["accuracy"] - b["confidence"])
                  for b in reliability(probs, labels) if b["count"]) / len(labels)
    assert rebuilt == pytest.approx(ece(probs, labels), abs=1e-12)


def test_ece_is_torchmetrics_ece_away_from_bin_edges():
    g = torch.Generator().manual_seed(2)
    probs = torch.softmax(torch.randn(3000, 5, generator=g) * 3, dim=1).double()
    labels = torch.randint(0, 5, (3000,), generator=g)
    reference = multiclass_calibration_error(probs, labels, num_classes=5, n_bins=15,
                                             norm="l1").item()
    assert ece(probs, labels) == pytest.approx(reference, abs=1e-6)


def test_adaptive_ece_does_not_depend_on_the_order_of_tied_items():
    probs, labels = _vote_shares()
    values = set()
    for seed in range(20):
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
        values.add(round(adaptive_ece(probs[order], labels[order]), 12))
    assert len(values) == 1
    groups = [b for b in reliability(probs, labels, adaptive=True) if b["count"]]
    for lower, upper in zip(groups, groups[1:], strict=False):
        assert lower["high"] < upper["low"]  # no confidence is split across two bins


@pytest.mark.parametrize("norm,key", [("l2", "l2_ece"), ("max", "mce")])
def test_l2_ece_and_mce_are_torchmetrics_norms_away_from_bin_edges(norm, key):
    g = torch.Generator().manual_seed(3)
    probs = torch.softmax(torch.randn(3000, 5, generator=g) * 3, dim=1).double()
    labels = torch.randint(0, 5, (3000,), generator=g)
    reference = multiclass_calibration_error(probs, labels, num_classes=5, n_bins=15,
                                             norm=norm).item()
    assert metrics.calibration_summary(probs, labels)[key] == pytest.approx(reference, abs=1e-6)


def test_classwise_ece_by_hand_and_streaming():
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 0])
    # class 0: bins of p_0 {0.9}, {0.6}, {0.2}, {0.3} (15 bins: each alone), y_0 = 1, 0, 0, 1:
    # gaps |0.9 - 1| + |0.6 - 0| + |0.2 - 0| + |0.3 - 1| = 0.1 + 0.6 + 0.2 + 0.7 = 1.6; / 4
    # class 1: p_1 = 0.1, 0.4, 0.8, 0.7 against 0, 1, 1, 0: 0.1 + 0.6 + 0.2 + 0.7 = 1.6; / 4
    assert metrics.calibration_summary(probs, labels)["classwise_ece"] == pytest.approx(0.4)
    g = torch.Generator().manual_seed(4)
    p = torch.softmax(torch.randn(700, 4, generator=g), dim=1)
    y = torch.randint(0, 4, (700,), generator=g)
    stream = metrics.CalibrationMetrics()
    for i in range(0, 700, 256):
        stream.update(p[i:i + 256], y[i:i + 256])
    whole = metrics.calibration_summary(p, y)
    assert stream.compute() == pytest.approx(whole)


def test_paper_004_rule_in_both_readings():
    from synsample.prediction import Prediction

    def pred(per_item_max_probs):
        hist = torch.zeros(len(per_item_max_probs), 100, dtype=torch.int32)
        for i, probs in enumerate(per_item_max_probs):
            for p in probs:
                hist[i, min(int(p * 100), 99)] += 1
        n = len(per_item_max_probs)
        return Prediction(votes=torch.zeros(n, 2, dtype=torch.int64), mean_probs=torch.zeros(n, 2),
                          expected_entropy=torch.zeros(n), max_prob_hist=hist, passes=None,
                          samples=100, votes_at={}, mode="shared", seed=0, random_bits=0,
                          seconds=0.0, info={})

    sure = [[0.99] * 100]                     # every pass sure
    one_unsure = [[0.99] * 98 + [0.5] * 2]    # 2% of the passes unsure
    all_unsure = [[0.6] * 100]
    summary = metrics.rule_summary(pred(sure + one_unsure), pred(one_unsure + all_unsure))
    strict, loose = summary["readings"]["all-passes"], summary["readings"]["any-percent"]
    assert strict["detection_rate"] == 0.5 and strict["false_rejection_rate"] == 0.0
    assert loose["detection_rate"] == 1.0 and loose["false_rejection_rate"] == 0.5
    assert summary["detection_rate"] == strict["detection_rate"]  # the default reading


def test_per_class_views_by_hand():
    probs = torch.tensor([[0.8, 0.2], [0.4, 0.6], [0.3, 0.7], [0.9, 0.1]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    scores = torch.tensor([0.1, 0.5, 0.2, 0.3])
    rows = metrics.per_class(probs, labels, scores, ("a", "b"))
    assert [r["class"] for r in rows] == ["a", "b"] and [r["items"] for r in rows] == [2, 2]
    assert rows[0]["accuracy"] == 0.5 and rows[1]["accuracy"] == 0.5
    assert rows[0]["mean_score"] == pytest.approx(0.3)
    assert rows[1]["mean_score"] == pytest.approx(0.25)
    # class a: confidences 0.8 (right) and 0.6 (wrong) in two bins: (0.2 + 0.6) / 2
    assert rows[0]["ece"] == pytest.approx(0.4)
    empty = metrics.per_class(probs[:2], labels[:2], scores[:2])
    assert empty[1]["items"] == 0 and empty[1]["accuracy"] is None
