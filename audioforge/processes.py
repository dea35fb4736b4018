"""Worker processes that never outlive their command: the one pool every command uses.

:class:`WorkerPool` runs tasks in worker processes (``concurrent.futures``), or inline when one
job is enough.  Workers are forked from a fork server that imported torch, Lightning and MLflow
once (:mod:`audioforge.forkserver`, started early by the commands that open pools): a new worker costs a
fork, not the seconds those imports take, which matters for pools that start a fresh process per
task (table cells).  A worker takes the command's environment and working directory as they were
when its pool opened, as a spawned process would.  Guarantees:

- **A worker dies with its command, whatever killed the command.**  The fork server exits when
  the command that started it is gone (it reads the end of a pipe only that process holds).  On
  Linux each worker asks the kernel for ``SIGKILL`` when its parent (the fork server) dies
  (``prctl(PR_SET_PDEATHSIG)``); elsewhere a watchdog thread ends it once its parent is gone.
- **A stop ends everything promptly.**  ``SIGTERM`` or ``SIGINT`` in the command raises
  ``KeyboardInterrupt`` there (:mod:`audioforge.signals`); leaving the pool's block then sends
  ``SIGTERM`` to every worker (a worker inside a task unwinds, so its tracked runs end KILLED; an
  idle one exits), waits a few seconds, and kills what is left.  Workers ignore ``SIGINT``: a
  Ctrl-C reaches the whole process group, and the command coordinates the stop.
- **A dead worker fails the command, never hangs it.**  A worker killed outright (``SIGKILL``,
  the out-of-memory killer) breaks the pool; the pending results raise :class:`WorkerError`
  naming the task the dead worker ran and its exit code.
- **Progress from workers**: :func:`progress` called inside a task reaches the ``progress``
  callback of the pool in the command's process (a progress bar), through a queue the workers
  inherit; a worker's current stage (:class:`Stage`: "mtt distillation 420/1000 iteration") reaches
  its ``status`` callback as one line per busy worker (the bar's postfix).
"""

from __future__ import annotations

import ctypes
import os
import queue as queue_mod
import signal
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Hashable, Iterable, Iterator

from audioforge import events, signals
from audioforge.forkserver import context
from audioforge.errors import Interrupted, WorkerError

PR_SET_PDEATHSIG = 1
STOP_GRACE_SECONDS = 10.0

_sink: Callable[[int], None] | None = None   # where progress(n) goes in this process
_muted = 0                                   # open muted() blocks: progress(n) reports nothing
_channel = None                              # in a worker: the queue to the command's process
_task: str | None = None                     # in a worker: the task running now
_stages: list["Stage"] = []                  # in a worker: the stages open now, innermost last
STATUS_INTERVAL = 2.0                        # seconds between a stage's status lines


def progress(n: int = 1) -> None:
    """Report ``n`` units of work done to the progress callback of the running pool (if any)."""
    if _muted:
        return
    if _sink is not None:  # a pool opened in this process (inline, or nested inside a worker)
        _sink(n)
    elif _channel is not None:
        _channel.put(("progress", n))


@contextmanager
def muted() -> Iterator[None]:
    """Inside the block :func:`progress` reports nothing: for work whose units are not the pool's
    (a sweep trial's epochs, while the pool's bar counts trials)."""
    global _muted
    _muted += 1
    try:
        yield
    finally:
        _muted -= 1


def in_worker() -> bool:
    """Whether this process is a pool's worker inside a task (its stages reach the pool's status line)."""
    return _channel is not None and _task is not None


def in_stage() -> bool:
    """Whether a stage is open in this worker."""
    return bool(_stages)


def _format_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Stage:
    """A stage of the task a worker runs, shown in the command's status line: ``update(n)`` as a
    progress bar's; the innermost open stage is the one shown, at most every STATUS_INTERVAL
    seconds (a display: nothing waits on it).  Outside a worker it shows nothing."""

    def __init__(self, total: int | None, desc: str, unit: str):
        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        self._started = self._posted = time.monotonic()

    def __enter__(self) -> "Stage":
        _stages.append(self)
        self._post(force=True)
        return self

    def __exit__(self, *exc) -> bool:
        if self in _stages:
            _stages.remove(self)
        if _stages:
            _stages[-1]._post(force=True)
        elif in_worker():  # between stages: the task alone
            _channel.put(("status", os.getpid(), _task))
        return False

    def update(self, n: int = 1) -> None:
        self.n += n
        self._post()

    def line(self) -> str:
        if not self.total:
            return f"{self.desc} {self.n} {self.unit}"
        text = f"{self.desc} {self.n}/{self.total} {self.unit}"
        if 0 < self.n < self.total:
            left = (time.monotonic() - self._started) / self.n * (self.total - self.n)
            text += f" ({_format_seconds(left)} left)"
        return text

    def _post(self, force: bool = False) -> None:
        now = time.monotonic()
        shown = in_worker() and _stages and _stages[-1] is self
        if not shown or (not force and now - self._posted < STATUS_INTERVAL):
            return
        self._posted = now
        _channel.put(("status", os.getpid(), f"{_task}: {self.line()}"))


def die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` (its parent) dies, however it died."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        def watch():
            while os.getppid() == parent_pid:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, daemon=True, name="parent-watchdog").start()
    if os.getppid() != parent_pid:  # the parent died before the request was in place
        os._exit(1)


def _release_fork_server() -> None:
    """Close this worker's copy of the fork server's keep-alive pipe.  The server exits when every
    holder has closed it; a worker holding it would keep the server, and through the server
    itself, alive after the command died."""
    from multiprocessing import forkserver

    server = forkserver._forkserver
    if server._forkserver_alive_fd is not None:
        os.close(server._forkserver_alive_fd)
        server._forkserver_alive_fd = None
        server._forkserver_pid = None  # a pool opened inside this worker starts a server of its own


def pid_exists(pid: int) -> bool:
    """A process with this pid exists (it may be a zombie, or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _on_sigterm(signum, frame) -> None:
    if _task is None:  # idle between tasks: nothing to unwind
        os._exit(128 + signum)
    signals._handle(signum, frame)


def _init_worker(command_pid: int, environment: dict[str, str], cwd: str, channel) -> None:
    global _channel
    die_with_parent(os.getppid())  # the fork server, which goes when the command goes
    _release_fork_server()
    if not pid_exists(command_pid):  # the command died while this worker was being forked
        os._exit(1)
    os.environ.clear()
    os.environ.update(environment)
    os.chdir(cwd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    _channel = channel


def _run_task(name: str, fn: Callable, args: tuple) -> Any:
    """A task inside a worker: announced, and a stop turned into an error naming it."""
    global _task
    _task = name
    _channel.put(("task", name, os.getpid()))
    events.announce("task", task=name)
    try:
        return fn(*args)
    except (KeyboardInterrupt, SystemExit) as stop:  # Lightning turns an interrupt into exit(1)
        raise Interrupted(f"task {name} was stopped by a signal ({type(stop).__name__}: {stop}); its runs ended "
                          f"KILLED, and running the command again resumes or restarts it") from None
    finally:
        _task = None
        _stages.clear()
        _channel.put(("status", os.getpid(), None))  # idle: off the status line


def _quiet_stopped_manager(executor: ProcessPoolExecutor) -> None:
    """Python 3.11's executor manager thread, replacing a killed worker of a pool already shut
    down (``max_tasks_per_child``), fails with ``TypeError: object of type 'NoneType' has no
    len()`` and prints a traceback though nothing is wrong: the pool is being stopped on purpose.
    That one error of this executor's manager thread is dropped; every other goes to the hook
    that was there."""
    from concurrent.futures import process

    manager_class = getattr(process, "_ExecutorManagerThread", None)
    previous = threading.excepthook

    def hook(args):
        if manager_class is not None and isinstance(args.thread, manager_class) and args.exc_type is TypeError \
                and getattr(args.thread, "executor_reference", lambda: None)() in (executor, None):
            return
        previous(args)

    threading.excepthook = hook


class WorkerPool:
    """``jobs`` worker processes (inline in this process when ``jobs <= 1`` and not
    ``fresh_process``); ``fresh_process`` gives every task a new process (its own peak memory).

    ``submit(key, fn, *args)`` queues a task (``key``: hashable, ``str(key)`` names it in errors);
    ``next()`` returns ``(key, result)`` of the next task to finish; ``map`` runs a batch in order.
    An inline pool runs each task when ``next()`` asks for it, so a task's error is raised before
    any later task starts (under a distributed launch a later task would open a collective that the
    other ranks, waiting where the failed task left them, never join).
    """

    def __init__(self, jobs: int, progress: Callable[[int], None] | None = None, fresh_process: bool = False,
                 status: Callable[[str], None] | None = None):
        self.jobs = max(1, jobs)
        self.inline = self.jobs == 1 and not fresh_process
        self.progress = progress
        self.status = status                 # gets one line: each busy worker's innermost stage
        self._status: dict[int, str] = {}    # worker pid -> its last stage line
        self.pending: dict[Future, Hashable] = {}
        self._queued: deque[tuple[Future, Hashable, Callable, tuple]] = deque()  # an inline pool's tasks
        self._executor: ProcessPoolExecutor | None = None
        self._channel = None
        self._drain: threading.Thread | None = None
        self._stop_drain = threading.Event()
        self._procs: dict[int, Any] = {}
        self._running: dict[int, str] = {}   # worker pid -> task name
        self._fresh = fresh_process

    # --- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> "WorkerPool":
        global _sink
        self._outer_sink, _sink = _sink, self.progress
        if not self.inline:
            ctx = context()
            self._channel = ctx.Queue()
            self._executor = ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_init_worker,
                                                 initargs=(os.getpid(), dict(os.environ), os.getcwd(), self._channel),
                                                 max_tasks_per_child=1 if self._fresh else None)
            self._drain = threading.Thread(target=self._drain_channel, daemon=True, name="worker-progress")
            self._drain.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        global _sink
        try:
            if self._executor is not None:
                if exc_type is None:
                    self._executor.shutdown(wait=True)
                else:
                    self.terminate()
        finally:
            self._stop_drain.set()
            if self._drain is not None:
                self._drain.join(timeout=5)
                self._channel.cancel_join_thread()
            _sink = self._outer_sink
        return False

    def terminate(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop every worker: SIGTERM (a task unwinds and ends its runs KILLED), then SIGKILL."""
        self._snapshot()
        _quiet_stopped_manager(self._executor)
        self._executor.shutdown(wait=False, cancel_futures=True)
        alive = [p for p in self._procs.values() if p.is_alive()]
        for p in alive:
            p.terminate()
        deadline = time.monotonic() + grace
        for p in alive:
            p.join(max(0.0, deadline - time.monotonic()))
        for p in alive:
            if p.is_alive():
                p.kill()
                p.join()

    # --- work -------------------------------------------------------------------------------
    def submit(self, key: Hashable, fn: Callable, *args) -> None:
        future: Future = Future()
        if self.inline:  # run by next(), in the order submitted
            self._queued.append((future, key, fn, args))
        else:
            future = self._executor.submit(_run_task, str(key), fn, args)
            self._snapshot()
        self.pending[future] = key

    def next(self) -> tuple[Hashable, Any]:
        """``(key, result)`` of the next task to finish; its error is raised here."""
        if not self.pending:
            raise RuntimeError("no task pending")
        if self.inline:
            future, key, fn, args = self._queued.popleft()
            del self.pending[future]
            events.announce("task", task=str(key))
            return key, fn(*args)
        while True:
            done, _ = wait(list(self.pending), timeout=0.5, return_when=FIRST_COMPLETED)
            signals.check()
            self._snapshot()
            if done:
                break
        future = next(f for f in self.pending if f in done)
        key = self.pending.pop(future)
        try:
            return key, future.result()
        except BrokenProcessPool:
            raise WorkerError(self._death(str(key))) from None

    def map(self, fn: Callable, items: Iterable) -> list[Any]:
        """``[fn(item) for item in items]`` across the workers, in order."""
        items = list(items)
        for i, item in enumerate(items):
            self.submit(i, fn, item)
        out: dict[int, Any] = {}
        while self.pending:
            i, result = self.next()
            out[i] = result
        return [out[i] for i in range(len(items))]

    # --- inside -----------------------------------------------------------------------------
    def _snapshot(self) -> None:
        """Remember every worker process the executor started (it forgets them at shutdown, and
        replaces workers of ``fresh_process`` pools on its own thread)."""
        if self._executor is None:
            return
        for pid, proc in list((self._executor._processes or {}).items()):
            if pid not in self._procs:
                self._procs[pid] = proc
                events.announce("workers", pids=[pid])

    def _drain_channel(self) -> None:
        """Deliver workers' messages until the pool closes, then what is left (the workers have
        exited by then, so everything they sent is in the pipe)."""
        while True:
            stopping = self._stop_drain.is_set()
            try:
                message = self._channel.get(timeout=0.05 if stopping else 0.2)
            except queue_mod.Empty:
                if stopping:
                    return
                continue
            except (EOFError, OSError, ValueError):
                return
            if message[0] == "progress":
                if self.progress is not None:
                    self.progress(message[1])
            elif message[0] == "task":
                self._running[message[2]] = message[1]
            elif message[0] == "status":
                self._show_status(message[1], message[2])

    def _show_status(self, pid: int, line: str | None) -> None:
        if line is None:
            self._status.pop(pid, None)
        else:
            self._status[pid] = line
        if self.status is not None:
            self.status(" | ".join(self._status[p] for p in sorted(self._status)))

    def _death(self, key: str) -> str:
        time.sleep(0.2)  # let the progress thread take the last "task" messages
        dead = []
        for pid, proc in self._procs.items():
            proc.join(timeout=1.0)
            code = proc.exitcode
            if code not in (None, 0) and code != -signal.SIGTERM:
                how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
                hint = " (SIGKILL: killed by hand or by the out-of-memory killer)" if code == -signal.SIGKILL else ""
                dead.append(f"process {pid} running task {self._running.get(pid, '(unknown)')!r} died, {how}{hint}")
        what = "; ".join(dead) or "a worker process died"
        return f"{what}; the command stopped its other tasks (task {key!r} did not finish). Run it again to resume."
