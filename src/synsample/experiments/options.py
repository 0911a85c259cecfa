"""The run options every experiment shares.

An experiment's config is a dataclass that extends
[`RunOptions`][synsample.experiments.options.RunOptions] with its own fields. Each field that a user
may set is declared with `synsample.config_args.option`, which keeps its default, its help text and
how it is written on the command line in one place: ``synsample reproduce NAME --help`` is generated
from these fields, and a Python user builds the same dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from synsample.cluster import RunnerConfig
from synsample.config_args import option
from synsample.evaluate import SampledRun
from synsample.tracking import TrackingConfig

#: the job store every experiment shares by default (a network trained once serves them all)
JOB_STORE = Path("runs") / "jobs"


@dataclass(kw_only=True)
class RunOptions(SampledRun):
    """What every experiment shares: seeds, sampling mode, data, device
    ([`SampledRun`][synsample.evaluate.SampledRun]), where results go and where the jobs run.
    Experiment configs extend it
    ([`synsample.experiments.registry`][synsample.experiments.registry])."""

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
        super().check()
        self.runner.check()
