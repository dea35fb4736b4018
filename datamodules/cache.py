"""On-disk cache of extracted features, keyed by a hash of inputs, parameters and code version."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch


def default_cache_dir() -> Path:
    """``$AUDIOFORGE_CACHE``, else ``$XDG_CACHE_HOME/audioforge``, else ``~/.cache/audioforge``."""
    if os.environ.get("AUDIOFORGE_CACHE"):
        return Path(os.environ["AUDIOFORGE_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "audioforge"


def file_fingerprint(paths: list[Path], root: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of each file: cheap, and changes when a file is replaced."""
    out = []
    for p in paths:
        st = p.stat()
        out.append((relative_name(p, root), st.st_size, st.st_mtime_ns))
    return out


def relative_name(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (POSIX), or absolute when it lies elsewhere (a manifest may
    point anywhere)."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).resolve().as_posix()


def tensor_digest(x: torch.Tensor) -> str:
    """SHA-256 of a tensor's bytes (shape and dtype included)."""
    x = x.detach().cpu().contiguous()
    h = hashlib.sha256(f"{tuple(x.shape)}{x.dtype}".encode())
    h.update(memoryview(x.numpy()).cast("B"))  # hashed in place: a copy of a 400 MB feature tensor is not free
    return h.hexdigest()[:24]


def cache_key(**parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


class FeatureCache:
    """A folder of ``<namespace>-<key>.pt`` files written atomically."""

    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory else default_cache_dir() / "features"

    def path(self, namespace: str, key: str) -> Path:
        return self.directory / f"{namespace}-{key}.pt"

    def load(self, namespace: str, key: str) -> dict[str, Any] | None:
        path = self.path(namespace, key)
        if not path.is_file():
            return None
        try:
            return torch.load(path, weights_only=False)
        except Exception:  # a truncated or foreign file is a miss, rebuilt below
            return None

    def save(self, namespace: str, key: str, payload: dict[str, Any]) -> Path:
        path = self.path(namespace, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(payload, tmp)
        os.replace(tmp, path)
        return path
