"""synsample: sampled stochastic neural networks on PyTorch.

Every method is a distribution over forward passes (:class:`synsample.nn.StochasticModel`);
randomness comes from device models that count their bits (:mod:`synsample.devices`); one
sampling engine (:func:`synsample.engine.predict`) streams K passes into a
:class:`~synsample.prediction.Prediction`; one set of metrics and one report read it.
"""

__version__ = "0.1.0"
