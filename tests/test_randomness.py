"""The counter-based coins of independent mode: the spec, its two implementations, its
statistics."""

import math

import pytest
import torch

from synsample import kernels, randomness
from synsample.devices import IdealCoin, QuantizedCoin
from synsample.nn import CoinFlipLinear, SamplingContext
from synsample.randomness import splitmix64

M32 = 0xFFFFFFFF


def scalar_word(key: int, item: int, sample: int, row: int, j: int) -> int:
    """The documented formula, in plain Python integers, for a layer of 20 outputs."""
    k = splitmix64(splitmix64(key ^ item) ^ sample)
    lo, hi = k & M32, k >> 32
    h = (lo + (row * 20 + j) * 0x9E3779B9) & M32
    h ^= h >> 16
    h = (h * 0x7FEB352D) & M32
    h ^= hi
    h ^= h >> 15
    h = (h * 0x846CA68B) & M32
    return h ^ (h >> 16)


def test_tensor_mix64_is_splitmix64():
    values = [0, 1, 2**31, 2**63 - 1, 12345678901234567]
    got = randomness.mix64(torch.tensor(values, dtype=torch.int64))
    want = [splitmix64(v) for v in values]
    assert [v & (2**64 - 1) for v in got.tolist()] == want


def test_words_follow_the_documented_formula():
    key = randomness.layer_key(2024, randomness.layer_id("fc1"))
    items, samples, rows = torch.tensor([0, 7, 10**6]), torch.tensor([3, 999]), torch.tensor([5])
    h = randomness.words(randomness.stream_keys(key, items, samples), rows, 20)
    for a, item in enumerate(items.tolist()):
        for s, sample in enumerate(samples.tolist()):
            for j in (0, 1, 13, 19):
                assert h[a, s, 0, j].item() == scalar_word(key, item, sample, 5, j)


def _case(seed, b, n, d_in, out, expanded, bits):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n if expanded else 1, d_in, generator=g)
    x[torch.rand(x.shape, generator=g) < 0.4] = 0  # zero inputs draw no coins
    w = torch.rand(out, d_in, generator=g) * 2 - 1
    w[0, 0] = 0.0
    coin = IdealCoin() if bits == 24 else QuantizedCoin(bits)
    used, thr = coin.counter_thresholds(coin.probability(w.abs()))
    items = torch.randint(0, 10**6, (b,), generator=g)
    return (x, n, thr.T.contiguous(), torch.sign(w).T.contiguous(), used, items, 17, 99)


@pytest.mark.parametrize("shape", [(5, 3, 33, 19), (1, 1, 1, 1), (9, 8, 64, 48), (3, 2, 7, 400)])
@pytest.mark.parametrize("expanded", [False, True])
@pytest.mark.parametrize("bits", [24, 8, 4])
def test_compiled_kernel_equals_the_pytorch_twin_bit_for_bit(shape, expanded, bits):
    if not kernels.available():
        pytest.skip("no C compiler here: the PyTorch twin is the only path")
    args = _case(sum(shape) + bits, *shape, expanded, bits)
    ref_y, ref_coins = randomness.coinflip_reference(*args)
    got_y, got_coins = kernels.coinflip(*args)
    assert torch.equal(got_y, ref_y)
    assert got_coins == ref_coins == int((args[0] != 0).sum()) * shape[3] * (
        1 if expanded else shape[1])


def test_coin_frequencies_match_the_realised_probabilities():
    """Every coin 1 with probability t / 2^bits: frequencies within 5 standard errors."""
    out, rows = 41, 64
    p = torch.linspace(0, 1, out)
    x = torch.ones(50, 1, rows)
    for coin in (IdealCoin(), QuantizedCoin(4)):
        bits, thr = coin.counter_thresholds(coin.probability(p))
        q = thr.double() / 2**bits
        y, _ = randomness.coinflip_reference(x, 20, thr.expand(rows, out).contiguous(),
                                              torch.ones(rows, out), bits, torch.arange(50), 0,
                                              5)
        freq = y.double().mean((0, 1)) / rows  # each y is a sum of `rows` coins
        trials = 50 * 20 * rows
        assert torch.all((freq - q).abs() <= 5 * torch.sqrt(q * (1 - q) / trials) + 1e-12)
        assert freq[0] == 0 and (freq[-1] == 1 if bits == 24 else True)


def test_words_are_uniform_and_uncorrelated_across_every_coordinate():
    key = randomness.layer_key(7, 1)
    h = randomness.words(randomness.stream_keys(key, torch.arange(40), torch.arange(30)),
                          torch.arange(20), 50)  # [40, 30, 20, 50]
    u = (h >> 8).double() / 2**24  # the ideal coin's uniform number
    count = u.numel()
    # uniform: 16 equal bins, chi-square with 15 degrees of freedom far below its 1e-6 tail
    bins = torch.bincount((u * 16).long().flatten(), minlength=16).double()
    chi2 = ((bins - count / 16) ** 2 / (count / 16)).sum().item()
    assert chi2 < 60
    z = (u - 0.5) * math.sqrt(12)
    for dim in range(4):  # neighbours along item, sample, input and output
        a, b = z.narrow(dim, 0, z.shape[dim] - 1), z.narrow(dim, 1, z.shape[dim] - 1)
        r = (a * b).mean().item()
        assert abs(r) < 5 / math.sqrt(a.numel())


def test_independent_layer_is_unbiased_and_uses_the_kernel_or_the_twin_alike():
    torch.manual_seed(0)
    w = torch.rand(6, 10) * 2 - 1
    layer = CoinFlipLinear(w, torch.zeros(6), name="fc")
    x = torch.rand(400, 10)
    ctx = SamplingContext.for_samples(3, 0, 16, batch=400, mode="independent")
    layer.context = ctx
    fast = layer(x)
    layer.paths = {"coinflip": "twin"}
    slow = layer(x)
    assert torch.equal(fast, slow)
    mean = fast.reshape(400, 16, 6).mean(1).double()
    expected = x.double() @ w.double().T
    var = (x.double() ** 2) @ (w.abs() - w**2).double().T / 16
    assert torch.all((mean - expected).abs() <= 5 * var.sqrt().mean())
    # an item's draws are a function of its global index, not of its place in the batch
    ctx.items = torch.arange(400).flip(0)
    flipped = layer(x.flip(0)).reshape(400, 16, 6).flip(0)
    assert torch.equal(flipped, slow.reshape(400, 16, 6))


def test_without_the_library_the_twin_runs_and_it_says_so(monkeypatch):
    monkeypatch.setattr(kernels, "_library", False)  # not tried yet in this process
    monkeypatch.delenv("SYNSAMPLE_KERNELS", raising=False)
    monkeypatch.setattr(kernels, "library_file", lambda: None)  # not built at install
    args = _case(0, 4, 3, 10, 5, False, 24)
    with pytest.warns(RuntimeWarning, match="not built when synsample was installed"):
        assert kernels.coinflip(*args) is None
    layer = CoinFlipLinear(torch.rand(5, 10) * 2 - 1, None)
    layer.context = SamplingContext.for_samples(1, 0, 3, batch=4, mode="independent")
    x = torch.rand(4, 10)
    fallback = layer(x)  # silently, after the one warning
    layer.paths = {"coinflip": "twin"}
    assert torch.equal(fallback, layer(x))


def test_kernels_can_be_switched_off(monkeypatch):
    monkeypatch.setattr(kernels, "_library", False)
    monkeypatch.setenv("SYNSAMPLE_KERNELS", "off")
    assert not kernels.available()


@pytest.mark.parametrize("expanded", [False, True])
def test_the_twin_without_host_synchronisation_gives_the_same_bits(expanded):
    """The path of accelerators runs every input and returns its count as a tensor, which the
    device keeps until read; on the CPU it gives the kernel's (and the skipping twin's) bits."""
    args = _case(3, 4, 5, 30, 21, expanded, 12)
    args[0][:, :, ::3] = 0  # inputs that draw nothing
    ref, ref_coins = randomness.coinflip_reference(*args)
    got, coins = randomness.coinflip_reference(*args, sync=False)
    assert torch.equal(got, ref) and isinstance(coins, torch.Tensor) and int(coins) == ref_coins
    if kernels.available():
        assert torch.equal(kernels.coinflip(*args)[0], got)


def test_a_count_left_on_an_accelerator_is_read_once(monkeypatch):
    from synsample.devices import IdealCoin

    coin = IdealCoin()
    coin.count(5)
    pending = torch.tensor(7)
    monkeypatch.setattr(pending.__class__, "device", property(lambda self: torch.device("meta")))
    coin.count(pending)  # kept as a tensor, not read now
    monkeypatch.undo()
    assert coin.__dict__["_pending"] and coin.draws == 12 and not coin.__dict__["_pending"]
    snap = coin.snapshot()
    coin.draws += 3
    coin.restore(snap)
    assert coin.draws == 12
