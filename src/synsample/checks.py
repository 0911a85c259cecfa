"""Checks made before any long work starts, so that a mistake costs one line, not an hour.

Every command calls these on its inputs first: the torch device, the folders it will write,
the numbers that must be finite, and requests whose size would be absurd. Each failure is a
[`SynsampleError`][synsample.errors.SynsampleError] whose message names the fix.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch

from synsample.errors import ConfigError

#: item-passes (items x passes) above which a run is refused: about a day of sampling at a
#: million item-passes a second, the order of the fastest case on one CPU (see the bench)
MAX_ITEM_PASSES = 10**11


def available_devices() -> list[str]:
    """The torch device types that can run here, e.g. ``['cpu']`` or ``['cpu', 'cuda']``.

    Returns:
        The device types, cpu first.
    """
    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def device(name: str | torch.device | None) -> torch.device:
    """The torch device ``name`` (None: cpu), refused unless it can run here.

    Args:
        name: a device name or ``torch.device``, or None.

    Returns:
        The ``torch.device``.

    Raises:
        ConfigError: for a name that is not a device, or one this machine lacks.
    """
    if name is None:
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"{name!r} is not a torch device; use one of "
                          f"{', '.join(available_devices())}") from exc
    here = available_devices()
    if dev.type not in here:
        why = ("this torch was built without CUDA" if dev.type == "cuda"
               and not torch.backends.cuda.is_built() else "none is present")
        raise ConfigError(f"device {name!r} cannot run here ({why}); available: "
                          f"{', '.join(here)}")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r} does not exist; this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s)")
    return dev


def writable_folder(path: str | Path, what: str = "output folder") -> Path:
    """Check that ``path`` is, or can become, a folder this process can write in, without
    creating it: the nearest existing ancestor must be a folder that accepts a new file.

    Args:
        path: the folder.
        what: names it in the error.

    Returns:
        ``path`` as a Path.

    Raises:
        ConfigError: when it is a file, cannot be made, or is not writable.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"the {what} {path} is a file; give a folder")
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"the {what} {path} cannot be made: {existing} is a file")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ConfigError(f"the {what} {path} is not writable ({existing}: "
                          f"{exc.strerror or exc}); choose another place") from exc
    return path


def writable_file(path: str | Path, what: str = "output file") -> Path:
    """Check that the file ``path`` can be written: not a folder, its folder writable.

    Args:
        path: the file.
        what: names it in the error.

    Returns:
        ``path`` as a Path.

    Raises:
        ConfigError: when it is a folder or its folder is not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"the {what} {path} is a folder; give a file name")
    writable_folder(path.parent, f"folder of the {what}")
    return path


def finite(value: float, name: str) -> float:
    """``value`` as a float, refused when it is NaN or infinite.

    Args:
        value: the number.
        name: names it in the error.

    Returns:
        The float.

    Raises:
        ConfigError: for a value that is not a finite number.
    """
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, got {value}")
    return value


def finite_tensors(tensors: Iterable[tuple[str, torch.Tensor]], what: str) -> None:
    """Refuse the first floating tensor of ``(name, tensor)`` that holds NaN or inf.

    Args:
        tensors: ``(name, tensor)`` pairs (None tensors are skipped).
        what: names their owner in the error.

    Raises:
        ConfigError: for a tensor with NaN or inf values.
    """
    for name, t in tensors:
        bad = nonfinite(t) if t is not None else 0
        if bad:
            raise ConfigError(f"{what} {name} holds {bad} NaN or infinite value(s); repair or "
                              "retrain it")


def nonfinite(t: torch.Tensor) -> int:
    """How many NaN or infinite values ``t`` holds (0 for a tensor that is not floating).

    The smallest and largest value first (NaN carries through ``aminmax``, and an infinity is
    one of them): one read of the tensor, about 20 times faster than ``isfinite(t).all()``,
    which writes a mask as large as it; the exact count only when one is not finite.

    Args:
        t: the tensor.

    Returns:
        The count.
    """
    if not t.is_floating_point() or t.numel() == 0:
        return 0
    low, high = torch.aminmax(t)
    if math.isfinite(float(low)) and math.isfinite(float(high)):
        return 0
    return int((~torch.isfinite(t)).sum())


def item_passes(items: int, passes: int) -> None:
    """Refuse a run of more than [`MAX_ITEM_PASSES`][synsample.checks.MAX_ITEM_PASSES] item-passes,
    with the estimate.

    Args:
        items: items of the run.
        passes: passes per item.

    Raises:
        ConfigError: for a larger run.
    """
    total = items * passes
    if total > MAX_ITEM_PASSES:
        days = total / 1e6 / 86400
        raise ConfigError(f"{items:,} items x {passes:,} passes = {total:.3g} item-passes, about "
                          f"{days:,.0f} days at a million a second (the fastest case); "
                          f"synsample refuses more than {MAX_ITEM_PASSES:.0e}: lower --samples "
                          "or --limit")


def memory(needed_bytes: float, what: str, fix: str) -> None:
    """Refuse work whose estimated memory exceeds the machine's physical memory.

    Args:
        needed_bytes: the estimate.
        what: names the work in the error.
        fix: what to do instead, for the error.

    Raises:
        ConfigError: when the estimate exceeds physical memory (not checked where the
            machine's memory cannot be read).
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if needed_bytes > total:
        raise ConfigError(f"{what} needs about {needed_bytes / 2**30:,.1f} GiB, more than this "
                          f"machine's {total / 2**30:,.1f} GiB; {fix}")


def optional_module(name: str, needed_for: str, extra: str):
    """The optional extra ``name`` (Ray, MLflow), or one line naming how to install it.

    Args:
        name: the module to import.
        needed_for: what needs it, the start of the error ("--runner ray needs Ray").
        extra: how to install it (``pip install 'synsample[ray]'``).

    Returns:
        (ModuleType): the module.

    Raises:
        ConfigError: when it is not installed.
    """
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        raise ConfigError(f"{needed_for}, an optional extra: {extra}") from None


#: seconds a network option's first connection may take before the run is refused (a Ray
#: head node, an MLflow server): a wrong address fails in seconds, never hangs
CONNECT_SECONDS = 10


def host_port(value: str, option: str, example: str) -> tuple[str, int]:
    """``HOST:PORT`` (also ``[v6]:PORT``) as ``(host, port)``, or a one-line error.

    Args:
        value: what the user gave.
        option: the option's name, for the message.
        example: a valid value, for the message.

    Returns:
        ``(host, port)``.

    Raises:
        ConfigError: without a host, or with a port that is not 1 to 65535.
    """
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{option} must be HOST:PORT (e.g. {example}), got {value!r}")
    return host, int(port)


def reachable(host: str, port: int, what: str, timeout: float | None = None) -> None:
    """Refuse, in one line, a server that does not accept a TCP connection within
    [`CONNECT_SECONDS`][synsample.checks.CONNECT_SECONDS]: before any work starts, and instead of a
    client's long retries.

    Args:
        host: its host.
        port: its port.
        what: names it in the message.
        timeout: seconds (default [`CONNECT_SECONDS`][synsample.checks.CONNECT_SECONDS]).

    Raises:
        ConfigError: when nothing answers in time.
    """
    import socket

    seconds = CONNECT_SECONDS if timeout is None else timeout
    try:
        with socket.create_connection((host, port), timeout=seconds):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ConfigError(f"nothing answers at {host}:{port} ({what}) within {seconds:g} s: "
                          f"{reason}; check the address and that the server runs") from None
