"""The per-run numbers every report shows, computed from a Prediction and the labels."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from synsample.metrics import votes as v
from synsample.metrics.labels import class_labels

if TYPE_CHECKING:
    from synsample.prediction import Prediction


def summarize(pred: Prediction, labels: torch.Tensor) -> dict[str, Any]:
    """Accuracy (first and second choice), single-pass accuracy, entropy and information.

    ``second_choice_accuracy``: share of items whose label is the second choice;
    ``top2_accuracy``: share whose label is the first or the second choice.

    Args:
        pred: the sampling run's statistics.
        labels: ``[N]`` true classes.

    Returns:
        The run's numbers by name: accuracies, entropy and information (paper 000, eq. 4-5)
        overall and on correct and wrong items, the accuracy-versus-K curve, random bits,
        time, seed and mean passes per item.
    """
    labels = class_labels(labels, pred.votes.shape[0], pred.num_classes)
    first, second = pred.first_choice(), pred.second_choice()
    correct = first == labels
    entropy, info = pred.vote_entropy(), pred.information()

    def mean(x: torch.Tensor) -> float | None:
        return x.mean().item() if x.numel() else None

    high = entropy >= 0.5 * math.log2(pred.num_classes)
    return {
        "samples": pred.samples,
        "mode": pred.mode,
        "accuracy": v.accuracy(first, labels),
        "second_choice_accuracy": v.accuracy(second, labels),
        "top2_accuracy": (correct | (second == labels)).to(torch.float64).mean().item(),
        "second_choice_right_when_first_wrong": mean((second[~correct] == labels[~correct])
                                                     .to(torch.float64)),
        "single_pass_accuracy": v.single_pass_accuracy(pred.votes, labels),
        "mean_probs_accuracy": v.accuracy(pred.mean_probs.argmax(1), labels),
        "mean_entropy": entropy.mean().item(),
        "mean_information": info.mean().item(),
        "mean_entropy_correct": mean(entropy[correct]),
        "mean_entropy_incorrect": mean(entropy[~correct]),
        "error_rate_high_entropy": mean((~correct[high]).to(torch.float64)),
        "high_entropy_items": int(high.sum()),
        "accuracy_vs_samples": {str(k): a for k, a in pred.accuracy_vs_samples(labels).items()},
        "random_bits": pred.random_bits,
        "random_bits_per_pass": pred.random_bits / pred.samples,
        "sampling_seconds": pred.seconds,
        "seed": pred.seed,
        "mean_passes_per_item": (pred.passes.double().mean().item() if pred.passes is not None
                                 else float(pred.samples)),
    }
