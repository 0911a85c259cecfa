"""One local Ray cluster (2 CPUs) for the whole test session, started by the first test that
asks for it (skipped when Ray, the optional extra, is not installed).

Ray's workers are separate processes started when the cluster starts: they get the test data
cache, no tuning, the repository on ``PYTHONPATH`` (the tests' job functions are imported by
reference) and, through :func:`register_datasets`, the synthetic datasets of
:data:`DATASETS_ENV` that the tests register in this process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: ``name=folder:side;...``: synthetic datasets every Ray worker registers on start
DATASETS_ENV = "SYNSAMPLE_TEST_DATASETS"
ROOT = Path(__file__).resolve().parent.parent


def synthetic_spec(name: str, side: int):
    """The catalog entry of a synthetic 4-class set (as the conftest's)."""
    from synsample.data import formats
    from synsample.data.catalog import DatasetSpec

    return DatasetSpec(name=name, classes=("a", "b", "c", "d"), shape=(1, side, side),
                       sizes={"train": 400, "test": 200}, sha256=None, sources=(),
                       read_local=formats.read_idx_folder, note="synthetic test data")


def register_datasets() -> None:
    """Register the synthetic datasets named in :data:`DATASETS_ENV`."""
    from synsample.data import catalog

    for entry in filter(None, os.environ.get(DATASETS_ENV, "").split(";")):
        name, rest = entry.split("=", 1)
        catalog.DATASETS[name] = synthetic_spec(name, int(rest.rsplit(":", 1)[1]))


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """``(ray, data folder)``: a 2-CPU local cluster and a synthetic 8x8 set (``synthetic``)
    that the workers know; shut down at the end of the session."""
    ray = pytest.importorskip("ray", reason="Ray is the optional extra synsample[ray]")
    from tests.helpers import write_synthetic_idx

    data = write_synthetic_idx(tmp_path_factory.mktemp("ray-data") / "synthetic", side=8)
    env = {"SYNSAMPLE_HOME": str(tmp_path_factory.mktemp("ray-home")),
           "SYNSAMPLE_TUNING": "off", DATASETS_ENV: f"synthetic={data}:8",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                        os.environ.get("PYTHONPATH")])),
           "RAY_DEDUP_LOGS": "0"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        ray.init(num_cpus=2, include_dashboard=False, configure_logging=False,
                 runtime_env={"worker_process_setup_hook":
                              "tests.ray_cluster.register_datasets"})
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    yield ray, data
    ray.shutdown()


@pytest.fixture
def ray_synthetic(ray_cluster, monkeypatch):
    """The cluster's synthetic set, registered in this process too; returns its folder."""
    from synsample.data import catalog

    monkeypatch.setitem(catalog.DATASETS, "synthetic", synthetic_spec("synthetic", 8))
    return ray_cluster[1]
