"""Sampled layers shared by methods, the sampling context and the conversion walk."""

from synsample.nn.coinflip import CoinFlipLinear
from synsample.nn.convert import replace_modules, split_prefix
from synsample.nn.sampling import SamplingContext
from synsample.nn.stochastic import SampledNetwork, StochasticModel
from synsample.randomness import derive_seed

__all__ = ["CoinFlipLinear", "SamplingContext", "SampledNetwork", "StochasticModel",
           "derive_seed", "replace_modules", "split_prefix"]
