"""Config fields that say how a user sets them, command-line options generated from them,
and the config built back from the parsed options.

A field declared with `option` becomes one option: its name (``--field-name`` or the
field's ``flag``), its type (a tuple takes one or more values, a bool becomes a switch,
``X | None`` is optional), its choices, and its help with the default written out. Fields
declared without it are not offered on the command line. The experiments' configs
([`synsample.experiments.options`][synsample.experiments.options]) and
[`TrainConfig`][synsample.train.TrainConfig] are declared this way, so ``--help`` and the Python
defaults cannot disagree.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, Field, field, fields
from pathlib import Path
from typing import Any

SCALARS = (int, float, str, Path)


def option(default: Any, help: str, *, flag: str | None = None, metavar: str | None = None,
           choices: tuple[Any, ...] | None = None, parse: Callable[[str], Any] | None = None,
           build: Callable[[Any], Any] | None = None, const: Any = None,
           default_text: str | None = None) -> Any:
    """A config field a user may set, with what the command line needs to offer it.

    Args:
        default: the field's default (the one place it is written).
        help: what the field does, one sentence or two; the command line adds the default.
        flag: the option's name on the command line (default ``--field-name``).
        metavar: the value's name in ``--help`` (default: from the type).
        choices: the values the command line offers (the paper's datasets, say); a Python
            user may pass others (a dataset of their own).
        parse: turns one command-line word into one value (default: the field's type); for a
            tuple field, each word (or each comma-separated part of one) is parsed.
        build: turns the parsed value into the field's value once every option is parsed
            (e.g. a file name into what the file holds); errors it raises are user errors.
        const: the value when the flag is given without one (the value is then optional).
        default_text: how ``--help`` writes the default, when the value itself would not
            read well.

    Returns:
        a `dataclasses.field` carrying these in its metadata.
    """
    meta = {"help": help, "flag": flag, "metavar": metavar, "choices": choices,
            "parse": parse, "build": build, "const": const, "default_text": default_text}
    return field(default=default, metadata={k: v for k, v in meta.items() if v is not None})


def positive_int(text: str) -> int:
    """A whole number of at least 1, from its text; ValueError says what was expected."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise ValueError(f"expected a positive integer, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A number strictly between 0 and 1, from its text (a miscoverage level, say)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise ValueError(f"expected a number in (0, 1), got {text!r}")
    return value


def percentage(text: str) -> float:
    """A percentage in 0..100, from its text, as a fraction in 0..1."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a percentage, got {text!r}") from None
    if not 0.0 <= value <= 100.0:
        raise ValueError(f"percentages lie in 0..100, got {text!r}")
    return value / 100


def cli_fields(cls: type) -> list[Field]:
    """The fields of dataclass ``cls`` a user sets on the command line (those with help)."""
    return [f for f in fields(cls) if "help" in f.metadata]


def _value_type(f: Field, hints: dict[str, Any]) -> tuple[type, bool]:
    """The type of one value of ``f`` and whether the field holds a tuple of them."""
    tp = hints[f.name]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if typing.get_origin(tp) is tuple:
        return typing.get_args(tp)[0], True
    return tp, False


def argparse_type(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """``convert`` with its ValueError shown by argparse as the message it carries."""
    def parse(text: str) -> Any:
        try:
            return convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def _split(convert: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    """One word of a tuple option, which may hold several comma-separated values."""
    def parse(text: str) -> list[Any]:
        return [convert(part) for part in text.split(",") if part.strip()]

    return parse


def _one_of(convert: Callable[[str], Any], choices: tuple[Any, ...]) -> Callable[[str], Any]:
    """``convert``, refusing a value that is not one of ``choices``."""
    def parse(text: str) -> Any:
        value = convert(text)
        if value not in choices:
            raise ValueError(f"invalid choice: {text!r} (choose from "
                             f"{', '.join(map(str, choices))})")
        return value

    return parse


def _flatten(values: Any) -> Any:
    if isinstance(values, list):
        return tuple(v for word in values for v in (word if isinstance(word, list) else [word]))
    return values


def _default_text(f: Field, default: Any) -> str:
    if "default_text" in f.metadata:
        return f.metadata["default_text"]
    if isinstance(default, tuple):
        return " ".join(str(v) for v in default)
    return "none" if default is None else str(default)


def flag_of(f: Field) -> str:
    """The option's name on the command line."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def add_options(parser: argparse.ArgumentParser | Any, cls: type,
                only: list[Field] | None = None, given_only: bool = False) -> None:
    """Add an option for each command-line field of ``cls`` to ``parser``.

    Args:
        parser: a parser or an argument group.
        cls: the config dataclass.
        only: these fields rather than all of ``cls``'s command-line fields.
        given_only: an option not given parses to None (a switch gets ``--x`` and
            ``--no-x``), for a config whose defaults depend on another option (a training's
            on its architecture,
            [`synsample.train.TrainConfig.for_arch`][synsample.train.TrainConfig.for_arch]); the
            help still names the default.

    The value lands in ``args.<field name>``."""
    hints = typing.get_type_hints(cls)
    for f in only if only is not None else cli_fields(cls):
        meta = f.metadata
        default = f.default if f.default is not MISSING else f.default_factory()
        value_type, many = _value_type(f, hints)
        kwargs: dict[str, Any] = {"dest": f.name}
        if value_type is bool and given_only:
            parser.add_argument(flag_of(f), action=argparse.BooleanOptionalAction,
                                default=None, help=f"{meta['help']} (default: "
                                                   f"{_default_text(f, default)})", **kwargs)
            continue
        if value_type is bool:
            if default:
                parser.add_argument("--no-" + flag_of(f)[2:], action="store_false",
                                    help=f"leave out: {meta['help']}", **kwargs)
            else:
                parser.add_argument(flag_of(f), action="store_true", help=meta["help"],
                                    **kwargs)
            continue
        convert = meta.get("parse") or (value_type if value_type in SCALARS else str)
        if many and "choices" in meta:
            convert = _one_of(convert, meta["choices"])
        kwargs["type"] = argparse_type(_split(convert) if many else convert)
        if "choices" in meta and not many:
            kwargs["choices"] = meta["choices"]
        if many:
            kwargs["nargs"] = "+"
        elif "const" in meta:
            kwargs["nargs"], kwargs["const"] = "?", meta["const"]
        help = meta["help"]
        metavar = meta.get("metavar")
        if many:  # NAME [NAME ...], the choices in the help rather than twice in the usage
            metavar = metavar or flag_of(f)[2:].upper().replace("-", "_")
            if "choices" in meta:
                help += f"; one or more of: {', '.join(map(str, meta['choices']))}"
        if metavar is not None:
            kwargs["metavar"] = metavar
        parser.add_argument(flag_of(f), default=None if given_only else default,
                            help=f"{help} (default: {_default_text(f, default)})", **kwargs)


def given_values(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The command-line fields of ``cls`` as parsed (tuples for several values, each field's
    ``build`` applied): field name -> value (None where ``given_only`` left one unset)."""
    values: dict[str, Any] = {}
    for f in cli_fields(cls):
        value = _flatten(getattr(args, f.name))
        build = f.metadata.get("build")
        values[f.name] = build(value) if build is not None and value is not None else value
    return values


def config_from_args(cls: type, args: argparse.Namespace, **extra: Any) -> Any:
    """``cls`` built from the parsed options of [`add_options`][synsample.config_args.add_options]
    and ``extra`` fields.

    Each field's ``build`` runs here (after parsing), so an error it raises (a missing file)
    is reported as the one-line error of any other mistake."""
    return cls(**given_values(cls, args), **extra)
