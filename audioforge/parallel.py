"""Worker processes for independent fits, and progress reported back from them."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import queue as queue_mod
import threading
from typing import Callable, Iterator


@contextlib.contextmanager
def worker_pool(processes: int) -> Iterator[mp.pool.Pool]:
    """A pool of fresh (spawned) processes; on any error or interrupt the workers are terminated."""
    pool = mp.get_context("spawn").Pool(processes)
    try:
        yield pool
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


class ProgressQueue:
    """``put(n)`` calls ``update(n)`` in this process; ``remote`` is a queue worker processes can
    ``put`` into, drained by a thread while the context is open."""

    def __init__(self, update: Callable[[int], None]):
        self.update = update
        self._manager = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._remote = None

    def put(self, n: int) -> None:
        self.update(n)

    @property
    def remote(self):
        if self._remote is None:
            self._manager = mp.get_context("spawn").Manager()
            self._remote = self._manager.Queue()
            self._thread = threading.Thread(target=self._drain, daemon=True)
            self._thread.start()
        return self._remote

    def _drain(self) -> None:
        while True:
            try:
                self.update(self._remote.get(timeout=0.2))
            except queue_mod.Empty:
                if self._stop.is_set():
                    return
            except (EOFError, OSError):
                return

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._manager.shutdown()
        return False
