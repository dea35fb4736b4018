"""A minibatch iterator over in-memory tensors.

Small audio datasets live in memory as one tensor; slicing it with an index tensor per batch is
several times cheaper than ``DataLoader`` with per-sample ``__getitem__`` and collation.  The
shuffle order comes from a generator seeded by ``(seed, epoch)``; under distributed training each
rank takes a strided shard of the same permutation (padded so every rank runs the same number of
batches, as ``DistributedSampler`` does).
"""

from __future__ import annotations

import math

import torch

# input elements per evaluation batch: evaluation keeps no graph, so its peak is about two of the
# widest layer's activations, which grow with the input; 2**19 elements is 1,310 FSDD MFCC clips
# (1 x 20 x 20), 436 FD-MFCC clips, 37 RAVDESS log-mel clips (1 x 64 x 219): about 0.5 GB of a
# 128-wide first layer's output at most, where a fixed 1,024 clips of RAVDESS took 7 GB
EVAL_ELEMENTS = 2 ** 19


def eval_batch_size(example: torch.Tensor | tuple[int, ...] | int, cap: int = 1024) -> int:
    """Clips per evaluation batch for inputs shaped like ``example`` (a tensor of one or more
    clips, a shape, or a number of elements per clip): at most ``cap``."""
    if isinstance(example, torch.Tensor):
        numel = math.prod(example.shape[1:]) if example.dim() > 3 else example.numel()
    else:
        numel = example if isinstance(example, int) else math.prod(example)
    return max(1, min(cap, EVAL_ELEMENTS // max(1, numel)))


class TensorBatchLoader:
    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = False,
                 seed: int = 0, drop_last: bool = False, rank: int = 0, world_size: int = 1):
        if len(x) != len(y):
            raise ValueError(f"features ({len(x)}) and labels ({len(y)}) differ in length")
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    @property
    def num_samples(self) -> int:
        """Samples this rank sees per epoch."""
        return math.ceil(len(self.x) / self.world_size)

    def __len__(self) -> int:
        if self.drop_last:  # full global batches only, so no rank ever reaches the shard padding
            return len(self.x) // (self.batch_size * self.world_size)
        return math.ceil(self.num_samples / self.batch_size)

    def indices(self) -> torch.Tensor:
        n = len(self.x)
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(n, generator=gen)
        else:
            order = torch.arange(n)
        if self.world_size > 1:
            total = self.num_samples * self.world_size
            order = torch.cat([order, order[: total - n]])[self.rank::self.world_size]
        return order

    def __iter__(self):
        order = self.indices()
        self.epoch += 1
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield self.x[idx], self.y[idx]
