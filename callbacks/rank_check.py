"""Checking that DDP ranks hold identical weights after every epoch."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lightning.pytorch as pl
import torch


def state_digest(module: torch.nn.Module, buffers: bool = False) -> str:
    """SHA-256 over every parameter (and buffer, if asked): name, dtype, shape, bytes."""
    h = hashlib.sha256()
    items = dict(module.named_parameters())
    if buffers:
        items |= dict(module.named_buffers())
    for name, tensor in sorted(items.items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


class RankConsistency(pl.Callback):
    """After every training epoch, gather each rank's parameter digest; raise if they differ (an
    unlearning operation that drew differently per rank, a freeze that desynchronised them).
    Buffers are left out: DDP re-broadcasts BatchNorm running statistics from rank 0 at the start
    of every forward, so between the last step and the next forward they legitimately differ.
    ``history`` holds ``[epoch, [digest per rank]]``; rank 0 writes it to ``path`` at fit end."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None
        self.history: list[list] = []

    def on_train_epoch_end(self, trainer, pl_module):
        digest = state_digest(pl_module)
        digests = [digest]
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            digests = [None] * trainer.world_size
            torch.distributed.all_gather_object(digests, digest)
        self.history.append([trainer.current_epoch, digests])
        if len(set(digests)) > 1:
            raise RuntimeError(f"DDP ranks hold different weights after epoch {trainer.current_epoch}: {digests}")

    def on_fit_end(self, trainer, pl_module):
        if self.path is not None and trainer.is_global_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"world_size": trainer.world_size, "epochs": self.history}))
