"""The energy assumptions of the cost model: one named set of figures per operation, per random
bit (by device technology) and per weight bit read, each with its source.

The defaults are the papers' figures where they give one (paper 003: ~20 fJ per s-MTJ stream
bit, ~10 fJ per CMOS LFSR bit; paper 004, Table 4: sensing, RNG, averaging, adder, comparator)
and Horowitz's 45 nm figures (ISSCC 2014, "Computing's energy problem") for digital arithmetic
and SRAM; the rest are stated as this project's assumptions. A user replaces any of them with a
JSON file ([`load`][synsample.hardware.assumptions.load])::

    {"name": "my 28 nm chip", "pj_per_op": {"mac": 1.1}, "pj_per_random_bit": {"s-mtj": 0.05}}

Figures not in the file keep their defaults; unknown keys are an error that names the known
ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from synsample.errors import ConfigError

HOROWITZ = "Horowitz, ISSCC 2014, 45 nm"

#: the operations the cost model counts: kind -> what one operation is
OPERATIONS: dict[str, str] = {
    "mac": "a multiply-accumulate of a digital layer with real-valued weights",
    "add": "a multiply-free accumulate (binary, ternary or blank-out weights, or +-1 inputs)",
    "compare": "a comparator: sign or ReLU of one output, one max-pool step, one argmax step",
    "xnor": "one bit product of two stochastic streams (XNOR) and its share of the counter",
    "lut": "one activation look-up (the stochastic-computing sigmoid over the counter)",
    "crossbar_read": "one sensed matrix-vector product of a crossbar at one output position",
    "crossbar_cell": "one cell of a crossbar read (an analog multiply-accumulate)",
    "averaging": "one pass of an n-way averaging block (one layer, one pass)",
}

#: device technologies a random bit can come from (a device model's ``technology``)
TECHNOLOGIES: dict[str, str] = {
    "cmos": "a CMOS generator (LFSR); ideal and b-bit coins, Gaussian sources, LFSR streams",
    "s-mtj": "a stochastic magnetic tunnel junction read once per bit",
    "sot-mtj": "a spin-orbit-torque MTJ switched once per bit (the SpinBayes arbiter)",
}


@dataclass(frozen=True)
class CostAssumptions:
    """Energies (pJ) per operation kind (`OPERATIONS`), per random bit by technology
    (`TECHNOLOGIES`) and per weight bit read from SRAM; ``float_bits``: the width of a
    stored real-valued parameter (32, as paper 004's memory comparison takes it).

    Attributes:
        name: the set's name, printed in reports.
        pj_per_op: pJ per operation, by kind.
        pj_per_random_bit: pJ per random bit, by device technology.
        pj_per_weight_bit_read: pJ per weight bit read from SRAM.
        float_bits: bits of a stored real-valued parameter.
        sources: where each figure comes from, by key.
    """

    name: str = "synsample defaults"
    pj_per_op: Mapping[str, float] = field(default_factory=lambda: {
        "mac": 4.6, "add": 0.1, "compare": 0.01, "xnor": 0.004, "lut": 0.05,
        "crossbar_read": 4.71, "crossbar_cell": 0.015, "averaging": 18.42})
    pj_per_random_bit: Mapping[str, float] = field(default_factory=lambda: {
        "cmos": 0.010, "s-mtj": 0.020, "sot-mtj": 3.80})
    pj_per_weight_bit_read: float = 10.0 / 64
    float_bits: int = 32
    sources: Mapping[str, str] = field(default_factory=lambda: {
        "mac": f"fp32 multiply 3.7 pJ + add 0.9 pJ ({HOROWITZ})",
        "add": f"32-bit integer add ({HOROWITZ})",
        "compare": "paper 004, Table 4 (comparator)",
        "xnor": f"assumption: an XNOR and about one full adder of the parallel counter, a bit "
                f"slice of an 8-bit add (0.03 pJ, {HOROWITZ})",
        "lut": "assumption: a read of a small ROM (neither paper gives a figure)",
        "crossbar_read": "paper 004, Table 4 (memory decoding and sensing)",
        "crossbar_cell": "paper 004, Table 4 (adder-accumulator, 0.06 pJ per 4 cells sensed "
                         "together)",
        "averaging": "paper 004, Table 4 (averaging block)",
        "cmos": "paper 003 (its ref. [25]): ~10 fJ per LFSR bit",
        "s-mtj": "paper 003: ~20 fJ per s-MTJ bit at a 10 ns retention time",
        "sot-mtj": "paper 004, Table 4 (spintronic RNG)",
        "weight_read": f"SRAM, 10 pJ per 64-bit word read from 8 KB ({HOROWITZ})",
        "float_bits": "paper 004's memory comparison (32-bit parameters)"})

    def op(self, kind: str) -> float:
        """Energy of one operation of ``kind`` in pJ (an unknown kind is an error).

        Args:
            kind: a key of `OPERATIONS`.

        Returns:
            The energy in pJ.

        Raises:
            ConfigError: for a kind without an energy.
        """
        if kind not in self.pj_per_op:
            raise ConfigError(f"no energy for operation {kind!r} in {self.name!r}; add it to "
                              "pj_per_op")
        return float(self.pj_per_op[kind])

    def random_bit(self, technology: str) -> float:
        """Energy of one random bit made by ``technology`` in pJ.

        Args:
            technology: a key of `TECHNOLOGIES`.

        Returns:
            The energy in pJ.

        Raises:
            ConfigError: for a technology without an energy.
        """
        if technology not in self.pj_per_random_bit:
            raise ConfigError(f"no energy per random bit for technology {technology!r} in "
                              f"{self.name!r}; add it to pj_per_random_bit")
        return float(self.pj_per_random_bit[technology])

    def as_dict(self) -> dict[str, Any]:
        """The assumption set as JSON-able values, for reports.

        Returns:
            Every field, the mappings as plain dicts.
        """
        return {"name": self.name, "pj_per_op": dict(self.pj_per_op),
                "pj_per_random_bit": dict(self.pj_per_random_bit),
                "pj_per_weight_bit_read": self.pj_per_weight_bit_read,
                "float_bits": self.float_bits, "sources": dict(self.sources)}


DEFAULT = CostAssumptions()

_FIELDS = ("name", "pj_per_op", "pj_per_random_bit", "pj_per_weight_bit_read", "float_bits",
           "sources")


def _energies(value: Any, known: Mapping[str, str], what: str, path: Path) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {what} must be an object of names to picojoules")
    out = {}
    for key, pj in value.items():
        if key not in known:
            raise ConfigError(f"{path}: unknown {what} entry {key!r}; known: {', '.join(known)}")
        if not isinstance(pj, int | float) or isinstance(pj, bool) or not 0 <= pj < math.inf:
            raise ConfigError(f"{path}: {what}[{key!r}] must be a non-negative number of pJ")
        out[key] = float(pj)
    return out


def load(path: str | Path | CostAssumptions | None) -> CostAssumptions:
    """The defaults updated from the JSON file at ``path`` (None: the defaults; an assumption
    set already loaded is returned as it is).

    Args:
        path: a JSON file, an assumption set, or None.

    Returns:
        The assumption set; a file's figures replace the defaults and are sourced to it.

    Raises:
        ConfigError: for a missing, unreadable or invalid file, an unknown key, or an
            energy that is not a finite non-negative number.
    """
    if path is None:
        return DEFAULT
    if isinstance(path, CostAssumptions):
        return path
    path = Path(path)
    def not_finite(word: str) -> float:
        raise ConfigError(f"{path} holds {word}; every energy must be a finite number of pJ")

    try:
        raw = json.loads(path.read_text(), parse_constant=not_finite)
    except FileNotFoundError:
        raise ConfigError(f"no cost assumption file at {path}; give a JSON file (see "
                          "synsample.hardware.assumptions)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); fix or remove it") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the cost assumption file {path} ({exc.strerror}); "
                          "give a readable JSON file") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a cost assumption file is a JSON object")
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"{path}: unknown keys {', '.join(unknown)}; known: "
                          f"{', '.join(_FIELDS)}")
    changes: dict[str, Any] = {"name": str(raw.get("name", path.stem))}
    if "pj_per_op" in raw:
        changes["pj_per_op"] = {**DEFAULT.pj_per_op,
                                **_energies(raw["pj_per_op"], OPERATIONS, "pj_per_op", path)}
    if "pj_per_random_bit" in raw:
        changes["pj_per_random_bit"] = {**DEFAULT.pj_per_random_bit, **_energies(
            raw["pj_per_random_bit"], TECHNOLOGIES, "pj_per_random_bit", path)}
    if "pj_per_weight_bit_read" in raw:
        changes["pj_per_weight_bit_read"] = _energies(
            {"weight_read": raw["pj_per_weight_bit_read"]}, {"weight_read": ""},
            "pj_per_weight_bit_read", path)["weight_read"]
    if "float_bits" in raw:
        bits = raw["float_bits"]
        if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 64:
            raise ConfigError(f"{path}: float_bits must be an integer from 1 to 64")
        changes["float_bits"] = bits
    if not isinstance(raw.get("sources", {}), dict):
        raise ConfigError(f"{path}: sources must be an object of names to citations")
    sources = {**DEFAULT.sources, **{k: path.name for k in _changed_keys(raw)}}
    sources.update({str(k): str(v) for k, v in raw.get("sources", {}).items()})
    changes["sources"] = sources
    return replace(DEFAULT, **changes)


def _changed_keys(raw: dict[str, Any]) -> list[str]:
    keys = [*raw.get("pj_per_op", {}), *raw.get("pj_per_random_bit", {})]
    if "pj_per_weight_bit_read" in raw:
        keys.append("weight_read")
    if "float_bits" in raw:
        keys.append("float_bits")
    return keys
