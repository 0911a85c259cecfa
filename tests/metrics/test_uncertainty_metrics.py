import math

import pytest
import torch

from synsample import metrics
from synsample.errors import ConfigError
from synsample.metrics.ood import max_prob_quantile
from synsample.metrics.uncertainty import (
    mutual_information,
    predictive_entropy,
    variation_ratio,
)
from synsample.prediction import Prediction


def test_nll_brier_and_calibration_on_known_cases():
    probs = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8]])
    labels = torch.tensor([0, 1, 0])
    assert metrics.nll(probs, labels) == pytest.approx(
        (0 - math.log(0.5) - math.log(0.2)) / 3, rel=1e-6)
    assert metrics.brier(probs, labels) == pytest.approx((0 + 0.5 + (0.64 + 0.64)) / 3)
    perfect = torch.eye(3)
    assert metrics.ece(perfect, torch.arange(3)) == pytest.approx(0.0, abs=1e-7)
    assert metrics.adaptive_ece(perfect, torch.arange(3)) == pytest.approx(0.0)
    # always 90% sure and right half the time: ECE = |0.5 - 0.9| = 0.4
    p = torch.tensor([[0.9, 0.1]] * 10)
    y = torch.tensor([0, 1] * 5)
    assert metrics.ece(p, y, n_bins=10) == pytest.approx(0.4, abs=1e-6)
    assert metrics.adaptive_ece(p, y, n_bins=5) == pytest.approx(0.4, abs=1e-6)
    streaming = metrics.CalibrationMetrics(n_bins=10)
    streaming.update(p[:4], y[:4])
    streaming.update(p[4:], y[4:])
    assert streaming.compute()["ece"] == pytest.approx(0.4, abs=1e-6)
    streaming.reset()
    with pytest.raises(ConfigError):
        metrics.nll(torch.zeros(3), labels)


def test_reliability_bins_count_every_item():
    p = torch.softmax(torch.randn(200, 5, generator=torch.Generator().manual_seed(0)), 1)
    y = torch.randint(0, 5, (200,), generator=torch.Generator().manual_seed(1))
    for adaptive in (False, True):
        bins = metrics.reliability(p, y, n_bins=10, adaptive=adaptive)
        assert sum(b["count"] for b in bins) == 200
    assert [b["count"] for b in metrics.reliability(p, y, 10, adaptive=True)] == [20] * 10


def test_uncertainty_scores_on_hand_made_distributions():
    votes = torch.tensor([[10, 0, 0, 0], [5, 5, 0, 0], [3, 3, 2, 2]])
    assert variation_ratio(votes).tolist() == pytest.approx([0.0, 0.5, 0.7])
    uniform = torch.full((1, 4), 0.25)
    assert predictive_entropy(uniform).item() == pytest.approx(2.0)
    # every pass certain of a different class: all the entropy is epistemic
    assert mutual_information(uniform, torch.zeros(1)).item() == pytest.approx(2.0)
    # every pass uniform: no epistemic part
    assert mutual_information(uniform, torch.full((1,), 2.0)).item() == pytest.approx(0.0)
    pred = Prediction(votes=votes, mean_probs=votes.float() / 10, samples=10,
                      expected_entropy=torch.zeros(3))
    for name in metrics.SCORES:
        s = metrics.uncertainty(pred, name)
        assert s.shape == (3,) and s[0] <= s[1] <= s[2]  # unanimous item least uncertain
    with pytest.raises(ConfigError, match="unknown uncertainty score"):
        metrics.uncertainty(pred, "variance")


def test_uncertainty_ratios_and_their_empty_groups():
    scores = torch.tensor([0.0, 0.1, 0.9, 1.0])
    correct = torch.tensor([True, True, False, False])
    r = metrics.uncertainty_ratios(scores, correct, t=0.5)  # u_T = 0.5
    assert (r["n_cc"], r["n_cu"], r["n_ic"], r["n_iu"]) == (2, 0, 0, 2)
    assert r["R_cc"] == 1.0 and r["R_iu"] == 1.0 and r["UA"] == 1.0
    all_right = metrics.uncertainty_ratios(scores, torch.ones(4, dtype=torch.bool), t=0.5)
    assert all_right["R_iu"] is None  # no incorrect item: n_iu + n_ic = 0
    all_uncertain = metrics.uncertainty_ratios(scores, correct, t=0.0)
    assert all_uncertain["R_cc"] is None and all_uncertain["UA"] == 0.5
    sweep = metrics.ratio_sweep(scores, correct)
    assert len(sweep) == 21 and sweep[0]["T"] == 0.0 and sweep[-1]["T"] == 1.0


def test_ood_metrics_for_a_perfect_and_a_useless_score():
    inside, outside = torch.linspace(0, 0.4, 50), torch.linspace(0.6, 1, 50)
    perfect = metrics.detection_metrics(inside, outside)
    assert perfect["auroc"] == pytest.approx(1.0) and perfect["aupr_out"] == pytest.approx(1.0)
    assert perfect["aupr_in"] == pytest.approx(1.0) and perfect["fpr_at_95_tpr"] == 0.0
    same = torch.full((50,), 0.3)
    useless = metrics.detection_metrics(same, same)
    assert useless["auroc"] == pytest.approx(0.5) and useless["fpr_at_95_tpr"] == 1.0
    backwards = metrics.detection_metrics(outside, inside)
    assert backwards["auroc"] == pytest.approx(0.0)


def test_paper_004_quantile_rule_from_the_histogram():
    hist = torch.zeros(3, 100, dtype=torch.int32)
    hist[0, 95] = 100               # always 95% sure: kept
    hist[1, 50] = 100               # always 50% sure: rejected
    hist[2, 50], hist[2, 99] = 98, 2  # 2% of passes above 99%: the 99% quantile is 0.99: kept
    assert max_prob_quantile(hist).tolist() == pytest.approx([0.95, 0.5, 0.99])
    pred = Prediction(votes=torch.zeros(3, 2, dtype=torch.int64), mean_probs=torch.zeros(3, 2),
                      samples=100, max_prob_hist=hist)
    assert metrics.quantile_rule(pred).tolist() == [False, True, False]
    hist[2, 99], hist[2, 50] = 1, 99  # 1% above: the 99% quantile (nearest rank) is 0.5
    assert metrics.quantile_rule(pred).tolist() == [False, True, True]


def test_engine_streams_the_per_pass_statistics():
    from synsample import engine, models
    from synsample.methods import scann

    sto = scann.convert(models.build("mlp", input_shape=(1, 8, 8), num_classes=4, seed=0,
                                     init="uniform"))
    x = torch.randint(0, 256, (20, 1, 8, 8), dtype=torch.uint8)
    pred = engine.predict(sto, x, samples=30, seed=0)
    assert torch.all(pred.max_prob_hist.sum(1) == 30)
    assert pred.expected_entropy.shape == (20,)
    assert torch.all(pred.expected_entropy >= 0) and torch.all(pred.expected_entropy <= 2.0)
    # concavity: the entropy of the mean is at least the mean entropy
    assert torch.all(predictive_entropy(pred.mean_probs) >= pred.expected_entropy - 1e-4)


def test_streaming_calibration_equals_the_functional_twin():
    g = torch.Generator().manual_seed(3)
    p = torch.softmax(3 * torch.randn(500, 6, generator=g), 1)
    y = torch.randint(0, 6, (500,), generator=g)
    p[:7] = torch.nn.functional.one_hot(y[:7], 6).float()  # confidence exactly 1
    whole = metrics.calibration_summary(p, y, n_bins=12)
    streaming = metrics.CalibrationMetrics(n_bins=12)
    for part in torch.tensor_split(torch.arange(500), 9):
        streaming.update(p[part], y[part])
    got = streaming.compute()
    assert got.keys() == whole.keys()
    for k in whole:
        assert got[k] == pytest.approx(whole[k], rel=1e-5, abs=1e-7), k
    streaming.reset()
    with pytest.raises(ConfigError, match="no items"):
        streaming.compute()


def test_vote_shares_as_probabilities():
    votes = torch.tensor([[10, 0, 0], [4, 4, 2], [0, 0, 0]])
    probs = metrics.vote_probabilities(votes)
    assert probs[:2].sum(1).tolist() == pytest.approx([1.0, 1.0])
    assert probs[1].tolist() == pytest.approx([0.4, 0.4, 0.2])
    assert probs[2].tolist() == [0.0, 0.0, 0.0]  # no votes: no probability, not NaN
    # all votes on the right class: perfectly calibrated and NLL 0
    summary = metrics.calibration_summary(probs[:1], torch.tensor([0]))
    assert summary["nll"] == pytest.approx(0.0) and summary["ece"] == pytest.approx(0.0)


def test_streaming_detection_equals_the_functional_twin():
    g = torch.Generator().manual_seed(4)
    s_in, s_out = torch.randn(300, generator=g), torch.randn(200, generator=g) + 1
    det = metrics.DetectionMetrics()
    for part in s_out.split(70):
        det.update(part, ood=True)
    for part in s_in.split(70):
        det.update(part, ood=False)
    assert det.compute() == pytest.approx(metrics.detection_metrics(s_in, s_out))
    det.reset()
    with pytest.raises(ConfigError, match="in-distribution and OoD"):
        det.compute()
