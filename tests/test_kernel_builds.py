"""The compiled kernel gives the twin's bits whatever vector width it is built for (AVX-512,
AVX2, SSE2), and reports that width; the machine description names the CPU's ISA."""

from __future__ import annotations

import platform
import shutil

import pytest
import torch

from synsample import kernels, machine, randomness
from tests.test_randomness import _case

#: x86 targets and the lanes the kernel uses there, with the flag the CPU needs to run them
TARGETS = [("x86-64", 4, None), ("x86-64-v3", 8, "avx2"), ("native", None, None)]


@pytest.mark.parametrize("march,lanes,needs", TARGETS)
def test_every_vector_width_gives_the_twins_bits(monkeypatch, tmp_path, march, lanes, needs):
    if platform.machine() not in ("x86_64", "AMD64") or shutil.which("gcc") is None:
        pytest.skip("needs gcc on x86-64")
    if needs is not None and needs not in machine.isa():
        pytest.skip(f"this CPU has no {needs}")
    monkeypatch.setattr(kernels, "_library", False)
    monkeypatch.setenv("SYNSAMPLE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SYNSAMPLE_KERNEL_MARCH", march)
    monkeypatch.delenv("SYNSAMPLE_KERNELS", raising=False)
    assert kernels.vector_lanes() in ((lanes,) if lanes else (4, 8, 16))
    for shape, expanded in (((5, 3, 33, 19), False), ((3, 9, 40, 10), True),
                            ((2, 5, 64, 48), True)):
        args = _case(7, *shape, expanded, 8)
        got, coins = kernels.coinflip(*args)
        ref, ref_coins = randomness.coinflip_reference(*args)
        assert torch.equal(got, ref) and coins == ref_coins


def test_machine_names_the_cpu_and_its_isa():
    info = machine.describe()
    assert info["cpu"] and info["torch_threads"] >= 1
    assert set(info["isa"]) <= set(machine.ISA_FLAGS)
    if platform.machine() == "x86_64" and "avx512f" in machine.cpu_flags().split():
        assert "avx512f" in info["isa"]
