"""Shared set-up for benchmarks: the data root and quiet Lightning."""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def data_root(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=os.environ.get("AUDIOFORGE_DATA", str(REPO.parent / "shared" / "data")))
    args, _ = parser.parse_known_args(argv)
    root = Path(args.data)
    if not (root / "fsdd" / "recordings").is_dir():
        raise SystemExit(f"benchmarks need FSDD at {root / 'fsdd' / 'recordings'} (pass --data)")
    return root


def quiet() -> None:
    from audioforge.training import quiet_lightning

    warnings.filterwarnings("ignore")
    quiet_lightning()
