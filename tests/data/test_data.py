import numpy as np
import pytest
import torch

from synsample import data
from synsample.data import cache, catalog
from synsample.data import ood as ood_data
from synsample.data.sources import LocalFolder
from synsample.errors import DataError
from tests.conftest import require_cached


def test_unknown_dataset_and_split(synthetic):
    with pytest.raises(DataError, match="unknown dataset 'imagenet'; known: mnist"):
        data.load("imagenet")
    with pytest.raises(DataError, match="has no split 'validation'"):
        data.load("synthetic", "validation", path=synthetic)


def test_load_from_a_path(synthetic):
    ds = data.load("synthetic", "train", path=synthetic)
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (400, 1, 8, 8)
    assert ds.labels.dtype == torch.int64 and ds.classes == ("a", "b", "c", "d")
    assert len(ds.subset(10)) == 10


def test_a_path_that_is_not_the_reference_data_fails_its_checksum(synthetic):
    # synthetic files in MNIST's format are not MNIST: the decoded-array SHA-256 says so
    with pytest.raises(DataError, match="not the reference"):
        data.load("mnist", "train", path=synthetic)
    ds = data.load("mnist", "train", path=synthetic, verify=False)
    assert ds.verified is None


def test_fetch_verifies_then_caches_and_loads_offline(synthetic, monkeypatch):
    splits = catalog.formats.read_idx_folder(synthetic)
    from synsample.data.checksum import array_digest

    sha = {s: array_digest(*splits[s]) for s in splits}
    spec = catalog.DATASETS["synthetic"]
    good = catalog.DatasetSpec(**{**spec.__dict__, "sha256": sha,
                                  "sources": (LocalFolder("/nonexistent", catalog.formats
                                                          .read_idx_folder),
                                              LocalFolder(str(synthetic), catalog.formats
                                                          .read_idx_folder))})
    monkeypatch.setitem(catalog.DATASETS, "synthetic", good)
    messages = []
    data.fetch("synthetic", log=messages.append)
    assert len(messages) == 2  # the first source failed, the second worked
    ds = data.load("synthetic", "test", fetch=False)
    assert ds.verified is True and str(synthetic) in ds.source
    rows = [r for r in data.list_cached() if r["dataset"] == "synthetic"]
    assert all(r["cached"] and r["verified"] for r in rows)
    # a wrong reference checksum is refused before anything is cached
    bad = catalog.DatasetSpec(**{**good.__dict__, "sha256": {"train": "0" * 64, "test": "0" * 64}})
    monkeypatch.setitem(catalog.DATASETS, "synthetic", bad)
    with pytest.raises(DataError, match="not the reference"):
        data.fetch("synthetic", force=True)


def test_no_working_source_is_one_clear_error(synthetic, monkeypatch):
    spec = catalog.DATASETS["synthetic"]
    monkeypatch.setitem(catalog.DATASETS, "synthetic", catalog.DatasetSpec(
        **{**spec.__dict__, "sources": (LocalFolder("/nonexistent", lambda p: {}),)}))
    with pytest.raises(DataError, match="no source worked.*pass --path") as info:
        data.load("synthetic", "train")
    assert "\n" not in str(info.value)


def test_corrupt_cache_file_names_the_fix(synthetic):
    images = np.zeros((3, 1, 8, 8), dtype=np.uint8)
    path = cache.store("synthetic", "test", images, np.zeros(3, dtype=np.int64), "test")
    assert data.load("synthetic", "test", fetch=False).images.shape == (3, 1, 8, 8)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DataError, match="is corrupt.*synsample data fetch synthetic --force"):
        data.load("synthetic", "test", fetch=False)


def test_missing_cache_without_fetch(synthetic):
    with pytest.raises(DataError, match="not in the cache.*synsample data fetch synthetic"):
        data.load("synthetic", "test", fetch=False)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_real_dataset_from_cache_is_verified(name, real_home):
    require_cached(name)
    train, test = data.load(name, "train", fetch=False), data.load(name, "test", fetch=False)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.verified and test.verified
    assert torch.bincount(test.labels).tolist() == ([980, 1135, 1032, 1010, 982, 892, 958, 1028,
                                                     974, 1009] if name == "mnist" else [1000] * 10)


@pytest.mark.parametrize("name", ["gaussian-noise", "uniform-noise", "noisy", "fake", "fakedata"])
def test_generated_ood_sets_match_the_reference_and_are_seeded(synthetic, name):
    ref = data.load("synthetic", "test", path=synthetic)
    a = ood_data.make_ood(name, ref, items=50, seed=1)
    b = ood_data.make_ood(name, ref, items=50, seed=1)
    c = ood_data.make_ood(name, ref, items=50, seed=2)
    assert a.images.shape == (50, 1, 8, 8) and a.images.dtype == torch.uint8
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    if name == "noisy":  # the test images under covariate shift keep their classes
        assert torch.equal(a.labels, ref.labels[:50])
    else:
        assert torch.all(a.labels == -1)


def test_ood_errors_and_listing(synthetic):
    ref = data.load("synthetic", "test", path=synthetic)
    with pytest.raises(DataError, match="unknown OoD set"):
        ood_data.make_ood("svhn", ref)
    with pytest.raises(DataError, match="defined for MNIST and Fashion-MNIST"):
        ood_data.make_ood("other", ref)
    names = [r["dataset"] for r in data.list_cached()]
    assert "ood:gaussian-noise" in names and "ood:other" in names


def test_other_ood_set_is_the_real_other_dataset(real_home):
    require_cached("mnist")
    require_cached("fashion-mnist")
    mnist = data.load("mnist", "test", fetch=False)
    other = ood_data.make_ood("other", mnist, items=100)
    fashion = data.load("fashion-mnist", "test", fetch=False)
    assert torch.equal(other.images, fashion.images[:100])


def test_fakedata_is_torchvisions_iid_pixels_beside_the_smoothed_fake(synthetic):
    """torchvision's FakeData draws randn pixels and ToPILImage writes them as
    ``x.mul(255).byte()``: the integer part's low byte. Ours: the same values, i.i.d.; the
    smoothed ``fake`` set has strongly correlated neighbours."""
    import torch

    ref = data.load("synthetic", "test", path=synthetic)
    fake_iid = ood_data.make_ood("fakedata", ref, items=200, seed=4)
    g = torch.Generator().manual_seed(4)
    expected = (torch.randn(fake_iid.images.shape, generator=g) * 255).to(torch.int32)
    assert torch.equal(fake_iid.images, expected.to(torch.uint8))  # int32 -> uint8 wraps

    def neighbour_correlation(images):
        x = images.to(torch.float64)
        a, b = x[..., :-1].flatten(), x[..., 1:].flatten()
        return float(torch.corrcoef(torch.stack([a, b]))[0, 1])

    assert abs(neighbour_correlation(fake_iid.images)) < 0.05
    smooth = ood_data.make_ood("fake", ref, items=200, seed=4).images  # 7x7 onto 8x8 here
    assert neighbour_correlation(smooth) > 0.3
