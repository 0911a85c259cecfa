"""The sampling engine: K passes of any
[`StochasticModel`][synsample.nn.stochastic.StochasticModel], streamed into a Prediction.

Items are processed in blocks (the model's deterministic prefix once per block), samples in
chunks (one call of the model per chunk); only per-item statistics are kept, so memory does not
grow with K. Sample ``k`` draws from a generator keyed by ``(seed, k)``; in shared mode the votes
are therefore identical whatever ``batch_size`` and ``sample_chunk`` are.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from synsample import checks, tuning
from synsample.adaptive import AdaptiveStop, looks
from synsample.errors import ConfigError
from synsample.nn.sampling import SampledLayer, SamplingContext, check_mode
from synsample.nn.stochastic import StochasticModel
from synsample.prediction import Prediction
from synsample.randomness import seed_from

#: sample counts at which votes are recorded by default, for accuracy-versus-K curves
DEFAULT_CHECKPOINTS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


def as_inputs(inputs) -> torch.Tensor:
    """The inputs a user has, as one tensor ``[N, ...]``.

    Args:
        inputs (Tensor | ndarray | Dataset | DataLoader): a tensor; a numpy array; synsample's
            ``Dataset`` (its ``images``); any map-style ``torch.utils.data.Dataset`` whose items
            are ``x`` or ``(x, y, ...)``; or a ``DataLoader`` over one (its batches are
            concatenated).

    Returns:
        The inputs as one tensor.

    Raises:
        ConfigError: for another kind of input, no items, or NaN or inf values.
    """
    x = getattr(inputs, "images", inputs)
    if isinstance(x, torch.Tensor):
        pass
    elif type(x).__module__ == "numpy" and hasattr(x, "dtype"):
        x = torch.as_tensor(x)
    elif isinstance(x, torch.utils.data.DataLoader):
        _check_loader(x)
        x = torch.cat([_first(batch) for batch in x]) if len(x) else torch.empty(0)
    elif isinstance(x, torch.utils.data.Dataset) and hasattr(x, "__len__"):
        x = torch.stack([torch.as_tensor(_first(x[i])) for i in range(len(x))]) if len(x) \
            else torch.empty(0)
    else:
        raise ConfigError(f"predict takes a tensor, a numpy array, a Dataset of (x, y) items or a "
                          f"DataLoader, got {type(inputs).__name__}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ConfigError(f"predict needs a batch of at least one item, got shape {tuple(x.shape)}")
    bad = checks.nonfinite(x)
    if bad:
        raise ConfigError(f"the inputs hold {bad} NaN or infinite value(s); clean them first")
    return x


def _check_loader(loader: torch.utils.data.DataLoader) -> None:
    """Refuse a ``DataLoader`` that would not give every item of its dataset once, in the
    dataset's order: predictions are returned in the order read, and a caller matches them to
    the dataset's labels by position."""
    from torch.utils.data import BatchSampler, IterableDataset, SequentialSampler

    if isinstance(loader.dataset, IterableDataset):
        return  # no sampler: the dataset's own order, every item once
    fix = "give DataLoader(dataset, batch_size=...) without shuffle or sampler, or the dataset"
    batches = loader.batch_sampler
    sampler = batches.sampler if batches is not None else loader.sampler
    if (batches is not None and type(batches) is not BatchSampler) or \
            not isinstance(sampler, SequentialSampler):
        raise ConfigError("this DataLoader shuffles or samples its items, so its predictions "
                          f"would not follow the dataset's order; {fix}")
    if batches is not None and batches.drop_last and len(sampler) % batches.batch_size:
        raise ConfigError(f"this DataLoader drops the last {len(sampler) % batches.batch_size} "
                          f"item(s) (drop_last=True), which would get no prediction; {fix}")


def _as_model_dtype(model: StochasticModel, x: torch.Tensor) -> torch.Tensor:
    """Float inputs in the model's float dtype (float64 pixels into a float32 network work);
    a half or bfloat16 network refused in one line (its sums would round differently on
    every CPU, against the determinism promise)."""
    dtypes = {t.dtype for t in itertools.chain(model.parameters(), model.buffers())
              if t.is_floating_point()}
    low = sorted(str(d) for d in dtypes & {torch.float16, torch.bfloat16})
    if low:
        raise ConfigError(f"the network holds {', '.join(low)} parameters; synsample samples "
                          "float32 (or float64) networks: convert it with model.float() first")
    if x.is_floating_point() and len(dtypes) == 1 and x.dtype != next(iter(dtypes)):
        return x.to(next(iter(dtypes)))
    return x


def _explain_input_dtype(exc: RuntimeError, x: torch.Tensor) -> None:
    """Re-raise torch's dtype error on integer inputs as the one line that names the fix;
    any other error as it is."""
    if x.is_floating_point() or "type" not in str(exc):
        raise exc
    raise ConfigError(f"the model cannot compute on {x.dtype} inputs ("
                      f"{str(exc).splitlines()[0][:120]}); give them as it was trained on, "
                      "e.g. x.float() / 255 for pixels scaled to [0, 1]") from exc


def _first(item):
    """``x`` of an ``(x, y, ...)`` item or batch, or the item itself."""
    if isinstance(item, dict):
        raise ConfigError(f"the items are dicts (keys {', '.join(map(str, list(item)[:4]))}); "
                          "predict reads x or (x, y, ...) items: give the input tensor, or a "
                          "Dataset whose items are (input, label)")
    return item[0] if isinstance(item, tuple | list) else item


def _check_pixel_scale(model: StochasticModel, x: torch.Tensor) -> None:
    """Refuse float inputs in [0, 1] for a model that scales raw pixels by 1/255 itself
    ([`ScaleInput`][synsample.nn.scale.ScaleInput], or a sampled layer that took it over): they
    would be scaled twice and every answer would be near chance, silently."""
    from synsample.nn.scale import ScaleInput

    scales = any(isinstance(m, ScaleInput) or getattr(m, "input_scale", 1.0) != 1.0
                 for m in model.modules())
    if scales and x.is_floating_point() and x.numel() and float(x.abs().max()) <= 1.0:
        raise ConfigError("this model divides its input by 255 itself, and these inputs are "
                          "floats in [0, 1]: give the raw uint8 pixels (0..255), e.g. "
                          "(x * 255).round().to(torch.uint8)")


def _chunks(samples: int, chunk: int, checkpoints: Iterable[int]) -> list[tuple[int, int]]:
    """Sample chunks ``(first, n)`` of at most ``chunk`` samples, split at every checkpoint."""
    cuts = sorted({k for k in checkpoints if 0 < k < samples} | {samples})
    out, start = [], 0
    for cut in cuts:
        while start < cut:
            n = min(chunk, cut - start)
            out.append((start, n))
            start += n
    return out


#: samples per model call by default: shared mode batches a few draws per GEMM; independent
#: mode amortises the per-call cost over more samples (its memory is one layer output)
SAMPLE_CHUNK = {"shared": 8, "independent": 32}

#: memory the default item block may use for the prefix output and the first layer's output
BLOCK_BYTES = 1 << 29


@torch.no_grad()
def auto_batch_size(model: StochasticModel, x_all: torch.Tensor, mode: str,
                    device: torch.device) -> int:
    """Items per block: in shared mode as many as fit in
    [`BLOCK_BYTES`][synsample.engine.BLOCK_BYTES] (each sample's draws are then made once, not once
    per block); in independent mode 512.

    Args:
        model: the stochastic model (its prefix is run on one item to size a row).
        x_all: every input of the run.
        mode: ``'shared'`` or ``'independent'``.
        device: where the model runs.

    Returns:
        The block size (in shared mode at least 256, at most the items).
    """
    if mode == "independent":
        return 512
    h = model.prefix(x_all[:1].to(device))
    per_item = max(1, h.numel() * h.element_size()) + 4096 * 8  # + a first-layer output row
    return int(max(256, min(x_all.shape[0], BLOCK_BYTES // per_item)))


#: bins of the per-item histogram of per-pass max probabilities (width 1/100)
MAX_PROB_BINS = 100


@dataclass
class _Block:
    votes: torch.Tensor
    prob_sum: torch.Tensor
    entropy_sum: torch.Tensor
    max_prob_hist: torch.Tensor
    passes: torch.Tensor
    votes_at: dict[int, torch.Tensor]


def _sample_block(model: StochasticModel, h: torch.Tensor, chunks: list[tuple[int, int]],
                  checkpoints: list[int], base_seed: int, mode: str, block: int, offset: int,
                  tile: int,
                  adaptive: AdaptiveStop | None, rule_looks: int, bar,
                  probe: _DrawProbe | None = None, first_pass: int = 0) -> _Block:
    """All chunks of passes over one item block (prefix output ``h``, items ``offset ..``),
    tile by tile; chunk ``(first, n)`` is passes ``first_pass + first ..`` of the run."""
    b, dev = h.shape[0], h.device
    votes = prob_sum = None
    passes = torch.zeros(b, dtype=torch.int64, device=dev)
    entropy_sum = torch.zeros(b, dtype=torch.float64, device=dev)
    hist = torch.zeros(b, MAX_PROB_BINS, dtype=torch.int32, device=dev)
    votes_at: dict[int, torch.Tensor] = {}
    active = torch.arange(b, device=dev)
    for first, n in chunks:
        if len(active) == 0:
            break
        h_active = h if len(active) == b else h[active]
        ctx = SamplingContext.for_samples(base_seed, first_pass + first, n, b, mode, block,
                                          device=dev)
        for t0 in range(0, len(active), tile):
            rows = active[t0:t0 + tile]
            ctx.batch = len(rows)  # the draws are kept across tiles (same ctx.key)
            ctx.items = rows + offset
            logits = model.sample(h_active[t0:t0 + tile], ctx)  # [n, items, C]
            if probe is not None:
                probe = probe.check()
            if votes is None:
                c = logits.shape[-1]
                votes = torch.zeros(b, c, dtype=torch.int64, device=dev)
                prob_sum = torch.zeros(b, c, dtype=torch.float64, device=dev)
            elif logits.shape[-1] != c:
                raise ConfigError(f"the model's passes give outputs of different sizes ({c} and "
                                  f"{logits.shape[-1]} classes); every pass must answer the "
                                  "same task (an ensemble's members too)")
            counts = torch.zeros(len(rows), c, dtype=torch.int64, device=dev)
            counts.scatter_add_(1, logits.argmax(dim=-1).T,
                                torch.ones(len(rows), n, dtype=torch.int64, device=dev))
            votes.index_add_(0, rows, counts)
            probs = torch.softmax(logits.to(torch.float32), dim=-1)  # [n, items, C]
            prob_sum.index_add_(0, rows, probs.sum(0).to(torch.float64))
            logp = torch.log_softmax(logits.to(torch.float32), dim=-1)
            entropy_sum.index_add_(0, rows, -(probs * logp).sum(-1).sum(0).to(torch.float64)
                                   / math.log(2.0))
            bins = (probs.amax(-1) * MAX_PROB_BINS).long().clamp_(max=MAX_PROB_BINS - 1)
            tile_hist = torch.zeros(len(rows), MAX_PROB_BINS, dtype=torch.int32, device=dev)
            tile_hist.scatter_add_(1, bins.T, torch.ones_like(bins.T, dtype=torch.int32))
            hist.index_add_(0, rows, tile_hist)
        passes[active] += n
        if first + n in checkpoints:
            votes_at[first + n] = votes.cpu().clone()
        if bar is not None:
            bar.update(len(active) * n)
        if adaptive is not None and first + n >= adaptive.min_samples:
            active = active[~adaptive.settled(votes[active], rule_looks)]
    if bar is not None:  # passes skipped by adaptive stopping
        bar.update(b * chunks[-1][0] + b * chunks[-1][1] - int(passes.sum()))
    for k in checkpoints:  # items that all stopped before k keep their final votes
        votes_at.setdefault(k, votes.cpu().clone())
    return _Block(votes.cpu(), prob_sum.cpu(), entropy_sum.cpu(), hist.cpu(), passes.cpu(),
                  votes_at)


class _DrawProbe:
    """Checks, on the first sampled call of a run, that every layer the model reports as
    sampled was really called: a layer whose weight the network uses through a functional call
    (``nn.MultiheadAttention``'s ``out_proj`` goes through ``F.multi_head_attention_forward``)
    would otherwise be listed as sampled while every pass equals the plain forward."""

    def __init__(self, model: StochasticModel) -> None:
        self.called: set[str] = set()
        self.layers = {getattr(m, "layer_name", "") or name: m
                       for name, m in model.named_modules() if isinstance(m, SampledLayer)}
        self.hooks = [m.register_forward_pre_hook(lambda mod, args, name=name:
                                                  self.called.add(name))
                      for name, m in self.layers.items()]

    def check(self) -> None:
        """Remove the hooks; raise when a sampled layer was never called.

        Returns:
            ``None``: the probe is done (the caller drops it).

        Raises:
            ConfigError: naming the layers never called.
        """
        self.remove()
        missing = [name for name in self.layers if name not in self.called]
        if missing:
            raise ConfigError(
                f"{', '.join(missing[:4])} {'is' if len(missing) == 1 else 'are'} reported as "
                "sampled but never called in a forward pass (the network uses the weight "
                "through a functional call, e.g. nn.MultiheadAttention's out_proj): exclude "
                f"{'it' if len(missing) == 1 else 'them'} when converting")
        return None

    def remove(self) -> None:
        for hook in self.hooks:
            hook.remove()
        self.hooks = []


#: sampled weights per chunk up to which item tiles pay off (the draws stay in cache)
TILE_WEIGHTS = 1 << 22


def auto_tile(model: StochasticModel, sample_chunk: int) -> int:
    """Items per tile in shared mode when sizes are not tuned: 512 when a chunk's draws of every
    sampled layer are small enough to stay in cache across tiles (the outputs then do too),
    else no tiling (large weights, e.g. a conv net's dense head, need many rows per GEMM to
    amortise their reads).

    Args:
        model: the stochastic model.
        sample_chunk: samples per call.

    Returns:
        512, or ``2^30`` (no tiling).
    """
    largest = max((m.weight.numel() for m in model.modules()
                   if isinstance(m, SampledLayer) and isinstance(getattr(m, "weight", None),
                                                                  torch.Tensor)), default=0)
    return 512 if largest * sample_chunk <= TILE_WEIGHTS else 1 << 30


def run_sizes(model: StochasticModel, x_all: torch.Tensor, mode: str, device: torch.device,
              samples: int, sample_chunk: int | None = None, tile: int | None = None,
              adaptive: AdaptiveStop | None = None) -> tuple[int, int]:
    """The ``(sample_chunk, tile)`` of a run of ``samples`` passes over ``x_all``: as given, else
    tuned on this CPU (see `synsample.tuning`), else the defaults (`SAMPLE_CHUNK`;
    `auto_tile` in shared mode, no tiling in independent mode; at most the model's
    ``rows_per_call`` rows). An adaptive rule keeps the default chunk: it looks after every
    chunk, so the chunk is part of its result, which must not depend on the CPU.

    Args:
        model: the stochastic model.
        x_all: every input of the run.
        mode: ``'shared'`` or ``'independent'``.
        device: where the model runs.
        samples: passes of the run.
        sample_chunk: samples per call, or None to choose.
        tile: items per tile, or None to choose.
        adaptive: the run's adaptive-stopping rule, if any.

    Returns:
        ``(sample_chunk, tile)``.
    """
    if sample_chunk is None and adaptive is not None:
        sample_chunk = SAMPLE_CHUNK[mode]
    if (sample_chunk is None or tile is None) and tuning.applies(x_all.shape[0] * samples,
                                                                 device):
        tile, sample_chunk = _tuned(model, x_all, mode, device, sample_chunk, tile)
    if sample_chunk is None:
        sample_chunk = SAMPLE_CHUNK[mode]
    if tile is None:
        tile = _default_tile(model, mode, sample_chunk, x_all.shape[0])
    return sample_chunk, tile


def _default_tile(model: StochasticModel, mode: str, sample_chunk: int, n_items: int) -> int:
    """The untuned tile: `auto_tile` in shared mode; in independent mode, whose draws do
    not depend on the tile, no tiling; at most the model's ``rows_per_call`` rows."""
    tile = auto_tile(model, sample_chunk) if mode == "shared" else n_items
    if model.rows_per_call is not None:
        tile = min(tile, max(1, model.rows_per_call // sample_chunk))
    return tile


def _tuned(model: StochasticModel, x_all: torch.Tensor, mode: str, device: torch.device,
           sample_chunk: int | None, tile: int | None) -> tuple[int | None, int | None]:
    """``(tile, sample_chunk)`` from the tuning cache, else timed on the run's first items
    (repeated up to the largest candidate tile): one
    [`_sample_block`][synsample.engine._sample_block] call per timing. The timing's draws are
    neither counted on the devices nor kept by the layers. A model that
    fails on the inputs keeps the given sizes (the run itself then says why it fails)."""
    k = tuning.key(model, model.prefix(x_all[:1].to(device)), mode, sample_chunk, tile)
    items = max(tuning.TILES[mode])  # a given tile is timed on at most this many items
    chunk = sample_chunk or SAMPLE_CHUNK[mode]
    default = (min(tile or _default_tile(model, mode, chunk, items), items), chunk)
    pairs = tuning.candidates(mode, default, sample_chunk, tile and default[0],
                              model.rows_per_call)
    found = tuning.cached(k, pairs)
    if found is not None:
        return tile or found[0], found[1]
    x = x_all[:items]
    x = x.repeat(math.ceil(items / x.shape[0]), *[1] * (x.ndim - 1))[:items]
    h = model.prefix(x.to(device))

    def seconds_per_call(t: int, c: int) -> float:
        start = time.perf_counter()
        _sample_block(model, h[:t], [(0, c)], [], 0, mode, 0, 0, t, None, 0, None)
        return time.perf_counter() - start

    counts = [(d, d.snapshot()) for d in model.devices()]
    try:
        chosen_tile, chosen_chunk = tuning.measure(k, pairs, seconds_per_call)
        return tile or chosen_tile, chosen_chunk
    except (RuntimeError, ConfigError):
        return tile, sample_chunk
    finally:
        for d, draws in counts:
            d.restore(draws)
        for m in model.modules():
            if isinstance(m, SampledLayer):
                m.forget_draws()


@torch.no_grad()
def predict(model: StochasticModel, inputs, samples: int = 1000,
            generator: torch.Generator | None = None, seed: int | None = None,
            mode: str = "shared", batch_size: int | None = None, sample_chunk: int | None = None,
            tile: int | None = None, adaptive: AdaptiveStop | None = None,
            checkpoints: Iterable[int] = DEFAULT_CHECKPOINTS, device: str | None = None,
            progress: bool = False, desc: str = "sampling", first_pass: int = 0,
            item_offset: int = 0) -> Prediction:
    """Run ``samples`` sampled passes of ``model`` over ``inputs`` and return a Prediction.

    In both modes the votes do not depend on ``batch_size``, ``sample_chunk`` or ``tile``.
    ``Prediction.random_bits`` is what the hardware would draw: in shared mode one set of
    per-sample draws (later item blocks re-create the first block's without counting them, see
    `shared_draws`) plus any per-item draws, in
    independent mode every draw.

    Args:
        model: the stochastic model (put in eval mode).
        inputs (Tensor | ndarray | Dataset | DataLoader): the items ``[N, ...]``, as
            `as_inputs` takes them.
        samples: K, passes per item.
        generator: draws the run's base seed when ``seed`` is None.
        seed: the run's base seed (same seed, same votes).
        mode: ``shared`` (one draw per sample index for every item) or ``independent``
            (fresh draws per item, from a counter-based generator keyed by seed, sample, item
            and weight: see [`synsample.randomness`][synsample.randomness]).
        batch_size: items per block (the prefix runs once per block; default
            `auto_batch_size`).
        sample_chunk: samples per model call (default: tuned on this CPU, see
            `synsample.tuning`, else `SAMPLE_CHUNK`).
        tile: in shared mode each chunk's draws are made once per block and applied to tiles
            of this many items, so that the layer outputs stay in cache (default: tuned, else
            `auto_tile`, or no tiling in independent mode; at most the model's
            ``rows_per_call`` item-sample rows per call).
        adaptive: an [`AdaptiveStop`][synsample.adaptive.AdaptiveStop] rule; an item stops once its
            plurality is settled (``Prediction.passes`` holds the passes each item got). In
            shared mode a stopped item has exactly the votes of the first passes of the full
            run.
        checkpoints: sample counts at which the votes are recorded.
        device: run on this torch device (default: the model's).
        progress: show a progress bar.
        desc: the progress bar's label.
        first_pass: with ``item_offset``, this call is a shard of a larger run
            (`synsample.shards`): its passes are ``first_pass .. first_pass + samples -
            1`` of that run, so that every draw is the one the whole run makes
            (``checkpoints`` are then counts of the whole run; ``votes_at[k]`` holds the votes
            of this call's passes below ``k``).
        item_offset: the global index of this call's first item; a shard past the first
            items does not count the shared draws again.

    Returns:
        The per-item statistics of the run.

    Raises:
        ConfigError: for bad sizes or counts, inputs the model cannot take (named with the
            fix), a model with non-finite parameters, adaptive stopping in a pass shard, or a
            layer reported as sampled that is never called.
    """
    check_mode(mode)
    if not isinstance(samples, int) or samples < 1:
        raise ConfigError(f"samples must be a positive integer, got {samples!r}")
    if any(v is not None and v < 1 for v in (batch_size, sample_chunk, tile)):
        raise ConfigError("batch_size, sample_chunk and tile must be positive")
    x_all = _as_model_dtype(model, as_inputs(inputs))
    _check_pixel_scale(model, x_all)
    checks.item_passes(x_all.shape[0], samples)
    checks.finite_tensors(model.state_dict().items(), "the model's")
    if first_pass < 0 or item_offset < 0:
        raise ConfigError("first_pass and item_offset must be 0 or more")
    if first_pass and adaptive is not None:
        raise ConfigError("adaptive stopping looks at every pass from the first: shard its "
                          "runs by items, not by passes")
    base_seed = seed_from(generator, seed)
    if device is not None:
        dev = checks.device(device)
        model = model.to(dev)
    else:  # where the model is (a model without buffers, such as an NSM, by its parameters)
        dev = next(itertools.chain(model.buffers(), model.parameters()), x_all).device
    checkpoints = sorted({int(k) - first_pass for k in checkpoints
                          if 0 < int(k) - first_pass < samples})
    model.eval()
    sample_chunk, tile = run_sizes(model, x_all, mode, dev, samples, sample_chunk, tile, adaptive)
    chunks = _chunks(samples, sample_chunk, checkpoints)
    n_items = x_all.shape[0]
    if batch_size is None:
        try:
            batch_size = auto_batch_size(model, x_all, mode, dev)
        except RuntimeError as exc:
            _explain_input_dtype(exc, x_all)
    devices = model.devices()
    bits_before = sum(d.random_bits for d in devices)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_items * samples, desc=desc, unit="pass", unit_scale=True, leave=False)
    start_time = time.perf_counter()
    rule_looks = looks(samples, chunks, adaptive.min_samples) if adaptive else 0
    blocks: list[_Block] = []
    layers = [m for m in model.modules() if isinstance(m, SampledLayer)]
    for layer in layers:
        layer.forget_draws()
    probe = _DrawProbe(model)
    try:
        for block, start in enumerate(range(0, n_items, batch_size)):
            h = model.prefix(x_all[start:start + batch_size].to(dev))
            # a shard past the first items re-creates the shared draws as a later block does
            blocks.append(_sample_block(model, h, chunks, checkpoints, base_seed, mode,
                                        block + (item_offset > 0), start + item_offset, tile,
                                        adaptive, rule_looks, bar,
                                        probe if block == 0 else None, first_pass))
    except RuntimeError as exc:
        _explain_input_dtype(exc, x_all)
    finally:
        probe.remove()
        for layer in layers:
            layer.forget_draws()
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - start_time
    info = model.describe()
    per_item = torch.cat([b.passes for b in blocks])
    if adaptive is not None:
        info["adaptive"] = {"confidence": adaptive.confidence,
                            "min_samples": adaptive.min_samples, "looks": rule_looks,
                            "mean_passes": per_item.double().mean().item()}
    return Prediction(
        votes=torch.cat([b.votes for b in blocks]),
        mean_probs=(torch.cat([b.prob_sum for b in blocks]) / per_item[:, None]).to(
            torch.float32),
        expected_entropy=(torch.cat([b.entropy_sum for b in blocks]) / per_item).to(
            torch.float32),
        max_prob_hist=torch.cat([b.max_prob_hist for b in blocks]),
        passes=per_item if adaptive is not None else None, samples=samples,
        votes_at={k + first_pass: torch.cat([b.votes_at[k] for b in blocks])
                  for k in checkpoints},
        mode=mode,
        seed=base_seed, random_bits=sum(d.random_bits for d in devices) - bits_before,
        seconds=seconds, info=info)
