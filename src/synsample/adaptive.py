"""Adaptive K: stop sampling an item once its plurality is settled (a sequential sign test).

After ``n`` passes let ``a`` and ``b`` be the vote counts of the two leading classes. If both
were equally likely, ``a`` would be Binomial(a + b, 1/2) given ``a + b``, so
``z = (a - b) / sqrt(a + b)`` is approximately standard normal. An item stops when
``z >= z_crit``, checked after every chunk of passes once it has ``min_samples``; ``z_crit`` is
the one-sided normal quantile of ``(1 - confidence) / looks`` (Bonferroni over the ``looks``
checks the run can make), so the chance that a stopped item's leader is not the more likely
class is at most about ``1 - confidence``.

What it does to the other statistics: a stopped item keeps the votes of its first ``n_i``
passes (in shared mode exactly those of a full run), so its vote shares are unbiased per pass
but come from fewer passes, and stopping when the margin is large biases the vote entropy and
the second choice of stopped items low. Raise ``min_samples`` where entropy or second choice
matter (e.g. 200); the report states the mean number of passes per item.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import torch

from synsample.errors import ConfigError


@dataclass(frozen=True)
class AdaptiveStop:
    """The stopping rule: ``confidence`` in (0, 1), at least ``min_samples`` passes per item.

    Attributes:
        confidence: the chance, about, that a stopped item's leader is the more likely class.
        min_samples: passes every item gets before it may stop.

    Raises:
        ConfigError: for a confidence outside (0, 1) or ``min_samples`` below 1.
    """

    confidence: float = 0.999
    min_samples: int = 32

    def __post_init__(self) -> None:
        if not 0.0 < self.confidence < 1.0:
            raise ConfigError(f"adaptive confidence must be in (0, 1), got {self.confidence}")
        if self.min_samples < 1:
            raise ConfigError(f"adaptive min_samples must be positive, got {self.min_samples}")

    def z_critical(self, looks: int) -> float:
        """The normal quantile of the stopping test after ``looks`` looks (Bonferroni).

        Args:
            looks: how many times the rule is checked.

        Returns:
            ``z_crit``.
        """
        return NormalDist().inv_cdf(1.0 - (1.0 - self.confidence) / max(1, looks))

    def settled(self, votes: torch.Tensor, looks: int) -> torch.Tensor:
        """Bool ``[N]``: items whose leader is settled (and that have ``min_samples`` votes).

        Args:
            votes: ``[N, C]`` vote counts so far.
            looks: how many times the rule is checked in the run.

        Returns:
            ``[N]`` bool.
        """
        return settled(votes, self.z_critical(looks), self.min_samples)


def settled(votes: torch.Tensor, z_crit: float, min_samples: int) -> torch.Tensor:
    """Items where ``(a - b) / sqrt(a + b) >= z_crit`` for the top two counts ``a >= b``.

    Args:
        votes: ``[N, C]`` vote counts so far.
        z_crit: the critical value.
        min_samples: the votes an item needs before it may stop.

    Returns:
        ``[N]`` bool.
    """
    top = torch.topk(votes, k=min(2, votes.shape[1]), dim=1).values.to(torch.float64)
    a = top[:, 0]
    b = top[:, 1] if top.shape[1] > 1 else torch.zeros_like(a)
    z = (a - b) / torch.sqrt((a + b).clamp(min=1.0))
    return (z >= z_crit) & (votes.sum(dim=1) >= min_samples)


def looks(samples: int, chunks: list[tuple[int, int]], min_samples: int) -> int:
    """How many times the rule is checked: chunk ends at or after ``min_samples``.

    Args:
        samples: passes of the run.
        chunks: the run's ``(first, n)`` chunks.
        min_samples: the rule's minimum.

    Returns:
        The chunk ends from ``min_samples`` on, before the last (at least 1).
    """
    return max(1, sum(1 for first, n in chunks if first + n >= min_samples and
                      first + n < samples))


__all__ = ["AdaptiveStop", "looks", "settled"]
