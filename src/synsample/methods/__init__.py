"""Methods: each turns a trained network into a :class:`~synsample.nn.StochasticModel`."""

from __future__ import annotations

from types import ModuleType

from synsample.errors import ConfigError
from synsample.methods import (
    bbb,
    ensemble,
    mc_dropconnect,
    mc_dropout,
    nsm,
    sc,
    scann,
    spinbayes,
)

#: every method; each module's ``convert`` takes one trained network (the ensemble's a list)
METHODS: dict[str, ModuleType] = {"scann": scann, "nsm": nsm, "sc": sc, "bbb": bbb,
                                  "spinbayes": spinbayes, "mc-dropout": mc_dropout,
                                  "mc-dropconnect": mc_dropconnect, "ensemble": ensemble}

__all__ = ["METHODS", "bbb", "bitstream_for", "convert", "ensemble", "get", "mc_dropconnect",
           "mc_dropout", "nsm", "sc", "scann", "spinbayes"]


def bitstream_for(kind: str = "ideal", precision: str | int | None = "full"):
    """The bitstream source of the ``sc`` method: ``ideal``, ``lfsr`` (``precision`` bits wide,
    16 for full) or ``mtj`` (a continuous bias DAC for full, else ``2^precision`` bias
    levels)."""
    from synsample import devices

    full = precision is None or str(precision).lower() in ("full", "ideal", "float", "fp32")
    try:
        bits = None if full else int(str(precision))
    except ValueError:
        raise ConfigError(f"unknown precision {precision!r}; use full or a number of bits") \
            from None
    if kind == "ideal":
        return devices.IdealBitstream()
    if kind == "lfsr":
        return devices.LFSRBitstream(16 if bits is None else bits)
    if kind == "mtj":
        return devices.MTJBitstream(bias_levels=None if bits is None else 2 ** bits)
    raise ConfigError(f"unknown bitstream source {kind!r}; use ideal, lfsr or mtj")


def convert(name: str, model, precision: str | int | None = "full", stream_length: int = 100,
            bitstream: str = "ideal", sc_path: str = "fast", calibration=None):
    """The stochastic model of ``model`` under method ``name``: a coin of ``precision`` for
    ``scann`` and ``nsm``; for ``sc`` streams of ``stream_length`` bits from a ``bitstream``
    source of that precision, computed by ``sc_path`` (``fast`` or ``bits``); for
    ``spinbayes`` crossbars of ``precision`` bits (Q, 4 for full), their BatchNorm re-calibrated
    on the ``calibration`` images (required). ``bbb``, ``mc-dropout``, ``mc-dropconnect`` and
    ``ensemble`` (``model``: a list of members) take no precision."""
    from synsample import devices

    if name == "sc":
        return sc.convert(model, length=stream_length, source=bitstream_for(bitstream, precision),
                          path=sc_path)
    if name in ("scann", "nsm"):
        return get(name).convert(model, coin=devices.coin_for_precision(precision))
    full = precision is None or str(precision).lower() in ("full", "ideal", "float", "fp32")
    if name == "spinbayes":
        if calibration is None:
            raise ConfigError("SpinBayes re-calibrates BatchNorm on training images: pass "
                              "calibration images")
        bits = spinbayes.DEFAULT_BITS if full else devices.QuantizedCoin(int(precision)).bits
        sto = spinbayes.convert(model, bits=bits)
        spinbayes.recalibrate_batchnorm(sto, calibration)
        return sto
    if not full:
        raise ConfigError(f"{name} has no precision to set; leave --precision at full")
    if name == "ensemble":
        return ensemble.convert(model if isinstance(model, list | tuple) else [model])
    return get(name).convert(model)


def get(name: str) -> ModuleType:
    """The method module called ``name`` (it has a ``convert`` function)."""
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; available: {', '.join(METHODS)}")
    return METHODS[name]
