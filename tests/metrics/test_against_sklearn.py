"""The metrics whose definition scikit-learn shares, on the same inputs, with ties: they must
agree to float precision."""

import numpy as np
import pytest
import torch

from synsample import metrics

sk = pytest.importorskip("sklearn.metrics")


def _scores(seed: int, ties: bool):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.rand(700, generator=g), 0.3 + torch.rand(300, generator=g)
    if ties:  # vote entropies of 20 passes take few values
        a, b = (a * 20).round() / 20, (b * 20).round() / 20
    return a, b


@pytest.mark.parametrize("ties", [False, True])
def test_detection_metrics_agree_with_sklearn(ties):
    a, b = _scores(0, ties)
    got = metrics.detection_metrics(a, b)
    s = np.concatenate([a.numpy(), b.numpy()]).astype(np.float64)
    y = np.concatenate([np.zeros(len(a)), np.ones(len(b))])
    assert got["auroc"] == pytest.approx(sk.roc_auc_score(y, s), abs=1e-6)  # float32 result
    assert got["aupr_out"] == pytest.approx(sk.average_precision_score(y, s), abs=1e-6)
    assert got["aupr_in"] == pytest.approx(sk.average_precision_score(1 - y, -s), abs=1e-6)
    fpr, tpr, _ = sk.roc_curve(y, s)
    assert got["fpr_at_95_tpr"] == pytest.approx(fpr[np.argmax(tpr >= 0.95)], abs=1e-6)


def test_scores_below_float32_resolution_separate_like_sklearn():
    g = torch.Generator().manual_seed(0)
    a = 1 + 1e-10 * torch.rand(1000, generator=g, dtype=torch.float64)
    b = 1 + 1e-10 * (1 + torch.rand(300, generator=g, dtype=torch.float64))
    y = np.concatenate([np.zeros(1000), np.ones(300)])
    assert metrics.detection_metrics(a, b)["auroc"] == sk.roc_auc_score(
        y, np.concatenate([a.numpy(), b.numpy()])) == 1.0


def test_nll_brier_accuracy_top2_and_confusion_agree_with_sklearn():
    g = torch.Generator().manual_seed(3)
    probs = torch.softmax(3 * torch.randn(500, 10, generator=g, dtype=torch.float64), 1)
    labels = torch.randint(0, 10, (500,), generator=g)
    p, y = probs.numpy(), labels.numpy()
    cal = metrics.calibration_summary(probs, labels)
    assert cal["nll"] == pytest.approx(sk.log_loss(y, p, labels=list(range(10))), rel=1e-12)
    onehot = np.eye(10)[y]
    assert cal["brier"] == pytest.approx(((p - onehot) ** 2).sum(1).mean(), rel=1e-12)
    assert cal["accuracy"] == pytest.approx(sk.accuracy_score(y, p.argmax(1)), abs=1e-15)
    pred = probs.argmax(1)
    assert torch.equal(metrics.confusion_matrix(labels, pred, 10),
                       torch.from_numpy(sk.confusion_matrix(y, pred.numpy(),
                                                            labels=list(range(10)))))
    top2 = (torch.topk(probs, 2, 1).indices == labels[:, None]).any(1).double().mean().item()
    assert top2 == pytest.approx(sk.top_k_accuracy_score(y, p, k=2, labels=list(range(10))))
