"""Bitstream sources for stochastic computing (paper 003, section II): a bipolar value ``x`` in
[-1, 1] is a stream of L bits with ``P(1) = (x + 1) / 2``.

Each source says which probability it really realises and counts the stream bits it makes
(``draws``); ``bits_per_draw`` is the random bits one stream bit costs on that hardware:

- [`IdealBitstream`][synsample.devices.bitstreams.IdealBitstream]: a float comparator, ``P(1)``
  exactly as asked (24 random bits);
- [`LFSRBitstream`][synsample.devices.bitstreams.LFSRBitstream]: CMOS, a ``width``-bit
  maximal-length LFSR per stream compared with a ``width``-bit threshold each clock; a clock shifts
  one new bit in (1 random bit per stream bit, paper 003's ~10 fJ), so successive stream bits are
  not independent;
- [`MTJBitstream`][synsample.devices.bitstreams.MTJBitstream]: a stochastic MTJ read once per bit (1
  random bit), whose ``P(1)`` (the antiparallel state) is a sigmoid of the bias voltage, from above
  95% at -1 V to below 5% at +1 V (Fig. 2c), set from a finite set of bias levels, optionally with
  device-to-device spread.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any

import torch

from synsample.devices.base import NoiseSource, pool_seed
from synsample.errors import ConfigError


def bipolar_probability(x: torch.Tensor) -> torch.Tensor:
    """Bipolar encoding (paper 003, section II.A): ``P(1) = (x + 1) / 2`` for ``x`` in [-1, 1].

    Args:
        x: bipolar values (clipped to [-1, 1]).

    Returns:
        ``P(1)`` of each value's stream, same shape.
    """
    return (x.clamp(-1.0, 1.0) + 1.0) / 2.0


class BitstreamSource(NoiseSource):
    """Makes bitstreams: ``streams(prob, length)`` is a bool tensor ``prob.shape + (length,)``."""

    @abstractmethod
    def probability(self, p: torch.Tensor) -> torch.Tensor:
        """The ``P(1)`` this source realises when asked for ``p`` (one value per stream).

        Args:
            p: the asked probabilities.

        Returns:
            The realised probabilities, same shape.
        """

    #: whether devices of one source realise different probabilities for the same request
    varies_per_device: bool = False

    def device_probability(self, p: torch.Tensor, devices: tuple[int, ...], pool: str = ""
                           ) -> torch.Tensor:
        """The ``P(1)`` each device of a pool realises: ``p``'s trailing dimensions are the
        pool's ``devices`` (one device per element), its leading ones the requests each device
        gets in turn (e.g. one per item for the stream of an input node). ``pool`` tells pools
        apart (a layer's input nodes, its weights). A source without device-to-device
        variation realises
        [`probability`][synsample.devices.bitstreams.BitstreamSource.probability].

        Args:
            p: the asked probabilities ``[..., *devices]``.
            devices: the pool's shape.
            pool: the pool's name.

        Returns:
            The realised probabilities, shaped as ``p``.
        """
        return self.probability(p)

    def _bits(self, prob: torch.Tensor, length: int, generator: torch.Generator | None
              ) -> torch.Tensor:
        """Stream bits for realised probabilities ``prob``: independent Bernoulli bits (a
        source whose bits are not independent, like the LFSR, overrides this)."""
        u = torch.rand(prob.shape + (length,), generator=generator, device=prob.device)
        return u < prob[..., None]

    def streams(self, p: torch.Tensor, length: int, generator: torch.Generator | None = None
                ) -> torch.Tensor:
        """Bitstreams of ``length`` bits for requested probabilities ``p``, counted.

        Args:
            p: the asked probabilities.
            length: L, bits per stream.
            generator: the generator of the bits (None: torch's default).

        Returns:
            Bool streams ``p.shape + (length,)``.
        """
        return self.realised_streams(self.probability(p), length, generator)

    def realised_streams(self, prob: torch.Tensor, length: int,
                         generator: torch.Generator | None = None) -> torch.Tensor:
        """Bitstreams for probabilities ``prob`` that
        [`probability`][synsample.devices.bitstreams.BitstreamSource.probability] already returned
        (a layer that realises each state once), counted.

        Args:
            prob: the realised probabilities.
            length: L, bits per stream.
            generator: the generator of the bits (None: torch's default).

        Returns:
            Bool streams ``prob.shape + (length,)``.

        Raises:
            ConfigError: for a length that is not a positive integer.
        """
        if not isinstance(length, int) or length < 1:
            raise ConfigError(f"a bitstream needs a positive length, got {length!r}")
        self.draws += prob.numel() * length
        return self._bits(prob, length, generator)


class IdealBitstream(BitstreamSource):
    """Independent Bernoulli bits with exactly the requested probability."""

    name = "ideal-bitstream"

    @property
    def bits_per_draw(self) -> int:
        """24 bits: one float32 uniform per stream bit."""
        return 24

    def probability(self, p: torch.Tensor) -> torch.Tensor:
        """``p`` itself, as float32 clipped to [0, 1].

        Args:
            p: the asked probabilities.

        Returns:
            The realised probabilities.
        """
        return p.to(torch.float32).clamp(0.0, 1.0)


#: taps (Galois form, as a mask) of maximal-length LFSRs, by width
LFSR_TAPS = {8: 0xB8, 12: 0xE08, 16: 0xB400, 20: 0x90000, 24: 0xE10000}


class LFSRBitstream(BitstreamSource):
    """A maximal-length Galois LFSR of ``width`` bits per stream, seeded at random (never 0),
    whose state is compared with ``round(p (2^width - 1))`` at every clock: 1 when below.

    Over a whole period every nonzero state appears once, so ``P(1) = t / (2^width - 1)``.

    Args:
        width: the register's bits (a key of `LFSR_TAPS`).

    Raises:
        ConfigError: for a width without known taps.
    """

    name = "lfsr"

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        if width not in LFSR_TAPS:
            raise ConfigError(f"no maximal-length taps for a {width}-bit LFSR; use one of "
                              f"{', '.join(map(str, LFSR_TAPS))}")
        self.width = width

    @property
    def bits_per_draw(self) -> int:
        """One new bit shifted in per clock."""
        return 1

    def probability(self, p: torch.Tensor) -> torch.Tensor:
        """``p`` rounded to the nearest ``t / (2^width - 1)``.

        Args:
            p: the asked probabilities.

        Returns:
            The realised probabilities, float64.
        """
        top = 2 ** self.width - 1
        return torch.round(p.to(torch.float64).clamp(0.0, 1.0) * top) / top

    def _bits(self, prob, length, generator):
        top = 2 ** self.width - 1
        threshold = torch.round(prob.to(torch.float64) * top).to(torch.int64)
        state = torch.randint(1, top + 1, prob.shape, generator=generator, device=prob.device)
        taps = LFSR_TAPS[self.width]
        out = torch.empty(prob.shape + (length,), dtype=torch.bool, device=prob.device)
        for t in range(length):
            # states run over 1 .. 2^w - 1: compare state - 1 with t, so P(1) = t / (2^w - 1)
            out[..., t] = state - 1 < threshold
            lsb = state & 1
            state = (state >> 1) ^ (lsb * taps)
        return out

    def describe(self) -> dict[str, Any]:
        """Name and width, for reports.

        Returns:
            ``{"device", "width", "bits_per_draw"}``.
        """
        return {"device": self.name, "width": self.width, "bits_per_draw": self.bits_per_draw}


class MTJBitstream(BitstreamSource):
    """A stochastic MTJ: ``P(1) = sigmoid(-(V + offset) / slope)`` for a bias ``V`` in
    [``-v_max``, ``v_max``], with ``slope`` such that ``P(1)`` is ``p_edge`` at ``-v_max`` and
    ``1 - p_edge`` at ``+v_max`` (defaults: 95% at -1 V, 5% at +1 V, paper 003 Fig. 2c).

    ``bias_levels``: the number of bias voltages the driver can apply, evenly spaced over
    [-v_max, v_max] (None: any voltage, a continuous DAC); a requested probability gets the
    nearest level's voltage. ``spread``: the standard deviation (volts) of a per-device offset
    of the curve, drawn once per device from ``seed`` (device ``k`` is element ``k`` of the
    probability tensor). Probabilities outside the curve's range are not realisable: asking for
    ``P(1) = 1`` (bipolar +1) gives ``1 - p_edge``.

    Args:
        bias_levels: the driver's bias voltages, or None for a continuous DAC.
        spread: the standard deviation of the per-device offset (volts).
        v_max: the largest bias magnitude (volts).
        p_edge: ``P(1)`` at ``+v_max`` (and ``1 - p_edge`` at ``-v_max``).
        seed: fixes the per-device offsets.

    Raises:
        ConfigError: for fewer than 2 bias levels, ``p_edge`` outside (0, 0.5), a
            non-positive ``v_max`` or a negative spread.
    """

    name = "mtj"
    technology = "s-mtj"

    def __init__(self, bias_levels: int | None = None, spread: float = 0.0, v_max: float = 1.0,
                 p_edge: float = 0.05, seed: int = 0) -> None:
        super().__init__()
        if bias_levels is not None and bias_levels < 2:
            raise ConfigError(f"an MTJ driver needs at least 2 bias levels, got {bias_levels}")
        if not 0.0 < p_edge < 0.5 or v_max <= 0 or spread < 0:
            raise ConfigError("an MTJ needs 0 < p_edge < 0.5, v_max > 0 and spread >= 0")
        self.bias_levels, self.spread, self.v_max, self.p_edge = bias_levels, spread, v_max, p_edge
        self.seed = seed
        self.slope = v_max / math.log((1.0 - p_edge) / p_edge)

    @property
    def bits_per_draw(self) -> int:
        """One read per stream bit."""
        return 1

    def curve(self, volts: torch.Tensor) -> torch.Tensor:
        """``P(1)`` (antiparallel) of an ideal device at bias ``volts``.

        Args:
            volts: bias voltages.

        Returns:
            ``sigmoid(-volts / slope)``.
        """
        return torch.sigmoid(-volts / self.slope)

    def bias(self, p: torch.Tensor) -> torch.Tensor:
        """The bias voltage the driver applies for a requested ``P(1) = p``.

        Args:
            p: the asked probabilities.

        Returns:
            Voltages in [-v_max, v_max] (float64), on the nearest level when the driver has
            levels.
        """
        p = p.to(torch.float64).clamp(1e-12, 1 - 1e-12)
        volts = (-self.slope * torch.log(p / (1 - p))).clamp(-self.v_max, self.v_max)
        if self.bias_levels is not None:
            step = 2 * self.v_max / (self.bias_levels - 1)
            volts = torch.round((volts + self.v_max) / step) * step - self.v_max
        return volts

    @property
    def varies_per_device(self) -> bool:
        """Whether the devices have a spread."""
        return self.spread > 0

    def offsets(self, shape: tuple[int, ...], device: torch.device | str = "cpu",
                pool: str = "") -> torch.Tensor:
        """Each device's curve offset (volts), fixed by ``seed`` (and ``pool``: another pool of
        devices draws its own).

        Args:
            shape: the devices' shape.
            device: where the offsets are put.
            pool: the pool's name.

        Returns:
            float64 offsets of ``shape`` (zeros without spread).
        """
        if self.spread == 0:
            return torch.zeros(shape, dtype=torch.float64, device=device)
        g = torch.Generator().manual_seed(pool_seed(self.seed, pool))
        return (torch.randn(shape, generator=g, dtype=torch.float64) * self.spread).to(device)

    def probability(self, p: torch.Tensor) -> torch.Tensor:
        """The curve at the driver's bias for ``p``, one device per element of ``p``.

        Args:
            p: the asked probabilities.

        Returns:
            The realised probabilities, float32.
        """
        volts = self.bias(p) + self.offsets(tuple(p.shape), p.device)
        return self.curve(volts).to(torch.float32)

    def device_probability(self, p: torch.Tensor, devices: tuple[int, ...], pool: str = ""
                           ) -> torch.Tensor:
        """The curve at the driver's bias for ``p``, with the offsets of the pool's devices.

        Args:
            p: the asked probabilities ``[..., *devices]``.
            devices: the pool's shape.
            pool: the pool's name (it seeds the offsets).

        Returns:
            The realised probabilities, float32.
        """
        volts = self.bias(p) + self.offsets(tuple(devices), p.device, pool)
        return self.curve(volts).to(torch.float32)

    def describe(self) -> dict[str, Any]:
        """The device's parameters, for reports.

        Returns:
            Name, bias levels, spread, ``v_max``, ``p_edge`` and bits per draw.
        """
        return {"device": self.name, "bias_levels": self.bias_levels, "spread_volts": self.spread,
                "v_max": self.v_max, "p_edge": self.p_edge, "bits_per_draw": 1}


def bitstream_for(kind: str = "ideal", precision: str | int | None = "full") -> BitstreamSource:
    """The bitstream source as the command line names it: ``ideal`` (exact probabilities, so
    full precision only), ``lfsr`` (``precision`` bits wide, 16 for full) or ``mtj`` (a
    continuous bias DAC for full, else ``2^precision`` bias levels).

    Args:
        kind: ``'ideal'``, ``'lfsr'`` or ``'mtj'``.
        precision: full precision (None, ``'full'``, ...) or a number of bits.

    Returns:
        The source.

    Raises:
        ConfigError: for an unknown kind or precision, or bits for the ideal source.
    """
    from synsample.devices.coins import precision_bits

    bits = precision_bits(precision)
    if kind == "ideal":
        if bits is not None:
            raise ConfigError(f"an ideal bitstream has no precision (its probabilities are "
                              f"exact), got {bits} bits; use bitstream lfsr or mtj for a b-bit "
                              "source, or precision full")
        return IdealBitstream()
    if kind == "lfsr":
        return LFSRBitstream(16 if bits is None else bits)
    if kind == "mtj":
        return MTJBitstream(bias_levels=None if bits is None else 2 ** bits)
    raise ConfigError(f"unknown bitstream source {kind!r}; use ideal, lfsr or mtj")
