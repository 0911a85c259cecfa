"""Compiled kernels, built once when the package is installed, loaded with ctypes.

``native.c`` is compiled by ``setup.py`` into the extension ``synsample/kernels/_native*.so``
(``pip install .``, or the README's set-up): one binary that holds every kernel once per
instruction set (AVX-512, AVX2 and the architecture's baseline). Nothing is compiled at run
time and nothing executable is loaded from a cache folder: the library lives beside this file,
as trusted as the Python code. Which variant runs is measured, not assumed
([`synsample.paths`][synsample.paths]): [`variants`][synsample.kernels.variants] lists those this
CPU can run, widest first.

Where the extension was not built (no C compiler at install time), or with
``SYNSAMPLE_KERNELS=off``, [`available`][synsample.kernels.available] is False and callers use their
pure-PyTorch twins, which give the same bits. ``SYNSAMPLE_KERNEL_ISA=avx2`` (or ``base``) hides the
wider variants, to time the kernels as an older CPU would run them.

Kernels:

- [`coinflip`][synsample.kernels.coinflip]: scANN's independent mode (a fresh coin per item, sample
  and weight, from the counter-based generator of [`synsample.randomness`][synsample.randomness]);
- [`gemm_u8s8`][synsample.kernels.gemm_u8s8]: an exact unsigned-by-signed 8-bit product (raw pixels
  times sampled weights in {-1, 0, 1}) that is fast without VNNI.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.machinery
import os
import threading
import warnings
from pathlib import Path

import torch

#: outputs per vector group in the coin-flip kernel (LANES in coinflip.h): arrays are padded
LANES = 16
#: the instruction-set variants of the coin-flip kernel, widest first, with their float32 lanes
VARIANTS = {"avx512": 16, "avx2": 8, "base": 4}
#: the variants of the u8s8 GEMM, widest first (sse4: SSSE3 and SSE4.2, x86-64-v2)
GEMM_VARIANTS = ("avx512", "avx2", "sse4")
#: the index of each variant in native.c's synsample_supports, widest first
_VARIANT_ID = {"avx512": 2, "avx2": 1, "sse4": 3, "base": 0}

_lock = threading.Lock()
_library: ctypes.CDLL | None | bool = False  # False: not tried yet


def enabled() -> bool:
    """Whether compiled kernels may be used (``SYNSAMPLE_KERNELS=off`` turns them off).

    Returns:
        False when ``SYNSAMPLE_KERNELS`` is ``off``, ``0``, ``no`` or ``false``.
    """
    return os.environ.get("SYNSAMPLE_KERNELS", "on").lower() not in ("off", "0", "no", "false")


def library_file() -> Path | None:
    """The installed kernel library beside this file, or None where it was not built.

    Returns:
        The path of ``_native<extension suffix>``, or None.
    """
    here = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = here / f"_native{suffix}"
        if path.is_file():
            return path
    return None


def identity() -> str | None:
    """What names this build of the kernels and the builds it may run, for the caches of
    measured choices: a hash of the library file and the builds, or None without one.

    Returns:
        ``<sha256 prefix>:<builds>``, or None.
    """
    return _identity(os.environ.get("SYNSAMPLE_KERNEL_ISA", ""), enabled(), id(_load()))


@functools.cache
def _identity(cap: str, on: bool, library: int) -> str | None:
    path = library_file()
    if path is None or not variants():
        return None
    found = ",".join(variants() + [f"gemm-{v}" for v in gemm_variants()])
    return f"{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}:{found}"


def _declare(lib: ctypes.CDLL) -> None:
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    lib.synsample_supports.restype = ctypes.c_int
    lib.synsample_supports.argtypes = [ctypes.c_int]
    for variant in _VARIANT_ID:
        fn = getattr(lib, f"coinflip_independent_{variant}", None)
        if fn is not None:
            fn.restype = i64
            fn.argtypes = ([ptr] + [i64] * 6 + [ptr, ptr, ptr, i64, ctypes.c_uint64, ptr,
                                                ctypes.c_int])
        gemm = getattr(lib, f"gemm_u8s8_{variant}", None)
        if gemm is not None:
            gemm.restype = ctypes.c_int
            gemm.argtypes = [ptr, i64, i64, i64, ptr, i64, ptr, i64, ctypes.c_float,
                             ctypes.c_int]
            getattr(lib, f"gemm_block_columns_{variant}").restype = ctypes.c_int


def _load() -> ctypes.CDLL | None:
    global _library
    with _lock:
        if _library is False:
            _library = None
            path = library_file()
            if enabled() and path is not None:
                try:
                    lib = ctypes.CDLL(str(path))
                    _declare(lib)
                    _library = lib
                except (OSError, AttributeError) as err:
                    warnings.warn(f"synsample: the compiled kernels in {path} cannot be loaded "
                                  f"({err}); reinstall synsample (pip install .) to rebuild "
                                  "them; using the pure-PyTorch paths (same results, slower)",
                                  RuntimeWarning, stacklevel=3)
            elif enabled():
                warnings.warn("synsample: the compiled kernels were not built when synsample "
                              "was installed (no C compiler then?); install gcc and reinstall "
                              "(pip install .) for fast independent mode; using the "
                              "pure-PyTorch paths (same results, slower)",
                              RuntimeWarning, stacklevel=3)
        return _library or None


def available() -> bool:
    """Whether the compiled kernels can run here.

    Returns:
        True when the library is loaded.
    """
    return _load() is not None


def _supported(names, symbol: str) -> list[str]:
    """The ``names`` whose ``<symbol>_<name>`` the library holds and the CPU runs, widest
    first, at most as wide as ``SYNSAMPLE_KERNEL_ISA``."""
    lib = _load()
    if lib is None:
        return []
    cap = os.environ.get("SYNSAMPLE_KERNEL_ISA", "").strip().lower()
    return list(_supported_by(lib, tuple(names), symbol, cap))


@functools.cache
def _supported_by(lib: ctypes.CDLL, names: tuple[str, ...], symbol: str, cap: str
                  ) -> tuple[str, ...]:
    """[`_supported`][synsample.kernels._supported] for one library and cap, asked of the CPU once
    (every layer call of
    a run lists the builds)."""
    order = list(_VARIANT_ID)
    allowed = order[order.index(cap):] if cap in order else order
    return tuple(v for v in names if v in allowed and hasattr(lib, f"{symbol}_{v}")
                 and lib.synsample_supports(_VARIANT_ID[v]))


def variants() -> list[str]:
    """The builds of the coin-flip kernel this CPU runs, widest first (none without the
    library); ``SYNSAMPLE_KERNEL_ISA`` (``avx512``, ``avx2``, ``sse4``, ``base``) caps them.

    Returns:
        Names among `VARIANTS`.
    """
    return _supported(VARIANTS, "coinflip_independent")


def gemm_variants() -> list[str]:
    """The builds of [`gemm_u8s8`][synsample.kernels.gemm_u8s8] this CPU runs, widest first, capped
    as [`variants`][synsample.kernels.variants].

    Returns:
        Names among `GEMM_VARIANTS`.
    """
    return _supported(GEMM_VARIANTS, "gemm_u8s8")


def vector_lanes(variant: str | None = None) -> int | None:
    """float32 lanes per vector of a variant of the coin-flip kernel (the widest this CPU runs
    by default), or None without a kernel.

    Args:
        variant: a name among `VARIANTS`, or None.

    Returns:
        The lanes, or None.
    """
    found = variants()
    if not found:
        return None
    return VARIANTS[variant or found[0]]


def comparator(threshold: torch.Tensor, sign: torch.Tensor, bits: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel's form of the coins: ``h >> (32 - bits) < t`` is ``h <= (t << (32 - bits)) - 1``
    for ``t >= 1`` (one compare instead of shift and compare); where ``t = 0`` the sign is set
    to 0 instead, so the coin cannot count. The limit is stored with its top bit flipped, as a
    signed int32, so that the kernel compares signed (``h <= limit`` unsigned is
    ``h ^ 2^31 <= limit ^ 2^31`` signed; x86 has no unsigned vector compare before AVX-512).
    Both padded to a multiple of `LANES` outputs with sign 0.

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
             items: torch.Tensor, first_sample: int, key: int, variant: str | None = None
             ) -> tuple[torch.Tensor, int] | None:
    """The compiled twin of
    [`synsample.randomness.coinflip_reference`][synsample.randomness.coinflip_reference] (same
    arguments, same bits), or None when it cannot run (no compiler, or a non-CPU tensor). ``value``:
    what each coin gates (``sign(w)`` for scANN, ``w`` for NSM blank-out).

    Items are split over ``torch.get_num_threads()`` threads of PyTorch's own OpenMP runtime
    (ctypes releases the GIL).

    Args:
        x: ``[items, n, in]`` inputs, or ``[items, 1, in]`` shared by the ``n`` samples.
        n: samples.
        threshold: ``[in, out]`` integer thresholds.
        value: ``[in, out]`` what each coin gates.
        bits: the bits of the device's uniform integers.
        items: the global index of each item.
        first_sample: the index of the first sample.
        key: the layer's 64-bit key in the run.
        variant: the instruction-set variant (default: the widest this CPU runs).

    Returns:
        ``(y [items, n, out], coins drawn)``, or None.

    Raises:
        MemoryError: when the kernel cannot allocate its accumulators.
    """
    if x.device.type != "cpu":
        return None
    found = variants()
    if not found:
        return None
    fn = getattr(_load(), f"coinflip_independent_{variant or found[0]}")
    x = x.to(torch.float32).contiguous()
    b, d_in, out = x.shape[0], x.shape[2], threshold.shape[1]
    limit, sign = _prepared_comparator(threshold, value, bits)
    items = items.to(torch.int64).contiguous()
    y = torch.empty(b, n, out, dtype=torch.float32)
    sample_stride = 0 if x.shape[1] == 1 else d_in
    key &= (1 << 64) - 1

    coins = fn(x.data_ptr(), x.stride(0), sample_stride, b, n, d_in, out, limit.data_ptr(),
               sign.data_ptr(), items.data_ptr(), first_sample, key, y.data_ptr(),
               torch.get_num_threads())
    if coins < 0:
        raise MemoryError("the sampling kernel could not allocate its accumulators")
    return y, coins


def pack_u8s8(weight: torch.Tensor, variant: str) -> torch.Tensor:
    """Sampled weights ``[N, K]`` int8 in {-1, 0, 1} in the layout
    [`gemm_u8s8`][synsample.kernels.gemm_u8s8] reads: per block of the variant's columns, per quad
    of inputs, the block's 4-byte groups; zero columns and zero inputs pad N and K.

    Args:
        weight: ``[N, K]`` int8 with ``|w| <= 1`` (larger magnitudes could saturate).
        variant: a name among [`gemm_variants`][synsample.kernels.gemm_variants].

    Returns:
        The packed weights, int8, ``[blocks, K / 4, columns, 4]``.
    """
    lib = _load()
    cols = int(getattr(lib, f"gemm_block_columns_{variant}")())
    n, k = weight.shape
    w = torch.nn.functional.pad(weight, (0, -k % 4, 0, -n % cols))
    return w.view(w.shape[0] // cols, cols, w.shape[1] // 4, 4).permute(0, 2, 1, 3).contiguous()


def gemm_u8s8(x: torch.Tensor, packed: torch.Tensor, columns: int, variant: str,
              scale: float = 1.0) -> torch.Tensor:
    """``scale * (x @ W^T)``: ``x`` raw uint8 values, ``W`` the weights given to
    [`pack_u8s8`][synsample.kernels.pack_u8s8], summed exactly in integers through the
    unsigned-by-signed byte multiply-add (no VNNI needed), then converted to float32 (exact while
    ``255 K < 2^24``) and multiplied by ``scale`` once, as ``y.float() * scale`` would. Groups of
    four inputs that are zero in every row of a run of rows are skipped (raw images are zero around
    the object).

    Args:
        x: ``[M, K]`` uint8.
        packed: [`pack_u8s8`][synsample.kernels.pack_u8s8]'s result for the same variant.
        columns: N, the weights' rows.
        variant: a name among [`gemm_variants`][synsample.kernels.gemm_variants].
        scale: the factor applied to the sums.

    Returns:
        ``[M, N]`` float32.

    Raises:
        MemoryError: when the kernel cannot allocate its lists of nonzero inputs.
    """
    lib = _load()
    fn = getattr(lib, f"gemm_u8s8_{variant}")
    blocks, quads, cols = packed.shape[0], packed.shape[1], packed.shape[2]
    if x.shape[1] != 4 * quads or x.stride(1) != 1:
        x = torch.nn.functional.pad(x, (0, 4 * quads - x.shape[1])).contiguous()
    m = x.shape[0]
    y = torch.empty(m, blocks * cols, dtype=torch.float32)

    if fn(x.data_ptr(), x.stride(0), m, quads, packed.data_ptr(), blocks, y.data_ptr(),
          y.stride(0), scale, torch.get_num_threads()) != 0:
        raise MemoryError("the u8s8 kernel could not allocate its lists of nonzero inputs")
    return y if y.shape[1] == columns else y[:, :columns]
