"""Which of several ways of computing the same result is fastest on this machine: measured,
never assumed from the instruction set.

CPUs differ wildly: ``torch._int_mm`` is 4 times faster than fp32 on an AVX-512 VNNI server
and 70 times slower on an AVX2-only EPYC; a kernel built for AVX-512 is not always faster than
its AVX2 build. So wherever the engine has more than one way to compute a result (an *op*
with its *candidates*, each tested to give the same bits), [`choose`][synsample.paths.choose] times
the candidates on the call's own inputs the first time a *signature* (the op, its shapes and dtypes,
torch's threads, the CPU) is seen, and keeps the fastest: in memory, and as JSON under
``$SYNSAMPLE_HOME/tuning/paths-<hash>.json``, so a later run on the same machine measures
nothing. A cache file that does not name a current candidate for its exact signature is
ignored, with a warning, and measured again.

An op may name a *reference*, the plain computation (for a GEMM, fp32): another candidate is
chosen over it only when measured at least `MARGIN` faster, so a path slower than the
plain computation is never chosen. Without measurement (``SYNSAMPLE_TUNING=off``, a device
other than the CPU) an op uses its ``default`` (else the reference).

``SYNSAMPLE_PATHS="gemm=fp32,coinflip=twin"`` forces candidates by op name (to time each path
in ``synsample bench``, or to emulate another CPU's choice); a layer's ``paths`` dict does the
same for one layer.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from synsample import machine

#: a candidate replaces the reference only when this much faster (noise must not pick it)
MARGIN = 0.05

#: a candidate this many times slower than the best at a trial size is not timed larger
DROP = 3.0

#: a trial size is timed until its calls took at least this long (short calls are noisy)
MIN_SECONDS = 0.004

#: trials stop growing once the best call takes this long: long enough to compare, and a
#: large layer's full call (seconds, for a conv head in independent mode) is not timed several
#: times per candidate
LONG_TRIAL = 0.02

#: bump when the measurement changes, so that older cached choices are measured anew
VERSION = 1

#: choices made in this process, by op, candidates, shape and threads; the last choice per op;
#: and every choice per op since [`forget`][synsample.paths.forget] or the caller cleared it (the
#: bench's rows: a network's layers may take different paths of one op)
_chosen: dict[tuple, str] = {}
last: dict[str, str] = {}
taken: dict[str, list[str]] = {}


def _took(op: str, name: str) -> str:
    last[op] = name
    if name not in taken.setdefault(op, []):
        taken[op].append(name)
    return name


def tuning_enabled() -> bool:
    """Whether measured choices are on: paths here, tile and chunk in `synsample.tuning`
    (``SYNSAMPLE_TUNING`` is not ``off``, ``0``, ``no`` or ``false``).

    Returns:
        The switch.
    """
    return os.environ.get("SYNSAMPLE_TUNING", "on").lower() not in ("off", "0", "no", "false")


def measuring(device: torch.device | str = "cpu") -> bool:
    """Whether choices are measured here (tuning on, and the device a CPU).

    Args:
        device: where the op runs.

    Returns:
        False with tuning off ([`tuning_enabled`][synsample.paths.tuning_enabled]) or off the CPU.
    """
    return tuning_enabled() and torch.device(device).type == "cpu"


def forced(op: str, layer_paths: dict[str, str] | None = None) -> str | None:
    """The candidate forced for ``op``: by the layer's ``paths``, else ``SYNSAMPLE_PATHS``.

    Args:
        op: the op's name.
        layer_paths: the layer's own forced choices, or None.

    Returns:
        The candidate's name, or None.
    """
    if layer_paths and op in layer_paths:
        return layer_paths[op]
    for part in os.environ.get("SYNSAMPLE_PATHS", "").split(","):
        name, _, value = part.partition("=")
        if name.strip() == op and value.strip():
            return value.strip()
    return None


def signature(op: str, **shape: Any) -> dict[str, Any]:
    """What a choice depends on: the op, its shapes (and the caller's kernel library), and
    the machine as `synsample.machine.speed_key` names it.

    Args:
        op: the op's name.
        **shape: the call's sizes and dtypes (JSON-able).

    Returns:
        The signature.
    """
    return {"version": VERSION, "op": op, **shape, **machine.speed_key()}


def _digest(sig: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(sig, sort_keys=True).encode()).hexdigest()[:16]


def cache_path(sig: dict[str, Any]) -> Path:
    """The cache file of a signature's choice.

    Args:
        sig: a [`signature`][synsample.paths.signature].

    Returns:
        ``<home>/tuning/paths-<hash>.json``.
    """
    from synsample.data.cache import home

    return home() / "tuning" / f"paths-{_digest(sig)}.json"


def _cached(sig: dict[str, Any], names: Sequence[str]) -> str | None:
    """The cached choice, if its file is valid for this signature and names a candidate."""
    from synsample.io import read_cached

    return read_cached(cache_path(sig), lambda e: e["chosen"] if e["key"] == sig
                       and e["chosen"] in names else None, "path")


def _seconds(run: Callable[[str, int], Any], name: str, size: int, give_up: float
             ) -> float:
    """The fastest of a few calls of ``run(name, size)``, after one untimed call; a single
    timed call when that one already took more than ``give_up`` seconds."""
    run(name, size)
    best, spent, calls = float("inf"), 0.0, 0
    while calls < 2 or (spent < MIN_SECONDS and calls < 20):
        start = time.perf_counter()
        run(name, size)
        took = time.perf_counter() - start
        best, spent, calls = min(best, took), spent + took, calls + 1
        if took > give_up:
            break
    return best


def measure(names: Sequence[str], run: Callable[[str, int], Any], sizes: Sequence[int],
            reference: str | None = None) -> tuple[str, dict[str, dict[int, float]]]:
    """Time every candidate at growing trial sizes and return the fastest.

    At each size the candidates are timed fastest-first (by the previous size); one more than
    `DROP` times slower than the best is timed once and not at the larger sizes (a
    70-times cliff costs two small calls, not a full one). Sizes stop growing once the best
    call takes `LONG_TRIAL` seconds. At the largest size reached, the
    fastest replaces the ``reference`` (which is always timed) only when at least
    `MARGIN` faster.

    Args:
        names: the candidates.
        run: ``run(name, size)`` computes the op with candidate ``name`` on a trial of ``size``.
        sizes: the trial sizes, increasing (the last one the call's own).
        reference: the plain computation a candidate must beat, or None (the fastest wins).

    Returns:
        ``(chosen name, seconds per call by name and size)``.
    """
    timings: dict[str, dict[int, float]] = {n: {} for n in names}
    alive = list(names)
    for size in sizes:
        best = float("inf")
        for name in alive:
            limit = float("inf") if name == reference else DROP * best
            timings[name][size] = _seconds(run, name, size, limit)
            best = min(best, timings[name][size])
        alive = sorted((n for n in alive if n == reference or timings[n][size] <= DROP * best),
                       key=lambda n: timings[n][size])
        last_size = size
        if best >= LONG_TRIAL:
            break
    fastest = alive[0]
    if reference is not None and (
            timings[fastest][last_size] > (1 - MARGIN) * timings[reference][last_size]):
        fastest = reference
    return fastest, timings


def choose(op: str, names: Sequence[str], run: Callable[[str, int], Any], sizes: Sequence[int],
           shape: dict[str, Any], device: torch.device | str = "cpu", default: str | None = None,
           layer_paths: dict[str, str] | None = None, reference: str | None = None) -> str:
    """The candidate to compute ``op`` with: forced (where it can compute this call), else
    cached, else measured now, else the default.

    Args:
        op: the op's name (``gemm``, ``coinflip``, ...).
        names: the candidates that can run this call.
        run: ``run(name, size)`` computes the op with a candidate on a trial of ``size`` (rows,
            or whatever unit the caller's sizes count) of the call.
        sizes: trial sizes for the measurement, increasing, the last the call's own.
        shape: the call's sizes and dtypes (part of the signature).
        device: where the op runs (measured only on the CPU).
        default: the choice without measurement (default: the reference, else the first name).
        layer_paths: a layer's forced choices by op.
        reference: the plain computation (e.g. fp32) that another candidate must beat by
            `MARGIN`, or None.

    Returns:
        The chosen candidate's name.
    """
    want = forced(op, layer_paths)
    if want in names:
        return _took(op, want)
    if len(names) == 1 or not measuring(device):
        chosen = default if default in names else reference if reference in names else names[0]
        return _took(op, chosen)
    memo = (op, tuple(names), tuple(sorted(shape.items())), torch.get_num_threads())
    if memo in _chosen:  # the common case: every later call of a run, without hashing
        return _took(op, _chosen[memo])
    sig = signature(op, **shape)
    chosen = _cached(sig, names)
    if chosen is None:
        from synsample.io import write_json

        start = time.perf_counter()
        chosen, timings = measure(names, run, sizes, reference)
        write_json(cache_path(sig), {
            "key": sig, "chosen": chosen,
            "timings_ms": {n: {str(s): round(t * 1e3, 4) for s, t in by_size.items()}
                           for n, by_size in timings.items()},
            "seconds": round(time.perf_counter() - start, 3),
            "written": time.strftime("%Y-%m-%d %H:%M:%S")})
    _chosen[memo] = chosen
    return _took(op, chosen)


def bucket(size: int) -> int:
    """``size`` rounded up to a power of two, for a signature: calls of nearly the same size
    (the last tile of a block, a chunk cut at a vote checkpoint) share one measurement.

    Args:
        size: a count.

    Returns:
        The power of two at or above it (1 for 0 or 1).
    """
    return 1 << max(0, size - 1).bit_length()


def trial_sizes(rows: int, smallest: int = 1, step: int = 8) -> list[int]:
    """Trial sizes for [`measure`][synsample.paths.measure]: ``smallest``, then ``step`` times
    larger, up to ``rows`` (always last).

    Args:
        rows: the call's rows.
        smallest: the first size.
        step: the growth factor.

    Returns:
        The sizes, increasing.
    """
    sizes, size = [], max(1, smallest)
    while size < rows:
        sizes.append(size)
        size *= step
    return [*sizes, rows]


def forget() -> None:
    """Drop the choices kept in this process (the cache files stay)."""
    _chosen.clear()
    last.clear()
    taken.clear()
