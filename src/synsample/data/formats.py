"""Readers of the standard on-disk formats of the datasets synsample knows.

- IDX (MNIST, Fashion-MNIST): big-endian magic, dimensions, raw bytes; optionally gzipped.
- The ``mnist.pkl.gz`` pickle (train, validation, test) of float32 pixels = uint8 / 256.
- CIFAR-10 "python version": pickled dicts ``{b"data": uint8 [N, 3072], b"labels": [...]}``.
- Debian binary packages (``ar`` archives holding ``data.tar.*``), read without dpkg.

Pickles are read with a restricted unpickler that only builds numpy arrays and plain containers,
so a tampered download cannot run code.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

from synsample.errors import DataError

Splits = dict[str, tuple[np.ndarray, np.ndarray]]

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def open_maybe_gzip(path: Path) -> bytes:
    """Return the bytes of ``path``, gunzipped when it starts with the gzip magic.

    Args:
        path: the file.

    Returns:
        Its (decompressed) bytes.

    Raises:
        DataError: for a truncated or corrupt gzip file.
    """
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path} is a truncated or corrupt gzip file ({exc}); delete it and "
                            "fetch it again") from exc
    return raw


def read_idx(path: Path) -> np.ndarray:
    """Decode one IDX file (gzipped or not) into a numpy array of its declared shape.

    Args:
        path: the file.

    Returns:
        The array, in its declared dtype.

    Raises:
        DataError: for a bad magic number, a truncated header or a wrong data size.
    """
    data = open_maybe_gzip(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number); delete it and fetch it "
                        "again")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated (header cut short); delete it and fetch it again")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(f"{path} holds {len(data) - header} bytes of data, its header says "
                        f"{expected}: the file is truncated or corrupt; delete it and fetch it "
                        "again")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).copy()


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that can only rebuild numpy arrays, dtypes and builtin containers."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("builtins", "list"),
        ("builtins", "dict"),
        ("builtins", "tuple"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):  # noqa: D102
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data pickle")


def load_array_pickle(data: bytes, source: str) -> object:
    """Unpickle ``data`` (a pickle of numpy arrays) safely; ``source`` names it in errors.

    Args:
        data: the pickle's bytes.
        source: names the data in errors.

    Returns:
        What the pickle holds (arrays and plain containers only).

    Raises:
        DataError: for anything that cannot be unpickled so.
    """
    try:
        return _ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as exc:  # any failure means the file is not what it should be
        raise DataError(f"{source} is not a readable data pickle ({type(exc).__name__}: {exc}); "
                        "delete it and fetch it again") from exc


def read_mnist_pickle(path: Path) -> Splits:
    """Decode ``mnist.pkl.gz`` into uint8 images ``[N, 1, 28, 28]`` and int64 labels.

    The file holds ``(train, validation, test)`` with pixels as float32 ``uint8 / 256``; train
    and validation, in order, are the standard 60,000-image training set.

    Args:
        path: the file.

    Returns:
        The ``train`` and ``test`` splits.

    Raises:
        DataError: for a file of another layout or pixels that are not ``k / 256``.
    """
    parts = load_array_pickle(open_maybe_gzip(path), str(path))
    try:
        (xtr, ytr), (xva, yva), (xte, yte) = parts  # type: ignore[misc]
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path} does not hold (train, validation, test) pairs; it is not the "
                        "mnist.pkl.gz file synsample expects") from exc

    def to_uint8(x: np.ndarray) -> np.ndarray:
        scaled = np.asarray(x, dtype=np.float64) * 256.0
        if scaled.min() < 0 or scaled.max() > 255 or not np.array_equal(scaled, np.round(scaled)):
            raise DataError(f"{path}: pixels are not multiples of 1/256 in [0, 1); not the "
                            "expected mnist.pkl.gz")
        return scaled.astype(np.uint8).reshape(-1, 1, 28, 28)

    return {
        "train": (np.concatenate([to_uint8(xtr), to_uint8(xva)]),
                  np.concatenate([ytr, yva]).astype(np.int64)),
        "test": (to_uint8(xte), np.asarray(yte).astype(np.int64)),
    }


IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def find_file(folder: Path, stem: str) -> Path:
    """Find ``stem`` or ``stem.gz`` in ``folder`` (the two ways IDX files are distributed).

    Args:
        folder: the folder.
        stem: the file name without ``.gz``.

    Returns:
        The file found.

    Raises:
        DataError: when neither exists.
    """
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder} has no {stem}[.gz]; point --path at the folder holding the four "
                    "IDX files")


def read_idx_folder(folder: Path) -> Splits:
    """Decode the four standard IDX files in ``folder`` into uint8 images and int64 labels.

    Args:
        folder: the folder holding them (plain or gzipped).

    Returns:
        The ``train`` and ``test`` splits, images ``[N, 1, H, W]``.

    Raises:
        DataError: for a missing file or unexpected shapes.
    """
    out = {}
    for split, (img_stem, lbl_stem) in IDX_FILES.items():
        images = read_idx(find_file(folder, img_stem))
        labels = read_idx(find_file(folder, lbl_stem))
        if images.ndim != 3 or images.dtype != np.uint8 or labels.ndim != 1:
            raise DataError(f"{folder}: {img_stem} / {lbl_stem} have unexpected shapes "
                            f"{images.shape} / {labels.shape}")
        if len(images) != len(labels):
            raise DataError(f"{folder}: {len(images)} images but {len(labels)} labels in the "
                            f"{split} split")
        out[split] = (images[:, None, :, :], labels.astype(np.int64))
    return out


CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def _cifar_batch(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    batch = load_array_pickle(data, name)
    if not isinstance(batch, dict):
        raise DataError(f"{name} is not a CIFAR-10 batch (not a dict)")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise DataError(f"{name} is not a CIFAR-10 batch (no data / labels)")
    images = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if images.ndim != 2 or images.shape[1] != 3072 or len(images) != len(labels):
        raise DataError(f"{name}: data has shape {images.shape} and {len(labels)} labels; "
                        "a CIFAR-10 batch has [N, 3072] and N labels")
    return images.reshape(-1, 3, 32, 32), labels


def read_cifar10(path: Path) -> Splits:
    """Decode CIFAR-10 (python version) from its ``.tar.gz`` or from the extracted folder.

    Args:
        path: the archive, or the folder (or its parent).

    Returns:
        The ``train`` and ``test`` splits, images ``[N, 3, 32, 32]``.

    Raises:
        DataError: for an unreadable archive or missing or malformed batch files.
    """
    path = Path(path)
    members: dict[str, bytes] = {}
    if path.is_file():
        try:
            with tarfile.open(path, "r:*") as tar:
                for member in tar.getmembers():
                    name = Path(member.name).name
                    if member.isfile() and name in sum(CIFAR_BATCHES.values(), []):
                        members[name] = tar.extractfile(member).read()  # type: ignore[union-attr]
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(f"{path} is not a readable CIFAR-10 archive ({exc}); delete it and "
                            "fetch it again") from exc
    else:
        folder = path / CIFAR_FOLDER if (path / CIFAR_FOLDER).is_dir() else path
        for name in sum(CIFAR_BATCHES.values(), []):
            if (folder / name).is_file():
                members[name] = (folder / name).read_bytes()
    out = {}
    for split, names in CIFAR_BATCHES.items():
        missing = [n for n in names if n not in members]
        if missing:
            raise DataError(f"{path} lacks the CIFAR-10 batch files {', '.join(missing)}")
        parts = [_cifar_batch(members[n], f"{path}:{n}") for n in names]
        out[split] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return out


def extract_deb(deb: Path, prefix: str, dest: Path) -> Path:
    """Extract the files under ``prefix`` of a Debian package's data archive into ``dest``.

    A ``.deb`` is an ``ar`` archive; its ``data.tar.{xz,gz,bz2}`` member holds the files. Reading
    it here needs no dpkg and no root.

    Args:
        deb: the package file.
        prefix: the path inside the data archive whose files are wanted.
        dest: the folder they are written to (flat, by file name).

    Returns:
        ``dest``.

    Raises:
        DataError: for a file that is not a Debian package or has no data archive.
    """
    raw = Path(deb).read_bytes()
    if not raw.startswith(b"!<arch>\n"):
        raise DataError(f"{deb} is not a Debian package (no ar magic)")
    pos = 8
    while pos + 60 <= len(raw):
        header = raw[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = raw[pos + 60:pos + 60 + size]
        pos += 60 + size + (size % 2)
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
                wanted = [m for m in tar.getmembers()
                          if m.isfile() and m.name.lstrip("./").startswith(prefix)]
                for m in wanted:
                    target = dest / Path(m.name).name
                    target.write_bytes(tar.extractfile(m).read())  # type: ignore[union-attr]
            return dest
    raise DataError(f"{deb} has no data archive")
