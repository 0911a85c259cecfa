import math

import pytest
import torch

from synsample import metrics
from synsample.prediction import Prediction

VOTES = torch.tensor([
    [10, 0, 0, 0],   # unanimous
    [4, 6, 0, 0],    # plurality 1, second 0
    [3, 3, 3, 1],    # three-way tie: first 0, second 1
    [0, 0, 7, 3],
    [0, 5, 0, 5],    # tie: first 1, second 3
])


def test_first_and_second_choice_on_hand_made_votes():
    assert metrics.first_choice(VOTES).tolist() == [0, 1, 0, 2, 1]
    assert metrics.second_choice(VOTES).tolist() == [-1, 0, 1, 3, 3]


def test_vote_entropy_equation_4_and_information_equation_5():
    h = metrics.vote_entropy(VOTES)
    assert h[0] == 0
    assert math.isclose(h[1], -(0.4 * math.log2(0.4) + 0.6 * math.log2(0.6)))
    assert math.isclose(h[4], 1.0)
    uniform = torch.full((1, 8), 5)
    assert math.isclose(metrics.vote_entropy(uniform)[0], 3.0)
    info = metrics.information(VOTES)
    torch.testing.assert_close(info, 2.0 - h)
    assert math.isclose(metrics.information(uniform)[0], 0.0, abs_tol=1e-12)


def test_accuracies_and_confusion():
    labels = torch.tensor([0, 0, 1, 2, 3])
    assert metrics.accuracy(metrics.first_choice(VOTES), labels) == pytest.approx(0.4)
    assert metrics.single_pass_accuracy(VOTES, labels) == pytest.approx(
        (10 / 10 + 4 / 10 + 3 / 10 + 7 / 10 + 5 / 10) / 5)
    cm = metrics.confusion_matrix(labels, metrics.second_choice(VOTES), 4)
    assert cm.sum() == 4  # the item with no second choice is left out
    assert cm[0, 0] == 1 and cm[1, 1] == 1 and cm[2, 3] == 1 and cm[3, 3] == 1


def test_summary_of_a_prediction(tmp_path):
    labels = torch.tensor([0, 1, 2, 2, 3])
    pred = Prediction(votes=VOTES, mean_probs=VOTES.float() / 10, samples=10,
                      votes_at={1: torch.eye(4, dtype=torch.int64)[[0, 1, 0, 2, 1]]}, seed=3,
                      random_bits=1000)
    s = metrics.summarize(pred, labels)
    assert s["accuracy"] == pytest.approx(0.6)
    assert s["top2_accuracy"] == pytest.approx(0.8)
    assert s["accuracy_vs_samples"] == {"1": pytest.approx(0.6), "10": pytest.approx(0.6)}
    pred.save(tmp_path / "p.safetensors")
    back = Prediction.load(tmp_path / "p.safetensors")
    assert torch.equal(back.votes, pred.votes) and back.votes_at.keys() == pred.votes_at.keys()
    assert back.seed == 3 and back.random_bits == 1000
