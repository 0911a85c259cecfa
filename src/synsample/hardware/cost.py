"""What one inference costs, measured from a real run: operations and weight bits read
([`OperationCounter`][synsample.hardware.operations.OperationCounter]), random bits by device
technology (the devices' own counters), weight memory ([`memory`][synsample.hardware.memory]),
priced by a [`CostAssumptions`][synsample.hardware.assumptions.CostAssumptions].

The run is in independent mode, every item with its own draws, as a device that serves one
inference at a time does; its counts divided by the items are one inference's, and the sampled
part divided by the passes is one sample's. A model that cannot draw per item (an NSM with a
b-bit Gaussian source on every synapse, coins with a time axis) runs in shared mode one item at
a time instead: the same device serving one inference. Each pass also votes: ``C - 1``
comparisons (the argmax) and one add (the vote counter).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch

from synsample.errors import ConfigError
from synsample.hardware.assumptions import DEFAULT, CostAssumptions
from synsample.hardware.memory import memory_bits
from synsample.hardware.operations import OperationCounter

#: items the cost run samples (their counts are averaged: a coin of a zero input is not drawn)
COST_ITEMS = 16
#: at most this many item-pass rows: the cost run takes all passes in one call, so that a
#: deep ensemble computes each member once per inference
COST_ROWS = 16384


def _priced(ops: Counter, bits: Counter, reads: float, per: float,
            assumptions: CostAssumptions) -> dict[str, Any]:
    ops = {k: v / per for k, v in sorted(ops.items()) if v}
    bits = {k: v / per for k, v in sorted(bits.items()) if v}
    reads = reads / per
    counts = {**ops, **{f"random bits ({k})": v for k, v in bits.items()}}
    unit = {k: assumptions.op(k) for k in ops}
    unit.update({f"random bits ({k})": assumptions.random_bit(k) for k in bits})
    if reads:
        counts["weight bits read"] = reads
        unit["weight bits read"] = assumptions.pj_per_weight_bit_read
    energy = {k: counts[k] * unit[k] for k in counts}
    return {"operations": ops, "random_bits": bits, "weight_bits_read": reads,
            "counts": counts, "pj_each": unit, "energy_pj": energy,
            "energy_nj": sum(energy.values()) * 1e-3}


@torch.no_grad()
def measure(model, images: torch.Tensor, samples: int, seed: int = 0,
            assumptions: CostAssumptions = DEFAULT, items: int = COST_ITEMS) -> dict[str, Any]:
    """The cost of one inference of ``samples`` passes of ``model`` and of one pass, from a
    run (independent mode, else shared mode item by item; ``mode``) over the first ``items``
    of ``images`` (fewer when ``items x samples`` exceeds `COST_ROWS`).

    Args:
        model (StochasticModel): the stochastic model (its devices' counters are read).
        images: the inputs, ``[N, ...]``.
        samples: passes per inference.
        seed: the run's seed.
        assumptions: the energies that price the counts.
        items: the most items run.

    Returns:
        ``per_inference``, ``per_sample`` (the sampled part over one pass), ``prefix`` (the
        deterministic part, once per inference), each with operations, random bits by
        technology, weight bits read and energy (pJ by component, nJ in all);
        ``memory_bits``, ``memory_bytes``, the run's ``items``, ``samples`` and ``mode``, and
        the assumption set (``assumptions``, ``assumption_set``).
    """
    from synsample import engine

    items = max(1, min(items, COST_ROWS // samples, len(images)))
    images = images[:items]
    devices = model.devices()
    before = [d.snapshot() for d in devices]

    def run(batch: torch.Tensor, mode: str):
        return engine.predict(model, batch, samples=samples, seed=seed, mode=mode,
                              sample_chunk=samples, checkpoints=(), progress=False)

    mode = "independent"
    with OperationCounter(model, assumptions) as counter:
        try:
            classes = run(images, mode).votes.shape[1]
        except ConfigError:
            counter.reset()
            for device, draws in zip(devices, before, strict=True):
                device.restore(draws)
            mode = "shared (one item at a time)"
            classes = [run(images[i:i + 1], "shared") for i in range(items)][0].votes.shape[1]
    bits: Counter = Counter()
    for device, start in zip(devices, before, strict=True):
        bits[device.technology] += (device.draws - start) * device.bits_per_draw
    passes = items * samples
    sampled = counter.ops["sampled"] + Counter(
        {"compare": passes * (classes - 1), "add": passes})
    prefix, reads = counter.ops["prefix"], counter.weight_bits_read
    memory = memory_bits(model, assumptions)
    return {
        "assumptions": assumptions.name, "assumption_set": assumptions.as_dict(),
        "items": items, "samples": samples, "mode": mode,
        "per_inference": _priced(prefix + sampled, bits, reads["prefix"] + reads["sampled"],
                                 items, assumptions),
        "per_sample": _priced(sampled, bits, reads["sampled"], passes, assumptions),
        "prefix": _priced(prefix, Counter(), reads["prefix"], items, assumptions),
        "memory_bits": memory, "memory_bytes": memory / 8}
