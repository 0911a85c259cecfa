"""A Gaussian noise device: the multiplicative synaptic noise of the Gaussian NSM (paper 002,
section 2.1, ``xi ~ N(1, sigma^2)``) is ``1 + sigma * e`` with ``e`` from this source."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import torch

from synsample.devices.base import NoiseSource
from synsample.errors import ConfigError

#: bits of the uniform integer behind a deviate of the ideal source in counter-based draws
IDEAL_BITS = 24


class GaussianSource(NoiseSource):
    """Standard-normal deviates ``e``, ideal or with ``bits`` bits of precision.

    A ``b``-bit source draws a uniform integer ``r`` in ``0 .. 2^b - 1`` and outputs the
    mid-point quantile ``Phi^-1((r + 1/2) / 2^b)``: ``2^b`` equally likely levels, symmetric
    (mean exactly 0) with a variance a little below 1
    ([`variance`][synsample.devices.gaussian.GaussianSource.variance] gives it, so a layer can use
    the moments the device really has). The ideal source (``bits=None``) draws float32 normals and
    counts 24 bits per deviate.

    Args:
        bits: ``b``, 1 to 24, or None for the ideal source.

    Raises:
        ConfigError: for another precision.
    """

    name = "gaussian"

    def __init__(self, bits: int | None = None) -> None:
        super().__init__()
        if bits is not None and (isinstance(bits, bool) or not isinstance(bits, int)
                                 or not 1 <= bits <= 24):
            raise ConfigError(f"a Gaussian source needs a precision of 1 to 24 bits or None "
                              f"(ideal), got {bits!r}")
        self.bits = bits

    @property
    def ideal(self) -> bool:
        """Whether the source draws float32 normals."""
        return self.bits is None

    @property
    def bits_per_draw(self) -> int:
        """``b``, or 24 for the ideal source."""
        return IDEAL_BITS if self.bits is None else self.bits

    @cached_property
    def variance(self) -> float:
        """The variance of one deviate (1 for the ideal source; exact over the levels else)."""
        if self.bits is None:
            return 1.0
        levels = self.from_uniform_ints(torch.arange(2 ** self.bits), self.bits).double()
        return float((levels ** 2).mean())

    @staticmethod
    def from_uniform_ints(r: torch.Tensor, bits: int) -> torch.Tensor:
        """The mid-point quantiles ``Phi^-1((r + 1/2) / 2^bits)`` of ``bits``-bit integers.

        Args:
            r: uniform integers in ``0 .. 2^bits - 1``.
            bits: their bits.

        Returns:
            float32 deviates, same shape.
        """
        u = (r.to(torch.float64) + 0.5) / 2.0 ** bits
        return torch.special.ndtri(u).to(torch.float32)

    def normal(self, shape: tuple[int, ...], generator: torch.Generator | None,
               device: torch.device | str = "cpu") -> torch.Tensor:
        """Deviates of ``shape`` (float32), counted.

        Args:
            shape: the output's shape.
            generator: the generator (None: torch's default).
            device: where they are made.

        Returns:
            Standard-normal deviates, or the ``b``-bit levels of a quantized source.
        """
        n = 1
        for s in shape:
            n *= s
        self.draws += n
        if self.bits is None:
            return torch.randn(shape, generator=generator, device=device)
        r = torch.randint(0, 2 ** self.bits, shape, generator=generator, device=device)
        return self.from_uniform_ints(r, self.bits)

    def describe(self) -> dict[str, Any]:
        """Name and precision, for reports.

        Returns:
            ``{"device", "bits", "bits_per_draw"}``.
        """
        return {"device": self.name, "bits": self.bits, "bits_per_draw": self.bits_per_draw}
