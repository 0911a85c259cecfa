"""Metrics, written once against [`Prediction`][synsample.prediction.Prediction] for every
method."""

from synsample.metrics.calibration import (
    CalibrationMetrics,
    adaptive_ece,
    brier,
    calibration_summary,
    classwise_ece,
    ece,
    l2_ece,
    mce,
    nll,
    per_class,
    reliability,
    vote_probabilities,
)
from synsample.metrics.conformal import conformal_summary
from synsample.metrics.labels import class_labels
from synsample.metrics.ood import DetectionMetrics, detection_metrics, quantile_rule, rule_summary
from synsample.metrics.ratios import ratio_sweep, uncertainty_ratios
from synsample.metrics.recalibration import fit_temperature, recalibration_summary
from synsample.metrics.selective import (
    SelectiveMetrics,
    augrc,
    aurc,
    risk_coverage,
    selective_summary,
)
from synsample.metrics.summary import summarize
from synsample.metrics.uncertainty import SCORES, uncertainty
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

__all__ = ["CalibrationMetrics", "DetectionMetrics", "SCORES", "SelectiveMetrics", "accuracy",
           "augrc", "aurc", "classwise_ece", "l2_ece", "mce",
           "adaptive_ece", "brier", "calibration_summary", "class_labels", "conformal_summary",
           "confusion_matrix",
           "detection_metrics", "ece", "entropy_bits", "first_choice", "fit_temperature",
           "information", "nll", "per_class", "quantile_rule", "ratio_sweep",
           "recalibration_summary", "reliability", "risk_coverage", "rule_summary",
           "second_choice", "selective_summary", "single_pass_accuracy", "summarize",
           "uncertainty", "uncertainty_ratios", "vote_distribution", "vote_entropy",
           "vote_probabilities"]
