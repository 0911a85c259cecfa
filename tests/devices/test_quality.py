"""The stream-quality tests against NIST SP 800-22 rev. 1a's worked examples, and their verdicts
on a good, a biased and a correlated stream (fixed seeds)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synsample.devices import quality as q
from synsample.errors import ConfigError

# the standard's 100-bit example (sections 2.1, 2.2, 2.3, 2.12, 2.13)
E100 = ("11001001000011111101101010100010001000010110100011000010001101001100010011000110011000"
        "10100010111000")


def _bits(text: str) -> np.ndarray:
    return np.array([int(c) for c in text], dtype=np.uint8)


@pytest.mark.parametrize("test,bits,expected", [
    (q.frequency, "1011010101", 0.527089),
    (q.frequency, E100, 0.109599),
    (lambda b: q.block_frequency(b, 3), "0110011010", 0.801252),
    (lambda b: q.block_frequency(b, 10), E100, 0.706438),
    (q.runs, "1001101011", 0.147232),
    (q.runs, E100, 0.500798),
    (lambda b: q.serial(b, 3)[0], "0011011101", 0.808792),
    (lambda b: q.serial(b, 3)[1], "0011011101", 0.670320),
    (lambda b: q.approximate_entropy(b, 3), "0100110101", 0.261961),
    (lambda b: q.approximate_entropy(b, 2), E100, 0.235301),
    (q.cumulative_sums, "1011010111", 0.4116588),
    (q.cumulative_sums, E100, 0.219194),
    (lambda b: q.cumulative_sums(b, backward=True), E100, 0.114866),
])
def test_the_standards_worked_examples(test, bits, expected):
    assert test(_bits(bits)) == pytest.approx(expected, abs=1e-6)


def _markov(n: int, stay: float, seed: int) -> np.ndarray:
    """A symmetric two-state chain: lag-k correlation (2 stay - 1)^k."""
    flips = np.random.default_rng(seed).random(n) >= stay
    return (np.cumsum(flips) % 2).astype(np.uint8)


def test_a_good_stream_passes_as_it_is():
    bits = (np.random.default_rng(1).random(100_000) < 0.5).astype(np.uint8)
    report = q.test_stream(bits)
    assert report.passed and report.xors_to_pass == 1, report.failed
    assert report.min_entropy > 0.98
    assert report.ones[1] < 0.5 < report.ones[2]


def test_a_biased_stream_is_flagged_and_passes_after_two_xors():
    bits = (np.random.default_rng(2).random(100_000) < 0.52).astype(np.uint8)
    report = q.test_stream(bits)
    assert not report.passed and "frequency" in report.failed
    assert report.ones[1] > 0.5  # the interval excludes a fair coin
    assert report.min_entropy < -np.log2(0.52) + 0.01
    assert report.xors_to_pass == 2  # bias 0.02 -> 2 * 0.02^2 = 0.0008 (piling-up lemma)


def test_a_correlated_stream_is_flagged_at_its_lags():
    bits = _markov(100_000, stay=0.55, seed=3)  # lag-1 correlation 0.1, lag 2 0.01
    report = q.test_stream(bits)
    assert "autocorrelation at lag 1" in report.failed and "runs" in report.failed
    assert report.autocorrelation[0] == pytest.approx(0.1, abs=4 * report.correlation_bound)
    assert report.xors_to_pass == 2  # XOR of two such chains: correlation 0.1^2


def test_recordings_are_read_in_each_format(tmp_path):
    packed = tmp_path / "bits.bin"
    packed.write_bytes(bytes([0b10110000, 0b00000001]))
    assert q.read_bits(packed).tolist() == [1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert q.read_bits(packed, max_bits=3).tolist() == [1, 0, 1]
    text = tmp_path / "bits.txt"
    text.write_text("1 0 1,1\n0\n")
    assert q.read_bits(text).tolist() == [1, 0, 1, 1, 0]
    npy = tmp_path / "bits.npy"
    np.save(npy, np.array([True, False, True]))
    assert q.read_bits(npy).tolist() == [1, 0, 1]
    (tmp_path / "bad.txt").write_text("0102")
    with pytest.raises(ConfigError, match="holds '2'"):
        q.read_bits(tmp_path / "bad.txt")
    np.save(tmp_path / "bad.npy", np.array([0, 1, 2]))
    with pytest.raises(ConfigError, match="values other than 0 and 1"):
        q.read_bits(tmp_path / "bad.npy")
    with pytest.raises(ConfigError, match="too short to test"):
        q.test_stream(q.read_bits(text))


def test_the_command_prints_the_verdict_and_writes_json(tmp_path, capsys):
    from synsample import cli

    np.save(tmp_path / "biased.npy",
            (np.random.default_rng(2).random(50_000) < 0.52).astype(np.uint8))
    assert cli.main(["devices", "test", str(tmp_path / "biased.npy"), "--json",
                     str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "FAIL at alpha 0.01" in out and "frequency" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["passed"] is False and report["xors_to_pass"] == 2
    assert cli.main(["devices", "test", str(tmp_path / "missing.bin")]) == 2
