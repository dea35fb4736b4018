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


STOPPED_POOL = """
import sys, time
sys.path.insert(0, {repo!r})
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
