"""Per-item uncertainty scores from a Prediction. Higher always means more uncertain.

- ``vote-entropy``: eq. 4 of paper 000 over the vote shares (bits); information (eq. 5) is
  ``log2(C)`` minus it, so it ranks items the same way;
- ``predictive-entropy``: entropy (bits) of the mean softmax over passes;
- ``mutual-information``: predictive entropy minus the mean per-pass entropy (the epistemic part,
  BALD); needs the engine's ``expected_entropy``;
- ``variation-ratio``: ``1 - (votes of the first choice) / K``;
- ``max-probability``: ``1 -`` the largest mean softmax probability.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from synsample.errors import ConfigError
from synsample.metrics.votes import entropy_bits, vote_entropy

if TYPE_CHECKING:
    from synsample.prediction import Prediction


def predictive_entropy(mean_probs: torch.Tensor) -> torch.Tensor:
    """Entropy in bits of each row of the mean class probabilities.

    Args:
        mean_probs: ``[N, C]`` mean softmax over passes (renormalised per row).

    Returns:
        ``[N]`` float64.
    """
    p = mean_probs.to(torch.float64)
    return entropy_bits(p / p.sum(dim=1, keepdim=True).clamp(min=1e-300))


def mutual_information(mean_probs: torch.Tensor, expected_entropy: torch.Tensor) -> torch.Tensor:
    """``H[mean p] - mean H[p_k]`` in bits (clipped at 0 against rounding).

    Args:
        mean_probs: ``[N, C]`` mean softmax over passes.
        expected_entropy: ``[N]`` mean per-pass entropy in bits.

    Returns:
        ``[N]`` float64.
    """
    return (predictive_entropy(mean_probs) - expected_entropy.to(torch.float64)).clamp(min=0.0)


def variation_ratio(votes: torch.Tensor) -> torch.Tensor:
    """``1 - max_c votes[c] / K`` per item.

    Args:
        votes: ``[N, C]`` vote counts.

    Returns:
        ``[N]`` float64.
    """
    v = votes.to(torch.float64)
    return 1.0 - v.max(dim=1).values / v.sum(dim=1).clamp(min=1.0)


def one_minus_max_probability(mean_probs: torch.Tensor) -> torch.Tensor:
    """``1 - max_c p_c`` of the mean probabilities per item (higher: more uncertain).

    Args:
        mean_probs: ``[N, C]`` mean softmax over passes.

    Returns:
        ``[N]`` float64.
    """
    return 1.0 - mean_probs.to(torch.float64).max(dim=1).values


def _mutual_information(pred: Prediction) -> torch.Tensor:
    if pred.expected_entropy is None:
        raise ConfigError("mutual information needs the per-pass entropies; sample again with "
                          "this version of synsample")
    return mutual_information(pred.mean_probs, pred.expected_entropy)


SCORES: dict[str, Callable[[Prediction], torch.Tensor]] = {
    "vote-entropy": lambda p: vote_entropy(p.votes),
    "predictive-entropy": lambda p: predictive_entropy(p.mean_probs),
    "mutual-information": _mutual_information,
    "variation-ratio": lambda p: variation_ratio(p.votes),
    "max-probability": lambda p: one_minus_max_probability(p.mean_probs),
}


def uncertainty(pred: Prediction, score: str = "vote-entropy") -> torch.Tensor:
    """The per-item uncertainty ``score`` of a Prediction (float64 ``[N]``).

    Args:
        pred: the sampling run's statistics.
        score: a key of [`SCORES`][synsample.metrics.uncertainty.SCORES] (see the module docstring).

    Returns:
        ``[N]`` float64 scores, higher for more uncertain items.

    Raises:
        ConfigError: for an unknown score, or mutual information without per-pass entropies.
    """
    if score not in SCORES:
        raise ConfigError(f"unknown uncertainty score {score!r}; use one of {', '.join(SCORES)}")
    return SCORES[score](pred)
