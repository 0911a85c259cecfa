"""The compiled kernels: built at install, one binary whose every instruction-set variant gives
the twins' bits; the exact u8s8 GEMM; the machine description names the CPU's ISA."""

from __future__ import annotations

import platform

import pytest
import torch

from synsample import kernels, machine, randomness
from tests.test_randomness import _case

needs_library = pytest.mark.skipif(not kernels.available(),
                                   reason="the compiled kernels were not built at install")


@needs_library
def test_the_library_lives_in_the_package_and_nothing_is_built_at_run_time():
    path = kernels.library_file()
    assert path is not None and path.parent == __import__("pathlib").Path(kernels.__file__).parent
    assert "base" in kernels.variants()  # every CPU of the architecture runs the baseline


@needs_library
@pytest.mark.parametrize("variant", list(kernels.VARIANTS))
def test_every_variant_gives_the_twins_bits(variant):
    if variant not in kernels.variants():
        pytest.skip(f"this CPU cannot run the {variant} variant")
    assert kernels.vector_lanes(variant) == kernels.VARIANTS[variant]
    for shape, expanded in (((5, 3, 33, 19), False), ((3, 9, 40, 10), True),
                            ((2, 5, 64, 48), True)):
        args = _case(7, *shape, expanded, 8)
        got, coins = kernels.coinflip(*args, variant=variant)
        ref, ref_coins = randomness.coinflip_reference(*args)
        assert torch.equal(got, ref) and coins == ref_coins


@needs_library
def test_the_isa_cap_hides_the_wider_variants(monkeypatch):
    monkeypatch.setenv("SYNSAMPLE_KERNEL_ISA", "base")
    assert kernels.variants() == ["base"] and kernels.gemm_variants() == []
    monkeypatch.setenv("SYNSAMPLE_KERNEL_ISA", "sse4")
    assert kernels.variants() == ["base"] and set(kernels.gemm_variants()) <= {"sse4"}
    monkeypatch.setenv("SYNSAMPLE_KERNEL_ISA", "avx2")
    assert "avx512" not in kernels.variants()


@needs_library
@pytest.mark.parametrize("m,k,n", [(37, 33, 70), (4, 784, 64), (130, 200, 3200), (1, 2, 1)])
def test_u8s8_gemm_is_exact(m, k, n):
    if not kernels.gemm_variants():
        pytest.skip("this CPU runs no u8s8 variant")
    g = torch.Generator().manual_seed(m + k + n)
    x = torch.randint(0, 256, (m, k), dtype=torch.uint8, generator=g)
    x[:, : k // 3] = 0  # a border of zeros in every row, as around a digit: skipped quads
    x[1::2, k // 2:] = 0  # zeros in some rows only: kept
    x[0] = 255  # the largest sums the kernel must not saturate on
    w = torch.randint(-1, 2, (n, k), dtype=torch.int8, generator=g)
    w[0] = 1
    w[-1] = -1
    want = x.to(torch.int64) @ w.to(torch.int64).T
    for variant in kernels.gemm_variants():
        got = kernels.gemm_u8s8(x, kernels.pack_u8s8(w, variant), n, variant)
        assert got.dtype == torch.float32 and torch.equal(got.to(torch.int64), want), variant
        scaled = kernels.gemm_u8s8(x, kernels.pack_u8s8(w, variant), n, variant, 1 / 255)
        assert torch.equal(scaled, want.to(torch.float32).mul_(1 / 255)), variant


@needs_library
def test_u8s8_gemm_reads_a_strided_input():
    x = torch.randint(0, 256, (20, 50), dtype=torch.uint8)[:, 5:45]
    w = torch.randint(-1, 2, (16, 40), dtype=torch.int8)
    for variant in kernels.gemm_variants():
        got = kernels.gemm_u8s8(x, kernels.pack_u8s8(w, variant), 16, variant)
        assert torch.equal(got.to(torch.int64), x.to(torch.int64) @ w.to(torch.int64).T)


def test_machine_names_the_cpu_and_its_isa():
    info = machine.describe()
    assert info["cpu"] and info["torch_threads"] >= 1
    assert set(info["isa"]) <= set(machine.ISA_FLAGS)
    if platform.machine() == "x86_64" and "avx512f" in machine.cpu_flags().split():
        assert "avx512f" in info["isa"]
