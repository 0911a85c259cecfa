"""Experiments are grids of jobs: one config in, one result folder out, cached by the config's
hash. A re-run skips finished jobs; an interrupted job (no ``result.json`` yet) runs again and
may resume from what it left (training resumes from its last epoch)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synsample.io import FolderBusy, folder_lock, read_json, write_json

RESULT = "result.json"


@dataclass
class Job:
    """``run(folder)`` does the work in ``folder`` and returns the JSON-able result."""

    kind: str
    config: dict[str, Any]
    run: Callable[[Path], dict[str, Any]] = field(repr=False, compare=False)

    @property
    def key(self) -> str:
        blob = json.dumps({"kind": self.kind, **self.config}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.key}"


class JobStore:
    """Job folders under ``root``: ``<kind>-<hash>/`` with ``config.json`` and ``result.json``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def folder(self, job: Job) -> Path:
        return self.root / job.name

    def done(self, job: Job) -> bool:
        return (self.folder(job) / RESULT).is_file()

    def result(self, job: Job) -> dict[str, Any]:
        return read_json(self.folder(job) / RESULT)


class LocalRunner:
    """Runs jobs one after the other in this process (the default runner)."""

    def __init__(self, store: JobStore, log: Callable[[str], None] = print) -> None:
        self.store = store
        self.log = log

    def run(self, jobs: Iterable[Job]) -> list[dict[str, Any]]:
        return [self.run_one(job) for job in jobs]

    def run_one(self, job: Job) -> dict[str, Any]:
        """The job's result: from the store when done, else computed under the job folder's
        lock. A job another run is computing is waited for and its result reused."""
        if self.store.done(job):
            self.log(f"[cached] {job.kind} {job.key}")
            return self.store.result(job)
        folder = self.store.folder(job)
        try:
            lock = folder_lock(folder)
            lock.__enter__()
        except FolderBusy as busy:
            self.log(f"[waiting] {job.kind} {job.key}: {busy.holder}")
            lock = folder_lock(folder, wait=True)
            lock.__enter__()
        try:
            if self.store.done(job):
                self.log(f"[cached] {job.kind} {job.key} (finished by another run)")
                return self.store.result(job)
            write_json(folder / "config.json", {"kind": job.kind, **job.config})
            start = time.perf_counter()
            result = job.run(folder)
            result = {**result, "job": job.name, "job_seconds": time.perf_counter() - start}
            write_json(folder / RESULT, result)
            return result
        finally:
            lock.__exit__(None, None, None)
