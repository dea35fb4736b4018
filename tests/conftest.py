"""Shared fixtures: the real data in ../shared/data (skipped with a reason where absent), one
MLflow SQLite store and one feature cache per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AUDIOFORGE_TEST_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def _session_env(tmp_path_factory):
    """Feature cache and MLflow quietness for the whole session."""
    os.environ["AUDIOFORGE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ["MLFLOW_LOGGING_LEVEL"] = "WARNING"
    yield


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The shared data root holding fsdd/recordings."""
    if not (SHARED_DATA / "fsdd" / "recordings").is_dir():
        pytest.skip(f"real FSDD not found at {SHARED_DATA / 'fsdd' / 'recordings'} (set AUDIOFORGE_TEST_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory) -> Path:
    """One SQLite store per session (its first initialisation costs seconds)."""
    from audioforge.tracking import Tracker, TrackingConfig

    store = tmp_path_factory.mktemp("mlruns")
    Tracker.open(TrackingConfig(store=str(store), experiment="warmup"))
    return store


@pytest.fixture
def small_fsdd(data_root, tmp_path) -> Path:
    """A writable FSDD tree of real clips: 3 speakers x 10 digits x 10 takes, at tmp/fsdd/recordings."""
    target = tmp_path / "data" / "fsdd" / "recordings"
    target.mkdir(parents=True)
    for speaker in ("george", "jackson", "theo"):
        for digit in range(10):
            for take in range(10):
                name = f"{digit}_{speaker}_{take}.wav"
                shutil.copy(data_root / "fsdd" / "recordings" / name, target / name)
    return tmp_path / "data"


@pytest.fixture(scope="session")
def synthetic_fsdd(tmp_path_factory) -> Path:
    """A data root whose fsdd/recordings holds synthetic clips named as FSDD names them (6 speakers
    x 10 digits x 6 takes); needs no data files, so these tests run on any checkout."""
    from tests.synthetic import write_fsdd

    return write_fsdd(tmp_path_factory.mktemp("synthetic"))
