"""Split-conformal sets: hand-computed thresholds and sets, and the finite-sample coverage
bound on synthetic, well-specified data."""

import math

import pytest
import torch

from synsample.errors import ConfigError
from synsample.metrics import conformal


def test_lac_threshold_and_sets_by_hand():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.5, 0.4, 0.1], [0.1, 0.3, 0.6], [0.2, 0.2, 0.6]])
    labels = torch.tensor([0, 1, 2, 0])
    # scores 1 - p_y: 0.3, 0.6, 0.4, 0.8; alpha 0.4: rank ceil(5 * 0.6) = 3 -> 0.6
    q = conformal.calibrate(probs, labels, 0.4, "lac")
    assert q == pytest.approx(0.6)
    sets = conformal.prediction_sets(torch.tensor([[0.45, 0.35, 0.2], [0.3, 0.3, 0.4]]), q,
                                     "lac")
    assert sets.tolist() == [[True, False, False], [False, False, True]]
    # rank ceil(5 * 0.9) = 5 > 4 items: every set is the full label set
    assert conformal.calibrate(probs, labels, 0.1, "lac") == math.inf
    assert conformal.prediction_sets(probs, math.inf, "lac").all()


def test_aps_scores_by_hand():
    probs = torch.tensor([[0.5, 0.3, 0.2]])
    u = conformal._uniforms(1, 7)
    scores = conformal._all_scores(probs.double(), "aps", u)[0]
    assert scores.tolist() == pytest.approx([u.item() * 0.5, 0.5 + u.item() * 0.3,
                                             0.8 + u.item() * 0.2])
    raps = conformal._all_scores(probs.double(), "raps", u)[0]
    assert (raps - scores).tolist() == pytest.approx([0.0, 0.0, conformal.RAPS_LAMBDA])
    # a set is always the most probable classes first
    p = torch.rand(200, 6, generator=torch.Generator().manual_seed(0)).softmax(1)
    sets = conformal.prediction_sets(p, 0.7, "aps")
    order = p.argsort(1, descending=True)
    ranked = sets.gather(1, order)
    assert (ranked[:, 1:] <= ranked[:, :-1]).all()


def _synthetic(n: int, classes: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic, well-specified data: Dirichlet class probabilities, labels drawn from them."""
    probs = torch.distributions.Dirichlet(torch.full((classes,), 0.5)).sample((n,))
    probs = probs.clamp(min=1e-9)
    probs = probs / probs.sum(1, keepdim=True)
    return probs, torch.multinomial(probs, 1, generator=g)[:, 0]


@pytest.mark.parametrize("kind", conformal.SCORES)
def test_coverage_within_the_finite_sample_bound(kind):
    """Mean test coverage over 100 calibration / test splits lies in
    [1 - alpha, 1 - alpha + 1 / (n + 1)] up to 4 standard errors: per split the coverage has
    variance about alpha (1 - alpha) (1 / (n + 2) + 1 / m), so its mean over R splits about
    0.0015 for n = 500, m = 2000, R = 100."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    alpha, n, m, splits = 0.1, 500, 2000, 100
    coverage = []
    for r in range(splits):
        p, y = _synthetic(n + m, 5, g)
        q = conformal.calibrate(p[:n], y[:n], alpha, kind, seed=r)
        sets = conformal.prediction_sets(p[n:], q, kind, seed=10_000 + r)
        coverage.append(conformal.set_metrics(sets, y[n:])["coverage"])
    mean = sum(coverage) / splits
    se = math.sqrt(alpha * (1 - alpha) * (1 / (n + 2) + 1 / m) / splits)
    assert 1 - alpha - 4 * se <= mean <= 1 - alpha + 1 / (n + 1) + 4 * se


def test_set_metrics_counts_sizes_and_ood_without_labels():
    sets = torch.tensor([[True, False, False], [True, True, False], [False, False, False],
                         [True, True, True]])
    labels = torch.tensor([0, 2, 1, 1])
    m = conformal.set_metrics(sets, labels)
    assert m["mean_size"] == pytest.approx(1.5)
    assert m["empty"] == pytest.approx(0.25) and m["singleton"] == pytest.approx(0.25)
    assert m["size_counts"] == [1, 1, 1, 1]
    assert m["coverage"] == pytest.approx(0.5)
    assert m["worst_class_coverage"] == pytest.approx(0.0)  # class 2's one item is missed
    ood = conformal.set_metrics(sets, torch.full((4,), -1))
    assert ood["coverage"] is None and ood["mean_size"] == pytest.approx(1.5)


def test_summary_shape_and_one_class():
    g = torch.Generator().manual_seed(1)
    p, y = _synthetic(300, 4, g)
    out = conformal.conformal_summary(p[:100], y[:100], p[100:], y[100:],
                                      ood={"noise": (torch.full((50, 4), 0.25), None)})
    assert set(out["by_score"]) == set(conformal.SCORES)
    entry = out["by_score"]["aps"]["0.1"]
    assert entry["test"]["items"] == 200 and entry["ood"]["noise"]["coverage"] is None
    # flat OoD probabilities get larger LAC sets than the test items
    lac = out["by_score"]["lac"]["0.1"]
    assert lac["ood"]["noise"]["mean_size"] >= lac["test"]["mean_size"]
    # one class: every set is that class
    one = torch.ones(10, 1)
    q = conformal.calibrate(one, torch.zeros(10, dtype=torch.long), 0.1, "lac")
    assert conformal.prediction_sets(one, q, "lac").all()


def test_bad_inputs_fail_in_one_line():
    p = torch.full((4, 3), 1 / 3)
    with pytest.raises(ConfigError, match="alpha"):
        conformal.calibrate(p, torch.zeros(4, dtype=torch.long), 1.5)
    with pytest.raises(ConfigError, match="label"):
        conformal.calibrate(p, torch.tensor([0, 1, 2, 3]), 0.1)
    with pytest.raises(ConfigError, match="N > 0"):
        conformal.calibrate(torch.empty(0, 3), torch.empty(0, dtype=torch.long), 0.1)
    with pytest.raises(ConfigError, match="unknown conformal score"):
        conformal.prediction_sets(p, 0.5, "thr")
