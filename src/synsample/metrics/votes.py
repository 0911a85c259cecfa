"""Statistics of sampled votes (paper 000, sections II.A and II.C).

``votes`` is always an integer tensor ``[N, C]``: how many of the K samples chose each class.
"""

from __future__ import annotations

import math

import torch


def _ranked(votes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # stable descending sort: among equal counts the lower class index ranks first
    return torch.sort(votes, dim=1, descending=True, stable=True)


def first_choice(votes: torch.Tensor) -> torch.Tensor:
    """The plurality class per item (ties: the lowest class index); paper 000's first choice
    (section II.A).

    Args:
        votes: ``[N, C]`` vote counts.

    Returns:
        ``[N]`` class indices.
    """
    return _ranked(votes)[1][:, 0]


def second_choice(votes: torch.Tensor) -> torch.Tensor:
    """The class with the second most votes per item, or -1 when only one class got votes.

    This is paper 000's second choice: the class that the second most *samples* picked, not
    the second most activated output. Ties broken towards the lower class index.

    Args:
        votes: ``[N, C]`` vote counts.

    Returns:
        ``[N]`` class indices, -1 where no second class got a vote.
    """
    counts, order = _ranked(votes)
    second = order[:, 1].clone()
    second[counts[:, 1] <= 0] = -1
    return second


def vote_distribution(votes: torch.Tensor) -> torch.Tensor:
    """``Y_item(c)``: the share of samples that chose each class (paper 000, eq. 4).

    Args:
        votes: ``[N, C]`` vote counts.

    Returns:
        ``[N, C]`` float64 shares (all 0 for an item without votes).
    """
    v = votes.to(torch.float64)
    return v / v.sum(dim=1, keepdim=True).clamp(min=1)


def entropy_bits(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in bits of each row of a distribution, with 0 log 0 = 0.

    Args:
        p: ``[N, C]`` distributions.

    Returns:
        ``[N]`` entropies, float64.
    """
    p = p.to(torch.float64)
    return -(torch.where(p > 0, p * torch.log2(p), torch.zeros((), dtype=p.dtype))).sum(dim=1)


def vote_entropy(votes: torch.Tensor) -> torch.Tensor:
    """Eq. 4 of paper 000: ``H = -sum_c Y(c) log2 Y(c)`` over the vote shares, per item.

    Args:
        votes: ``[N, C]`` vote counts.

    Returns:
        ``[N]`` entropies in bits, float64.
    """
    return entropy_bits(vote_distribution(votes))


def information(votes: torch.Tensor) -> torch.Tensor:
    """Eq. 5 of paper 000: ``I = log2(C) - H`` per item, in bits.

    Args:
        votes: ``[N, C]`` vote counts.

    Returns:
        ``[N]`` information in bits, float64.
    """
    return math.log2(votes.shape[1]) - vote_entropy(votes)


def accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of items whose prediction equals the label.

    Args:
        predicted: ``[N]`` predicted classes.
        labels: ``[N]`` true classes.

    Returns:
        The accuracy in [0, 1] (NaN for no items).
    """
    return (predicted == labels).to(torch.float64).mean().item()


def single_pass_accuracy(votes: torch.Tensor, labels: torch.Tensor) -> float:
    """The mean accuracy of one sampled pass: ``mean_i votes[i, y_i] / K``.

    Args:
        votes: ``[N, C]`` vote counts.
        labels: ``[N]`` true classes.

    Returns:
        The accuracy in [0, 1].
    """
    k = votes.sum(dim=1).to(torch.float64).clamp(min=1)
    return (votes.gather(1, labels[:, None])[:, 0] / k).mean().item()


def confusion_matrix(labels: torch.Tensor, predicted: torch.Tensor, num_classes: int
                     ) -> torch.Tensor:
    """Counts ``[true, predicted]``; items predicted -1 (no second choice) are left out.

    Args:
        labels: ``[N]`` true classes.
        predicted: ``[N]`` predicted classes (-1 for none).
        num_classes: C.

    Returns:
        ``[C, C]`` int64 counts.
    """
    keep = predicted >= 0
    idx = labels[keep] * num_classes + predicted[keep]
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)
