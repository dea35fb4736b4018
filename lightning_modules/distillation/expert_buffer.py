"""Expert trajectories on disk: what ``audioforge buffer`` writes and trajectory matching reads.

A buffer is a folder::

    meta.json            network, its kwargs, input shape, classes, feature and data keys, epochs, lr
    expert_000.pt        float32 tensor (epochs + 1, P): flat parameters at the start and after each epoch
    expert_001.pt        ...

Experts are written one file each, atomically, so an interrupted ``buffer`` run resumes at the
first missing expert, and distillation loads one expert at a time (memory: one trajectory).
Processes that fill one buffer at once (the cells of a table on one split) share the work: a
process trains an expert only while it holds that expert's lock (``expert_000.lock``, released
when it finishes or dies), so no expert is trained twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any

import torch

from audioforge.errors import DataError


class ExpertBuffer:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    @property
    def meta_path(self) -> Path:
        return self.folder / "meta.json"

    def path(self, index: int) -> Path:
        return self.folder / f"expert_{index:03d}.pt"

    def meta(self) -> dict[str, Any]:
        if not self.meta_path.is_file():
            raise DataError(f"no expert buffer at {self.folder} (meta.json missing): run `audioforge buffer` first")
        return json.loads(self.meta_path.read_text())

    def start(self, meta: dict[str, Any]) -> None:
        """Create the buffer, or check that an existing one was made with the same settings."""
        if self.meta_path.is_file():
            old = self.meta()
            if old != meta:
                diff = sorted(k for k in set(old) | set(meta) if old.get(k) != meta.get(k))
                raise DataError(f"expert buffer {self.folder} was made with other settings ({', '.join(diff)}); "
                                f"use another buffer folder or delete this one")
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.meta_path.with_suffix(f".{os.getpid()}.tmp")  # another process may be reading it
        tmp.write_text(json.dumps(meta, indent=2))
        os.replace(tmp, self.meta_path)

    @contextlib.contextmanager
    def claim(self, index: int, wait: bool):
        """Hold expert ``index`` for training.  Yields True when this process holds it and the expert
        is still missing; False when it has been written meanwhile; None when another process holds
        it and ``wait`` is false.  With ``wait``, blocks until the holder finishes or dies."""
        with open(self.folder / f"expert_{index:03d}.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield None
                return
            try:
                yield not self.path(index).is_file()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def available(self) -> list[int]:
        return sorted(int(p.stem.split("_")[1]) for p in self.folder.glob("expert_*.pt"))

    def save(self, index: int, trajectory: torch.Tensor) -> Path:
        tmp = self.path(index).with_suffix(".tmp")
        torch.save(trajectory.contiguous(), tmp)
        os.replace(tmp, self.path(index))
        return self.path(index)

    def load(self, index: int) -> torch.Tensor:
        path = self.path(index)
        try:
            trajectory = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise DataError(f"expert trajectory missing: {path}") from None
        except Exception as exc:
            raise DataError(f"expert trajectory {path} cannot be read ({exc}); delete it and rerun buffer") from None
        epochs = self.meta()["epochs"]
        if trajectory.dim() != 2 or trajectory.shape[0] != epochs + 1:
            raise DataError(f"expert trajectory {path} has shape {tuple(trajectory.shape)}, expected ({epochs + 1}, P)")
        return trajectory

    def check_compatible(self, network: str, input_shape, num_classes: int, param_count: int) -> dict[str, Any]:
        """The buffer's meta, or a DataError saying how it differs from what distillation needs."""
        meta = self.meta()
        want = {"network": network, "input_shape": list(input_shape), "num_classes": num_classes}
        for key, value in want.items():
            if meta.get(key) != value:
                raise DataError(f"expert buffer {self.folder} has {key}={meta.get(key)!r}, distillation needs {value!r}")
        if not self.available():
            raise DataError(f"expert buffer {self.folder} holds no expert trajectories yet")
        size = self.load(self.available()[0]).shape[1]
        if size != param_count:
            raise DataError(f"expert buffer {self.folder}: trajectories hold {size} parameters, the network has "
                            f"{param_count} (different network settings)")
        return meta
