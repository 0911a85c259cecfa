import gzip
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from synsample.data import formats
from synsample.errors import DataError
from tests.helpers import write_idx, write_synthetic_idx


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, compress):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "x-idx3-ubyte", arr, compress)
    assert np.array_equal(formats.read_idx(path), arr)


def test_truncated_and_bad_idx_files_name_the_file(tmp_path):
    arr = np.zeros((5, 4, 4), dtype=np.uint8)
    path = write_idx(tmp_path / "a", arr)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(DataError, match=r"a holds .* truncated or corrupt"):
        formats.read_idx(path)
    bad = tmp_path / "b"
    bad.write_bytes(b"\x12\x34\x56\x78rubbish")
    with pytest.raises(DataError, match="not an IDX file"):
        formats.read_idx(bad)
    gz = tmp_path / "c.gz"
    gz.write_bytes(gzip.compress(b"\x00" * 1000)[:20])
    with pytest.raises(DataError, match="truncated or corrupt gzip"):
        formats.read_idx(gz)


def test_idx_folder(tmp_path):
    folder = write_synthetic_idx(tmp_path / "s", n_train=30, n_test=10)
    splits = formats.read_idx_folder(folder)
    assert splits["train"][0].shape == (30, 1, 8, 8) and splits["test"][1].dtype == np.int64
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="no t10k-labels-idx1-ubyte"):
        formats.read_idx_folder(folder)


def test_mnist_pickle_format(tmp_path):
    rng = np.random.default_rng(0)

    def part(n):
        return (rng.integers(0, 256, (n, 784)).astype(np.float32) / 256,
                rng.integers(0, 10, n).astype(np.int64))

    parts = (part(5), part(3), part(4))
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(parts, protocol=2)))
    got = formats.read_mnist_pickle(path)
    assert got["train"][0].shape == (8, 1, 28, 28)
    assert np.array_equal(got["train"][0][:5].reshape(5, -1), (parts[0][0] * 256).astype(np.uint8))
    assert np.array_equal(got["test"][1], parts[2][1])


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_code(tmp_path):
    with pytest.raises(DataError, match="refusing to load"):
        formats.load_array_pickle(pickle.dumps(Evil()), "evil.pkl")


def _cifar_batch(n, seed):
    rng = np.random.default_rng(seed)
    return pickle.dumps({b"batch_label": b"x", b"labels": rng.integers(0, 10, n).tolist(),
                         b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
                         b"filenames": [b"f"] * n}, protocol=2)


def _write_cifar(path, missing=()):
    with tarfile.open(path, "w:gz") as tar:
        for i, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
            if name in missing:
                continue
            blob = _cifar_batch(4, i)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def test_cifar10_python_format_archive_and_folder(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    _write_cifar(archive)
    got = formats.read_cifar10(archive)
    assert got["train"][0].shape == (20, 3, 32, 32) and got["test"][0].shape == (4, 3, 32, 32)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    got2 = formats.read_cifar10(tmp_path / "x")
    assert np.array_equal(got["train"][0], got2["train"][0])
    _write_cifar(tmp_path / "broken.tar.gz", missing=("data_batch_3",))
    with pytest.raises(DataError, match="lacks the CIFAR-10 batch files data_batch_3"):
        formats.read_cifar10(tmp_path / "broken.tar.gz")
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(DataError, match="not a readable CIFAR-10 archive"):
        formats.read_cifar10(tmp_path / "junk.tar.gz")


def test_cifar10_loads_through_the_catalog_with_a_path(tmp_path):
    from synsample import data

    archive = tmp_path / "cifar-10-python.tar.gz"
    _write_cifar(archive)
    ds = data.load("cifar10", "test", path=archive)
    assert ds.images.shape == (4, 3, 32, 32) and ds.classes[0] == "airplane"
    assert ds.verified is None  # no reference checksum of the decoded arrays exists here


def _ar(members):
    out = b"!<arch>\n"
    for name, body in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}`\n".encode()
        out += header + body + (b"\n" if len(body) % 2 else b"")
    return out


def test_debian_package_extraction_without_dpkg(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for name, body in (("./usr/share/datasets/x/a.gz", b"AAA"), ("./usr/share/doc/b", b"B")):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    deb = tmp_path / "pkg.deb"
    deb.write_bytes(_ar([("debian-binary", b"2.0\n"), ("control.tar.xz", b"c"),
                         ("data.tar.xz", buf.getvalue())]))
    out = tmp_path / "out"
    out.mkdir()
    formats.extract_deb(deb, "usr/share/datasets/x/", out)
    assert [p.name for p in out.iterdir()] == ["a.gz"] and (out / "a.gz").read_bytes() == b"AAA"
    bad = tmp_path / "bad.deb"
    bad.write_bytes(b"nope")
    with pytest.raises(DataError, match="not a Debian package"):
        formats.extract_deb(bad, "x", out)
