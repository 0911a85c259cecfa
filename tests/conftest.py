from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from synsample.data import catalog, formats
from synsample.data.catalog import DatasetSpec
from tests.helpers import write_synthetic_idx

REAL_HOME = Path(os.environ.get("SYNSAMPLE_HOME", Path.home() / ".cache" / "synsample"))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets an empty cache, so nothing touches the user's; sizes are not tuned (a
    measurement per test's fresh cache would slow the suite; tests/test_tuning.py turns it on)."""
    monkeypatch.setenv("SYNSAMPLE_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.setenv("SYNSAMPLE_TUNING", "off")
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def real_home(monkeypatch):
    """The real cache, for the tests that want real MNIST / Fashion-MNIST (skipped if absent)."""
    monkeypatch.setenv("SYNSAMPLE_HOME", str(REAL_HOME))
    return REAL_HOME


def require_cached(name: str) -> None:
    for split in ("train", "test"):
        if not (REAL_HOME / "datasets" / name / f"{split}.safetensors").is_file():
            pytest.skip(f"{name} is not in the cache {REAL_HOME}; run `synsample data fetch "
                        f"{name}` to enable this test")


def _register_synthetic(tmp_path: Path, monkeypatch, name: str, side: int) -> Path:
    folder = write_synthetic_idx(tmp_path / name, side=side)
    spec = DatasetSpec(name=name, classes=("a", "b", "c", "d"), shape=(1, side, side),
                       sizes={"train": 400, "test": 200}, sha256=None,
                       sources=(), read_local=formats.read_idx_folder,
                       note="synthetic test data")
    monkeypatch.setitem(catalog.DATASETS, name, spec)
    return folder


@pytest.fixture
def synthetic(tmp_path, monkeypatch) -> Path:
    """A small synthetic 4-class 8x8 dataset in IDX format, registered as ``synthetic``."""
    return _register_synthetic(tmp_path, monkeypatch, "synthetic", 8)


@pytest.fixture
def synthetic16(tmp_path, monkeypatch) -> Path:
    """The same synthetic data at 16x16 (for LeNet-5), registered as ``synthetic16``."""
    return _register_synthetic(tmp_path, monkeypatch, "synthetic16", 16)


from tests.ray_cluster import ray_cluster, ray_synthetic  # noqa: E402,F401  (fixtures)
