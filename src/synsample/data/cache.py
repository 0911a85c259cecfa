"""The dataset cache: one safetensors file per split under ``$SYNSAMPLE_HOME/datasets/<name>/``.

Each file carries the SHA-256 of its decoded arrays and where they came from; reading a file
checks the arrays against the catalog's reference checksum again.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from synsample.data.checksum import array_digest
from synsample.errors import DataError
from synsample.io import write_with


def home() -> Path:
    """The synsample home: ``$SYNSAMPLE_HOME``, default ``~/.cache/synsample``.

    Returns:
        The folder (it may not exist yet).
    """
    return Path(os.environ.get("SYNSAMPLE_HOME", Path.home() / ".cache" / "synsample"))


def split_path(name: str, split: str) -> Path:
    """Where a split is cached.

    Args:
        name: the dataset's name.
        split: the split.

    Returns:
        ``<home>/datasets/<name>/<split>.safetensors``.
    """
    return home() / "datasets" / name / f"{split}.safetensors"


def store(name: str, split: str, images: np.ndarray, labels: np.ndarray, source: str) -> Path:
    """Write one split atomically and return its path.

    Args:
        name: the dataset's name.
        split: the split.
        images: uint8 images.
        labels: int64 labels.
        source: where the arrays came from (stored with them).

    Returns:
        The file written.
    """
    path = split_path(name, split)
    tensors = {"images": torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)),
               "labels": torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))}
    meta = {"sha256": array_digest(images, labels), "source": source, "dataset": name,
            "split": split}
    write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
    return path


def read(name: str, split: str) -> tuple[torch.Tensor, torch.Tensor, dict[str, str]]:
    """Read a cached split.

    Args:
        name: the dataset's name.
        split: the split.

    Returns:
        ``(images, labels, metadata)``.

    Raises:
        DataError: (naming the fix) when the file is unreadable or holds unexpected arrays.
    """
    path = split_path(name, split)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            images, labels = f.get_tensor("images"), f.get_tensor("labels")
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError) as exc:
        raise DataError(f"cache file {path} is corrupt ({type(exc).__name__}); run "
                        f"`synsample data fetch {name} --force` to fetch it again") from exc
    if images.dtype != torch.uint8 or labels.dtype != torch.int64 or len(images) != len(labels):
        raise DataError(f"cache file {path} holds unexpected arrays; run "
                        f"`synsample data fetch {name} --force` to fetch it again")
    return images, labels, meta
