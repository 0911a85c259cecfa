"""The one check every metric applies to the labels it is given: integer class indices, one
per item, each below the number of classes. A float label (0.7) or a class out of range is a
user's mistake that would otherwise give a silent nonsense number (a temperature of 0.01) or a
traceback deep inside an index."""

from __future__ import annotations

import torch

from synsample.errors import ConfigError


def class_labels(labels, items: int, classes: int, what: str = "labels") -> torch.Tensor:
    """``labels`` as an int64 tensor ``[items]`` of classes in ``0 .. classes - 1``.

    Args:
        labels (Tensor | ndarray | sequence): the true classes.
        items: how many there must be (the predictions').
        classes: C, the number of classes the predictions have.
        what: names them in the error.

    Returns:
        The labels, int64.

    Raises:
        ConfigError: for float or bool labels, another shape, or a class out of range.
    """
    labels = torch.as_tensor(labels)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ConfigError(f"{what} must be integer class indices, got {labels.dtype}; give "
                          "them as torch.long (a one-hot or soft label is not a class)")
    if labels.ndim != 1 or labels.shape[0] != items:
        raise ConfigError(f"{what} must be one class per item, [{items}], got "
                          f"{tuple(labels.shape)}")
    if items and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise ConfigError(f"{what} must lie in 0..{classes - 1} (the predictions have {classes} "
                          f"classes), got {int(labels.min())}..{int(labels.max())}")
    return labels.long()
