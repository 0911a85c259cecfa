"""Experiment configs: the run options every experiment shares, and how a config field says
what it means.

An experiment's config is a dataclass that extends :class:`RunOptions` with its own fields.
Each field that a user may set is declared with :func:`option`, which keeps its default, its
help text and how it is written on the command line in one place:
``synsample reproduce NAME --help`` is generated from these fields
(:mod:`synsample.config_args`), and a Python user builds the same dataclass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synsample.cluster import RunnerConfig
from synsample.errors import ConfigError
from synsample.tracking import TrackingConfig

#: the job store every experiment shares by default (a network trained once serves them all)
JOB_STORE = Path("runs") / "jobs"
MODES = ("shared", "independent")


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
        a :func:`dataclasses.field` carrying these in its metadata.
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


def percentage(text: str) -> float:
    """A percentage in 0..100, from its text, as a fraction in 0..1."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a percentage, got {text!r}") from None
    if not 0.0 <= value <= 100.0:
        raise ValueError(f"percentages lie in 0..100, got {text!r}")
    return value / 100


@dataclass(kw_only=True)
class RunOptions:
    """What every experiment shares: seeds, sampling mode, data, device, where results go and
    where the jobs run. Experiment configs extend it (:mod:`synsample.experiments.registry`)."""

    seed: int = option(0, "seeds training, devices and passes: same seed, same votes")
    mode: str = option("shared", "shared: one draw per pass for all items; independent: fresh "
                       "draws per item (slow)", choices=MODES)
    limit: int | None = option(None, "sample only the first N test items", metavar="N",
                               parse=positive_int, default_text="all")
    data_path: str | None = option(None, "a local copy of the datasets instead of the cache",
                                   metavar="DIR", default_text="the cache, fetched when missing")
    device: str | None = option(None, "torch device for training and sampling, e.g. cuda",
                                default_text="cpu")
    out: Path | None = option(None, "report folder", metavar="DIR",
                              default_text="runs/EXPERIMENT")
    jobs: Path = option(JOB_STORE, "job store shared by experiments; finished jobs are reused",
                        metavar="DIR")
    #: progress bars on long work (the command line shows them on a terminal unless -q)
    progress: bool = True
    #: where the jobs run (``--runner``, ``--address``, ``--workers``)
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    #: MLflow tracking of the run and its training jobs (None: off)
    tracking: TrackingConfig | None = None

    def folder_name(self, experiment: str) -> str:
        """The report folder's name under ``runs/`` when ``out`` is not given."""
        return experiment

    def check(self) -> None:
        """Refuse settings that cannot work, before any long work starts (experiments add
        their own checks)."""
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be at least 1, got {self.limit}")
        self.runner.check()

    def trains(self) -> dict[str, Any]:
        """The run options a training job takes (:func:`synsample.experiments.training.
        train_job`)."""
        return {"data_path": self.data_path, "progress": self.progress, "device": self.device,
                "tracking": self.tracking}
