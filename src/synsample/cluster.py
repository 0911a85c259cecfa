"""Where work runs: this process, or a Ray cluster (an optional extra, ``synsample[ray]``).

One [`RunnerConfig`][synsample.cluster.RunnerConfig] says which; the job runners
([`synsample.experiments.jobs`][synsample.experiments.jobs]) and sharded sampling
(`synsample.shards`) read it. [`connect`][synsample.cluster.connect] joins a running cluster
(``address="auto"`` or ``HOST:PORT``) or starts a local one on this machine's cores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from synsample import checks
from synsample.errors import ConfigError

#: the runners ``--runner`` chooses from
RUNNERS = ("local", "ray")
EXTRA = "pip install 'synsample[ray]'"


@dataclass
class RunnerConfig:
    """Which runner the work goes to.

    Attributes:
        name: ``local`` or ``ray``.
        address: the Ray cluster to join (``auto`` or ``HOST:PORT``), or None for a local one.
        workers: Ray jobs (or shards) at once (default: the cluster's CPUs).
        retries: times Ray tries a failed job again.
    """

    #: ``local`` (this process, one job at a time) or ``ray``
    name: str = "local"
    #: ray: the cluster to join (``auto``: the one ``ray start`` runs on this machine;
    #: ``HOST:PORT``: its head node); None: start a local one on this machine's cores
    address: str | None = None
    #: ray: jobs (or shards) at once (default: the cluster's CPUs); each gets CPUs / workers
    #: threads
    workers: int | None = None
    #: ray: times a failed job is tried again (Ray's task retries) before it is reported
    retries: int = 2

    def check(self) -> None:
        """Refuse a runner that does not exist and Ray options without Ray.

        Raises:
            ConfigError: for an unknown runner, Ray options with ``local``, fewer than 1
                worker or negative retries.
        """
        if self.name not in RUNNERS:
            raise ConfigError(f"unknown runner {self.name!r}; use one of {', '.join(RUNNERS)}")
        if self.name == "local" and (self.address is not None or self.workers is not None):
            raise ConfigError("--address and --workers go with --runner ray")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if self.retries < 0:
            raise ConfigError(f"retries must be 0 or more, got {self.retries}")
        if self.address not in (None, "auto"):
            head_node(self.address)


def answers(address: str | None) -> None:
    """Refuse a ``HOST:PORT`` address whose head node does not accept a connection within
    [`synsample.checks.CONNECT_SECONDS`][synsample.checks.CONNECT_SECONDS] (Ray itself would wait
    for minutes); ``auto`` and None (a local cluster) pass.

    Args:
        address: ``auto``, ``HOST:PORT``, or None.

    Raises:
        ConfigError: for a malformed address or a head node that does not answer.
    """
    if address not in (None, "auto"):
        checks.reachable(*head_node(address), "the Ray head node of --address")


def head_node(address: str) -> tuple[str, int]:
    """The ``(host, port)`` of ``--address HOST:PORT`` (or ``ray://HOST:PORT``).

    Args:
        address: what the user gave.

    Returns:
        ``(host, port)``.

    Raises:
        ConfigError: for any other form.
    """
    return checks.host_port(address.removeprefix("ray://"), "--address (auto or HOST:PORT)",
                            "10.0.0.5:6379")


def import_ray():
    """The ``ray`` module, or one line naming the extra to install.

    Returns:
        (ModuleType): the ``ray`` module.

    Raises:
        ConfigError: when Ray is not installed.
    """
    return checks.optional_module("ray", "--runner ray needs Ray", EXTRA)


def _torch_classes():
    import torch

    return torch.classes


def pickle_torch_classes_by_reference() -> None:
    """Let a function be sent to a worker when it reads an attribute named ``classes``
    (``dataset.classes``) and uses ``torch``: cloudpickle then sends the submodule
    ``torch.classes`` along, an object plain pickle refuses; this sends a reference."""
    import copyreg

    import torch

    copyreg.pickle(type(torch.classes), lambda obj: (_torch_classes, ()))


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Join the Ray cluster at ``address`` (``auto`` or ``HOST:PORT``), or start a local one
    with ``num_cpus`` CPUs (default: this machine's) when ``address`` is None and none is
    running in this process.

    Args:
        address: ``auto``, ``HOST:PORT``, or None.
        num_cpus: CPUs of a local cluster (default: this machine's).

    Returns:
        Whether this call started or joined it (False: one was already connected).

    Raises:
        ConfigError: when Ray is missing, ``address`` is not ``auto`` or ``HOST:PORT``, or no
            cluster answers there (within
            [`synsample.checks.CONNECT_SECONDS`][synsample.checks.CONNECT_SECONDS]).
    """
    ray = import_ray()
    pickle_torch_classes_by_reference()
    answers(address)
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True,
                               "configure_logging": False}
    if address is None:
        options["num_cpus"] = num_cpus or os.cpu_count() or 1
    try:
        ray.init(address=address, **options)
    except ConnectionError as exc:
        raise ConfigError(f"no Ray cluster at --address {address} ({str(exc).splitlines()[0]}); "
                          "start one with `ray start --head` or leave --address out for a "
                          "local one") from None
    return True


def workers_and_threads(workers: int | None) -> tuple[int, int]:
    """``(workers, torch threads per worker)`` on the connected cluster: ``workers`` (default:
    its CPUs) sharing its CPUs, so that they do not oversubscribe the cores.

    Args:
        workers: the workers asked for, or None.

    Returns:
        ``(workers, threads)``, threads at least 1.
    """
    cpus = int(import_ray().cluster_resources().get("CPU", 1))
    workers = workers or cpus
    return workers, max(1, cpus // workers)


def limit_threads(threads: int) -> None:
    """Torch (and OpenMP) in this worker use ``threads`` threads.

    Args:
        threads: the thread count.
    """
    import torch

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
