"""Command-line options generated from config dataclasses (synsample.config_args)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from synsample.config_args import (
    add_options,
    cli_fields,
    config_from_args,
    given_values,
    option,
    percentage,
    positive_int,
)


@dataclass(kw_only=True)
class Example:
    """Synthetic config with one field of each kind the generator handles."""

    count: int = option(3, "a count", parse=positive_int)
    rate: float | None = option(None, "a rate", default_text="the model's")
    names: tuple[str, ...] = option(("a", "b"), "some names", flag="--name", choices=("a", "b",
                                                                                       "c"))
    shares: tuple[float, ...] = option((0.5,), "percentages", parse=percentage)
    coin: str | None = option(None, "a coin, full when given alone", const="full")
    fast: bool = option(False, "go fast")
    checked: bool = option(True, "check the result")
    where: Path = option(Path("runs"), "a folder", build=lambda p: Path(p).resolve())
    hidden: int = 7  # no help: not on the command line


def _parser(given_only: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="example", exit_on_error=False)
    add_options(parser, Example, given_only=given_only)
    return parser


def test_defaults_come_from_the_dataclass_and_are_named_in_the_help():
    cfg = config_from_args(Example, _parser().parse_args([]))
    assert cfg == Example(where=Path("runs").resolve())
    text = _parser().format_help()
    for shown in ("a count (default: 3)", "(default: the model's)", "(default: a b)",
                  "one or more of: a, b, c", "--no-checked", "--name NAME [NAME ...]",
                  "--coin [COIN]"):
        assert shown in " ".join(text.split()), shown
    assert "--hidden" not in text and [f.name for f in cli_fields(Example)][-1] == "where"


def test_each_kind_of_value_is_parsed():
    args = _parser().parse_args(["--count", "5", "--rate", "0.25", "--name", "c,a", "b",
                                 "--shares", "10,90", "--coin", "--fast", "--no-checked",
                                 "--where", "out"])
    cfg = config_from_args(Example, args, hidden=1)
    assert (cfg.count, cfg.rate, cfg.names, cfg.shares, cfg.coin, cfg.fast, cfg.checked) == \
        (5, 0.25, ("c", "a", "b"), (0.1, 0.9), "full", True, False)
    assert cfg.where == Path("out").resolve() and cfg.hidden == 1
    assert config_from_args(Example, _parser().parse_args(["--coin", "4"])).coin == "4"


@pytest.mark.parametrize("argv, message", [
    (["--count", "0"], "expected a positive integer, got '0'"),
    (["--name", "a,z"], "invalid choice: 'z'"),
    (["--shares", "150"], "percentages lie in 0..100"),
])
def test_a_bad_value_names_what_was_expected(argv, message):
    with pytest.raises(argparse.ArgumentError, match=message):
        _parser().parse_args(argv)


def test_given_only_leaves_what_was_not_given_to_the_config():
    """A training's defaults depend on its architecture: an option not given parses to None
    (a switch gets --x and --no-x), and the help still names the default."""
    values = given_values(Example, _parser(given_only=True).parse_args(["--count", "2",
                                                                        "--no-fast"]))
    assert values == {"count": 2, "rate": None, "names": None, "shares": None, "coin": None,
                      "fast": False, "checked": None, "where": None}
    assert "(default: 3)" in _parser(given_only=True).format_help()
