"""Stopping on SIGTERM and SIGINT, promptly and with every run ended KILLED.

``install()`` (the CLI calls it first thing; worker processes call it when they start) makes both
signals record themselves and raise ``KeyboardInterrupt`` in the main thread, so ``Tracker.run``
blocks end their runs KILLED and worker pools terminate their workers on the way out.

A ``KeyboardInterrupt`` raised inside a ``__del__`` or a ``finally`` of library code can be
swallowed.  The request is therefore also *remembered*: :class:`audioforge.training.StopOnSignal` (on every
Trainer) raises again at the next batch, pool waits raise
again, a tracked run that received a request ends KILLED even if its code returned, and the CLI
exits 130 whenever a stop was requested.
"""

from __future__ import annotations

import signal
import threading

_received: int | None = None
_deferred = False   # inside a section a stop must not cut: the request waits for its end


def install() -> None:
    """SIGTERM and SIGINT raise ``KeyboardInterrupt`` (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _handle)


def _handle(signum, frame) -> None:
    global _received
    _received = signum
    if not _deferred:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def defer() -> None:
    """From now on a stop request is only remembered, until :func:`resume` (a section that must
    complete once begun, e.g. creating a record and naming its owner)."""
    global _deferred
    _deferred = True


def resume() -> None:
    """End a :func:`defer` section: a stop requested inside it raises ``KeyboardInterrupt`` now."""
    global _deferred
    _deferred = False
    check()


def received() -> int | None:
    """The signal number of the first stop request this process got, or None."""
    return _received


def check() -> None:
    """Raise ``KeyboardInterrupt`` again if a stop was requested (it may have been swallowed)."""
    if _received is not None:
        raise KeyboardInterrupt(f"signal {signal.Signals(_received).name}")
