"""Console logging for the command and its worker processes: INFO to stderr, or WARNING with ``--quiet``."""

from __future__ import annotations

import logging
import os
import sys

NOISY = ("alembic", "mlflow", "lightning", "lightning.pytorch", "lightning.fabric", "numba", "matplotlib")


def setup_logging(quiet: bool) -> None:
    if quiet:
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
