"""The SHA-256 of decoded arrays: how a dataset is recognised whatever file it came from."""

from __future__ import annotations

import hashlib

import numpy as np


def array_digest(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 over the uint8 image bytes (C order) then the labels as little-endian int64.

    Sources differ in compression and container (IDX, pickle, gzip), not in these bytes.

    Args:
        images: the images (any shape; read as uint8).
        labels: the labels (read as int64).

    Returns:
        The hex digest.
    """
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    h.update(np.ascontiguousarray(labels, dtype="<i8").tobytes())
    return h.hexdigest()
