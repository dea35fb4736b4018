"""Workers forked from the fork server see the command's environment and folder as they are when
a pool opens (as spawned processes would), and report progress to the pool's callback."""

from __future__ import annotations

import os

import pytest

from audioforge import processes
from audioforge.processes import WorkerPool


def _where(_):
    processes.progress(1)
    return os.environ.get("AUDIOFORGE_POOL_TEST"), os.getcwd(), os.getppid()


def test_each_pool_gives_its_workers_the_current_environment_and_folder(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setenv("AUDIOFORGE_POOL_TEST", "first")
    with WorkerPool(2, progress=seen.append) as pool:
        first = pool.map(_where, range(4))
    monkeypatch.setenv("AUDIOFORGE_POOL_TEST", "second")
    monkeypatch.chdir(tmp_path)
    with WorkerPool(2, fresh_process=True) as pool:
        second = pool.map(_where, range(2))
    assert {env for env, _, _ in first} == {"first"} and {env for env, _, _ in second} == {"second"}
    assert {cwd for _, cwd, _ in second} == {str(tmp_path)}
    # one fork server (not this process) is the parent of every worker, across pools
    parents = {ppid for _, _, ppid in first + second}
    assert len(parents) == 1 and os.getpid() not in parents
    assert sum(seen) == 4


STOPPED_POOL = """
import sys, time
sys.path.insert(0, {repo!r})
from audioforge import forkserver
forkserver.PRELOAD = ["audioforge.processes"]  # the stop is under test, not the libraries' imports
from audioforge.processes import WorkerPool

def forever(i):
    time.sleep(3600)

if __name__ == "__main__":
    try:
        with WorkerPool(2, fresh_process=True) as pool:
            for i in range(5):
                pool.submit(i, forever, i)
            while len(pool._running) < 2:  # both workers are inside a task (their own announcement)
                time.sleep(0.05)
            raise KeyboardInterrupt("stop")
    except KeyboardInterrupt:
        print("stopped", flush=True)
"""


def test_a_stopped_fresh_process_pool_with_queued_tasks_lets_the_command_exit(tmp_path):
    """Stopping a pool whose workers are busy and whose queue still holds tasks ends the process:
    nothing left waits for the killed workers' results at interpreter exit."""
    import subprocess
    import sys

    from tests.commands import HANG, REPO

    script = tmp_path / "stop_pool.py"
    script.write_text(STOPPED_POOL.format(repo=str(REPO)))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=HANG)
    assert done.returncode == 0 and done.stdout.strip() == "stopped", done.stderr
    assert "Traceback" not in done.stderr, done.stderr  # the stop is quiet


def _staged(_):
    """Two nested stages, then a fit inside no stage, then a fit inside one."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from audioforge.training import TrainerConfig, make_trainer, stage_bar
    from lightning_modules.classifier import ClassifierModule

    with stage_bar(2, "outer", "step") as outer:
        with stage_bar(5, "inner", "it") as inner:
            inner.update(5)
        outer.update(1)
    data = DataLoader(TensorDataset(torch.randn(8, 1, 20, 20), torch.arange(8) % 2), batch_size=4)

    def fit():
        model = ClassifierModule("unlearning_cnn", (1, 20, 20), 2)
        make_trainer(TrainerConfig(accelerator="cpu", devices=1), 2, validate=False).fit(model, data)

    fit()
    with stage_bar(1, "wrapped", "fit"):
        fit()
    return type(outer).__name__


def test_a_workers_stages_reach_the_status_line_innermost_first_and_leave_it_when_done():
    lines = []
    with WorkerPool(2, status=lines.append) as pool:
        pool.submit("cell", _staged, 0)
        _, kind = pool.next()
    assert kind == "Stage"  # in a worker, a stage bar goes to the status line, not to a terminal bar
    shown = [line for i, line in enumerate(lines) if i == 0 or line != lines[i - 1]]
    assert shown[:5] == ["cell: outer 0/2 step", "cell: inner 0/5 it", "cell: outer 0/2 step", "cell",
                         "cell: training ClassifierModule 0/2 epoch"]  # between stages: the task alone
    assert "cell: wrapped 0/1 fit" in shown
    after = shown[shown.index("cell: wrapped 0/1 fit"):]
    assert not any("training" in line for line in after)  # a fit inside a stage leaves that stage shown
    assert lines[-1] == ""  # the task ended: its worker is off the line


def test_an_inline_pool_starts_no_task_after_one_that_failed():
    """One worker runs in this process: a task starts only when ``next()`` asks for it, so a failed
    task's error comes before any later task runs (under DDP a later task would open a collective
    that the other ranks, waiting where the failed one left them, never join)."""
    started = []

    def task(name):
        started.append(name)
        if name == "original":
            raise OSError("cannot write the model cache")
        return name

    with WorkerPool(1) as pool:
        assert pool.inline
        for name in ("original", "gold", "scheme"):
            pool.submit(name, task, name)
        assert started == []  # queued, not run
        with pytest.raises(OSError, match="model cache"):
            pool.next()
        assert started == ["original"]
        assert pool.next() == ("gold", "gold") and started == ["original", "gold"]


def _running_pid(pool: WorkerPool, task: str) -> int:
    """The worker that announced it runs ``task`` (the pool records each worker's announcement)."""
    import time

    from tests.commands import HANG

    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline:
        for pid, name in list(pool._running.items()):
            if name == task:
                return pid
        time.sleep(0.02)
    raise AssertionError(f"no worker announced task {task!r}")


def test_a_worker_killed_outright_fails_the_pool_naming_its_process_and_task():
    """SIGKILL (by hand or by the out-of-memory killer) leaves no result: ``next()`` raises at once
    with the process, its task and the signal, rather than waiting for the lost task."""
    import signal
    import time

    from audioforge.errors import WorkerError

    with pytest.raises(WorkerError) as caught, WorkerPool(2) as pool:
        pool.submit("victim", time.sleep, 3600)
        pool.submit("bystander", time.sleep, 3600)
        victim = _running_pid(pool, "victim")
        os.kill(victim, signal.SIGKILL)
        pool.next()
    message = str(caught.value)
    assert f"process {victim} running task 'victim' died, killed by SIGKILL" in message, message
    assert "out-of-memory killer" in message and "Run it again to resume" in message
    assert not processes.pid_exists(victim)


def test_a_frozen_worker_is_killed_after_the_grace_period_of_a_stop():
    """A worker that cannot unwind when the stop's SIGTERM reaches it (frozen here; on a loaded
    machine, one slower than the grace period) is SIGKILLed: stopping the pool always returns."""
    import signal
    import time

    with WorkerPool(1, fresh_process=True) as pool:
        pool.submit("frozen", time.sleep, 3600)
        frozen = _running_pid(pool, "frozen")
        os.kill(frozen, signal.SIGSTOP)
        pool.terminate(grace=0.2)
        assert not processes.pid_exists(frozen)


def test_a_worker_stopped_by_sigterm_ends_its_task_with_an_error_naming_it():
    """SIGTERM to one worker (not the command): its task unwinds (its runs end KILLED) and ``next()``
    raises an error naming the task, so the command fails instead of waiting for a result."""
    import signal
    import time

    from audioforge.errors import Interrupted

    with pytest.raises(Interrupted, match="task cell-3 was stopped by a signal") as caught, WorkerPool(2) as pool:
        pool.submit("cell-3", time.sleep, 3600)
        os.kill(_running_pid(pool, "cell-3"), signal.SIGTERM)
        pool.next()
    assert "running the command again resumes or restarts it" in str(caught.value)


def _blas_threads_after(threads):
    import torch
    from threadpoolctl import threadpool_info

    from audioforge.training import TrainerConfig, configure_threads

    configure_threads(TrainerConfig(threads=threads))
    return torch.get_num_threads(), {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_a_workers_thread_setting_holds_for_blas_as_for_torch():
    """A worker's BLAS (NumPy, SciPy: scikit-learn's probes and attacks) runs as many threads as its
    torch, not one per core: with one worker per core, the default oversubscribes the cores.  One
    and three threads: on any machine one of them differs from the default."""
    with WorkerPool(2, fresh_process=True) as pool:
        results = pool.map(_blas_threads_after, [1, 3])
    assert results == [(1, {1}), (3, {3})]
