"""Sharded sampling: one large ``predict`` split over workers, the parts merged exactly.

A run of K passes over N items is cut into shards, by items (ranges of items, every pass) or
by passes (ranges of passes, every item); each shard is an ordinary
[`synsample.engine.predict`][synsample.engine.predict] told where it sits in the whole run
(``item_offset``, ``first_pass``), so it makes exactly the draws the whole run makes there: in
shared mode pass ``k`` draws from ``(seed, k)``, in independent mode every coin is keyed by ``(seed,
item, pass)`` (docs/determinism.md). `merge` then adds the parts up: vote counts (and the
votes at every checkpoint of the accuracy-versus-K curve, and the per-pass max-probability
histograms of the OoD rule) add, means are weighted by their passes, items are
concatenated. The merged [`Prediction`][synsample.prediction.Prediction] has the votes of the
one-process run bit for bit, and its means within fp32 rounding; every statistic computed from
it (calibration, selective prediction, OoD detection, the streaming ones too) is therefore
that of the one-process run. The random bits add up to the one-process count (a shard past
the first items does not count the shared draws again).

Shards run here one after the other (``runner="local"``, for tests and for merging runs made
elsewhere) or as Ray tasks (``runner="ray"``), each with CPUs / workers torch threads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from synsample import engine
from synsample.cluster import RunnerConfig, connect, import_ray, limit_threads, workers_and_threads
from synsample.errors import ConfigError
from synsample.prediction import Prediction
from synsample.randomness import seed_from

#: how a run is cut: ranges of items (every pass) or ranges of passes (every item)
BY = ("items", "passes")


@dataclass(frozen=True)
class Shard:
    """Items ``items[0] .. items[1] - 1`` and passes ``passes[0] .. passes[1] - 1`` of a run.

    Attributes:
        items: the half-open item range.
        passes: the half-open pass range.
    """

    items: tuple[int, int]
    passes: tuple[int, int]


def plan(n_items: int, samples: int, shards: int, by: str = "items") -> list[Shard]:
    """``shards`` near-equal shards of a run of ``samples`` passes over ``n_items`` items,
    cut ``by`` items or passes (fewer when there are fewer items or passes than shards).

    Args:
        n_items: items of the run.
        samples: passes of the run.
        shards: shards wanted, at least 1.
        by: ``items`` or ``passes``.

    Returns:
        The shards, in order.

    Raises:
        ConfigError: for another ``by`` or fewer than 1 shard.
    """
    if by not in BY:
        raise ConfigError(f"shards are cut by {' or '.join(BY)}, not {by!r}")
    if shards < 1:
        raise ConfigError(f"the number of shards must be at least 1, got {shards}")
    total = n_items if by == "items" else samples
    shards = min(shards, total)
    cuts = [round(i * total / shards) for i in range(shards + 1)]
    ranges = [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]
    if by == "items":
        return [Shard(r, (0, samples)) for r in ranges]
    return [Shard((0, n_items), r) for r in ranges]


def predict_shard(model, inputs, shard: Shard, checkpoints=engine.DEFAULT_CHECKPOINTS,
                  **predict_kw: Any) -> Prediction:
    """One shard of a run: [`synsample.engine.predict`][synsample.engine.predict] on its items and
    passes, keyed as in the whole run.

    Args:
        model (StochasticModel): the stochastic model.
        inputs (Tensor | ndarray | Dataset | DataLoader): all the run's items (the shard takes
            its own).
        shard: the shard's items and passes.
        checkpoints (Iterable[int]): sample counts of the whole run at which votes are
            recorded.
        **predict_kw: the rest of [`synsample.engine.predict`][synsample.engine.predict]'s
            arguments.

    Returns:
        The shard's Prediction; its ``info["shard"]`` says what it holds.
    """
    x = engine.as_inputs(inputs)
    (i0, i1), (p0, p1) = shard.items, shard.passes
    checkpoints = sorted({int(k) for k in checkpoints})
    pred = engine.predict(model, x[i0:i1], samples=p1 - p0, first_pass=p0, item_offset=i0,
                          checkpoints=checkpoints, **predict_kw)
    pred.info = {**pred.info, "shard": {"items": [i0, i1], "passes": [p0, p1],
                                        "checkpoints": checkpoints}}
    return pred


def merge(parts: list[Prediction]) -> Prediction:
    """The Prediction of the whole run from its shards' (made by
    [`predict_shard`][synsample.shards.predict_shard], in any order): they must cover every item and
    pass once, with one seed and mode.

    Args:
        parts: the shards' predictions.

    Returns:
        The whole run's Prediction.

    Raises:
        ConfigError: for no parts, parts not made by
            [`predict_shard`][synsample.shards.predict_shard], different seeds, modes or class
            counts, or ranges that do not cover the run once.
    """
    if not parts:
        raise ConfigError("merge needs at least one shard's prediction")
    if any("shard" not in p.info for p in parts):
        raise ConfigError("merge takes predictions made by synsample.shards (they say which "
                          "items and passes they hold)")
    if len({(p.seed, p.mode, p.num_classes) for p in parts}) > 1:
        raise ConfigError("the shards were sampled with different seeds, modes or class counts")
    groups: dict[tuple[int, int], list[Prediction]] = {}
    for p in parts:
        groups.setdefault(tuple(p.info["shard"]["items"]), []).append(p)
    items = sorted(groups)
    if items[0][0] != 0 or any(a[1] != b[0] for a, b in zip(items, items[1:], strict=False)):
        raise ConfigError(f"the shards' items {items} do not cover the run once, from item 0")
    merged = [_merge_passes(groups[r]) for r in items]
    if len({m.samples for m in merged}) > 1:
        raise ConfigError("the shards of different items hold different numbers of passes")
    return _concat_items(merged)


def _merge_passes(parts: list[Prediction]) -> Prediction:
    """The shards of one item range, cut by passes, as one."""
    parts = sorted(parts, key=lambda p: p.info["shard"]["passes"][0])
    ranges = [tuple(p.info["shard"]["passes"]) for p in parts]
    if ranges[0][0] != 0 or any(a[1] != b[0] for a, b in zip(ranges, ranges[1:], strict=False)):
        raise ConfigError(f"the shards' passes {ranges} do not cover the run once, from pass 0")
    if len(parts) > 1 and any(p.passes is not None for p in parts):
        raise ConfigError("adaptive runs are sharded by items, not by passes")
    first = parts[0]
    total = ranges[-1][1]
    weights = [torch.tensor(float(b - a), dtype=torch.float64) for a, b in ranges]

    def weighted(name: str) -> torch.Tensor | None:
        values = [getattr(p, name) for p in parts]
        if any(v is None for v in values):
            return None
        acc = sum(v.to(torch.float64) * w for v, w in zip(values, weights, strict=True))
        return (acc / total).to(torch.float32)

    checkpoints = [k for k in first.info["shard"]["checkpoints"] if 0 < k < total]
    votes_at = {}
    for k in checkpoints:
        acc = torch.zeros_like(first.votes)
        for p, (a, b) in zip(parts, ranges, strict=True):
            if b <= k:
                acc += p.votes
            elif a < k:
                acc += p.votes_at[k]
        votes_at[k] = acc
    hists = [p.max_prob_hist for p in parts]
    info = {**first.info, "shard": {**first.info["shard"], "passes": [0, total]}}
    return replace(first, votes=sum(p.votes for p in parts), mean_probs=weighted("mean_probs"),
                   expected_entropy=weighted("expected_entropy"),
                   max_prob_hist=None if any(h is None for h in hists) else sum(hists),
                   samples=total, votes_at=votes_at,
                   random_bits=sum(p.random_bits for p in parts),
                   seconds=sum(p.seconds for p in parts), info=info)


def _concat_items(parts: list[Prediction]) -> Prediction:
    """Predictions of consecutive item ranges, every pass each, as one."""
    first = parts[0]

    def cat(name: str) -> torch.Tensor | None:
        values = [getattr(p, name) for p in parts]
        return None if any(v is None for v in values) else torch.cat(values)

    info = {k: v for k, v in first.info.items() if k != "shard"}
    info["shards"] = sum(p.info.get("shards", 1) for p in parts)
    if first.passes is not None and "adaptive" in info:
        info["adaptive"] = {**info["adaptive"],
                            "mean_passes": cat("passes").double().mean().item()}
    return replace(first, votes=cat("votes"), mean_probs=cat("mean_probs"),
                   expected_entropy=cat("expected_entropy"), max_prob_hist=cat("max_prob_hist"),
                   passes=cat("passes"),
                   votes_at={k: torch.cat([p.votes_at[k] for p in parts])
                             for k in first.votes_at},
                   random_bits=sum(p.random_bits for p in parts),
                   seconds=sum(p.seconds for p in parts), info=info)


def _shard_task(model, x: torch.Tensor, shard: Shard, predict_kw: dict[str, Any],
                threads: int) -> Prediction:
    """One shard on a Ray worker, torch limited to the task's CPUs."""
    limit_threads(threads)
    return predict_shard(model, x, shard, **predict_kw)


def predict(model, inputs, samples: int = 1000, runner: RunnerConfig | None = None,
            shards: int | None = None, by: str = "items", **predict_kw: Any) -> Prediction:
    """[`synsample.engine.predict`][synsample.engine.predict], sharded: ``shards`` shards (default:
    one per worker) cut ``by`` items or passes, run by ``runner`` (None or local with one shard: the
    plain engine, in this process), merged with `merge`.

    Args:
        model (StochasticModel): the stochastic model.
        inputs (Tensor | ndarray | Dataset | DataLoader): the items.
        samples: K, passes per item.
        runner: where the shards run (None: locally).
        shards: the number of shards (default: one per Ray worker; locally none, the plain
            engine).
        by: ``items`` or ``passes``.
        **predict_kw: [`synsample.engine.predict`][synsample.engine.predict]'s other arguments
            (``progress`` is off on Ray workers; every shard gets one base seed).

    Returns:
        The whole run's Prediction.

    Raises:
        ConfigError: for a bad runner or plan, or Ray missing or unreachable.
    """
    runner = runner or RunnerConfig()
    runner.check()
    if runner.name == "local" and not shards:
        return engine.predict(model, inputs, samples=samples, **predict_kw)
    x = engine.as_inputs(inputs)
    # one base seed for every shard (each would otherwise draw its own from the generator)
    predict_kw["seed"] = seed_from(predict_kw.pop("generator", None), predict_kw.get("seed"))
    if runner.name == "local":
        pieces = [predict_shard(model, x, s, **predict_kw)
                  for s in plan(x.shape[0], samples, shards, by)]
        return merge(pieces)
    ray = import_ray()
    connect(runner.address)
    workers, threads = workers_and_threads(runner.workers)
    cuts = plan(x.shape[0], samples, shards or workers, by)
    remote = ray.remote(_shard_task)
    model_ref, x_ref = ray.put(model), ray.put(x)
    kw = {**predict_kw, "progress": False}
    refs = [remote.options(num_cpus=threads, max_retries=runner.retries,
                           retry_exceptions=True).remote(model_ref, x_ref, s, kw, threads)
            for s in cuts]
    try:
        pieces = ray.get(refs)
    except KeyboardInterrupt:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, Exception):
            raise cause from None
        raise
    return merge(pieces)
