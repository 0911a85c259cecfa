"""Experiments are grids of jobs: one config in, one result folder out, cached by the config's
hash. A re-run skips finished jobs; an interrupted job (no ``result.json`` yet) runs again and
may resume from what it left (training resumes from its last epoch).

A job names the jobs whose results it needs (``needs``: a sampling job needs its training
job), so a runner is given the whole graph at once: the local runner runs it in order in this
process, the Ray runner ([`synsample.experiments.ray_runner`][synsample.experiments.ray_runner])
runs every job whose inputs are done in parallel, on one machine or a cluster. Both write into the
same store, each job's files atomically under its folder's lock, so either one skips what the other
finished.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from synsample.errors import ConfigError, SynsampleError
from synsample.io import (
    SEAL,
    FolderBusy,
    folder_lock,
    read_cached,
    sealed,
    unsealed,
    write_json,
)

RESULT = "result.json"


@dataclass
class Job:
    """``run(folder)`` does the work in ``folder`` and returns the JSON-able result.

    ``needs``: the jobs whose results this one reads (from their folders in the same store,
    [`JobStore.folder`][synsample.experiments.jobs.JobStore.folder]); a runner runs them first. They
    are not part of the key: a job's
    config already names what it depends on (e.g. ``"train": trained.key``)."""

    kind: str
    config: dict[str, Any]
    run: Callable[[Path], dict[str, Any]] = field(repr=False, compare=False)
    needs: tuple[Job, ...] = field(default=(), repr=False, compare=False)

    @property
    def key(self) -> str:
        """16 hex digits of the SHA-256 of the kind and config: what finds a cached result."""
        blob = json.dumps({"kind": self.kind, **self.config}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def name(self) -> str:
        """The job folder's name, ``<kind>-<key>``."""
        return f"{self.kind}-{self.key}"


def graph(jobs: Iterable[Job]) -> list[Job]:
    """Every job of ``jobs`` and, transitively, of their ``needs``, each once (by key), every
    job after the jobs it needs. Raises [`ConfigError`][synsample.errors.ConfigError] on a cycle."""
    order: list[Job] = []
    state: dict[str, str] = {}

    def visit(job: Job, path: tuple[str, ...]) -> None:
        if state.get(job.key) == "done":
            return
        if state.get(job.key) == "open":
            raise ConfigError(f"the jobs {' -> '.join((*path, job.name))} need each other")
        state[job.key] = "open"
        for dep in job.needs:
            visit(dep, (*path, job.name))
        state[job.key] = "done"
        order.append(job)

    for job in jobs:
        visit(job, ())
    return order


class JobsFailed(SynsampleError):
    """Some jobs failed (after their retries); the others finished and are in the store."""

    def __init__(self, failed: dict[str, str], finished: int) -> None:
        self.failed = failed
        listed = "; ".join(f"{name}: {why}" for name, why in failed.items())
        super().__init__(f"{len(failed)} job(s) failed: {listed}. The {finished} other job(s) "
                         "finished and are kept in the job store; fix the cause and run the "
                         "same command again (finished jobs are skipped)")


class JobStore:
    """Job folders under ``root``: ``<kind>-<hash>/`` with ``config.json`` and ``result.json``.

    A result is read back only when it is the one this job wrote: sealed by the SHA-256 of its
    content ([`synsample.io.sealed`][synsample.io.sealed]) and naming the job. A result edited by
    hand, cut short or not JSON is ignored with a warning that names it, and the job runs again (its
    folder's other files, a training's last epoch, are kept and resumed from)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def folder(self, job: Job) -> Path:
        """The job's folder in the store."""
        return self.root / job.name

    def stored(self, job: Job) -> dict[str, Any] | None:
        """The job's stored result, or None when it has none that passes the checks."""
        def accept(entry: Any) -> dict[str, Any]:
            result = unsealed(entry)
            if result.get("job") != job.name:
                raise ValueError(f"it is the result of {result.get('job')!r}, not {job.name}")
            return result

        return read_cached(self.folder(job) / RESULT, accept, "job result")

    def done(self, job: Job) -> bool:
        """Whether the job's result is in the store (and passes the checks)."""
        return self.stored(job) is not None

    def result(self, job: Job) -> dict[str, Any]:
        """The job's stored result.

        Raises:
            SynsampleError: when it has none that passes the checks.
        """
        result = self.stored(job)
        if result is None:
            raise SynsampleError(f"the job store holds no valid result for {job.name} in "
                                 f"{self.folder(job)}; run the same command again")
        return result


def run_job(store: JobStore, job: Job, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The job's result: from the store when done, else computed under the job folder's lock
    and written atomically (``result.json`` last: a job without it is not done). A job another
    run is computing is waited for and its result reused. Every runner calls this, in its own
    process or on a worker."""
    cached = store.stored(job)
    if cached is not None:
        log(f"[cached] {job.kind} {job.key}")
        return cached
    folder = store.folder(job)
    try:
        lock = folder_lock(folder)
        lock.__enter__()
    except FolderBusy as busy:
        log(f"[waiting] {job.kind} {job.key}: {busy.holder}")
        lock = folder_lock(folder, wait=True)
        lock.__enter__()
    try:
        cached = store.stored(job)
        if cached is not None:
            log(f"[cached] {job.kind} {job.key} (finished by another run)")
            return cached
        write_json(folder / "config.json", {"kind": job.kind, **job.config})
        start = time.perf_counter()
        result = job.run(folder)
        result = sealed({**result, "job": job.name,
                         "job_seconds": time.perf_counter() - start})
        write_json(folder / RESULT, result)
        return {k: v for k, v in result.items() if k != SEAL}  # as stored() reads it back
    finally:
        lock.__exit__(None, None, None)


class Runner(Protocol):
    """What runs a graph of jobs into a [`JobStore`][synsample.experiments.jobs.JobStore] (local or
    Ray)."""
    store: JobStore

    def run(self, jobs: Iterable[Job]) -> list[dict[str, Any]]:
        """The results of ``jobs``, in order, after running them and every job they need."""
        ...


class LocalRunner:
    """Runs the graph one job after the other in this process (the default runner); a failing
    job stops the run at once, with its own error."""

    def __init__(self, store: JobStore, log: Callable[[str], None] = print) -> None:
        self.store = store
        self.log = log

    def run(self, jobs: Iterable[Job]) -> list[dict[str, Any]]:
        """The results of ``jobs``, in order, after running them and every job they need.

        Args:
            jobs: the jobs asked for.

        Returns:
            their results.
        """
        jobs = list(jobs)
        results = {job.key: self.run_one(job) for job in graph(jobs)}
        return [results[job.key] for job in jobs]

    def run_one(self, job: Job) -> dict[str, Any]:
        """One job's result: from the store, or computed now (its inputs must be done)."""
        return run_job(self.store, job, self.log)
