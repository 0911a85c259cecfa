"""Temperature scaling: the bisection's optimum against SciPy's on scikit-learn's log loss,
order of classes kept, and the edge cases."""

import math

import pytest
import torch

from synsample.metrics import recalibration


def _overconfident(n: int, seed: int, sharpen: float = 3.0):
    """Synthetic items whose labels follow p, reported as softmax(sharpen * log p)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    p = torch.distributions.Dirichlet(torch.full((10,), 0.3)).sample((n,)).clamp(min=1e-12)
    y = torch.multinomial(p / p.sum(1, keepdim=True), 1, generator=g)[:, 0]
    return torch.softmax(sharpen * torch.log(p), 1), y


def test_fitted_temperature_matches_scipy_on_sklearn_log_loss():
    optimize = pytest.importorskip("scipy.optimize")
    log_loss = pytest.importorskip("sklearn.metrics").log_loss
    probs, y = _overconfident(3000, 0)
    t = recalibration.fit_temperature(probs, y)
    z = recalibration.as_logits(probs)

    def loss(log_t):
        return log_loss(y.numpy(), torch.softmax(z / math.exp(log_t), 1).numpy(),
                        labels=list(range(10)))

    ref = math.exp(optimize.minimize_scalar(loss, bounds=(-3, 3), method="bounded",
                                            options={"xatol": 1e-8}).x)
    assert t == pytest.approx(ref, rel=1e-4)
    assert t == pytest.approx(3.0, rel=0.1)  # it undoes the sharpening


def test_scaling_keeps_the_predicted_class_and_lowers_the_nll():
    from synsample.metrics import calibration_summary

    probs, y = _overconfident(2000, 1)
    out = recalibration.recalibration_summary(probs[:1000], y[:1000], probs[1000:], y[1000:])
    assert out["after"]["accuracy"] == out["before"]["accuracy"]
    assert out["after"]["nll"] < out["before"]["nll"]
    assert out["after"]["ece"] < out["before"]["ece"]
    scaled = recalibration.scale(probs, out["temperature"])
    assert torch.equal(scaled.argmax(1), probs.double().argmax(1))
    assert out["before"] == calibration_summary(probs[1000:], y[1000:])


def test_edges_of_the_search():
    # every held-out item right with certainty: T goes to the sharp edge
    p = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    assert recalibration.fit_temperature(p, torch.tensor([0, 1])) == pytest.approx(0.01)
    # labels that contradict the confidence: T goes to the flat edge
    assert recalibration.fit_temperature(p, torch.tensor([1, 0])) == pytest.approx(100.0)
    with pytest.raises(Exception, match="temperature scaling needs"):
        recalibration.fit_temperature(torch.empty(0, 3), torch.empty(0, dtype=torch.long))


def test_smoothed_vote_shares_have_no_zeros_and_sum_to_one():
    votes = torch.tensor([[10, 0, 0], [3, 3, 4]])
    s = recalibration.smoothed_vote_shares(votes)
    assert (s > 0).all() and torch.allclose(s.sum(1), torch.ones(2, dtype=torch.float64))
    assert s[0].tolist() == pytest.approx([10.5 / 11.5, 0.5 / 11.5, 0.5 / 11.5])
