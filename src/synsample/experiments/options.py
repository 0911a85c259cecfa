"""The run options every experiment shares.

An experiment's config is a dataclass that extends :class:`RunOptions` with its own fields.
Each field that a user may set is declared with :func:`synsample.config_args.option`, which
keeps its default, its help text and how it is written on the command line in one place:
``synsample reproduce NAME --help`` is generated from these fields, and a Python user builds
the same dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synsample.cluster import RunnerConfig
from synsample.config_args import option, positive_int
from synsample.errors import ConfigError
from synsample.tracking import TrackingConfig

#: the job store every experiment shares by default (a network trained once serves them all)
JOB_STORE = Path("runs") / "jobs"
MODES = ("shared", "independent")


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
