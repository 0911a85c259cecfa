"""The Ray runner: an experiment's job graph on a Ray cluster (``--runner ray``).

Ray is an optional extra (``pip install 'synsample[ray]'``). Without ``--address`` the runner
starts a local cluster on this machine's cores (``ray.init()``); with ``--address auto`` or
``HOST:PORT`` it joins a running one (``ray start --head`` on one node, ``ray start --address``
on the others; see docs/cluster.md). Every node must see the job store at the same path (a
shared file system) and have the datasets in its own cache.

The driver (this process) keeps the graph: a job is submitted once every job it needs is
done, at most ``workers`` at a time, each as one Ray task with ``CPUs / workers`` CPUs whose
torch uses that many threads, so that the workers of one machine do not oversubscribe its
cores. A task computes its job with [`run_job`][synsample.experiments.jobs.run_job], as the local
runner does: under the job folder's lock, ``result.json`` written atomically last. A task
that raises or whose worker dies is tried again by Ray (``retries`` times), except for a
[`SynsampleError`][synsample.errors.SynsampleError] (a mistake in the config or the data, which a
retry would only repeat); a job that still fails is reported by name
([`JobsFailed`][synsample.experiments.jobs.JobsFailed]) after every job that does not need it has
finished. Ctrl-C cancels the running tasks; finished jobs stay in
the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from synsample.cluster import RunnerConfig, connect, import_ray, limit_threads, workers_and_threads
from synsample.errors import SynsampleError
from synsample.experiments.jobs import Job, JobsFailed, JobStore, graph, run_job

#: the key of a task's result that carries a user error instead of raising it (not retried)
USER_ERROR = "__synsample_error__"


def _execute(root: str, job: Job, threads: int) -> dict[str, Any]:
    """A job on a Ray worker: torch limited to the task's CPUs, then
    [`run_job`][synsample.experiments.jobs.run_job]. A
    [`SynsampleError`][synsample.errors.SynsampleError] comes back as a result under
    [`USER_ERROR`][synsample.experiments.ray_runner.USER_ERROR], so that Ray does
    not retry it."""
    limit_threads(threads)
    try:
        return run_job(JobStore(root), job, print)
    except SynsampleError as exc:
        return {USER_ERROR: f"{type(exc).__name__}: {' '.join(str(exc).split())}"}


class RayRunner:
    """Runs a job graph on Ray; see the module's docstring."""

    def __init__(self, store: JobStore, log: Callable[[str], None] = print,
                 address: str | None = None, workers: int | None = None,
                 retries: int = 2) -> None:
        RunnerConfig("ray", address, workers, retries).check()
        self.ray = import_ray()
        self.store, self.log = store, log
        self.address, self.workers, self.retries = address, workers, retries
        self._remote = None

    def _start(self) -> tuple[int, int]:
        """Connect; return ``(workers, threads per worker)``."""
        connect(self.address)
        workers, threads = workers_and_threads(self.workers)
        if self._remote is None:
            self._remote = self.ray.remote(_execute)
        return workers, threads

    def run(self, jobs: Iterable[Job]) -> list[dict[str, Any]]:
        """The results of ``jobs``, in order, after running every job of their graph on the
        cluster (each as soon as the jobs it needs are done).

        Args:
            jobs: the jobs asked for.

        Returns:
            their results.

        Raises:
            JobsFailed: some jobs failed after their retries (the others are in the store).
        """
        jobs = list(jobs)
        order = graph(jobs)
        results: dict[str, dict[str, Any]] = {}
        waiting: list[Job] = []
        for job in order:
            cached = self.store.stored(job)
            if cached is not None:
                self.log(f"[cached] {job.kind} {job.key}")
                results[job.key] = cached
            else:
                waiting.append(job)
        if waiting:
            self._run_graph(waiting, results)
        return [results[job.key] for job in jobs]

    def _run_graph(self, waiting: list[Job], results: dict[str, dict[str, Any]]) -> None:
        ray = self.ray
        workers, threads = self._start()
        root = str(self.store.root.resolve())
        names = {job.key: job.name for job in waiting}
        running: dict[Any, Job] = {}
        failed: dict[str, str] = {}
        self.log(f"[ray] {len(waiting)} job(s) on {workers} worker(s) of {threads} thread(s)")
        try:
            while waiting or running:
                for job in list(waiting):
                    bad = [d.name for d in job.needs if d.key in failed]
                    if bad:
                        waiting.remove(job)
                        failed[job.key] = f"not run, it needs {', '.join(bad)}"
                    elif len(running) < workers and all(d.key in results for d in job.needs):
                        waiting.remove(job)
                        ref = self._remote.options(
                            num_cpus=threads, max_retries=self.retries, retry_exceptions=True,
                            name=job.name).remote(root, replace(job, needs=()), threads)
                        running[ref] = job
                        self.log(f"[ray] started {job.kind} {job.key}")
                if not running:
                    break
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    job = running.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as exc:  # the task's error after its retries
                        result = {USER_ERROR: _reason(exc)}
                    if USER_ERROR in result:
                        failed[job.key] = result[USER_ERROR]
                        self.log(f"[ray] FAILED {job.name}: {failed[job.key]}")
                    else:
                        results[job.key] = result
                        self.log(f"[ray] done {job.kind} {job.key}")
        except KeyboardInterrupt:
            for ref in running:
                ray.cancel(ref, force=True)
            self.log(f"[ray] interrupted: {len(running)} running job(s) cancelled; finished "
                     "jobs are kept")
            raise
        if failed:
            raise JobsFailed({names[k]: why for k, why in failed.items()}, len(results))


def _reason(exc: BaseException) -> str:
    """One line for a task's failure: the job's own exception when Ray wraps it."""
    cause = getattr(exc, "cause", None) or exc
    text = " ".join(str(cause).split())
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(cause).__name__}: {text}"
