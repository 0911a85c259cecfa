"""Sampling benchmarks: synsample's sampling modes against the fp32 ceiling and a naive loop.

Every row is timed in this process, on the same inputs, several repetitions, median; the
result is a ratio to the ceiling measured in the same run (machines are noisy, so no absolute
number is a goal). Rows too slow to run in full are timed on fewer items or samples and scaled
linearly; the table says so. Run ``synsample bench`` (or ``make bench``).

- ceiling: K plain forward passes of the same layers with one fixed fp32 weight;
- naive: per pass, ``torch.bernoulli`` of the positive and negative parts, then the matmuls;
- shared / independent: [`synsample.engine.predict`][synsample.engine.predict] in each mode
  (independent: the compiled counter-based kernel, and its pure-PyTorch twin on a few items).

A third case times a Neural Sampling Machine (paper 002, 784-300-300-300-10 with blank-out
synapses) against K plain passes of the same layers with sign units and fixed weights.

The result names the machine (CPU model, ISA flags, the compiled kernel variants it runs) and,
per sampled row, the tile and sample chunk the engine used and the path each op took (int8 GEMM,
u8s8 kernel or fp32; kernel variant or twin): tuned and measured on this CPU before the row is
timed (`synsample.tuning`, [`synsample.paths`][synsample.paths]), so that no timing includes the
measurement.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from synsample import devices, engine, kernels, machine, paths, tuning
from synsample.adaptive import AdaptiveStop
from synsample.methods import scann
from synsample.nn.scale import ScaleInput


@dataclass
class Case:
    """One benchmark case: a network whose dense layers scANN samples, and its inputs.

    Attributes:
        name: the case's name in the table.
        net: the sampled layers with the deterministic prefix.
        inputs: what the network takes (uint8 images, or prefix features).
        samples: K, passes per item.
    """

    name: str
    net: nn.Sequential          # the sampled layers with the deterministic prefix
    inputs: torch.Tensor        # what the network takes (uint8 images, or prefix features)
    samples: int


def mnist_inputs(items: int) -> tuple[torch.Tensor, str]:
    """Real MNIST test images when cached, else synthetic uint8 images of the same shape.

    Args:
        items: how many images.

    Returns:
        ``(images, what they are)``.
    """
    from synsample import data
    from synsample.errors import DataError

    try:
        return data.load("mnist", "test", fetch=False).images[:items], "MNIST test set"
    except DataError:
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (items, 1, 28, 28), dtype=torch.uint8, generator=g)
        x[torch.rand(x.shape, generator=g) < 0.8] = 0  # MNIST-like sparsity
        return x, "synthetic uint8 images (MNIST not cached)"


def _random_dense(sizes: list[int], seed: int) -> list[nn.Linear]:
    g = torch.Generator().manual_seed(seed)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        lin = nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.copy_((torch.rand(b, a, generator=g) * 2 - 1) ** 3)  # many small weights
            lin.bias.copy_(torch.randn(b, generator=g) * 0.1)
        layers.append(lin)
    return layers


def mlp_case(items: int, samples: int) -> tuple[Case, str]:
    """The MLP 784-400-10 case on MNIST-shaped inputs, with random weights.

    Args:
        items: items of the case.
        samples: K.

    Returns:
        ``(case, what the inputs are)``.
    """
    x, source = mnist_inputs(items)
    l1, l2 = _random_dense([784, 400, 10], 0)
    net = nn.Sequential(ScaleInput(), nn.Flatten(), l1, nn.ReLU(), l2)
    return Case("MLP 784-400-10", net, x, samples), source


def conv_head_case(items: int, samples: int) -> Case:
    """The dense head 21632-100-10 of paper 000's conv net, on random non-negative features.

    Args:
        items: items of the case.
        samples: K.

    Returns:
        The case.
    """
    g = torch.Generator().manual_seed(1)
    feats = torch.relu(torch.randn(items, 21632, generator=g))  # the conv prefix's output
    l1, l2 = _random_dense([21632, 100, 10], 2)
    return Case("conv head 21632-100-10", nn.Sequential(l1, nn.ReLU(), l2), feats, samples)


def _dense(net: nn.Sequential) -> list[nn.Linear]:
    return [m for m in net if isinstance(m, nn.Linear)]


def _plain_forward(net: nn.Sequential, x: torch.Tensor,
                   weights: Callable[[int, nn.Linear], torch.Tensor], samples: int
                   ) -> torch.Tensor:
    """``samples`` passes of ``net`` where dense layer ``i`` uses ``weights(i, layer)``."""
    votes = torch.zeros(x.shape[0], _dense(net)[-1].out_features, dtype=torch.int64)
    head = [m for m in net if not isinstance(m, nn.Linear | nn.ReLU)]
    h0 = nn.Sequential(*head)(x) if head else x
    for _ in range(samples):
        h, i = h0, 0
        for m in net:
            if isinstance(m, nn.Linear):
                h = torch.addmm(m.bias, h, weights(i, m).T)
                i += 1
            elif isinstance(m, nn.ReLU):
                h = torch.relu_(h)
        votes[torch.arange(len(h)), h.argmax(1)] += 1
    return votes


def ceiling(case: Case) -> torch.Tensor:
    """K plain forward passes of the case's layers with their fixed fp32 weights.

    Args:
        case: the case.

    Returns:
        ``[N, classes]`` vote counts.
    """
    return _plain_forward(case.net, case.inputs, lambda i, m: m.weight, case.samples)


def naive(case: Case) -> torch.Tensor:
    """K passes, each drawing every dense weight with ``torch.bernoulli`` of its positive and
    negative parts (paper 000, eq. 3, the obvious way).

    Args:
        case: the case.

    Returns:
        ``[N, classes]`` vote counts.
    """
    def draw(i: int, m: nn.Linear) -> torch.Tensor:
        return torch.bernoulli(m.weight.clamp(min=0)) - torch.bernoulli((-m.weight).clamp(min=0))

    return _plain_forward(case.net, case.inputs, draw, case.samples)


def _rss_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:  # Linux: writing 5 resets the peak resident set size (VmHWM)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _timed(fn: Callable[[], Any], repeats: int
           ) -> tuple[float, float | None, dict[str, str]]:
    """Median seconds over ``repeats`` calls, the peak memory growth of one call (MiB), and the
    paths the sampled layers took (op -> its candidates, "a/b" where layers took different
    ones, see [`synsample.paths`][synsample.paths])."""
    times = []
    peak = None
    paths.taken.clear()
    for i in range(repeats):
        if i == 0:
            base = _rss_kib("VmRSS") if _reset_peak() else None
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if i == 0 and base is not None:
            hwm = _rss_kib("VmHWM")
            peak = None if hwm is None else max(0, hwm - base) / 1024
    return statistics.median(times), peak, {op: "/".join(names)
                                            for op, names in paths.taken.items()}


def _sizes(sto, x: torch.Tensor, samples: int, mode: str = "shared",
           adaptive: AdaptiveStop | None = None) -> dict[str, int]:
    """The sizes the engine will use for this run (tuned now, if tuning applies)."""
    chunk, tile = engine.run_sizes(sto, x, mode, torch.device("cpu"), samples,
                                   adaptive=adaptive)
    return {"tile": min(tile, x.shape[0]), "sample_chunk": chunk}


def _sub(case: Case, items: int, samples: int) -> Case:
    return Case(case.name, case.net, case.inputs[:items], samples)


def _force(model: nn.Module, op: str, name: str | None) -> nn.Module:
    """``model`` with ``op`` forced to path ``name`` in every sampled layer (None: measured)."""
    for layer in model.sampled_layers():
        layer.paths = {} if name is None else {op: name}
    return model


def exact_fast_path(case: Case, items: int = 256, samples: int = 16) -> bool:
    """Whether every exact shared-mode path of the first layer (int8 GEMM, each u8s8 kernel)
    gives the same votes and probabilities as the fp32 path (same coins), on a subset.

    Args:
        case: the case.
        items: items of the subset.
        samples: passes of the subset.

    Returns:
        Whether votes and mean probabilities are equal for every path.
    """
    sto = scann.convert(case.net, coin=devices.QuantizedCoin(8))
    x = case.inputs[:items]
    ref = engine.predict(_force(sto, "gemm", "fp32"), x, samples=samples, seed=11)
    names = sto.sampled_layers()[0]._gemm_paths(sto.prefix(x), samples * 400)[1:]
    same = True
    for name in names:
        fast = engine.predict(_force(sto, "gemm", name), x, samples=samples, seed=11)
        same &= bool(torch.equal(fast.votes, ref.votes)
                     and torch.equal(fast.mean_probs, ref.mean_probs))
    return same


def _twin(model: nn.Module) -> nn.Module:
    """``model`` with its sampled layers on the pure-PyTorch independent-mode path."""
    return _force(model, "coinflip", "twin")


def exact_independent(case: Case, items: int = 32, samples: int = 8) -> bool | None:
    """Whether the compiled independent-mode kernel gives the same votes and probabilities as
    its pure-PyTorch twin (same counter-based coins) on a subset; None without a kernel.

    Args:
        case: the case.
        items: items of the subset.
        samples: passes of the subset.

    Returns:
        Whether votes and mean probabilities are equal, or None.
    """
    if not kernels.available():
        return None
    sto = scann.convert(case.net, coin=devices.IdealCoin())
    x = case.inputs[:items]
    fast = engine.predict(sto, x, samples=samples, seed=13, mode="independent")
    ref = engine.predict(_twin(sto), x, samples=samples, seed=13, mode="independent")
    return bool(torch.equal(fast.votes, ref.votes) and torch.equal(fast.mean_probs,
                                                                     ref.mean_probs))


def run_case(case: Case, repeats: int, independent_items: int, independent_samples: int,
             log: Callable[[str], None], twin_items: int = 32, twin_samples: int = 2
             ) -> list[dict[str, Any]]:
    """Time every row of one case; return the rows (seconds scaled to the full case).

    Args:
        case: the case.
        repeats: timed repetitions per row (the median is kept).
        independent_items: items of the independent-mode row.
        independent_samples: passes of the independent-mode row.
        log: called with a line per row.
        twin_items: items of the pure-PyTorch twin's row.
        twin_samples: passes of the pure-PyTorch twin's row.

    Returns:
        The rows: ceiling, naive, shared, adaptive, independent and its twin.
    """
    full = case.inputs.shape[0] * case.samples
    rows = []

    def add(name: str, fn: Callable[[], Any], sub: Case, note: str = "", reps: int = repeats,
            sizes: dict[str, int] | None = None):
        log(f"  {case.name}: {name} ({sub.inputs.shape[0]} items x {sub.samples} passes)")
        seconds, peak, used = _timed(fn, reps)
        scale = full / (sub.inputs.shape[0] * sub.samples)
        rows.append({"case": case.name, "row": name, "seconds": seconds * scale,
                     "measured_items": sub.inputs.shape[0], "measured_samples": sub.samples,
                     "extrapolated": scale != 1, "peak_mib": peak, "note": note,
                     "sizes": sizes, "paths": used})

    sto = scann.convert(case.net, coin=devices.IdealCoin())
    add("ceiling (fp32, fixed weights)", lambda: ceiling(case), case)
    add("naive loop (torch.bernoulli)", lambda: naive(case), case)
    add("synsample shared", lambda: engine.predict(sto, case.inputs, samples=case.samples,
                                                   seed=0), case,
        sizes=_sizes(sto, case.inputs, case.samples))
    rule = AdaptiveStop()
    shared_full: dict[str, Any] = {}

    def adaptive_run():
        pred = engine.predict(sto, case.inputs, samples=case.samples, seed=0, adaptive=rule)
        shared_full["adaptive"] = pred
        return pred

    add(f"synsample adaptive (conf {rule.confidence}, min {rule.min_samples})", adaptive_run,
        case, sizes=_sizes(sto, case.inputs, case.samples, adaptive=rule))
    ind = _sub(case, independent_items, independent_samples)
    compiled = kernels.available()
    add("synsample independent", lambda: engine.predict(
        sto, ind.inputs, samples=ind.samples, seed=0, mode="independent"), ind,
        note="" if compiled else "no compiled kernels: pure-PyTorch twin",
        sizes=_sizes(sto, ind.inputs, ind.samples, "independent"))
    twin = _sub(case, min(twin_items, independent_items), min(twin_samples, independent_samples))
    twin_model = _twin(scann.convert(case.net, coin=devices.IdealCoin()))
    add("independent, pure-PyTorch twin", lambda: engine.predict(
        twin_model, twin.inputs, samples=twin.samples, seed=0, mode="independent"), twin,
        note="the fallback where no C compiler works", reps=1)
    base = rows[0]["seconds"]
    for r in rows:
        r["ratio_to_ceiling"] = r["seconds"] / base
    rows[2]["exact"] = exact_fast_path(case)
    rows[4]["exact"] = exact_independent(case)
    rows[2]["speedup_over_naive"] = rows[1]["seconds"] / rows[2]["seconds"]
    full = engine.predict(sto, case.inputs, samples=case.samples, seed=0)
    ad = shared_full["adaptive"]
    rows[3]["mean_passes"] = ad.passes.double().mean().item()
    rows[3]["first_choice_agreement"] = (ad.first_choice() == full.first_choice()).double(
    ).mean().item()
    rows[3]["note"] = (f"{rows[3]['mean_passes']:.0f} passes per item on average; first choice "
                       f"agrees with the full run on {100 * rows[3]['first_choice_agreement']:.2f}%"
                       " of items")
    return rows


def sampled_rows(name: str, sto, ceiling: Callable[[torch.Tensor, int], Any],
                 ceiling_row: str, notes: tuple[str, str], items: int, samples: int,
                 repeats: int, independent_items: int, independent_samples: int,
                 log: Callable[[str], None]) -> list[dict[str, Any]]:
    """A method's case: its ceiling (K plain passes of the same layers), then shared and
    independent sampling through the engine; slower rows are timed on fewer items and scaled.

    Args:
        name: the case's name.
        sto (StochasticModel): the method's stochastic model.
        ceiling: times ``ceiling(inputs, K)``, K plain passes.
        ceiling_row: the ceiling row's name.
        notes: the notes of the shared and independent rows.
        items: items of the case.
        samples: K.
        repeats: timed repetitions per row (the median is kept).
        independent_items: items of the independent-mode row.
        independent_samples: passes of the independent-mode row.
        log: called with a line per row.

    Returns:
        The three rows.
    """
    x, _ = mnist_inputs(items)
    rows = []
    full = items * samples
    for row, fn, n_items, k, note in (
            (ceiling_row, ceiling, items, samples, ""),
            ("synsample shared", None, items, samples, notes[0]),
            ("synsample independent", None, independent_items, independent_samples, notes[1])):
        mode = "independent" if "independent" in row else "shared"
        sizes = None if fn is not None else _sizes(sto, x[:n_items], k, mode)
        log(f"  {name}: {row} ({n_items} items x {k} passes)")
        run_fn = (lambda fn=fn, n=n_items, k=k: fn(x[:n], k)) if fn is not None else (
            lambda n=n_items, k=k, mode=mode: engine.predict(sto, x[:n], samples=k, seed=0,
                                                             mode=mode))
        seconds, peak, used = _timed(run_fn, repeats)
        scale = full / (n_items * k)
        rows.append({"case": name, "row": row, "seconds": seconds * scale,
                     "measured_items": n_items, "measured_samples": k,
                     "extrapolated": scale != 1, "peak_mib": peak, "note": note,
                     "sizes": sizes, "paths": used})
    for r in rows:
        r["ratio_to_ceiling"] = r["seconds"] / rows[0]["seconds"]
    return rows


def _votes(out: torch.Tensor, votes: torch.Tensor) -> None:
    votes[torch.arange(len(out)), out.argmax(1)] += 1


def nsm_rows(items: int, samples: int, repeats: int, independent_items: int,
             independent_samples: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """The NSM case: ceiling, shared and independent sampling (one noise draw per synapse).

    Args:
        items: items of the case.
        samples: K.
        repeats: timed repetitions per row (the median is kept).
        independent_items: items of the independent-mode row.
        independent_samples: passes of the independent-mode row.
        log: called with a line per row.

    Returns:
        The three rows.
    """
    from synsample import methods, models
    from synsample.nn.nsm import NSMLinear, sgn

    net = models.build("nsm-mlp", seed=0)
    layers = [m for m in net if isinstance(m, NSMLinear | nn.Linear)]

    @torch.no_grad()
    def ceiling(xs: torch.Tensor, k: int) -> torch.Tensor:
        h0 = net[1](net[0](xs))
        votes = torch.zeros(len(xs), 10, dtype=torch.int64)
        for _ in range(k):
            h = h0
            for m in layers[:-1]:
                h = sgn(torch.addmm(m.bias, h, m.weight.T))
            _votes(torch.addmm(layers[-1].bias, h, layers[-1].weight.T), votes)
        return votes

    return sampled_rows(
        "NSM 784-300-300-300-10", methods.nsm.convert(net), ceiling,
        "ceiling (fp32, fixed weights, sign units)",
        ("one blank-out mask per synapse and pass",
         "" if kernels.available() else "no compiled kernels: pure-PyTorch twin"),
        items, samples, repeats, independent_items, independent_samples, log)


def sc_rows(items: int, samples: int, repeats: int, independent_items: int,
            independent_samples: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """The stochastic-computing case (784-128-10, 5 states, 100-bit streams): the ceiling is
    K passes of the exact quantized network; sampling draws every neuron's counter.

    Args:
        items: items of the case.
        samples: K.
        repeats: timed repetitions per row (the median is kept).
        independent_items: items of the independent-mode row.
        independent_samples: passes of the independent-mode row.
        log: called with a line per row.

    Returns:
        The three rows.
    """
    from synsample import methods, models
    from synsample.nn.sc_linear import SCLinear
    from synsample.nn.stochastic_computing import quantize

    net = models.build("sc-mlp", seed=0)
    weights = [quantize(m.weight.detach(), m.states) for m in net if isinstance(m, SCLinear)]

    @torch.no_grad()
    def ceiling(xs: torch.Tensor, k: int) -> torch.Tensor:
        h0 = quantize(net[1](net[0](xs)), 5)
        votes = torch.zeros(len(xs), 10, dtype=torch.int64)
        for _ in range(k):
            h = quantize(torch.sigmoid(h0 @ weights[0].T), 5)
            _votes(h @ weights[1].T, votes)
        return votes

    return sampled_rows(
        "SC 784-128-10, L = 100", methods.sc.convert(net, length=100), ceiling,
        "ceiling (fp32, quantized network, no SC)",
        ("weight streams once per pass, input streams per item",
         "every stream per item and pass"),
        items, samples, repeats, independent_items, independent_samples, log)


class _OwnForward(nn.Module):
    """The layers of [`_conv_layers`][synsample.benchmarks._conv_layers] called by a ``forward`` of
    its own, as a researcher
    writes a network (functional ReLU and pooling, no ``nn.Sequential``)."""

    def __init__(self, seq: nn.Sequential) -> None:
        super().__init__()
        self.scale, self.conv1, self.bn1, self.conv2, self.bn2 = (seq[i] for i in (0, 1, 2, 5, 6))
        self.fc1, self.fc2 = seq[10], seq[12]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(self.scale(x)))), 2)
        x = nn.functional.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def _conv_layers() -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(ScaleInput(), nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1),
                         nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(1568, 256), nn.ReLU(), nn.Linear(256, 10)).eval()


def prefix_rows(items: int, samples: int, repeats: int, log: Callable[[str], None]
                ) -> list[dict[str, Any]]:
    """A CNN with its own ``forward`` against the same layers as ``nn.Sequential``, its dense
    head sampled by scANN in shared mode: the traced split must find the conv prefix and
    compute it once per item block (goal: at most 1.1x the Sequential network's time).

    Args:
        items: items of the case.
        samples: K.
        repeats: timed repetitions per row.
        log: called with a line per row.

    Returns:
        The two rows, with whether their votes are equal.
    """
    x, _ = mnist_inputs(items)
    seq = _conv_layers()
    own = scann.convert(_OwnForward(seq), gain="row")
    reference = scann.convert(seq, gain="row")
    rows = []
    for row, sto in (("nn.Sequential, scANN shared", reference),
                     ("own forward (traced prefix), scANN shared", own)):
        log(f"  CNN with a sampled head: {row} ({items} items x {samples} passes)")
        sizes = _sizes(sto, x, samples, "shared")
        seconds, peak, used = _timed(
            lambda sto=sto: engine.predict(sto, x, samples=samples, seed=0), repeats)
        rows.append({"case": "CNN 2 conv + 1568-256-10", "row": row, "seconds": seconds,
                     "measured_items": items, "measured_samples": samples,
                     "extrapolated": False, "peak_mib": peak, "sizes": sizes, "paths": used,
                     "note": "ratio: the own forward's time over the Sequential network's"})
    same = torch.equal(engine.predict(reference, x[:64], samples=8, seed=1).votes,
                       engine.predict(own, x[:64], samples=8, seed=1).votes)
    for r in rows:
        r["ratio_to_ceiling"] = r["seconds"] / rows[0]["seconds"]
        r["exact"] = same
    return rows


def run(items: int = 10000, samples: int = 1000, conv_items: int = 2000, conv_samples: int = 200,
        repeats: int = 3, independent_items: int = 1000, independent_samples: int = 1000,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every case, every row; returns the JSON-able result.

    Args:
        items: items of the MLP, NSM and SC cases (the CNN case takes at most 2,000).
        samples: K of the MLP case (NSM and SC: at most 100; the CNN case: at most 200).
        conv_items: items of the conv-head case.
        conv_samples: K of the conv-head case.
        repeats: timed repetitions per row.
        independent_items: items of the MLP's independent-mode row (at most ``items``).
        independent_samples: passes of the MLP's independent-mode row (at most ``samples``).
        log: called with a line per case and row.

    Returns:
        ``rows``, ``inputs``, ``repeats``, ``machine``, ``versions`` and ``written``.
    """
    from synsample.checkpoint import versions

    independent_items = min(independent_items, items)
    independent_samples = min(independent_samples, samples)
    mlp, source = mlp_case(items, samples)
    rows = []
    conv = conv_head_case(conv_items, conv_samples)
    # the head's independent mode draws ~10^6 coins per pass: timed on fewer passes
    for case, ind in ((mlp, (independent_items, independent_samples)),
                      (conv, (min(conv_items, 200), min(conv_samples, 50)))):
        log(f"{case.name}: {case.inputs.shape[0]} items, K = {case.samples}")
        rows += run_case(case, repeats, *ind, log)
    nsm_samples = min(samples, 100)  # paper 002 samples 100 times
    log(f"NSM 784-300-300-300-10: {items} items, K = {nsm_samples}")
    rows += nsm_rows(items, nsm_samples, repeats, min(items, 200), nsm_samples, log)
    log(f"SC 784-128-10: {items} items, K = {nsm_samples}")
    rows += sc_rows(items, nsm_samples, repeats, items, nsm_samples, log)
    log(f"CNN with its own forward: {min(items, 2000)} items, K = {min(samples, 200)}")
    rows += prefix_rows(min(items, 2000), min(samples, 200), repeats, log)
    return {"rows": rows, "inputs": source, "repeats": repeats,
            "machine": {**machine.describe(), "kernel_variants": kernels.variants(),
                        "tuning": tuning.enabled()},
            "versions": versions(), "written": time.strftime("%Y-%m-%d %H:%M:%S")}


def machine_line(result: dict[str, Any]) -> str:
    """One line naming the machine of a result: CPU, ISA flags, kernel vectors, tuning.

    Args:
        result: what [`run`][synsample.benchmarks.run] returned.

    Returns:
        The line.
    """
    m = result["machine"]
    found = m.get("kernel_variants")
    kernel = (f"kernel variants {', '.join(found)}" if found else "no compiled kernels")
    return (f"machine: {m.get('cpu', m.get('processor'))}; ISA {' '.join(m.get('isa', [])) or '?'}"
            f"; torch kernels {m.get('torch_cpu_capability')}; {kernel}; "
            f"{m['torch_threads']} torch threads; sizes "
            f"{'tuned' if m.get('tuning') else 'fixed (SYNSAMPLE_TUNING=off)'}")


def table(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The result as a table.

    Args:
        result: what [`run`][synsample.benchmarks.run] returned.

    Returns:
        ``(header, rows)``.
    """
    header = ["case", "row", "seconds", "x ceiling", "peak MiB", "exact", "measured on",
              "tile x chunk", "path", "note"]
    rows = []
    for r in result["rows"]:
        measured = f"{r['measured_items']} x {r['measured_samples']}" + (
            " (scaled)" if r["extrapolated"] else "")
        sizes = r.get("sizes")
        rows.append([r["case"], r["row"], round(r["seconds"], 2),
                     round(r["ratio_to_ceiling"], 3),
                     None if r["peak_mib"] is None else round(r["peak_mib"], 1),
                     {True: "yes", False: "NO"}.get(r.get("exact"), "-"), measured,
                     f"{sizes['tile']} x {sizes['sample_chunk']}" if sizes else "-",
                     ", ".join(f"{op} {name}" for op, name in sorted(
                         (r.get("paths") or {}).items())) or "-", r["note"]])
    return header, rows


def write(result: dict[str, Any], out: str | Path) -> str:
    """``bench.json`` and ``bench.md`` (the table) into ``out``.

    Args:
        result: what [`run`][synsample.benchmarks.run] returned.
        out: the folder.

    Returns:
        the table as text, with the inputs, the machine and where the results are.
    """
    from synsample.io import write_json, write_text
    from synsample.report.markdown import table as markdown_table
    from synsample.report.markdown import text_table

    out = Path(out)
    header, rows = table(result)
    write_json(out / "bench.json", result)
    write_text(out / "bench.md", "# Sampling benchmark\n\n" + markdown_table(header, rows) + "\n")
    return "\n".join([text_table(header, rows), "",
                      f"inputs: {result['inputs']}; {result['machine']['torch_threads']} torch "
                      f"threads; median of {result['repeats']}; results: {out / 'bench.json'}",
                      machine_line(result)])
