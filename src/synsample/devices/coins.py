"""Coins: the ideal float coin and the b-bit coin of the scANN paper (000, section III.D)."""

from __future__ import annotations

from typing import Any

import torch

from synsample.devices.base import RandomSource
from synsample.errors import ConfigError


class IdealCoin(RandomSource):
    """A coin compared against a float32 uniform number: ``P(1) = p`` up to 2^-24.

    ``torch.rand`` draws float32 uniforms on the grid ``k / 2^24``, so one draw consumes 24
    random bits; that is what [`random_bits`][synsample.devices.coins.IdealCoin.random_bits] counts.
    """

    name = "ideal"

    @property
    def bits_per_draw(self) -> int:
        """24 bits: one float32 uniform."""
        return 24

    def probability(self, p: torch.Tensor, pool: str = "") -> torch.Tensor:
        """``p`` itself, as float32 clipped to [0, 1].

        Args:
            p: the asked probabilities.
            pool: unused.

        Returns:
            The realised probabilities.
        """
        return p.to(torch.float32).clamp(0.0, 1.0)


class QuantizedCoin(RandomSource):
    """A coin whose probability and random number both have ``bits`` bits (paper 000, III.D).

    The device stores the probability as an integer ``m`` in ``0 .. 2^b - 1`` (``b`` bits),
    draws a uniform integer ``r`` in ``0 .. 2^b - 1`` (``b`` random bits) and outputs 1 when
    ``r < m``; so ``P(1) = m / 2^b``. The requested probability is rounded to the nearest level
    (ties to even) and clipped to the top level. The levels are therefore
    ``0, 1/2^b, ..., (2^b - 1)/2^b``: ``|w| = 1`` is *not* "always" but ``1 - 2^-b``
    (15/16 at 4 bits, 255/256 at 8 bits), and ``|w| < 2^-(b+1)`` is "never".

    The draw compares a float32 uniform ``u`` with ``m / 2^b``; this is exactly the integer
    comparator, because ``floor(u * 2^b)`` is uniform on ``0 .. 2^b - 1`` and
    ``floor(u * 2^b) < m`` if and only if ``u < m / 2^b`` (``b <= 24``).

    Args:
        bits: ``b``, 1 to 24.

    Raises:
        ConfigError: for a precision that is not an integer from 1 to 24.
    """

    name = "quantized"

    def __init__(self, bits: int) -> None:
        super().__init__()
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 24:
            raise ConfigError(f"a quantized coin needs an integer precision of 1 to 24 bits, got "
                              f"{bits!r}; use e.g. QuantizedCoin(bits=8)")
        self.bits = bits

    @property
    def bits_per_draw(self) -> int:
        """``b`` bits per draw."""
        return self.bits

    @property
    def levels(self) -> torch.Tensor:
        """Every probability this coin can realise, ascending."""
        return torch.arange(2 ** self.bits, dtype=torch.float64) / 2 ** self.bits

    def probability(self, p: torch.Tensor, pool: str = "") -> torch.Tensor:
        """``p`` rounded to the nearest level ``m / 2^b``, at most ``1 - 2^-b``.

        Args:
            p: the asked probabilities.
            pool: unused.

        Returns:
            The realised probabilities, float32.
        """
        scale = float(2 ** self.bits)
        m = torch.round(p.to(torch.float32).clamp(0.0, 1.0) * scale).clamp(max=scale - 1)
        return m / scale

    def describe(self) -> dict[str, Any]:
        """Name and precision, for reports.

        Returns:
            ``{"device", "bits", "bits_per_draw"}``.
        """
        return {"device": self.name, "bits": self.bits, "bits_per_draw": self.bits_per_draw}


class CoinWrapper(RandomSource):
    """A device model around another coin (``base``, an ideal coin by default) that keeps its
    precision and technology and changes what it realises (see `NonIdealCoin`,
    `TemporalCoin`).

    Args:
        base: the coin wrapped (an ideal coin by default).
    """

    def __init__(self, base: RandomSource | None = None) -> None:
        super().__init__()
        self.base = base if base is not None else IdealCoin()

    @property
    def bits_per_draw(self) -> int:
        """The base coin's bits per draw."""
        return self.base.bits_per_draw

    @property
    def technology(self) -> str:
        """The base coin's technology."""
        return self.base.technology


#: the words that mean "no quantization" for a precision
FULL_PRECISION = ("full", "ideal", "float", "fp32", "none")


def is_full_precision(precision: str | int | None) -> bool:
    """Whether ``precision`` asks for no quantization (None or one of `FULL_PRECISION`).

    Args:
        precision: a precision as the CLI and configs write it.

    Returns:
        True for full precision.
    """
    return precision is None or str(precision).lower() in FULL_PRECISION


def precision_bits(precision: str | int | None) -> int | None:
    """The number of bits a precision names (``8``, ``'4'``), or None for full precision; what
    the bits may be is up to the device that takes them.

    Args:
        precision: full precision (None, ``'full'``, ...) or a number of bits.

    Returns:
        The bits, or None.

    Raises:
        ConfigError: for a precision that is neither.
    """
    if is_full_precision(precision):
        return None
    try:
        return int(str(precision))
    except ValueError:
        raise ConfigError(f"unknown precision {precision!r}; use full or a number of bits such "
                          "as 8 or 4") from None


def coin_for_precision(precision: str | int | None) -> RandomSource:
    """The coin of a precision as the CLI and the reports name it: ``full``, ``8``, ``4``, ...

    Args:
        precision: full precision (None, ``'full'``, ...) or a number of bits.

    Returns:
        The coin: an [`IdealCoin`][synsample.devices.coins.IdealCoin] or a
            [`QuantizedCoin`][synsample.devices.coins.QuantizedCoin].

    Raises:
        ConfigError: for a precision that is neither.
    """
    bits = precision_bits(precision)
    return IdealCoin() if bits is None else QuantizedCoin(bits)


def coin_or_precision(coin: RandomSource | None, precision: str | int | None
                      ) -> RandomSource | None:
    """The coin a method's ``coin`` or ``precision`` option names: ``coin`` as given, else the
    coin of ``precision`` ([`coin_for_precision`][synsample.devices.coins.coin_for_precision]), else
    None.

    Args:
        coin: a device, or None.
        precision: full precision or bits, or None.

    Returns:
        The coin, or None when neither is given.

    Raises:
        ConfigError: when both are given (one would silently win over the other).
    """
    if precision is None:
        return coin
    if coin is not None:
        raise ConfigError("give a coin or a precision, not both")
    return coin_for_precision(precision)
