"""synsample: sampled stochastic neural networks on PyTorch.

Every method is a distribution over forward passes
([`synsample.nn.StochasticModel`][synsample.nn.StochasticModel]); randomness comes from device
models that count their bits ([`synsample.devices`][synsample.devices]); one sampling engine
([`synsample.engine.predict`][synsample.engine.predict]) streams K passes into a
[`Prediction`][synsample.prediction.Prediction]; one set of metrics and one report read it.

The front door, for any trained ``nn.Module``::

    import synsample as ss
    sto = ss.convert(my_net, "mc-dropout")          # or scann, mc-dropconnect, bbb, ...
    pred = ss.predict(sto, images, samples=100)     # tensor, array, Dataset or DataLoader
    pred.votes, pred.mean_probs
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "convert", "predict"]

#: the front door's names and where they live (imported on first use, so that the command
#: line starts without loading every method)
_FACE = {"convert": ("synsample.methods", "convert"), "predict": ("synsample.engine", "predict")}


def __getattr__(name: str) -> Any:
    if name in _FACE:
        import importlib

        module, attr = _FACE[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'synsample' has no attribute {name!r}")
