"""Running a real ``audioforge`` command in its own process and following the states it announces
(``$AUDIOFORGE_EVENTS``), so tests wait for a state, never for a time.

The deadlines below only turn a hang into a failure; no verdict depends on how fast the machine is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parents[1]
HANG = 600.0  # seconds after which a wait is a hang, not a slow machine


def gone(pid: int) -> bool:
    """The process has exited (absent, or a zombie waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


class Command:
    def __init__(self, args: list[str], tmp_path: Path, name: str = "cmd"):
        self.events = tmp_path / f"{name}-events.jsonl"
        self.events.unlink(missing_ok=True)
        env = {**os.environ, "AUDIOFORGE_EVENTS": str(self.events), "MLFLOW_LOGGING_LEVEL": "WARNING",
               "PYTHONPATH": str(REPO)}
        self.stderr_path = tmp_path / f"{name}-stderr.txt"
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "audioforge", *args], cwd=REPO, env=env,
                                     stdout=subprocess.DEVNULL, stderr=self._stderr, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def lines(self) -> list[dict]:
        if not self.events.is_file():
            return []
        return [json.loads(line) for line in self.events.read_text().splitlines() if line.strip()]

    def worker_pids(self) -> set[int]:
        return {pid for e in self.lines() if e["event"] == "workers" for pid in e["pids"]}

    def wait_for(self, event: str, in_worker: bool = False, processes: int = 1, count: int = 1, **fields) -> dict:
        """The ``count``-th announced ``event`` with ``fields`` (from a worker process when ``in_worker``),
        once ``processes`` distinct processes have announced it."""
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline:
            hits = [e for e in self.lines() if e["event"] == event and all(e.get(k) == v for k, v in fields.items())
                    and (not in_worker or e["pid"] != self.pid)]
            if len({e["pid"] for e in hits}) >= processes and len(hits) >= count:
                return hits[count - 1]
            if self.proc.poll() is not None:
                raise AssertionError(f"command exited ({self.proc.returncode}) before announcing {event}: {self.stderr()}")
            time.sleep(0.1)
        raise AssertionError(f"no {event} announced in {HANG} s")

    def send(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def freeze(self, pids: set[int]) -> None:
        """Stop ``pids`` (SIGSTOP): what they record cannot change until ``thaw`` or a kill, so a
        test can read a state and act on exactly that state."""
        for pid in pids:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass

    def thaw(self, pids: set[int]) -> None:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def finish(self) -> int:
        try:
            return self.proc.wait(timeout=HANG)
        finally:
            self.cleanup()

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text()[-4000:]

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait()
        self._stderr.close()


def wait_gone(pids: set[int]) -> set[int]:
    """Wait until every pid has exited; returns those still alive at the hang deadline."""
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline and not all(gone(p) for p in pids):
        time.sleep(0.1)
    return {p for p in pids if not gone(p)}


def runs(store: Path, experiment: str) -> list:
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id]) if exp else []
