"""Tracked runs: training and evaluation logged to MLflow (an optional extra,
``pip install 'synsample[track]'``, the light ``mlflow-skinny`` client).

A tracked run logs its config as parameters, each epoch's loss and accuracies as metrics with
the epoch as step (the training curves), its final metrics, and its report, figures and
``metrics.json`` as artifacts. The default store is the folder ``runs/mlruns``, MLflow's file
store, which the full ``mlflow`` package shows with ``mlflow ui --backend-store-uri
runs/mlruns``; ``uri`` may name any other MLflow store (``sqlite:///runs/mlflow.db``, a
tracking server ``http://HOST:5000``). MLflow 3 keeps its file store in maintenance mode
behind ``MLFLOW_ALLOW_FILE_STORE=true``; synsample sets it for a ``file:`` store, which it
prefers because each run is a folder of its own: workers on several nodes can log into one
shared folder at once, where an SQLite file on a shared file system would lock.

Off (the default), [`run`][synsample.tracking.run] yields a tracker whose methods do nothing and
MLflow is never
imported: tracking costs nothing.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synsample import checks
from synsample.errors import ConfigError

EXTRA = "pip install 'synsample[track]'"
#: the local store when no ``uri`` is given (a folder, MLflow's file store)
DEFAULT_STORE = Path("runs") / "mlruns"
#: the kinds of MLflow store --tracking-uri may name (besides a folder)
STORE_SCHEMES = ("file", "sqlite", "http", "https")
#: MLflow's limit on a parameter's value (characters), the smallest across its versions
PARAM_CHARS = 500


@dataclass
class TrackingConfig:
    """Whether and where runs are tracked.

    Attributes:
        enabled: log to MLflow (off: nothing is logged and MLflow is not imported).
        uri: the MLflow store: a folder, ``file:``, ``sqlite:`` or ``http(s):`` URI (None: the
            folder [`DEFAULT_STORE`][synsample.tracking.DEFAULT_STORE]).
        experiment: the MLflow experiment the runs go to.
    """

    #: log to MLflow (off: nothing is logged and MLflow is not imported)
    enabled: bool = False
    #: the MLflow store: a folder, ``file:``, ``sqlite:`` or ``http(s):`` URI (None: the
    #: folder [`DEFAULT_STORE`][synsample.tracking.DEFAULT_STORE])
    uri: str | None = None
    #: the MLflow experiment the runs go to
    experiment: str = "synsample"

    def check(self) -> None:
        """Refuse a store URI of an unknown kind or a server that does not answer, in one
        line, before any work (MLflow would retry for minutes, then print a traceback).

        Raises:
            ConfigError: for a scheme other than ``file``, ``sqlite``, ``http`` or ``https``,
                an ``http(s)`` URI without a host, or a server that does not accept a
                connection within
                [`synsample.checks.CONNECT_SECONDS`][synsample.checks.CONNECT_SECONDS].
        """
        from urllib.parse import urlsplit

        if not self.enabled or self.uri is None or "://" not in self.uri:
            return  # off, the default folder, or a folder (a file: URI has no //)
        parts = urlsplit(self.uri)
        if parts.scheme not in STORE_SCHEMES:
            raise ConfigError(f"--tracking-uri {self.uri!r}: unknown kind of store "
                              f"{parts.scheme!r}; use a folder or a "
                              f"{', '.join(s + ':' for s in STORE_SCHEMES)} URI")
        if parts.scheme in ("http", "https"):
            try:
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                port = None
            if not parts.hostname or port is None:
                raise ConfigError(f"--tracking-uri {self.uri!r} names no server; use e.g. "
                                  "http://localhost:5000")
            checks.reachable(parts.hostname, port, "the MLflow server of --tracking-uri")

    def store_uri(self) -> str:
        """The store as an MLflow URI (a folder becomes an absolute ``file:`` URI).

        Returns:
            The URI.
        """
        uri = self.uri or str(DEFAULT_STORE)
        if "://" in uri or uri.startswith("file:"):
            return uri
        return Path(uri).resolve().as_uri()


def import_mlflow():
    """The ``mlflow`` module, or one line naming the extra to install.

    Returns:
        (ModuleType): the ``mlflow`` module.

    Raises:
        ConfigError: when MLflow is not installed.
    """
    return checks.optional_module("mlflow", "tracking runs needs MLflow", EXTRA)


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested config as MLflow parameters: ``a.b`` keys, values as text (at most
    [`PARAM_CHARS`][synsample.tracking.PARAM_CHARS] characters).

    Args:
        config: the nested config.
        prefix: prepended to every key.

    Returns:
        Parameter name -> text.
    """
    out: dict[str, str] = {}
    for key, value in config.items():
        name = re.sub(r"[^\w\-. :/]", "_", f"{prefix}{key}")
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:PARAM_CHARS]
    return out


class Tracker:
    """A run open in an MLflow store ([`run`][synsample.tracking.run] makes it).

    Args:
        client (MlflowClient): the store's client.
        run_id: the open run.
    """

    def __init__(self, client, run_id: str) -> None:
        self.client, self.run_id = client, run_id
        self._epochs: set[int] = set()

    def metrics(self, values: dict[str, Any], step: int | None = None,
                prefix: str = "") -> None:
        """Log the finite numbers of ``values`` (nested dicts as ``a.b``), at ``step``.

        Args:
            values: the metrics (non-numbers and non-finite numbers are left out).
            step: the step (None: 0).
            prefix: prepended to every name.
        """
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step or 0) for k, v in _numbers(values, prefix)]
        for i in range(0, len(batch), 1000):  # MLflow's batch limit
            self.client.log_batch(self.run_id, metrics=batch[i:i + 1000])

    def epoch(self, record: dict[str, Any]) -> None:
        """One training epoch's record (``epoch``, ``loss``, accuracies, ``seconds``).

        Args:
            record: the record; an epoch already logged is not logged again.
        """
        step = int(record["epoch"])
        if step not in self._epochs:
            self._epochs.add(step)
            self.metrics({k: v for k, v in record.items() if k != "epoch"}, step=step)

    def history(self, records: list[dict[str, Any]]) -> None:
        """The epochs of a training history not logged yet (those of a resumed run).

        Args:
            records: the history, epoch 1 first.
        """
        for i, record in enumerate(records):
            self.epoch({"epoch": i + 1, **record})

    def artifact(self, path: str | Path, folder: str | None = None) -> None:
        """A file, or every file of a folder (lock files left out), as artifacts.

        Args:
            path: the file or folder (nothing is logged when it does not exist).
            folder: the artifact folder they go under (None: the top).
        """
        path = Path(path)
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and not file.name.startswith("."):
                    sub = file.parent.relative_to(path).as_posix()
                    parts = [p for p in (folder, sub if sub != "." else None) if p]
                    self.client.log_artifact(self.run_id, str(file),
                                             "/".join(parts) or None)
        elif path.is_file():
            self.client.log_artifact(self.run_id, str(path), folder)


class NullTracker:
    """Tracking off: every method does nothing."""

    run_id = None

    def metrics(self, values: dict[str, Any], step: int | None = None,
                prefix: str = "") -> None:
        """Nothing (see [`Tracker.metrics`][synsample.tracking.Tracker.metrics])."""
        pass

    def epoch(self, record: dict[str, Any]) -> None:
        """Nothing (see [`Tracker.epoch`][synsample.tracking.Tracker.epoch])."""
        pass

    def history(self, records: list[dict[str, Any]]) -> None:
        """Nothing (see [`Tracker.history`][synsample.tracking.Tracker.history])."""
        pass

    def artifact(self, path: str | Path, folder: str | None = None) -> None:
        """Nothing (see [`Tracker.artifact`][synsample.tracking.Tracker.artifact])."""
        pass


@contextmanager
def run(cfg: TrackingConfig | None, name: str, params: dict[str, Any],
        tags: dict[str, str] | None = None) -> Iterator[Tracker | NullTracker]:
    """A tracked run named ``name`` with ``params`` (flattened) while the block runs; it ends
    FINISHED, FAILED on an exception, KILLED on Ctrl-C. Tracking off: a
    [`NullTracker`][synsample.tracking.NullTracker].

    Args:
        cfg: where to track (None or off: nothing is tracked).
        name: the run's name.
        params: the run's config, logged as parameters (flattened).
        tags: more tags for the run.

    Yields:
        The open run's tracker (a [`NullTracker`][synsample.tracking.NullTracker] when tracking is
        off).

    Raises:
        ConfigError: when tracking is on and MLflow is not installed, or the store URI is
            refused by [`TrackingConfig.check`][synsample.tracking.TrackingConfig.check].
    """
    if cfg is None or not cfg.enabled:
        yield NullTracker()
        return
    cfg.check()
    import_mlflow()
    from mlflow.tracking import MlflowClient

    uri = cfg.store_uri()
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    # a server that answered the check but stalls later: a bounded wait, not minutes of retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(checks.CONNECT_SECONDS))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(cfg.experiment)
    experiment_id = (experiment.experiment_id if experiment is not None
                     else _create_experiment(client, cfg.experiment))
    from synsample import __version__

    started = client.create_run(experiment_id, run_name=name,
                                tags={"synsample.version": __version__, **(tags or {})})
    run_id = started.info.run_id
    flat = flatten(params)
    items = list(flat.items())
    from mlflow.entities import Param

    for i in range(0, len(items), 100):  # MLflow's batch limit on parameters
        client.log_batch(run_id, params=[Param(k, v) for k, v in items[i:i + 100]])
    status = "FAILED"
    try:
        yield Tracker(client, run_id)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        client.set_terminated(run_id, status)


def _create_experiment(client, name: str) -> str:
    """Create the experiment (another worker may have just done so)."""
    try:
        return client.create_experiment(name)
    except Exception:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _numbers(values: dict[str, Any], prefix: str) -> Iterator[tuple[str, float]]:
    """The finite numbers of a nested dict as ``(a.b, value)``, names in MLflow's alphabet."""
    for key, value in values.items():
        name = re.sub(r"[^\w\-. :/]", "_", f"{prefix}{key}")
        if isinstance(value, dict):
            yield from _numbers(value, f"{name}.")
        elif isinstance(value, bool):
            yield name, float(value)
        elif isinstance(value, int | float) and math.isfinite(value):
            yield name, float(value)
