"""The runner a run's options name: the local runner of
[`synsample.experiments.jobs`][synsample.experiments.jobs], or the Ray runner of
[`synsample.experiments.ray_runner`][synsample.experiments.ray_runner]. Its own module, so that the
job store
never imports a runner built on it."""

from __future__ import annotations

from collections.abc import Callable

from synsample.cluster import RunnerConfig
from synsample.experiments.jobs import JobStore, LocalRunner, Runner


def make_runner(cfg: RunnerConfig | None, store: JobStore,
                log: Callable[[str], None] = print) -> Runner:
    """The runner ``cfg`` names, on ``store``.

    Args:
        cfg: the runner options (None: the local runner).
        store: the job store the runner writes into.
        log: called with a line per job.

    Returns:
        The runner.
    """
    cfg = cfg or RunnerConfig()
    cfg.check()
    if cfg.name == "local":
        return LocalRunner(store, log)
    from synsample.experiments.ray_runner import RayRunner

    return RayRunner(store, log, address=cfg.address, workers=cfg.workers, retries=cfg.retries)
