"""Datasets: real data, fetched into a cache and verified by the SHA-256 of the decoded arrays.

A dataset is found, in order: a path the user gives; the cache (``$SYNSAMPLE_HOME``, default
``~/.cache/synsample``); a fetch from the sources the catalog lists.

>>> from synsample import data
>>> test = data.load("mnist", "test")          # doctest: +SKIP
>>> test.images.shape, test.images.dtype      # doctest: +SKIP
(torch.Size([10000, 1, 28, 28]), torch.uint8)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from synsample import checks
from synsample.data import cache
from synsample.data.catalog import DATASETS, OOD_SETS, DatasetSpec, spec
from synsample.data.checksum import array_digest
from synsample.data.sources import fetch_first
from synsample.errors import DataError

__all__ = ["DATASETS", "OOD_SETS", "Dataset", "DatasetSpec", "fetch", "labelled", "list_cached",
           "load", "spec"]


@dataclass
class Dataset:
    """One split of a dataset: ``images`` uint8 ``[N, C, H, W]``, ``labels`` int64 ``[N]``.

    Attributes:
        name: the dataset's catalog name.
        split: ``train`` or ``test`` (or another split the catalog lists).
        images: uint8 ``[N, C, H, W]``.
        labels: int64 ``[N]`` (-1: no class, for OoD sets).
        classes: the class names.
        source: where the arrays came from.
        verified: True when checked against the reference SHA-256, None when not checked.
        extra: anything more a maker of the set records.
    """

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    source: str = ""
    verified: bool | None = None
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor | slice | int) -> Dataset:
        """The items at ``index`` (a slice, an index tensor, or the first ``n`` when an int).

        Args:
            index: a slice, an index tensor, or a count.

        Returns:
            A new dataset with those items.
        """
        if isinstance(index, int):
            index = slice(0, index)
        return Dataset(self.name, self.split, self.images[index], self.labels[index],
                       self.classes, self.source, self.verified, dict(self.extra))

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.classes)


def labelled(items, what: str = "the labelled items") -> Dataset:
    """Labelled items as a [`Dataset`][synsample.data.Dataset]: one already, or any map-style
    ``torch.utils.data.Dataset`` of ``(x, y, ...)`` items (a ``TensorDataset``), or a
    ``DataLoader`` of ``(x, y, ...)`` batches (read in its own order: inputs and labels stay
    paired whatever it shuffles or drops).

    Args:
        items (Dataset | torch.utils.data.Dataset | DataLoader): the items.
        what: names them in the error.

    Returns:
        The items, named ``user``.

    Raises:
        DataError: for items that are not ``(x, y)`` pairs (a dict, a bare tensor) or labels
            that are not integers.
    """
    if isinstance(items, Dataset):
        return items
    loader = isinstance(items, torch.utils.data.DataLoader)
    if not loader and not (isinstance(items, torch.utils.data.Dataset)
                           and hasattr(items, "__len__")):
        raise DataError(f"{what} must be a Dataset of (x, y) items or a DataLoader of (x, y) "
                        f"batches, got {type(items).__name__}")
    xs, ys = [], []
    for item in (items if loader else (items[i] for i in range(len(items)))):
        if not isinstance(item, tuple | list) or len(item) < 2:
            raise DataError(f"{what} must hold (x, y) pairs, got {type(item).__name__} items; "
                            "give a Dataset whose items are (input, label), e.g. a "
                            "TensorDataset(x, y)")
        xs.append(torch.as_tensor(item[0]))
        ys.append(torch.as_tensor(item[1]))
    if not xs:
        raise DataError(f"{what} hold no items")
    join = torch.cat if loader else torch.stack
    labels = join(ys)
    if labels.is_floating_point() or labels.dtype == torch.bool or labels.ndim != 1:
        raise DataError(f"{what}' labels must be integer class indices, one per item; got "
                        f"{labels.dtype} {tuple(labels.shape)}")
    return Dataset("user", "given", join(xs), labels.long(), (), source="given by the caller")


def _check_split(s: DatasetSpec, split: str) -> None:
    if split not in s.sizes:
        raise DataError(f"dataset {s.name} has no split {split!r}; use one of {', '.join(s.sizes)}")


def _verify(s: DatasetSpec, split: str, images: np.ndarray, labels: np.ndarray, where: str
            ) -> bool | None:
    if s.sha256 is None:
        return None
    got = array_digest(images, labels)
    if got != s.sha256[split]:
        raise DataError(f"{where}: the decoded {s.name} {split} arrays have SHA-256 {got[:12]}..., "
                        f"not the reference {s.sha256[split][:12]}...; the files are not the "
                        f"standard {s.name}: fetch them again")
    return True


def fetch(name: str, force: bool = False, log: Callable[[str], None] | None = None) -> list[Path]:
    """Fetch dataset ``name`` into the cache (unless every split is there and ``force`` is off).

    Args:
        name: a catalog name.
        force: fetch even when the cache holds usable files.
        log: called with a line for each source tried (None: silent).

    Returns:
        The cache files, one per split.

    Raises:
        DataError: when no source works or a checksum fails.
    """
    s = spec(name)
    paths = [cache.split_path(s.name, split) for split in s.sizes]
    if not force and all(p.is_file() for p in paths):
        try:
            for split in s.sizes:
                load(s.name, split, fetch=False)
            return paths
        except DataError as exc:
            if log:
                log(f"cached {s.name} is unusable ({exc}); fetching again")
    checks.writable_folder(paths[0].parent, "dataset cache (set SYNSAMPLE_HOME to move it)")
    splits, source = fetch_first(list(s.sources), on_try=(
        (lambda d: log(f"fetching {s.name} from {d}")) if log else None))
    for split in s.sizes:
        if split not in splits:
            raise DataError(f"{source} gave no {split} split of {s.name}")
        images, labels = splits[split]
        _verify(s, split, images, labels, source)
        cache.store(s.name, split, images, labels, source)
    return paths


def load(name: str, split: str = "test", path: str | Path | None = None, fetch: bool = True,
         verify: bool = True) -> Dataset:
    """Load one split of dataset ``name`` as a [`Dataset`][synsample.data.Dataset].

    ``path``: a local copy in the dataset's standard format (IDX folder, ``mnist.pkl.gz``,
    CIFAR-10 archive or folder), used instead of the cache. Otherwise the cache is read, and
    fetched into first when missing and ``fetch`` is on. ``verify`` checks the decoded arrays
    against the reference SHA-256 (always on for the cache).

    Args:
        name: a catalog name.
        split: the split.
        path: a local copy, or None.
        fetch: fetch into the cache when the split is missing there.
        verify: check a local copy's checksum.

    Returns:
        The split.

    Raises:
        DataError: for an unknown split, a missing path or cache file, or arrays that do not
            match their checksum or shape.
    """
    s = spec(name)
    _check_split(s, split)
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise DataError(f"{path} does not exist; give the folder or file holding {s.name}")
        images_np, labels_np = s.read_local(path)[split]  # type: ignore[misc]
        verified = _verify(s, split, images_np, labels_np, str(path)) if verify else None
        return Dataset(s.name, split, torch.from_numpy(images_np), torch.from_numpy(labels_np),
                       s.classes, str(path), verified)
    file = cache.split_path(s.name, split)
    if not file.is_file():
        if not fetch:
            raise DataError(f"{s.name} is not in the cache ({file.parent}); run "
                            f"`synsample data fetch {s.name}`")
        globals()["fetch"](s.name)
    images, labels, meta = cache.read(s.name, split)
    verified = _verify(s, split, images.numpy(), labels.numpy(), str(file))
    if verified is None and meta.get("sha256") != array_digest(images.numpy(), labels.numpy()):
        raise DataError(f"cache file {file} does not match the checksum written with it; run "
                        f"`synsample data fetch {s.name} --force`")
    if tuple(images.shape[1:]) != s.shape:
        raise DataError(f"cache file {file} holds images of shape {tuple(images.shape[1:])}, "
                        f"expected {s.shape}; run `synsample data fetch {s.name} --force`")
    return Dataset(s.name, split, images, labels, s.classes, meta.get("source", ""), verified)


def list_cached() -> list[dict]:
    """One row per known dataset split (whether it is cached, verified, its size and source),
    then one per built-in OoD set (generated, nothing to cache).

    Returns:
        Rows with ``dataset``, ``split``, ``items``, ``cached``, ``verified``, ``path``,
        ``source`` and ``note``.
    """
    rows = []
    for s in DATASETS.values():
        for split, size in s.sizes.items():
            file = cache.split_path(s.name, split)
            row = {"dataset": s.name, "split": split, "items": size, "cached": file.is_file(),
                   "verified": None, "path": str(file), "source": "", "note": s.note}
            if file.is_file():
                try:
                    ds = load(s.name, split, fetch=False)
                    row.update(verified=ds.verified, source=ds.source)
                except DataError as exc:
                    row.update(verified=False, note=str(exc))
            rows.append(row)
    for name in OOD_SETS:
        note = ("the other of MNIST / Fashion-MNIST, from the cache" if name == "other"
                else "generated on demand, seeded, shaped like the reference set")
        rows.append({"dataset": f"ood:{name}", "split": "test", "items": None, "cached": False,
                     "verified": None, "path": "", "source": "", "generated": True,
                     "note": note})
    return rows
