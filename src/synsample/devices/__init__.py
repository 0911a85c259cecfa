"""Device models: where random bits come from, what probability they realise, what they cost."""

from synsample.devices.arbiter import Arbiter, SOTSwitch
from synsample.devices.base import NoiseSource, RandomSource
from synsample.devices.bitstreams import (
    BitstreamSource,
    IdealBitstream,
    LFSRBitstream,
    MTJBitstream,
    bipolar_probability,
    bitstream_for,
)
from synsample.devices.coins import (
    CoinWrapper,
    IdealCoin,
    QuantizedCoin,
    coin_for_precision,
    coin_or_precision,
    is_full_precision,
    precision_bits,
)
from synsample.devices.gaussian import GaussianSource
from synsample.devices.nonideal import NonIdealCoin, coin_from_spec
from synsample.devices.temporal import TemporalCoin

__all__ = ["Arbiter", "BitstreamSource", "CoinWrapper", "GaussianSource", "IdealBitstream",
           "IdealCoin", "LFSRBitstream", "MTJBitstream", "NoiseSource", "NonIdealCoin",
           "QuantizedCoin", "RandomSource", "SOTSwitch", "TemporalCoin", "bipolar_probability",
           "bitstream_for", "coin_for_precision", "coin_from_spec", "coin_or_precision",
           "is_full_precision", "precision_bits"]
