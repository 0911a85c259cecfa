"""The quality of a random bit stream: is a device's recorded randomness good enough to drive a
network's coins? (``synsample devices test FILE``.)

- **bias**: the share of ones with its 99% Wilson interval;
- **autocorrelation** of the bits at lags 1 .. ``max_lag``, each against a Bonferroni bound;
- **min-entropy** per bit by NIST SP 800-90B's most-common-value estimate (section 6.3.1):
  ``p_u = min(1, p + 2.576 sqrt(p (1 - p) / (L - 1)))``, ``H = -log2 p_u``;
- the **NIST SP 800-22 rev. 1a** tests that need no tables of constants, each checked against
  the standard's worked example (``tests/devices/test_quality.py``): frequency (2.1), block
  frequency (2.2), runs (2.3), serial (2.11), approximate entropy (2.12) and cumulative sums
  (2.13, forward and backward). One verdict for the whole family: a stream passes when every
  P-value is at least ``alpha / T`` and every lag's correlation inside its bound at the same
  level (Bonferroni over the T tests and lags, ``alpha`` 0.01 the standard's), so a good
  stream fails with probability at most ``alpha``, not about ``alpha`` per test;
- **XORs to pass**: the stream cut into k equal parts, XORed bit by bit (k independent streams
  of the same device, as published s-MTJs need one to three), for k = 1 .. 4: the first k that
  passes. A bias ``e`` becomes ``2^(k-1) e^k`` (the piling-up lemma), so a biased device passes
  after a few XORs and a broken one never does.

Not implemented: the SP 800-22 tests that need tables or long streams (longest run, rank,
spectral, templates, universal, linear complexity, excursions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synsample.errors import ConfigError

ALPHA = 0.01
#: the most bits a test reads by default (the first ones of a longer file)
MAX_BITS = 10_000_000
#: the shortest stream the tests run on (SP 800-22 recommends at least 100 bits per test)
MIN_BITS = 100
FORMATS = ("auto", "packed", "text", "npy")


def read_bits(path: str | Path, fmt: str = "auto", max_bits: int = MAX_BITS) -> np.ndarray:
    """The first ``max_bits`` bits of a recording, as uint8 0/1.

    Args:
        path: the file: ``.npy`` (an array of 0/1 or booleans), ``.txt`` / ``.csv`` (the
            characters 0 and 1, whitespace and commas ignored), anything else packed binary
            (eight bits per byte, the first bit the byte's most significant).
        fmt: ``auto`` (by the suffix), ``packed``, ``text`` or ``npy``.
        max_bits: the most bits read.

    Returns:
        The bits.

    Raises:
        ConfigError: for a missing file, an unknown format, or content that is not bits.
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown bit format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise ConfigError(f"{path} is not a file; give a recording of bits (.npy, .txt of 0/1, "
                          "or packed binary)")
    if fmt == "auto":
        fmt = {".npy": "npy", ".txt": "text", ".csv": "text"}.get(path.suffix.lower(), "packed")
    if fmt == "npy":
        try:
            values = np.load(path, allow_pickle=False).reshape(-1)[:max_bits]
        except (ValueError, OSError) as exc:
            raise ConfigError(f"{path} is not a readable .npy array ({exc})") from None
        if values.dtype != bool and not np.isin(values, (0, 1)).all():
            raise ConfigError(f"{path} holds values other than 0 and 1; give the bits, one per "
                              "element")
        return values.astype(np.uint8)
    if fmt == "text":
        text = path.read_bytes()[: max_bits * 4].decode("ascii", "replace")
        kept = "".join(text.replace(",", " ").split())
        if kept.strip("01"):
            bad = next(c for c in kept if c not in "01")
            raise ConfigError(f"{path} holds {bad!r}; a text recording is the characters 0 and "
                              "1 (whitespace and commas are ignored)")
        return (np.frombuffer(kept.encode(), dtype=np.uint8)[:max_bits] - ord("0"))
    with path.open("rb") as f:
        data = f.read((max_bits + 7) // 8)
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:max_bits]


def _igamc(a: float, x: float) -> float:
    """The regularised upper incomplete gamma function Q(a, x) (the standard's igamc)."""
    return float(torch.special.gammaincc(torch.tensor(a, dtype=torch.float64),
                                         torch.tensor(x, dtype=torch.float64)))


def _phi(x: float) -> float:
    """The standard normal distribution function."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def frequency(bits: np.ndarray) -> float:
    """SP 800-22 2.1, the frequency (monobit) test: its P-value."""
    n = len(bits)
    s = abs(2 * int(bits.sum()) - n) / math.sqrt(n)
    return math.erfc(s / math.sqrt(2.0))


def block_frequency(bits: np.ndarray, m: int) -> float:
    """SP 800-22 2.2, the frequency test within blocks of ``m`` bits: its P-value."""
    blocks = len(bits) // m
    shares = bits[: blocks * m].reshape(blocks, m).mean(axis=1)
    chi2 = 4.0 * m * float(((shares - 0.5) ** 2).sum())
    return _igamc(blocks / 2.0, chi2 / 2.0)


def runs(bits: np.ndarray) -> float:
    """SP 800-22 2.3, the runs test: its P-value (0 when the frequency prerequisite fails)."""
    n = len(bits)
    pi = float(bits.mean())
    if abs(pi - 0.5) >= 2.0 / math.sqrt(n):
        return 0.0
    v = 1 + int((bits[1:] != bits[:-1]).sum())
    return math.erfc(abs(v - 2 * n * pi * (1 - pi)) / (2 * math.sqrt(2 * n) * pi * (1 - pi)))


def _pattern_counts(bits: np.ndarray, m: int) -> np.ndarray:
    """Counts of the 2^m overlapping m-bit patterns, the sequence wrapped around."""
    if m == 0:
        return np.array([len(bits)])
    wrapped = np.concatenate([bits, bits[: m - 1]]).astype(np.int64)
    codes = np.zeros(len(bits), dtype=np.int64)
    for j in range(m):
        codes = (codes << 1) | wrapped[j: j + len(bits)]
    return np.bincount(codes, minlength=2 ** m)


def serial(bits: np.ndarray, m: int) -> tuple[float, float]:
    """SP 800-22 2.11, the serial test with ``m``-bit patterns: its two P-values."""
    n = len(bits)

    def psi2(k: int) -> float:
        if k <= 0:
            return 0.0
        counts = _pattern_counts(bits, k).astype(np.float64)
        return float((2 ** k / n) * (counts ** 2).sum() - n)

    d1 = psi2(m) - psi2(m - 1)
    d2 = psi2(m) - 2 * psi2(m - 1) + psi2(m - 2)
    return _igamc(2 ** (m - 2), d1 / 2.0), _igamc(2 ** (m - 3), d2 / 2.0)


def approximate_entropy(bits: np.ndarray, m: int) -> float:
    """SP 800-22 2.12, the approximate entropy test with ``m``-bit patterns: its P-value."""
    n = len(bits)

    def phi(k: int) -> float:
        c = _pattern_counts(bits, k) / n
        c = c[c > 0]
        return float((c * np.log(c)).sum())

    apen = phi(m) - phi(m + 1)
    chi2 = 2.0 * n * (math.log(2.0) - apen)
    return _igamc(2 ** (m - 1), chi2 / 2.0)


def _trunc_div(a: int, b: int) -> int:
    """Integer division truncated toward zero (the standard's C code)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def cumulative_sums(bits: np.ndarray, backward: bool = False) -> float:
    """SP 800-22 2.13, the cumulative sums test (forward, or backward): its P-value."""
    n = len(bits)
    steps = 2 * bits.astype(np.int64) - 1
    if backward:
        steps = steps[::-1]
    z = int(np.abs(np.cumsum(steps)).max())
    if z == 0:
        return 1.0
    root = math.sqrt(n)
    total = 1.0
    for k in range(_trunc_div(_trunc_div(-n, z) + 1, 4), _trunc_div(_trunc_div(n, z) - 1, 4) + 1):
        total -= _phi((4 * k + 1) * z / root) - _phi((4 * k - 1) * z / root)
    for k in range(_trunc_div(_trunc_div(-n, z) - 3, 4), _trunc_div(_trunc_div(n, z) - 1, 4) + 1):
        total += _phi((4 * k + 3) * z / root) - _phi((4 * k + 1) * z / root)
    return total


def min_entropy(bits: np.ndarray) -> float:
    """SP 800-90B 6.3.1, the most-common-value estimate: min-entropy per bit."""
    length = len(bits)
    p = max(float(bits.mean()), 1.0 - float(bits.mean()))
    upper = min(1.0, p + 2.576 * math.sqrt(p * (1 - p) / (length - 1)))
    return -math.log2(upper)


def bias(bits: np.ndarray, z: float = 2.576) -> tuple[float, float, float]:
    """The share of ones and its Wilson interval (99% by default)."""
    n = len(bits)
    p = float(bits.mean())
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, centre - half, centre + half


def autocorrelation(bits: np.ndarray, max_lag: int) -> list[float]:
    """Pearson correlation of the bits with themselves at lags 1 .. ``max_lag``."""
    x = bits.astype(np.float64) - float(bits.mean())
    var = float((x * x).mean())
    if var == 0:
        return [1.0] * max_lag
    return [float((x[:-k] * x[k:]).mean() / var) for k in range(1, max_lag + 1)]


@dataclass
class StreamReport:
    """What [`test_stream`][synsample.devices.quality.test_stream] found.

    Attributes:
        bits: the stream's length.
        ones: the share of ones, and its 99% Wilson interval.
        min_entropy: bits of min-entropy per bit (SP 800-90B MCV).
        autocorrelation: the correlation at lags 1, 2, ...
        correlation_bound: the largest correlation a good stream stays under (Bonferroni over
            the lags, at ``alpha``).
        p_values: every NIST test's P-value by name.
        alpha: the level every P-value must reach (the family's alpha over its size).
        xors_to_pass: the fewest XORed parts of the stream that pass (1: as it is), None when
            four do not.
    """

    bits: int
    ones: tuple[float, float, float]
    min_entropy: float
    autocorrelation: list[float]
    correlation_bound: float
    p_values: dict[str, float]
    alpha: float
    xors_to_pass: int | None = None
    failed: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every test at or above ``alpha`` and every lag's correlation inside its bound."""
        return not self.failed

    def to_json(self) -> dict[str, Any]:
        """The report as JSON values."""
        return {"bits": self.bits, "ones": self.ones[0],
                "ones_interval_99": list(self.ones[1:]), "min_entropy_per_bit": self.min_entropy,
                "autocorrelation": self.autocorrelation,
                "correlation_bound": self.correlation_bound, "p_values": self.p_values,
                "alpha": self.alpha, "passed": self.passed, "failed": self.failed,
                "xors_to_pass": self.xors_to_pass}


def _check(bits: np.ndarray, alpha: float, max_lag: int) -> StreamReport:
    n = len(bits)
    m_block = max(20, n // 99 + 1)  # the standard's M >= 20, M > 0.01 n, N < 100
    m_pattern = max(2, min(16, int(math.log2(n)) - 7))  # the standard's m < log2(n) - 2
    p1, p2 = serial(bits, m_pattern)
    p_values = {
        "frequency": frequency(bits), f"block frequency (M = {m_block})":
            block_frequency(bits, m_block), "runs": runs(bits),
        f"serial 1 (m = {m_pattern})": p1, f"serial 2 (m = {m_pattern})": p2,
        f"approximate entropy (m = {m_pattern})": approximate_entropy(bits, m_pattern),
        "cumulative sums (forward)": cumulative_sums(bits),
        "cumulative sums (backward)": cumulative_sums(bits, backward=True)}
    lags = autocorrelation(bits, max_lag)
    # one verdict over the whole family (the tests and every lag): Bonferroni at alpha, so a
    # good stream fails with probability at most alpha, not about alpha per test
    level = alpha / (len(p_values) + max_lag)
    z = math.sqrt(2.0) * float(torch.special.erfinv(torch.tensor(1 - level,
                                                                  dtype=torch.float64)))
    bound = z / math.sqrt(n)
    failed = [name for name, p in p_values.items() if p < level]
    failed += [f"autocorrelation at lag {k + 1}" for k, r in enumerate(lags) if abs(r) > bound]
    return StreamReport(n, bias(bits), min_entropy(bits), lags, bound, p_values, level,
                        failed=failed)


def test_stream(bits: np.ndarray, alpha: float = ALPHA, max_lag: int = 8,
                max_xors: int = 4) -> StreamReport:
    """Every test of the module on ``bits``, and the fewest XORs of its parts that pass.

    Args:
        bits: the stream, 0/1.
        alpha: the level each P-value must reach (the standard's 0.01).
        max_lag: autocorrelation lags tested.
        max_xors: the most parts XORed.

    Returns:
        The report.

    Raises:
        ConfigError: for a stream shorter than `MIN_BITS`, or settings out of range.
    """
    bits = np.asarray(bits, dtype=np.uint8).reshape(-1)
    if len(bits) < MIN_BITS:
        raise ConfigError(f"a stream of {len(bits)} bits is too short to test; give at least "
                          f"{MIN_BITS} (SP 800-22 asks 100 bits per test, far more for power)")
    if not 0.0 < alpha < 1.0 or max_lag < 1 or max_xors < 1:
        raise ConfigError("alpha must lie in (0, 1), and max-lag and the XOR count be positive")
    report = _check(bits, alpha, max_lag)
    for k in range(1, max_xors + 1):
        part = len(bits) // k
        if part < MIN_BITS:
            break
        passed = report.passed if k == 1 else _check(
            np.bitwise_xor.reduce(bits[: k * part].reshape(k, part), axis=0), alpha,
            max_lag).passed
        if passed:
            report.xors_to_pass = k
            break
    return report


test_stream.__test__ = False  # a library function, not a pytest test
