"""Where things live by default: data, configs, outputs."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = PROJECT_ROOT / "configs"


def data_root(configured: str | None) -> Path:
    """``configured`` (data.root / --data), else ``$AUDIOFORGE_DATA``, else ``./data``."""
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("AUDIOFORGE_DATA", "data")).expanduser()


def preset(command: str, name: str) -> Path:
    return CONFIG_DIR / command / f"{name}.yaml"


def beside(path: str | Path, config_dir: Path) -> Path:
    """A path a config names: as given when absolute or existing, else relative to the config's folder."""
    p = Path(path)
    return p if p.is_absolute() or p.exists() else config_dir / p
