"""Workers forked from the fork server see the command's environment and folder as they are when
a pool opens (as spawned processes would), and report progress to the pool's callback."""

from __future__ import annotations

import os

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
