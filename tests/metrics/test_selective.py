"""Selective prediction against hand computations: ties, a perfect and a useless score, one
item, streaming."""

import pytest
import torch

from synsample import metrics
from synsample.errors import ConfigError


def test_risk_coverage_by_hand():
    # scores (uncertainty) and outcomes; accepted from the lowest score
    scores = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    correct = torch.tensor([True, True, False, True, False])
    coverage, risk, general = metrics.risk_coverage(scores, correct)
    assert coverage.tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert risk.tolist() == pytest.approx([0, 0, 1 / 3, 1 / 4, 2 / 5])
    assert general.tolist() == pytest.approx([0, 0, 1 / 5, 1 / 5, 2 / 5])
    s = metrics.selective_summary(scores, correct)
    assert s["aurc"] == pytest.approx((0 + 0 + 1 / 3 + 1 / 4 + 2 / 5) / 5)
    assert s["augrc"] == pytest.approx((0 + 0 + 1 / 5 + 1 / 5 + 2 / 5) / 5)
    assert s["risk_at_coverage"] == pytest.approx({"0.8": 1 / 4, "0.9": 2 / 5, "0.95": 2 / 5})
    assert s["coverage_at_risk"] == pytest.approx({"0.01": 0.4, "0.02": 0.4, "0.05": 0.4})


def test_tied_scores_are_accepted_together():
    scores = torch.tensor([0.0, 0.0, 0.0, 1.0])
    correct = torch.tensor([True, False, True, True])
    coverage, risk, _ = metrics.risk_coverage(scores, correct)
    assert coverage.tolist() == pytest.approx([0.75, 1.0])
    assert risk.tolist() == pytest.approx([1 / 3, 1 / 4])
    shuffled = metrics.selective_summary(scores.flip(0), correct.flip(0))
    assert shuffled["aurc"] == pytest.approx(metrics.selective_summary(scores, correct)["aurc"])


def test_a_perfect_and_a_useless_score():
    correct = torch.tensor([True] * 90 + [False] * 10)
    perfect = metrics.selective_summary(torch.arange(100.0), correct)  # errors most uncertain
    assert perfect["risk_at_coverage"]["0.8"] == 0.0 and perfect["coverage_at_risk"]["0.01"] == 0.9
    # the optimal AURC for 10% errors: sum over k > 90 of (k - 90) / k, / 100
    optimal = sum((k - 90) / k for k in range(91, 101)) / 100
    assert perfect["aurc"] == pytest.approx(optimal)
    useless = metrics.selective_summary(torch.zeros(100), correct)  # one tie: all or nothing
    assert useless["aurc"] == pytest.approx(0.1) and useless["coverage_at_risk"]["0.05"] == 0.0


def test_one_item_empty_input_and_streaming():
    assert metrics.selective_summary(torch.tensor([0.3]), torch.tensor([True]))["aurc"] == 0.0
    with pytest.raises(ConfigError, match="at least one item"):
        metrics.selective_summary(torch.empty(0), torch.empty(0, dtype=torch.bool))
    g = torch.Generator().manual_seed(0)
    scores, correct = torch.rand(500, generator=g), torch.rand(500, generator=g) > 0.2
    stream = metrics.SelectiveMetrics()
    for i in range(0, 500, 128):
        stream.update(scores[i:i + 128], correct[i:i + 128])
    assert stream.compute() == metrics.selective_summary(scores, correct)


def test_aurc_and_augrc_by_name_from_a_worked_example():
    scores = torch.tensor([0.0, 1.0, 2.0, 3.0])
    correct = torch.tensor([True, True, False, False])
    # coverage 1/4 .. 1: selective risk 0, 0, 1/3, 1/2; generalized risk 0, 0, 1/4, 1/2
    assert metrics.aurc(scores, correct) == pytest.approx(0.25 * (1 / 3 + 1 / 2))
    assert metrics.augrc(scores, correct) == pytest.approx(0.25 * (1 / 4 + 1 / 2))
    summary = metrics.selective_summary(scores, correct)
    assert (summary["aurc"], summary["augrc"]) == (metrics.aurc(scores, correct),
                                                   metrics.augrc(scores, correct))


def test_l2_ece_mce_and_classwise_ece_by_name_are_the_summarys():
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(200, 4, generator=g), 1)
    labels = torch.randint(0, 4, (200,), generator=g)
    summary = metrics.calibration_summary(probs, labels)
    for name in ("l2_ece", "mce", "classwise_ece", "ece"):
        assert getattr(metrics, name)(probs, labels) == summary[name]
    assert metrics.l2_ece(probs, labels) >= metrics.ece(probs, labels)  # Jensen
