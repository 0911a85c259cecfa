"""Device models: where random bits come from, what probability they realise, what they cost."""

from synsample.devices.base import RandomSource
from synsample.devices.coins import IdealCoin, QuantizedCoin, coin_for_precision

__all__ = ["RandomSource", "IdealCoin", "QuantizedCoin", "coin_for_precision"]
