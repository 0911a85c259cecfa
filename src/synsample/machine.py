"""What CPU this is: its model name, its feature flags and the instruction sets that matter to
sampling speed.

One place for what keys the compiled kernels ([`synsample.kernels`][synsample.kernels]) and the
tuned sizes (`synsample.tuning`) to a CPU, and for what ``synsample bench`` reports about the
machine.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path
from typing import Any

#: the feature flags ``bench`` reports, where the CPU has them (Linux ``/proc/cpuinfo`` names):
#: the vector widths the compiled kernel and the GEMMs can use, and the int8 / bf16 dot products
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx_vnni", "avx512f", "avx512bw", "avx512vl",
             "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16",
             "amx_fp16", "asimd", "asimddp", "sve", "sve2", "i8mm", "bf16")


@functools.cache
def _cpuinfo() -> list[str]:
    """The lines of ``/proc/cpuinfo`` (none where there is no such file)."""
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def _field(*names: str) -> str | None:
    """The first processor's value of the first field named ``names``."""
    for line in _cpuinfo():
        name, _, value = line.partition(":")
        if name.strip() in names:
            return value.strip()
    return None


def cpu_flags() -> str:
    """The CPU's feature-flags line as ``/proc/cpuinfo`` writes it (x86 ``flags``, Arm
    ``Features``), else the processor name: what a compiled kernel or a tuned size is keyed by.

    Returns:
        The line, or ``platform.processor()``.
    """
    for line in _cpuinfo():
        if line.startswith(("flags", "Features")):
            return line
    return platform.processor()


def cpu_model() -> str:
    """The CPU's model name (``AMD EPYC 9B45``, ...), else the processor or machine name.

    Returns:
        The name.
    """
    return (_field("model name") or _field("Model", "Hardware") or platform.processor()
            or platform.machine())


def isa() -> list[str]:
    """The [`ISA_FLAGS`][synsample.machine.ISA_FLAGS] this CPU has, in that order.

    Returns:
        The flags found.
    """
    flags = set(cpu_flags().split(":", 1)[-1].split())
    return [f for f in ISA_FLAGS if f in flags]


def speed_key() -> dict[str, Any]:
    """What makes one computation faster or slower here, for the caches of measured choices
    ([`synsample.paths`][synsample.paths], `synsample.tuning`): the CPU (model and feature flags),
    torch's version, threads and kernel level (``ATEN_CPU_CAPABILITY``), and oneDNN's ISA limit
    (``ONEDNN_MAX_CPU_ISA``).

    Returns:
        The key, JSON-able.
    """
    import hashlib

    import torch

    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # older torch
        capability = None
    return {"cpu": cpu_model(), "cpu_flags": hashlib.sha256(cpu_flags().encode()).hexdigest()[:16],
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "torch_cpu_capability": capability,
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA")}


def describe() -> dict[str, Any]:
    """The machine as ``bench`` reports it: CPU model, ISA flags, cores, torch's threads and
    the vector width torch's own kernels dispatch to.

    Returns:
        ``platform``, ``processor``, ``cpu``, ``isa``, ``cores``, ``torch_threads`` and
        ``torch_cpu_capability``.
    """
    import torch

    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # older torch
        capability = None
    return {"platform": platform.platform(), "processor": platform.processor(),
            "cpu": cpu_model(), "isa": isa(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch_cpu_capability": capability}
