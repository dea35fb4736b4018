"""Which process of a distributed launch this is, before any process group exists.

Lightning's ``ddp`` launcher re-runs the command for ranks 1..N-1 with ``LOCAL_RANK`` (and
``NODE_RANK``) set; ``torchrun`` sets ``RANK``; SLURM's ``srun`` sets ``SLURM_PROCID``.  Every rank
runs the experiment driver and the same fits in the same order; only rank 0 tracks and writes.
"""

from __future__ import annotations

import os

from audioforge.errors import WorkerError


def process_rank() -> int:
    for var in ("RANK", "SLURM_PROCID"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    local = int(os.environ.get("LOCAL_RANK", "0") or 0)
    node = int(os.environ.get("NODE_RANK", "0") or 0)
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", "0") or 0)
    return node * per_node + local if per_node else local


def is_rank_zero() -> bool:
    return process_rank() == 0


def barrier() -> None:
    """Wait until every rank of the launch's process group reaches this point (nothing to wait for
    outside a distributed launch, or before its first fit has opened the group)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        except RuntimeError as exc:  # a peer closed its connection: it failed, and says why itself
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise WorkerError(f"rank {process_rank()}: another rank of this launch stopped before reaching the "
                              f"barrier (its own error says why): {first}") from None
