"""Imperfect coins (issue 8's device non-idealities, the static ones): a wrapper around any coin
that changes the probability each device realises, so every method and sampling path that asks
its device for ``probability`` (shared draws, counter-based thresholds, the compiled kernel)
sees the same imperfect devices.

Device ``k`` is element ``k`` (row-major) of the probability tensor a layer asks for, as in
[`MTJBitstream`][synsample.devices.MTJBitstream]: one per weight for scANN coins and DropConnect
masks, one per unit for dropout masks, one per bit for the SpinBayes arbiter; a layer that
asks for one scalar probability (NSM blank-out) has one device. Each layer is its own pool of
devices (the ``pool`` a layer names when it asks), with its own offsets and stuck devices.
For the asked ``p``:

    p' = base.probability(clip(p + bias + offset_k, 0, 1)),

with ``offset_k ~ N(0, spread^2)`` fixed per device by ``seed`` (device-to-device spread), and
then a seeded fraction ``stuck_at_0`` of the devices always give 0 and ``stuck_at_1`` always 1.
``base`` sets the precision (an `IdealCoin` or a b-bit `QuantizedCoin`); the
offsets act on the analog setting before the device quantizes it. Correlation between
successive bits and drift over time are [`TemporalCoin`][synsample.devices.TemporalCoin]'s (wrap a
``NonIdealCoin`` in one to have both).
"""

from __future__ import annotations

from typing import Any

import torch

from synsample.devices.base import RandomSource, pool_seed
from synsample.devices.coins import CoinWrapper
from synsample.errors import ConfigError


class NonIdealCoin(CoinWrapper):
    """``base`` with a bias, device-to-device spread and stuck devices, all seeded.

    Args:
        base: the coin that sets the precision (an ideal coin by default).
        bias: added to every asked probability.
        spread: the standard deviation of the per-device offset.
        stuck_at_0: the fraction of devices that always give 0.
        stuck_at_1: the fraction of devices that always give 1.
        seed: which devices (the offsets and stuck devices of one chip).

    Raises:
        ConfigError: for a negative spread or stuck-at rates outside [0, 1] or summing to
            more than 1.
    """

    name = "non-ideal"

    def __init__(self, base: RandomSource | None = None, bias: float = 0.0,
                 spread: float = 0.0, stuck_at_0: float = 0.0, stuck_at_1: float = 0.0,
                 seed: int = 0) -> None:
        super().__init__(base)
        if spread < 0 or not 0 <= stuck_at_0 <= 1 or not 0 <= stuck_at_1 <= 1 or \
                stuck_at_0 + stuck_at_1 > 1:
            raise ConfigError("a non-ideal coin needs spread >= 0 and stuck-at rates in [0, 1] "
                              "that sum to at most 1")
        self.bias, self.spread = bias, spread
        self.stuck_at_0, self.stuck_at_1, self.seed = stuck_at_0, stuck_at_1, seed

    def _devices(self, numel: int, device, pool: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        """Per-device offsets and states (0 working, 1 stuck at 0, 2 stuck at 1) of a pool."""
        g = torch.Generator().manual_seed(pool_seed(self.seed, pool))
        offsets = torch.randn(numel, generator=g, dtype=torch.float64) * self.spread
        u = torch.rand(numel, generator=g, dtype=torch.float64)
        state = torch.where(u < self.stuck_at_0, 1, torch.where(
            u < self.stuck_at_0 + self.stuck_at_1, 2, 0))
        return offsets.to(device), state.to(device)

    def probability(self, p: torch.Tensor, pool: str = "") -> torch.Tensor:
        """``base.probability(clip(p + bias + offset_k, 0, 1))`` per device, 0 or 1 for the
        stuck ones.

        Args:
            p: the asked probabilities, one device per element.
            pool: the pool's name (a layer's), which seeds its devices.

        Returns:
            The realised probabilities, float32, shaped as ``p``.
        """
        offsets, state = self._devices(p.numel(), p.device, pool)
        asked = (p.to(torch.float64).flatten() + self.bias + offsets).clamp(0.0, 1.0)
        realised = self.base.probability(asked, pool).to(torch.float64)
        realised = torch.where(state == 1, 0.0, torch.where(state == 2, 1.0, realised))
        return realised.reshape(p.shape).to(torch.float32)

    def describe(self) -> dict[str, Any]:
        """The device's parameters, for reports.

        Returns:
            Name, base coin, bias, spread, stuck-at rates, seed and bits per draw.
        """
        return {"device": self.name, "base": self.base.describe(), "bias": self.bias,
                "spread": self.spread, "stuck_at_0": self.stuck_at_0,
                "stuck_at_1": self.stuck_at_1, "seed": self.seed,
                "bits_per_draw": self.bits_per_draw}


#: the keys of a non-ideal coin spec (``nonideal:bits=4,bias=0.02,...``), see
#: [`coin_from_spec`][synsample.devices.nonideal.coin_from_spec]
SPEC_KEYS = ("bits", "bias", "spread", "stuck", "stuck0", "stuck1", "seed")


def coin_from_spec(spec: str | int | None) -> RandomSource:
    """The device a short text names, as ``synsample train --sampling-aware`` takes it:
    ``full`` (an ideal coin), a number of bits (``8``, ``4``: a b-bit coin), or
    ``nonideal:KEY=VALUE,...`` with keys ``bits`` (the base coin's precision, default full),
    ``bias``, ``spread``, ``stuck`` (that fraction of devices stuck, half at 0 and half at 1,
    as ``reproduce robustness`` draws them), ``stuck0``, ``stuck1`` and ``seed`` (which
    devices: the offsets and stuck devices of one chip, default 0).

    Args:
        spec: the text (None: ``full``), or a number of bits.

    Returns:
        An ideal, quantized or [`NonIdealCoin`][synsample.devices.nonideal.NonIdealCoin] coin.

    Raises:
        ConfigError: an unknown key or a value that is not a number (the message names the
            form).
    """
    from synsample.devices.coins import coin_for_precision

    text = "full" if spec is None else str(spec).strip()
    kind, _, rest = text.partition(":")
    if kind.lower() not in ("nonideal", "non-ideal"):
        if rest:
            raise ConfigError(f"unknown coin {text!r}; use full, a number of bits (8, 4) or "
                              "nonideal:bits=4,bias=0.02,spread=0.05,stuck=0.01,seed=0")
        return coin_for_precision(text)
    values: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq or key.strip() not in SPEC_KEYS:
            raise ConfigError(f"bad non-ideal coin part {part!r} in {text!r}; use KEY=VALUE with "
                              f"KEY one of {', '.join(SPEC_KEYS)}")
        values[key.strip()] = value.strip()
    try:
        num = {k: float(v) for k, v in values.items() if k not in ("bits", "seed")}
        seed = int(values.get("seed", "0"))
    except ValueError:
        raise ConfigError(f"the non-ideal coin {text!r} has a value that is not a number") \
            from None
    stuck = num.get("stuck", 0.0)
    return NonIdealCoin(coin_for_precision(values.get("bits", "full")), bias=num.get("bias", 0.0),
                        spread=num.get("spread", 0.0),
                        stuck_at_0=num.get("stuck0", stuck / 2),
                        stuck_at_1=num.get("stuck1", stuck / 2), seed=seed)
