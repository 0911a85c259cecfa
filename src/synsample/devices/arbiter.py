"""SpinBayes' arbiter (paper 004, sections 3.3 and 3.5.1): per layer and pass, pick which of
the N crossbars computes, from ``ceil(log2 N)`` random bits made by a stochastic SOT-MTJ.

[`SOTSwitch`][synsample.devices.arbiter.SOTSwitch] is the coin: its switching probability under a
write current ``I`` is eq. 5,

    p_sw(I) = 1 - exp(-(t / tau0) exp(-Delta (1 - 2 (I / Ic0) (pi / 2 - I / Ic0))))

(the paper prints the outer exponent without its minus sign, which would make ``p_sw``
negative). ``Delta`` is the thermal stability factor, ``t`` the pulse duration, ``tau0`` the
attempt time, ``Ic0`` the critical current at 0 K; by default ``Ic0`` is calibrated so that
``p_sw = 0.5`` at 230 uA, as the paper states, with the SET pulse of 10 ns. The curve is
monotone up to ``I = pi/4 Ic0``; the driver sets the current that gives the asked probability
(``current_for``), off by ``current_error_ua`` when that is set (a miscalibrated driver).

[`Arbiter`][synsample.devices.arbiter.Arbiter] turns fair bits into a crossbar index: ``ceil(log2
N)`` bits read as a binary number, drawn again when it is N or more (no bias for N not a power of
2), and for ``n``-way inference ``n`` distinct crossbars (a repeat is drawn again). With biased bits
the choice is not uniform, as it would not be in hardware.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from synsample.devices.base import RandomSource
from synsample.devices.coins import IdealCoin
from synsample.errors import ConfigError


class SOTSwitch(RandomSource):
    """A stochastic SOT-MTJ read once per draw (1 random bit), ``P(1) = p_sw(I)`` (paper 004,
    eq. 5).

    Args:
        delta: the thermal stability factor ``Delta``.
        pulse_ns: the write pulse duration ``t`` (ns).
        attempt_ns: the attempt time ``tau0`` (ns).
        ic0_ua: the critical current at 0 K ``Ic0`` (uA); None calibrates it so that
            ``p_sw = 0.5`` at ``half_at_ua``.
        half_at_ua: the current of ``p_sw = 0.5`` used for that calibration (uA).
        current_error_ua: an offset added to every current the driver sets (uA).

    Raises:
        ConfigError: for a non-positive Delta, pulse, attempt time or calibration current.
    """

    name = "sot-mtj"
    technology = "sot-mtj"

    def __init__(self, delta: float = 40.0, pulse_ns: float = 10.0, attempt_ns: float = 1.0,
                 ic0_ua: float | None = None, half_at_ua: float = 230.0,
                 current_error_ua: float = 0.0) -> None:
        super().__init__()
        if delta <= 0 or pulse_ns <= 0 or attempt_ns <= 0 or half_at_ua <= 0:
            raise ConfigError("an SOT switch needs positive Delta, pulse, attempt time and "
                              "calibration current")
        self.delta, self.pulse_ns, self.attempt_ns = delta, pulse_ns, attempt_ns
        self.current_error_ua = current_error_ua
        self.half_at_ua = half_at_ua
        self.ic0_ua = float(ic0_ua if ic0_ua is not None
                            else half_at_ua / self._reduced_current(0.5))

    @property
    def bits_per_draw(self) -> int:
        """One bit per read."""
        return 1

    def switching_probability(self, current_ua: torch.Tensor | float) -> torch.Tensor:
        """``p_sw(I)`` at write currents ``current_ua`` (paper 004, eq. 5, with the outer
        minus sign).

        Args:
            current_ua: write currents in microamperes.

        Returns:
            The switching probabilities, float64.
        """
        i = torch.as_tensor(current_ua, dtype=torch.float64) / self.ic0_ua
        barrier = self.delta * (1.0 - 2.0 * i * (math.pi / 2.0 - i))
        rate = (self.pulse_ns / self.attempt_ns) * torch.exp(-barrier)
        return -torch.expm1(-rate)

    def _reduced_current(self, p: torch.Tensor | float) -> torch.Tensor:
        """``I / Ic0`` giving switching probability ``p`` on the monotone branch."""
        p = torch.as_tensor(p, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
        g = -torch.log(-torch.log1p(-p) * self.attempt_ns / self.pulse_ns) / self.delta
        disc = (math.pi ** 2 - 8.0 * (1.0 - g)).clamp_min(0.0)
        return (math.pi - disc.sqrt()) / 4.0

    def current_for(self, p: torch.Tensor | float) -> torch.Tensor:
        """The write current (uA) the driver applies for switching probability ``p``.

        Args:
            p: the asked switching probabilities.

        Returns:
            The currents on the monotone branch of eq. 5, float64 (without the driver's
            error).
        """
        return self._reduced_current(p) * self.ic0_ua

    def probability(self, p: torch.Tensor, pool: str = "") -> torch.Tensor:
        """``p_sw`` at the current the driver sets for ``p``, plus its error (eq. 5).

        Args:
            p: the asked probabilities.
            pool: unused (every switch has the same curve).

        Returns:
            The realised probabilities, float32.
        """
        current = self.current_for(p) + self.current_error_ua
        return self.switching_probability(current).to(torch.float32)

    def describe(self) -> dict[str, Any]:
        """The switch's parameters, for reports.

        Returns:
            Name, Delta, pulse, attempt time, ``Ic0``, calibration, current error, bits.
        """
        return {"device": self.name, "delta": self.delta, "pulse_ns": self.pulse_ns,
                "attempt_ns": self.attempt_ns, "ic0_ua": round(self.ic0_ua, 3),
                "half_at_ua": self.half_at_ua, "current_error_ua": self.current_error_ua,
                "bits_per_draw": 1}


class Arbiter:
    """Chooses ``ways`` distinct crossbars of ``crossbars`` from the bits of ``coin`` (a fair
    coin: [`SOTSwitch`][synsample.devices.arbiter.SOTSwitch] by default,
    [`IdealCoin`][synsample.devices.coins.IdealCoin] for an ideal uniform arbiter).

    Args:
        crossbars: N, the crossbars to choose among.
        coin: the device of the arbiter's bits (an SOT switch by default).
        ways: ``n``, the distinct crossbars chosen per pass.

    Raises:
        ConfigError: unless ``1 <= ways <= crossbars``, both whole numbers.
    """

    def __init__(self, crossbars: int, coin: RandomSource | None = None, ways: int = 1) -> None:
        whole = all(isinstance(v, int) and not isinstance(v, bool) for v in (crossbars, ways))
        if not whole or crossbars < 1 or not 1 <= ways <= crossbars:
            raise ConfigError(f"an arbiter needs 1 <= ways <= crossbars, got {ways} of "
                              f"{crossbars}{'' if whole else ' (both whole numbers)'}")
        self.crossbars, self.ways = crossbars, ways
        self.coin = coin if coin is not None else SOTSwitch()
        self.bits = max(1, math.ceil(math.log2(crossbars)))

    @classmethod
    def ideal(cls, crossbars: int, ways: int = 1) -> Arbiter:
        """An arbiter whose bits are ideal coins (uniform choices).

        Args:
            crossbars: N, the crossbars to choose among.
            ways: the distinct crossbars chosen per pass.

        Returns:
            The arbiter.
        """
        return cls(crossbars, IdealCoin(), ways)

    def _index(self, count: int, generator: torch.Generator | None, device) -> torch.Tensor:
        half = self.coin.probability(torch.full((self.bits,), 0.5, device=device))
        weights = 2 ** torch.arange(self.bits, device=device)
        out = torch.empty(count, dtype=torch.int64, device=device)
        todo = torch.arange(count, device=device)
        while len(todo):
            bits = self.coin.draw(half, generator, (len(todo),))
            value = (bits.to(torch.int64) * weights).sum(-1)
            ok = value < self.crossbars
            out[todo[ok]] = value[ok]
            todo = todo[~ok]
        return out

    def choose(self, count: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:
        """``count`` independent choices, each ``ways`` distinct crossbars.

        Args:
            count: the number of choices.
            generator: the generator of the coin's draws (None: torch's default).
            device: where the result is made.

        Returns:
            int64 ``[count, ways]`` crossbar indices.
        """
        picks = self._index(count, generator, device)[:, None]
        while picks.shape[1] < self.ways:
            new = self._index(count, generator, device)
            repeat = (picks == new[:, None]).any(1)
            while repeat.any():
                new[repeat] = self._index(int(repeat.sum()), generator, device)
                repeat = (picks == new[:, None]).any(1)
            picks = torch.cat([picks, new[:, None]], dim=1)
        return picks

    def describe(self) -> dict[str, Any]:
        """The arbiter's settings, for reports.

        Returns:
            Crossbars, ways, bits per choice and the coin's description.
        """
        return {"crossbars": self.crossbars, "ways": self.ways, "bits_per_choice": self.bits,
                "coin": self.coin.describe()}
