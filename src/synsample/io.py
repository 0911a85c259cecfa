"""Atomic file writes: a file is either its old content or its complete new content, never half.

Every file synsample writes (datasets in the cache, checkpoints, results, reports) goes through
these helpers, so an interrupted run never corrupts what an earlier run wrote.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from synsample.errors import SynsampleError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was.

    Args:
        path: the file to write (its folder is created if missing).

    Yields:
        The temporary path to write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file, then a rename).

    Args:
        path: the file.
        data: its new content.
    """
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically.

    Args:
        path: the file.
        text: its new content.
    """
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically (dataclasses, paths, tensors as plain values).

    Args:
        path: the file.
        obj: a JSON-able value.

    Raises:
        TypeError: for a value that cannot be written as JSON.
    """
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` and move the result to ``path`` atomically.

    Args:
        path: the file.
        writer: writes the file at the path it is given.
    """
    with atomic_path(path) as tmp:
        writer(tmp)


def read_json(path: str | Path) -> Any:
    """The JSON value in ``path``.

    Args:
        path: the file.

    Returns:
        The decoded value.
    """
    return json.loads(Path(path).read_text(encoding="utf-8"))


SEAL = "sha256"


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, allow_nan=True).encode("utf-8")


def sealed(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` as plain JSON values with a ``"sha256"`` entry over the rest, so that a file
    edited by hand (or cut short, or from an older version without the entry) is told apart from
    one synsample wrote: see [`unsealed`][synsample.io.unsealed].

    Args:
        obj: a JSON-able object (dataclasses, paths, tensors become plain values).

    Returns:
        The plain object with its seal.
    """
    plain = json.loads(json.dumps(obj, default=_json_default))
    plain.pop(SEAL, None)
    return {**plain, SEAL: hashlib.sha256(_canonical(plain)).hexdigest()}


def unsealed(entry: Any) -> dict[str, Any]:
    """The object [`sealed`][synsample.io.sealed] wrote, without its seal.

    Raises:
        ValueError: when ``entry`` is not an object, has no seal, or was changed since.
    """
    if not isinstance(entry, dict) or not isinstance(entry.get(SEAL), str):
        raise ValueError("it holds no sha256 of its content")
    plain = {k: v for k, v in entry.items() if k != SEAL}
    if hashlib.sha256(_canonical(plain)).hexdigest() != entry[SEAL]:
        raise ValueError("its content does not match its sha256 (edited or damaged)")
    return plain


def read_cached(path: str | Path, accept: Callable[[Any], Any], what: str) -> Any:
    """A measurement cache's value: ``accept(entry)`` of the JSON in ``path``, or None.

    No file is None, silently; a file that is not JSON, or that ``accept`` rejects (returns
    None, or raises ``KeyError`` / ``TypeError`` / ``ValueError`` on its shape), is None with a
    warning that names it, so that the caller measures again and rewrites it.

    Args:
        path: the cache file.
        accept: returns the value an entry holds, or None when it is not valid for the case.
        what: names the cache in the warning (``path``, ``tuning``).

    Returns:
        The accepted value, or None.
    """
    import warnings

    path = Path(path)
    try:
        text = path.read_text()
    except OSError:
        return None
    try:
        value = accept(json.loads(text))
        if value is not None:
            return value
        problem = "it was written for another case or names something that is not a candidate"
    except (ValueError, KeyError, TypeError) as err:
        problem = (str(err) if type(err) is ValueError and str(err)
                   else f"it is not a valid {what} file ({type(err).__name__})")
    warnings.warn(f"synsample: ignoring the {what} cache {path}: {problem}; measuring again",
                  RuntimeWarning, stacklevel=3)
    return None


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


LOCK_FILE = ".synsample.lock"
#: folders whose lock this thread holds (another thread of the process must wait its turn)
_held = threading.local()


class FolderBusy(SynsampleError):
    """Another live process holds the folder's lock; ``holder`` says which, as it wrote.

    Args:
        folder: the locked folder.
        holder: what the lock file says of its holder.
    """

    def __init__(self, folder: Path, holder: str) -> None:
        super().__init__(f"{folder} is in use by another synsample run ({holder}); wait for it "
                         "to finish or choose another folder")
        self.folder, self.holder = folder, holder


@contextmanager
def folder_lock(folder: str | Path, wait: bool = False) -> Iterator[Path]:
    """Hold the one-writer lock of ``folder`` (created if missing) while the block runs.

    The lock is an advisory ``flock`` on ``folder/.synsample.lock``, which the kernel releases
    when its holder exits, however it exits: a lock left by a killed run is stale by
    construction and is simply taken over. The file records who holds it (pid, host, command,
    start time) for the error message. ``wait``: block until the holder is done instead of
    raising [`FolderBusy`][synsample.io.FolderBusy] at once. A folder this process already holds is
    re-entered (a job runner holds a job's folder while the job trains into it). A folder the lock
    had to create is removed again when the block leaves nothing in it (a run that failed early).

    Args:
        folder: the folder.
        wait: wait for the holder instead of raising.

    Yields:
        ``folder`` as a Path.

    Raises:
        FolderBusy: when another process holds it and ``wait`` is off.
    """
    import fcntl
    import socket
    import sys
    import time

    folder = Path(folder)
    created = [f for f in (folder, *folder.parents) if not f.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    held = _held.__dict__.setdefault("folders", set())
    if key in held:
        yield folder
        return
    path = folder / LOCK_FILE
    try:  # never through a symbolic link: the lock's text would overwrite the file it names
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0),
                     0o666 & ~_UMASK)
    except OSError as err:
        if path.is_symlink():
            raise SynsampleError(f"{path} is a symbolic link; synsample writes its lock file "
                                 "only as a plain file of its own: remove the link") from err
        raise
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
            if not wait:
                raise FolderBusy(folder, holder) from None
            fcntl.flock(fd, fcntl.LOCK_EX)
        command = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))
        info = (f"pid {os.getpid()} on {socket.gethostname()}, since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {command}")[:4000].encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        held.add(key)
        try:
            yield folder
        finally:
            held.discard(key)
            if created:
                _remove_if_unused(created, path)
    finally:
        os.close(fd)  # releases the flock


def _remove_if_unused(created: list[Path], lock: Path) -> None:
    """Remove the folders a lock created (``created``, deepest first) when the run left
    nothing in them but its lock file: a run that failed before writing leaves no trace."""
    folder = created[0]
    if [p.name for p in folder.iterdir()] != [lock.name]:
        return
    lock.unlink()
    for made in created:
        try:
            made.rmdir()
        except OSError:  # not empty: something else lives there now
            return
