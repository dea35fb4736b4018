"""The fork server every worker pool forks its workers from (``multiprocessing``'s
``forkserver`` context), and starting it early.

The server imports :data:`PRELOAD` once, so that a worker costs a fork rather than the seconds
those imports take.  :func:`warm_up` starts it at once, before the command imports anything
heavy itself: the server's imports then run beside the command's own instead of after them
(on two cores this takes about 5 s off every command that opens a pool).  This module imports
only the standard library, so calling it costs nothing before the command's imports.
"""

from __future__ import annotations

from multiprocessing import get_context

# imported once by the fork server, so that workers start without importing them again
PRELOAD = ["audioforge.processes", "torch", "lightning.pytorch", "torchmetrics", "mlflow", "sklearn.linear_model",
           "sklearn.model_selection", "sklearn.metrics", "sklearn.pipeline", "sklearn.preprocessing"]


def context():
    """The forkserver context, with :data:`PRELOAD` set (read when the server first starts)."""
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def warm_up() -> None:
    """Start this process's fork server now (a no-op when it runs already).  The server exits
    when this process does, whether or not a pool ever used it."""
    from multiprocessing import forkserver

    context()
    forkserver.ensure_running()
