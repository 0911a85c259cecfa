"""Tile and sample-chunk sizes measured on first use, cached per CPU and model shape.

The engine runs a model in calls of ``tile`` items x ``sample_chunk`` samples. Which sizes are
fastest depends on the CPU (caches, vector width, BLAS) and on the model's layer shapes, so
the engine times a few candidate pairs on the run's own model and inputs (about a second in
all, see [`BUDGET_SECONDS`][synsample.tuning.BUDGET_SECONDS]), keeps the fastest per item-pass if a
second timing against the default confirms it ([`MARGIN`][synsample.tuning.MARGIN]), and caches the
choice as JSON under ``$SYNSAMPLE_HOME/tuning``, keyed by the CPU (model name and feature flags),
torch's version and thread count, the sampling mode and the model's shapes (see
[`key`][synsample.tuning.key]), as compiled kernels are cached per CPU. Votes never depend on the
sizes (draws are keyed by seed and pass), so tuning changes speed only.

``SYNSAMPLE_TUNING=off`` uses the fixed defaults (`synsample.engine.SAMPLE_CHUNK`,
`synsample.engine.auto_tile`); so do runs too small to repay the measurement (fewer
than [`MIN_PASSES`][synsample.tuning.MIN_PASSES] item-passes) and runs on other devices than the
CPU.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from synsample import machine, paths

#: candidate items per call (tile) and samples per call (chunk), per mode: shared mode's draws
#: are made once per chunk and reused by every tile; independent mode's kernel draws per item
TILES = {"shared": (128, 256, 512, 1024, 2048), "independent": (32, 64, 128, 256, 512)}
CHUNKS = {"shared": (4, 8, 16, 32), "independent": (8, 16, 32, 64)}

#: a run of fewer item-passes (items x samples) than this uses the defaults untimed
MIN_PASSES = 100_000

#: the measurement stops starting candidates once it has taken this long
BUDGET_SECONDS = 1.0

#: timed calls per candidate, after one untimed call (which makes shared mode's draws); one
#: where that call took more than [`LONG_CALL`][synsample.tuning.LONG_CALL] seconds (its noise is
#: small, its cost not)
REPEATS = 2
LONG_CALL = 0.05

#: a pair replaces the default only if it is this much faster per item-pass when the two are
#: timed again, one after the other (a busy machine makes single timings pick by noise)
MARGIN = 0.05

#: bump when the measurement changes, so that older cached choices are measured anew
VERSION = 4


def enabled() -> bool:
    """Whether sizes are tuned (``SYNSAMPLE_TUNING`` is not ``off``).

    Returns:
        False when ``SYNSAMPLE_TUNING`` is ``off``, ``0``, ``no`` or ``false``.
    """
    return paths.tuning_enabled()


def applies(passes: int, device: torch.device) -> bool:
    """Whether a run of ``passes`` item-passes on ``device`` tunes its sizes.

    Args:
        passes: items x samples of the run.
        device: where it runs.

    Returns:
        True when tuning is on, the device a CPU and the run at least
        [`MIN_PASSES`][synsample.tuning.MIN_PASSES].
    """
    return enabled() and device.type == "cpu" and passes >= MIN_PASSES


def candidates(mode: str, default: tuple[int, int], chunk: int | None = None,
               tile: int | None = None, rows_per_call: int | None = None
               ) -> list[tuple[int, int]]:
    """The ``(tile, chunk)`` pairs to time: the ``default`` pair first (so that tuning never
    picks a slower pair than it for want of time), then chunk by chunk (so that the tiles of one
    chunk reuse its draws); a given ``chunk`` or ``tile`` is kept, and no pair exceeds the
    model's ``rows_per_call`` item-sample rows.

    Args:
        mode: ``'shared'`` or ``'independent'``.
        default: the untuned ``(tile, chunk)``.
        chunk: a chunk the user gave, or None.
        tile: a tile the user gave, or None.
        rows_per_call: the model's row limit, or None.

    Returns:
        The pairs, the default first.
    """
    chunks = (chunk,) if chunk is not None else CHUNKS[mode]
    tiles = (tile,) if tile is not None else TILES[mode]
    grid = [(t, c) for c in chunks for t in tiles
            if (rows_per_call is None or t * c <= rows_per_call) and (t, c) != default]
    return [default, *grid]


def key(model: torch.nn.Module, per_item: torch.Tensor, mode: str, chunk: int | None,
        tile: int | None) -> dict[str, Any]:
    """What the fastest sizes depend on: the CPU, torch, the mode, the model's sampled layers
    and devices, and one item's prefix output (``per_item``, shape and dtype).

    Args:
        model: the stochastic model.
        per_item: the prefix output of one item.
        mode: ``'shared'`` or ``'independent'``.
        chunk: a chunk the user gave, or None.
        tile: a tile the user gave, or None.

    Returns:
        The key, JSON-able.
    """
    from synsample.nn.sampling import SampledLayer

    layers = [[type(m).__name__, list(m.weight.shape)
               if isinstance(getattr(m, "weight", None), torch.Tensor) else None]
              for m in model.modules() if isinstance(m, SampledLayer)]
    devices = model.devices() if hasattr(model, "devices") else []
    return {"version": VERSION, **machine.speed_key(), "mode": mode,
            "model": type(model).__name__, "layers": layers,
            "devices": sorted({type(d).__name__ for d in devices}),
            "input": [list(per_item.shape[1:]), str(per_item.dtype)],
            "sample_chunk": chunk, "tile": tile}


def cache_path(k: dict[str, Any]) -> Path:
    """The cache file of the tuned sizes for the case described by ``k``.

    Args:
        k: a [`key`][synsample.tuning.key].

    Returns:
        ``<home>/tuning/sizes-<hash>.json``.
    """
    from synsample.data.cache import home

    digest = hashlib.sha256(json.dumps(k, sort_keys=True).encode()).hexdigest()
    return home() / "tuning" / f"sizes-{digest[:16]}.json"


def cached(k: dict[str, Any], pairs: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The ``(tile, chunk)`` cached for key ``k``, or None: none yet, or a file that is not a
    choice among ``pairs`` written for exactly ``k`` (an edited or foreign file is ignored,
    with a warning, and measured again: sizes outside the candidates could loop, fail or run
    many times slower).

    Args:
        k: a [`key`][synsample.tuning.key].
        pairs: the candidate ``(tile, chunk)`` pairs of this case.

    Returns:
        The cached pair, or None.
    """
    from synsample.io import read_cached

    def accept(entry: dict[str, Any]) -> tuple[int, int] | None:
        pair = (entry["chosen"]["tile"], entry["chosen"]["sample_chunk"])
        ok = entry["key"] == k and pair in pairs and all(type(v) is int for v in pair)
        return pair if ok else None

    return read_cached(cache_path(k), accept, "tuning")


def _rate(seconds_per_call: Callable[[int, int], float], tile: int, chunk: int) -> float:
    """Seconds per item-pass of one pair: one untimed call, then
    [`REPEATS`][synsample.tuning.REPEATS] timed ones
    (one after a long call), the fastest."""
    repeats = REPEATS if seconds_per_call(tile, chunk) <= LONG_CALL else 1
    return min(seconds_per_call(tile, chunk) for _ in range(repeats)) / (tile * chunk)


def measure(k: dict[str, Any], pairs: list[tuple[int, int]],
            seconds_per_call: Callable[[int, int], float]) -> tuple[int, int]:
    """Time the candidate ``pairs`` (``seconds_per_call(tile, chunk)``: one call of that many
    items and samples; the first pair is the default), write the fastest per item-pass to the
    cache and return it.

    A pair whose calls are predicted (from the slowest rate seen) to end after
    [`BUDGET_SECONDS`][synsample.tuning.BUDGET_SECONDS] is skipped; the first pair is always timed.
    The fastest pair, if not the default, is timed again with the default, twice in turn, and kept
    only if it is still [`MARGIN`][synsample.tuning.MARGIN] faster.

    Args:
        k: the case's [`key`][synsample.tuning.key] (names the cache file).
        pairs: the candidates, the default first.
        seconds_per_call: times one call of ``(tile, chunk)``.

    Returns:
        The chosen ``(tile, chunk)``.
    """
    from synsample.io import write_json

    start = time.perf_counter()
    rates: dict[tuple[int, int], float] = {}
    for tile, chunk in pairs:
        spent = time.perf_counter() - start
        if rates and spent + (1 + REPEATS) * max(rates.values()) * tile * chunk > BUDGET_SECONDS:
            continue
        rates[tile, chunk] = _rate(seconds_per_call, tile, chunk)
    default = pairs[0]
    fastest = min(rates, key=rates.__getitem__)
    again = {}
    if fastest != default:
        for _ in range(2):
            for pair in (fastest, default):
                again[pair] = min(again.get(pair, float("inf")),
                                  _rate(seconds_per_call, *pair))
        if again[fastest] > (1 - MARGIN) * again[default]:
            fastest = default
    write_json(cache_path(k), {
        "key": k, "chosen": {"tile": fastest[0], "sample_chunk": fastest[1]},
        "timings": [{"tile": t, "sample_chunk": c, "us_per_pass": r * 1e6}
                    for (t, c), r in rates.items()],
        "timed_again": [{"tile": t, "sample_chunk": c, "us_per_pass": r * 1e6}
                        for (t, c), r in again.items()],
        "seconds": round(time.perf_counter() - start, 3),
        "written": time.strftime("%Y-%m-%d %H:%M:%S")})
    return fastest
