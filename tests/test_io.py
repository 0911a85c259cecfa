import pytest

from synsample.io import atomic_path, read_json, write_json


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.json"
    write_json(path, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert read_json(path) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_folder_a_failed_run_created_is_removed_and_an_earlier_one_kept(tmp_path):
    from synsample.io import LOCK_FILE, folder_lock

    fresh = tmp_path / "runs" / "report"
    with pytest.raises(RuntimeError), folder_lock(fresh):
        raise RuntimeError("failed before writing")
    assert not (tmp_path / "runs").exists()  # nothing left, not even the parent it made
    with folder_lock(fresh):
        (fresh / "report.md").write_text("done\n")
    assert sorted(p.name for p in fresh.iterdir()) == [LOCK_FILE, "report.md"]
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    with folder_lock(earlier):
        pass
    assert earlier.is_dir()  # a folder that was there before stays


def test_a_lock_file_that_is_a_symlink_is_refused_and_its_target_kept(tmp_path):
    from synsample.errors import SynsampleError
    from synsample.io import LOCK_FILE, folder_lock

    target = tmp_path / "precious.txt"
    target.write_text("my notes")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / LOCK_FILE).symlink_to(target)
    with pytest.raises(SynsampleError, match="symbolic link"):
        with folder_lock(folder):
            pass
    assert target.read_text() == "my notes"
