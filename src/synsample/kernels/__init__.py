"""Compiled kernels, built on first use with the system C compiler and loaded with ctypes.

No torch headers and no toolchain download: one C file per kernel, ``cc -O3 -march=native``,
a second or two. The shared library is cached under ``$SYNSAMPLE_HOME/kernels`` by a hash of
the source, the flags and the CPU's feature flags (a library built for one CPU is never
loaded on another). Where no compiler works, or ``SYNSAMPLE_KERNELS=off``, :func:`coinflip`
returns None and callers use their pure-PyTorch twin, which gives the same bits.
``SYNSAMPLE_KERNEL_MARCH`` builds for another target than ``native`` (e.g. ``x86-64-v3``, AVX2
only, to time the kernel as an AVX2 CPU would run it); the bits are the same.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from synsample.machine import cpu_flags

_SOURCE = Path(__file__).with_name("coinflip.c")
#: outputs per vector in the kernel (LANES in coinflip.c): arrays are padded to a multiple
LANES = 16
_lock = threading.Lock()
_library: ctypes.CDLL | None | bool = False  # False: not tried yet
_pool: ThreadPoolExecutor | None = None


def enabled() -> bool:
    """Whether compiled kernels may be used (``SYNSAMPLE_KERNELS=off`` turns them off).

    Returns:
        False when ``SYNSAMPLE_KERNELS`` is ``off``, ``0``, ``no`` or ``false``.
    """
    return os.environ.get("SYNSAMPLE_KERNELS", "on").lower() not in ("off", "0", "no", "false")


def _flags() -> list[str]:
    """The compiler flags. -ffp-contract=off: no fused multiply-adds, so float sums round exactly
    like PyTorch's."""
    march = os.environ.get("SYNSAMPLE_KERNEL_MARCH", "native")
    return ["-O3", f"-march={march}", "-ffp-contract=off", "-fno-math-errno", "-shared", "-fPIC"]


def _build(target: Path) -> None:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which(
        "clang")
    if cc is None:
        raise OSError("no C compiler found (install gcc, or set CC)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        wanted = _flags()
        for flags in (wanted, [f for f in wanted if not f.startswith("-march")]):
            proc = subprocess.run([cc, *flags, str(_SOURCE), "-o", str(built)],
                                  capture_output=True, text=True)
            if proc.returncode == 0:  # -march=native is not known to every compiler
                break
        else:
            raise OSError(f"{cc} failed: {proc.stderr.strip()[-500:]}")
        os.replace(built, target)  # atomic: a concurrent build never sees half a library


def library_path() -> Path:
    """Where this machine's build of the kernel library is cached.

    Returns:
        ``$SYNSAMPLE_HOME/kernels/coinflip-<hash>.so``, the hash of the source, the flags, the
        CPU's feature flags and the machine type.
    """
    from synsample.data.cache import home

    digest = hashlib.sha256(_SOURCE.read_bytes() + " ".join(_flags()).encode()
                            + cpu_flags().encode() + platform.machine().encode()).hexdigest()
    return home() / "kernels" / f"coinflip-{digest[:16]}.so"


def _load() -> ctypes.CDLL | None:
    global _library
    with _lock:
        if _library is False:
            _library = None
            if enabled():
                try:
                    path = library_path()
                    if not path.exists():
                        _build(path)
                    lib = ctypes.CDLL(str(path))
                    fn = lib.coinflip_independent
                    fn.restype = ctypes.c_int64
                    fn.argtypes = ([ctypes.c_void_p] + [ctypes.c_int64] * 6
                                   + [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                      ctypes.c_int64, ctypes.c_uint64,
                                      ctypes.c_void_p])
                    lib.coinflip_vector_lanes.restype = ctypes.c_int
                    _library = lib
                except OSError as err:
                    warnings.warn(f"synsample: compiled sampling kernel unavailable ({err}); "
                                  "using the pure-PyTorch path (same results, much slower)",
                                  RuntimeWarning, stacklevel=3)
        return _library or None


def available() -> bool:
    """Whether the compiled kernel can run here (builds it on first call).

    Returns:
        True when the library is loaded.
    """
    return _load() is not None


def vector_lanes() -> int | None:
    """float32 lanes per vector the compiled kernel uses (16: AVX-512, 8: AVX2, 4: SSE or
    NEON), or None without a kernel.

    Returns:
        The lanes, or None.
    """
    lib = _load()
    return None if lib is None else int(lib.coinflip_vector_lanes())


def _threads() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads()),
                                   thread_name_prefix="synsample-kernel")
    return _pool


def comparator(threshold: torch.Tensor, sign: torch.Tensor, bits: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel's form of the coins: ``h >> (32 - bits) < t`` is ``h <= (t << (32 - bits)) - 1``
    for ``t >= 1`` (one compare instead of shift and compare); where ``t = 0`` the sign is set
    to 0 instead, so the coin cannot count. The limit is stored with its top bit flipped, as a
    signed int32, so that the kernel compares signed (``h <= limit`` unsigned is
    ``h ^ 2^31 <= limit ^ 2^31`` signed; x86 has no unsigned vector compare before AVX-512).
    Both padded to a multiple of :data:`LANES` outputs with sign 0.

    Args:
        threshold: ``[in, out]`` integer thresholds (the device's comparator).
        sign: ``[in, out]`` what each coin gates (``sign(w)``, or ``w``).
        bits: the bits of the device's uniform integers.

    Returns:
        ``(limit, sign)``, int32 and float32, each ``[in, out_pad]``.
    """
    t = threshold.to(torch.int64)
    limit = (((t << (32 - bits)) - 1).clamp(min=0) - 2**31).to(torch.int32)
    sign = torch.where(t > 0, sign.to(torch.float32), torch.zeros(()))
    pad = -threshold.shape[1] % LANES
    return (torch.nn.functional.pad(limit, (0, pad)).contiguous(),
            torch.nn.functional.pad(sign, (0, pad)).contiguous())


#: the last comparators made, with the tensors they were made from (held, so that a match by
#: identity cannot be a new tensor at a reused address): every chunk and tile of a run reuses
#: the layer's thresholds, so their kernel form is made once per layer, not once per call
_prepared: list[tuple[torch.Tensor, torch.Tensor, int, int, tuple[torch.Tensor, torch.Tensor]]] = []
_PREPARED_KEEP = 16


def _prepared_comparator(threshold: torch.Tensor, sign: torch.Tensor, bits: int
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    versions = threshold._version + sign._version
    for t, g, b, v, made in _prepared:
        if t is threshold and g is sign and b == bits and v == versions:
            return made
    made = comparator(threshold, sign, bits)
    _prepared.insert(0, (threshold, sign, bits, versions, made))
    del _prepared[_PREPARED_KEEP:]
    return made


def coinflip(x: torch.Tensor, n: int, threshold: torch.Tensor, value: torch.Tensor, bits: int,
             items: torch.Tensor, first_sample: int, key: int
             ) -> tuple[torch.Tensor, int] | None:
    """The compiled twin of :func:`synsample.randomness.coinflip_reference` (same
    arguments, same bits), or None when it cannot run (no compiler, or a non-CPU tensor).
    ``value``: what each coin gates (``sign(w)`` for scANN, ``w`` for NSM blank-out).

    Items are split over ``torch.get_num_threads()`` threads (ctypes releases the GIL).

    Args:
        x: ``[items, n, in]`` inputs, or ``[items, 1, in]`` shared by the ``n`` samples.
        n: samples.
        threshold: ``[in, out]`` integer thresholds.
        value: ``[in, out]`` what each coin gates.
        bits: the bits of the device's uniform integers.
        items: the global index of each item.
        first_sample: the index of the first sample.
        key: the layer's 64-bit key in the run.

    Returns:
        ``(y [items, n, out], coins drawn)``, or None.

    Raises:
        MemoryError: when the kernel cannot allocate its accumulators.
    """
    if x.device.type != "cpu":
        return None
    lib = _load()
    if lib is None:
        return None
    x = x.to(torch.float32).contiguous()
    b, d_in, out = x.shape[0], x.shape[2], threshold.shape[1]
    limit, sign = _prepared_comparator(threshold, value, bits)
    items = items.to(torch.int64).contiguous()
    y = torch.empty(b, n, out, dtype=torch.float32)
    sample_stride = 0 if x.shape[1] == 1 else d_in
    key &= (1 << 64) - 1

    def run(lo: int, hi: int) -> int:
        coins = lib.coinflip_independent(
            x[lo].data_ptr(), x.stride(0), sample_stride, hi - lo, n, d_in, out,
            limit.data_ptr(), sign.data_ptr(), items[lo].data_ptr(), first_sample, key,
            y[lo].data_ptr())
        if coins < 0:
            raise MemoryError("the sampling kernel could not allocate its accumulators")
        return coins

    parts = min(b, max(1, torch.get_num_threads()))
    bounds = [b * p // parts for p in range(parts + 1)]
    if parts == 1:
        coins = run(0, b)
    else:
        coins = sum(_threads().map(run, bounds[:-1], bounds[1:]))
    return y, coins
