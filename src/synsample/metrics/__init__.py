"""Metrics, written once against :class:`~synsample.prediction.Prediction` for every method."""

from synsample.metrics.summary import summarize
from synsample.metrics.votes import (
    accuracy,
    confusion_matrix,
    entropy_bits,
    first_choice,
    information,
    second_choice,
    single_pass_accuracy,
    vote_distribution,
    vote_entropy,
)

__all__ = ["summarize", "accuracy", "confusion_matrix", "entropy_bits", "first_choice",
           "information",
           "second_choice", "single_pass_accuracy", "vote_distribution", "vote_entropy"]
