"""Device models: where random bits come from, what probability they realise, what they cost."""

from synsample.devices.base import NoiseSource, RandomSource
from synsample.devices.coins import IdealCoin, QuantizedCoin, coin_for_precision
from synsample.devices.gaussian import GaussianSource

__all__ = ["GaussianSource", "IdealCoin", "NoiseSource", "QuantizedCoin", "RandomSource",
           "coin_for_precision"]
