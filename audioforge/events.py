"""States a running command announces, one JSON line each, to the file ``$AUDIOFORGE_EVENTS``.

Schedulers, dashboards and tests wait for a state (``{"event": "epoch", ...}``: a fit is inside
an epoch) instead of for a time.  Worker processes inherit the variable, so their lines land in
the same file; each line carries the process id and is written with one ``O_APPEND`` write, so
lines from several processes never interleave.  Unset (the default), announcing costs nothing.

Events: ``command`` (a command started), ``workers`` (a pool started, with the worker pids),
``task`` (a worker began a task), ``trial`` (a sweep trial is running, its owner recorded),
``epoch`` (a training epoch began, with its device and precision), ``report`` (a report is being written).
"""

from __future__ import annotations

import json
import os
import time

VARIABLE = "AUDIOFORGE_EVENTS"


def announce(event: str, **fields) -> None:
    path = os.environ.get(VARIABLE)
    if not path:
        return
    line = json.dumps({"event": event, "pid": os.getpid(), "time": time.time(), **fields}, default=str) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
