"""Console logging for the command and its worker processes: INFO to stderr, or WARNING with ``--quiet``."""

from __future__ import annotations

import logging
import os
import sys

NOISY = ("alembic", "mlflow", "lightning", "lightning.pytorch", "lightning.fabric", "numba", "matplotlib")


def progress_shown() -> bool:
    """Progress bars show while INFO logging is on (``--quiet`` turns both off)."""
    return logging.getLogger("audioforge").isEnabledFor(logging.INFO)


def setup_logging(quiet: bool) -> None:
    if quiet:
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    level = logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    logging.getLogger().setLevel(level)  # also when a host (a notebook, a test runner) configured logging first
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
