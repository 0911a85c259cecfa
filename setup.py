"""Builds synsample's compiled kernels when the package is installed (``pip install .``).

One binary for every CPU of the architecture: ``native.c`` compiles each kernel once per
instruction set under GCC's target pragmas, and :mod:`synsample.kernels` picks among them at
run time by measurement. Optional: where no C compiler works (or it is not GCC or Clang), the
package installs without it and synsample uses its pure-PyTorch twins, which give the same bits.
Everything else about the package is in ``pyproject.toml``.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "synsample.kernels._native",
    sources=["src/synsample/kernels/native.c"],
    depends=["src/synsample/kernels/coinflip.h", "src/synsample/kernels/gemm_u8s8.h"],
    # no fused multiply-adds: the float sums round exactly like PyTorch's twin. OpenMP: the
    # library links libgomp.so.1, which resolves to the copy PyTorch has already loaded, so
    # the kernels' threads are PyTorch's own (its waiting workers take the work at once)
    extra_compile_args=["-O3", "-ffp-contract=off", "-fno-math-errno", "-Wno-psabi",
                        "-fopenmp"],
    extra_link_args=["-fopenmp"],
    optional=True)])
