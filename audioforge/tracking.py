"""MLflow tracking: where the store is, experiments, runs that always end in a final state.

Default store: SQLite at ``mlruns/mlflow.db`` with artifacts in ``mlruns/artifacts`` (MLflow 3
rejects the plain file store).  ``MLFLOW_TRACKING_URI`` or ``tracking.uri`` point elsewhere (a
tracking server, PostgreSQL).  Runs are created through ``MlflowClient`` so worker processes can
open nested runs under a parent by id; :meth:`Tracker.run` marks a run FAILED when the code
inside raises and KILLED on a stop signal, so no run is left RUNNING by a failure or a stop.

A process killed outright (SIGKILL, the out-of-memory killer, a power cut) cannot end its runs.
Every run therefore records its owner (host, pid and the process's start time, so a reused pid is
not mistaken for it), and opening a store marks FAILED the RUNNING runs whose owner on this host
is gone, tagging them ``audioforge.orphaned``.  Runs owned by a live process or by another host,
and runs without an owner (made by other tools), are never touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from audioforge import signals
from audioforge.config import flatten

log = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
OWNER_HOST, OWNER_PID, OWNER_START = "audioforge.owner.host", "audioforge.owner.pid", "audioforge.owner.start"
ORPHANED_TAG = "audioforge.orphaned"
MAX_PARAM_LENGTH = 6000


def process_start(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, from /proc); "" where unknown,
    "ended" for a process that has exited but was not yet reaped (a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return ""
    return "ended" if fields[0] in ("Z", "X") else fields[19]


def owner_tags() -> dict[str, str]:
    """Tags naming this process as a run's owner."""
    pid = os.getpid()
    return {OWNER_HOST: socket.gethostname(), OWNER_PID: str(pid), OWNER_START: process_start(pid)}


def owner_alive(tags: dict[str, str]) -> bool:
    """Whether the process named by a run's owner tags (on this host) still runs."""
    from audioforge.processes import pid_exists

    pid = int(tags[OWNER_PID])
    if not pid_exists(pid):
        return False
    now = process_start(pid)
    if now == "ended":
        return False
    start = tags.get(OWNER_START, "")
    return not start or not now or now == start


@dataclass
class TrackingConfig:
    uri: str | None = None          # null: $MLFLOW_TRACKING_URI, else sqlite:///<store>/mlflow.db
    store: str = "mlruns"           # folder of the default SQLite store and its artifacts
    experiment: str = "audioforge"
    enabled: bool = True


def final_status(exc: BaseException | None) -> str:
    """How a run ends: KILLED by a stop (a signal, Lightning's exit after one, an Optuna trial
    pruned inside it), FAILED by an error, else FINISHED; a stop request whose interrupt was
    swallowed still counts as a stop."""
    if exc is None:
        return "KILLED" if signals.received() is not None else "FINISHED"
    stopped = isinstance(exc, (KeyboardInterrupt, SystemExit)) or type(exc).__name__ == "TrialPruned"
    return "KILLED" if stopped else "FAILED"


def maybe_run(tracker: "Tracker | None", name: str, parent_id: str | None = None,
              tags: dict[str, str] | None = None):
    """``tracker.run(...)``, or a context yielding None when tracking is off."""
    return tracker.run(name, parent_id, tags) if tracker is not None else contextlib.nullcontext(None)


def tracking_uri(cfg: TrackingConfig) -> str:
    if cfg.uri:
        return cfg.uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    store = Path(cfg.store).resolve()
    store.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store / 'mlflow.db'}"


def artifact_root(uri: str) -> str | None:
    """Absolute artifact location for new experiments of a local SQLite store: ``artifacts/``
    beside the database file.  Servers and remote databases decide for themselves (None)."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri[len("sqlite:///"):]).resolve().parent / "artifacts").as_uri()


@contextlib.contextmanager
def keep_tracking_env() -> Iterator[None]:
    """Lightning's MLFlowLogger calls ``mlflow.set_tracking_uri``, which also writes
    ``MLFLOW_TRACKING_URI`` into this process's environment; put the user's value back afterwards
    so the next experiment in this process resolves its own store."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before


class Tracker:
    """A thin handle on one experiment of one store, picklable for worker processes."""

    def __init__(self, uri: str, experiment_id: str):
        self.uri, self.experiment_id = uri, experiment_id

    @classmethod
    def open(cls, cfg: TrackingConfig) -> "Tracker":
        from mlflow.tracking import MlflowClient

        uri = tracking_uri(cfg)
        client = MlflowClient(uri)
        exp = client.get_experiment_by_name(cfg.experiment)
        if exp is None:
            try:
                exp_id = client.create_experiment(cfg.experiment, artifact_location=artifact_root(uri))
            except Exception:  # created meanwhile by another process
                exp_id = client.get_experiment_by_name(cfg.experiment).experiment_id
        else:
            exp_id = exp.experiment_id
        tracker = cls(uri, exp_id)
        tracker.fail_orphans()
        return tracker

    def fail_orphans(self) -> list[str]:
        """Mark FAILED the RUNNING runs of this store whose owner process on this host is gone."""
        from mlflow.entities import ViewType

        client, host = self.client, socket.gethostname()
        experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
        running = []
        for i in range(0, len(experiments), 100):
            running += client.search_runs(experiments[i:i + 100], "attributes.status = 'RUNNING'",
                                          run_view_type=ViewType.ALL, max_results=50_000)
        orphans = [r for r in running if r.data.tags.get(OWNER_HOST) == host and OWNER_PID in r.data.tags
                   and not owner_alive(r.data.tags)]
        for run in orphans:
            client.set_tag(run.info.run_id, ORPHANED_TAG,
                           f"process {run.data.tags[OWNER_PID]} on {host} ended without ending this run")
            client.set_terminated(run.info.run_id, "FAILED")
        if orphans:
            names = ", ".join(f"{r.info.run_name} ({r.info.run_id[:8]})" for r in orphans[:5])
            log.warning("marked %d run(s) FAILED whose process is gone: %s%s", len(orphans), names,
                        " ..." if len(orphans) > 5 else "")
        return [r.info.run_id for r in orphans]

    @property
    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.uri)

    def create_run(self, name: str, parent_id: str | None = None, tags: dict[str, str] | None = None) -> str:
        all_tags = {**(tags or {}), **owner_tags()}
        if parent_id:
            all_tags[PARENT_TAG] = parent_id
        return self.client.create_run(self.experiment_id, run_name=name, tags=all_tags).info.run_id

    @contextlib.contextmanager
    def run(self, name: str, parent_id: str | None = None, tags: dict[str, str] | None = None) -> Iterator[str]:
        """Create a run, yield its id, end it FINISHED, FAILED (exception) or KILLED (a stop signal, or
        an Optuna trial pruned inside it)."""
        run_id = self.create_run(name, parent_id, tags)
        try:
            yield run_id
        except BaseException as exc:
            self.end_run(run_id, final_status(exc))
            raise
        self.end_run(run_id, final_status(None))

    def claim(self, run_id: str) -> None:
        """Make this process the owner of an existing run (a run resumed by a new command)."""
        client = self.client
        for key, value in owner_tags().items():
            client.set_tag(run_id, key, value)

    def end_run(self, run_id: str, status: str) -> None:
        client = self.client
        client.set_terminated(run_id, status)
        if status != "FINISHED":
            self.fail_running_children(run_id, status)

    def fail_running_children(self, run_id: str, status: str = "FAILED") -> None:
        """Mark descendants still RUNNING (e.g. their worker died) with ``status``."""
        client = self.client
        children = client.search_runs([self.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{run_id}'")
        for child in children:
            if child.info.status == "RUNNING":
                client.set_terminated(child.info.run_id, status)
            self.fail_running_children(child.info.run_id, status)

    # --- logging helpers -------------------------------------------------------------------
    def log_config(self, run_id: str, config: dict[str, Any]) -> None:
        """The resolved config as flat params and as ``config.yaml``."""
        from mlflow.entities import Param

        params = [Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in flatten(config).items()]
        client = self.client
        for i in range(0, len(params), 100):
            client.log_batch(run_id, params=params[i:i + 100])
        client.log_text(run_id, yaml.safe_dump(config, sort_keys=False), "config.yaml")

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        client = self.client
        for i in range(0, len(items), 500):
            client.log_batch(run_id, metrics=items[i:i + 500])

    @property
    def store_folder(self) -> Path | None:
        """The folder of a local SQLite store (database and artifacts), else None."""
        return Path(self.uri[len("sqlite:///"):]).resolve().parent if self.uri.startswith("sqlite:///") else None

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a file, or a folder with everything under it.  A folder that holds this store
        itself (a store kept inside an output folder) is uploaded without the store's folder,
        which would otherwise copy itself into itself without end."""
        path = Path(path)
        store = self.store_folder
        if path.is_dir() and store is not None and store.is_relative_to(path.resolve()):
            if store == path.resolve():
                return
            for child in sorted(path.iterdir()):
                sub = child.name if artifact_path is None else f"{artifact_path}/{child.name}"
                self.log_artifact(run_id, child, sub if child.is_dir() else artifact_path)
            return
        if path.is_dir():
            self.client.log_artifacts(run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(run_id, str(path), artifact_path)

    def lightning_logger(self, run_id: str):
        """A Lightning ``MLFlowLogger`` writing into the existing run ``run_id``."""
        from lightning.pytorch.loggers import MLFlowLogger

        return MLFlowLogger(tracking_uri=self.uri, run_id=run_id, log_model=False)
