"""Randomness at the ground floor: seed derivation and counter-based draws, imported by devices,
nn and kernels from below.

Seeds. Sample ``k`` of a run with base seed ``s`` draws from a generator seeded by
[`derive_seed`][synsample.randomness.derive_seed] ``(s, k)`` (SplitMix64 over the keys), so
everything a sample draws is fixed by ``(s, k)`` alone, not by how items are blocked or samples
chunked.

Counter-based coins for independent-mode sampling: every coin is a hash of its coordinates.

Independent (per-item) sampling of paper 000's coin-flip layer needs a fresh coin for every
``(item, sample, input, output)``: 10^4 items x 10^3 samples x 3 * 10^5 weights for the MNIST
MLP. Storing or even materialising those weights is what makes naive per-item sampling
hundreds of times slower than a plain forward pass. A counter-based generator (in the spirit
of Philox, Salmon et al. 2011) needs neither: the coin of weight ``(i, j)`` in sample ``s`` of
item ``b`` is a pure function of ``(seed, layer, b, s, i, j)``, so it can be made in registers
where it is used, skipped where the input is zero, and recomputed bit for bit by any
implementation. That function, shared by the compiled kernel (``synsample/kernels/
coinflip.c``) and the pure-PyTorch twin
[`coinflip_reference`][synsample.randomness.coinflip_reference] here:

- stream key ``k = m(m(layer_key ^ b) ^ s)`` with ``m`` the SplitMix64 finaliser and
  ``layer_key = m(m(seed) ^ layer_id)``: 64 bits per ``(item, sample)``;
- word ``h`` (32 bits) of weight ``(i, j)`` of a layer with ``out`` outputs: the counter
  ``c = i * out + j`` on a Weyl sequence, ``lo32(k) + c * 0x9E3779B9`` (mod 2^32), through the
  lowbias32 mixer (Wellons' two-multiply xorshift hash) with ``hi32(k)`` XOR-ed in between its
  two multiplies, so that streams whose low halves overlap still get unrelated words. Within a
  stream the words are distinct (both steps are bijections), which for a layer of ``c`` weights
  differs from independent 32-bit draws only by the ~``c^2 / 2^33`` repeats those would have;
- coin: ``(h >> (32 - bits)) < threshold[i, j]``, the device's integer comparator
  ([`counter_thresholds`][synsample.devices.RandomSource.counter_thresholds]): the top ``bits`` bits
  of ``h`` are the device's uniform number.

The sum ``y[b, s, j] = sum_i coin * sign(w_ij) * x[b, s, i]`` is taken in float32 in increasing
``i``, in both implementations, so they agree bit for bit (each product is rounded once, the
same way in both). The gated value may be any float matrix: paper 002's blank-out synapses
gate the weight itself (`synsample.nn.nsm`). Zero inputs draw no coins (they cannot
change the sum), which is both the saving and what the device counters count.
"""

from __future__ import annotations

import zlib

import torch

_MASK = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """The SplitMix64 finaliser: a bijective 64-bit mix with good avalanche.

    Args:
        x: a 64-bit word (Python int).

    Returns:
        The mixed word.
    """
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def derive_seed(base: int, *keys: int) -> int:
    """A 63-bit seed from a base seed and integer keys (sample index, item block, ...).

    Args:
        base: the base seed.
        *keys: integers mixed in, in order.

    Returns:
        A seed in ``0 .. 2^63 - 1``.
    """
    x = splitmix64(base & _MASK)
    for key in keys:
        x = splitmix64(x ^ (key & _MASK))
    return x >> 1


def seed_from(generator: torch.Generator | None, seed: int | None) -> int:
    """The base seed of a run: ``seed`` if given, else one drawn from ``generator`` (or torch's
    default generator), so that a seeded generator gives the same run twice.

    Args:
        generator: draws the seed when ``seed`` is None (None: torch's default).
        seed: the seed, if the caller has one.

    Returns:
        The base seed.
    """
    if seed is not None:
        return int(seed)
    return int(torch.randint(0, 2**62, (1,), generator=generator).item())


_M32 = 0xFFFFFFFF
_GOLDEN32 = 0x9E3779B9
_MUL1, _MUL2 = 0x7FEB352D, 0x846CA68B
#: SplitMix64 constants as signed int64 (torch integer tensors are signed; products wrap)
_S_ADD = 0x9E3779B97F4A7C15 - (1 << 64)
_S_MUL1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_S_MUL2 = 0x94D049BB133111EB - (1 << 64)
#: elements of the hashed [items, samples, rows, outputs] block the reference makes at once
_REFERENCE_BLOCK = 1 << 22


def layer_id(name: str) -> int:
    """A stable 32-bit identifier of a sampled layer, from its name in the network.

    Args:
        name: the layer's qualified name.

    Returns:
        The CRC-32 of the name.
    """
    return zlib.crc32(name.encode())


def layer_key(seed: int, layer: int) -> int:
    """The 64-bit key of one layer in one run.

    Args:
        seed: the run's base seed.
        layer: the layer's [`layer_id`][synsample.randomness.layer_id].

    Returns:
        ``m(m(seed) ^ layer)`` with ``m`` [`splitmix64`][synsample.randomness.splitmix64].
    """
    return splitmix64(splitmix64(seed & ((1 << 64) - 1)) ^ layer)


def as_int64(key: int) -> int:
    """A 64-bit word as the signed integer torch's int64 holds.

    Args:
        key: a word in ``0 .. 2^64 - 1``.

    Returns:
        The same bits, as a value in ``-2^63 .. 2^63 - 1``.
    """
    return key - (1 << 64) if key >= 1 << 63 else key


def shr(x: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 tensors holding 64-bit words.

    Args:
        x: the words.
        s: the shift, 1 to 63.

    Returns:
        The shifted words (zeros shifted in), int64.
    """
    return (x >> s) & ((1 << (64 - s)) - 1)


def mix64(x: torch.Tensor) -> torch.Tensor:
    """[`splitmix64`][synsample.randomness.splitmix64] on an int64 tensor (wrapping arithmetic).

    Args:
        x: 64-bit words held as int64.

    Returns:
        The mixed words, int64, same shape.
    """
    x = x + _S_ADD
    x = (x ^ shr(x, 30)) * _S_MUL1
    x = (x ^ shr(x, 27)) * _S_MUL2
    return x ^ shr(x, 31)


def stream_keys(key: int, items: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """The 64-bit stream keys ``[items, samples]`` (int64) of a layer with key ``key``.

    Args:
        key: the layer's [`layer_key`][synsample.randomness.layer_key].
        items: the global item indices.
        samples: the global sample indices.

    Returns:
        ``m(m(key ^ b) ^ s)`` per (item, sample), int64.
    """
    item_key = mix64(items.to(torch.int64) ^ as_int64(key))
    return mix64(item_key[:, None] ^ samples.to(torch.int64)[None, :])


def words(keys: torch.Tensor, rows: torch.Tensor, outputs: int) -> torch.Tensor:
    """The 32-bit words ``[..., rows, outputs]`` (in int64) of weights ``(i, j)``, ``i`` in
    ``rows``, ``j < outputs``, for stream keys ``keys`` (any shape).

    Args:
        keys: stream keys (int64, any shape).
        rows: the input indices ``i``.
        outputs: the layer's outputs (the counter is ``i * outputs + j``).

    Returns:
        ``[*keys.shape, len(rows), outputs]`` words in ``0 .. 2^32 - 1``, int64.
    """
    lo = (keys & _M32)[..., None, None]
    hi = shr(keys, 32)[..., None, None]
    counter = (rows.to(torch.int64)[:, None] * outputs
               + torch.arange(outputs, dtype=torch.int64, device=keys.device))
    h = (lo + counter * _GOLDEN32) & _M32
    h = h ^ (h >> 16)
    h = (h * _MUL1) & _M32
    h = h ^ hi
    h = h ^ (h >> 15)
    h = (h * _MUL2) & _M32
    return h ^ (h >> 16)


def coinflip_reference(x: torch.Tensor, n: int, threshold: torch.Tensor, value: torch.Tensor,
                       bits: int, items: torch.Tensor, first_sample: int, key: int,
                       sync: bool | None = None) -> tuple[torch.Tensor, int | torch.Tensor]:
    """Independent-mode outputs ``y[b, s, j] = sum_i coin * value[i, j] * x[b, s, i]``
    ``[items, n, out]`` and the number of coins drawn.

    Pure PyTorch, any device: the compiled kernel's twin on the CPU (same bits) and the path
    of every other device, where it runs without host synchronisation.

    Args:
        x: ``[items, n, in]`` float32, or ``[items, 1, in]`` for an input shared by the ``n``
            samples.
        n: samples.
        threshold: ``[in, out]`` integer thresholds (the device's comparator).
        value: ``[in, out]`` float32, what each coin gates: ``sign(w)`` for scANN, ``w`` for
            NSM blank-out synapses.
        bits: the bits of the device's uniform integers.
        items: the global index of each item.
        first_sample: the index of the first sample (samples are ``first_sample, ...``).
        key: the layer's [`layer_key`][synsample.randomness.layer_key].
        sync: whether the host may wait for the device (default: on the CPU only). With it, the
            inputs that are zero everywhere are skipped; without it every input is run (a zero
            one adds +0, and a sum is never -0, so the sums are the same) and the count is a 0-d
            tensor, which [`count`][synsample.devices.NoiseSource.count] keeps until it is read.

    Returns:
        ``(y [items, n, out] float32, coins drawn)``; a zero input draws no coins.
    """
    b = x.shape[0]
    out = threshold.shape[1]
    dev = x.device
    samples = torch.arange(first_sample, first_sample + n, device=dev)
    keys = stream_keys(key, items.to(dev), samples)
    acc = torch.zeros(b, n, out, dtype=torch.float32, device=dev)
    nonzero = (x != 0).sum() * (out * (n if x.shape[1] == 1 else 1))
    sync = dev.type == "cpu" if sync is None else sync
    if sync:  # skip the inputs that draw nothing
        live = (x != 0).any(dim=1).any(dim=0).nonzero().flatten().tolist()
    else:
        live = range(x.shape[2])
    step = max(1, _REFERENCE_BLOCK // max(1, b * n * out))
    for start in range(0, len(live), step):
        block = live[start:start + step]
        rows = (torch.arange(block.start, block.stop, device=dev) if isinstance(block, range)
                else torch.tensor(block, device=dev))
        h = words(keys, rows, out)  # [b, n, r, out]
        coins = (h >> (32 - bits)) < threshold[rows][None, None]
        for r, i in enumerate(block):
            v = value[i] * x[:, :, i, None]
            acc = acc + torch.where(coins[:, :, r], v, torch.zeros((), device=dev))
    return acc, (int(nonzero) if sync else nonzero)
