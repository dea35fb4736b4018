"""Features of many audio files, streamed: decoded and extracted a chunk at a time into one
preallocated tensor, so peak memory is the features plus one chunk of waveforms, whatever the
number of clips.  Sets that would take more than a few seconds decode in parallel worker
processes (decoding and resampling, not the batched transform, is what costs); a progress bar
with the time left shows on stderr while INFO logging is on (``--quiet`` turns it off)."""

from __future__ import annotations

import itertools
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from datamodules.audio_io import fit_length, load_audio
from datamodules.features import FeatureSpec, extract, feature_shape

log = logging.getLogger(__name__)

CHUNK = 256            # clips decoded and transformed together at most ...
CHUNK_SAMPLES = 2 ** 22  # ... and at most this many samples (16 MB of waveforms; the STFT holds a few times that)
POOL_PAYS_AFTER = 10.0  # seconds of decoding left in this process that make a worker pool worth starting
BAR_FROM = 500         # fewer clips than this show no bar (they take well under a second)


def extract_chunk(paths: Sequence[str], spec: FeatureSpec) -> torch.Tensor:
    """Features of ``paths`` (each decoded, mixed to mono, resampled, cut or padded)."""
    waves = [fit_length(load_audio(p, spec.sample_rate, spec.num_samples), spec.num_samples) for p in paths]
    return extract(waves, spec, chunk=len(waves) or 1)


def _extract_chunk_task(args: tuple[list[str], FeatureSpec]) -> torch.Tensor:
    """In a pool worker: one thread each, the workers together fill the cores."""
    torch.set_num_threads(1)
    return extract_chunk(*args)


def extract_files(paths: Sequence[Path], spec: FeatureSpec, worker_pool: Callable[[int], Any] | None = None,
                  jobs: int | None = None, desc: str = "features") -> torch.Tensor:
    """``(N, C, F, T)`` features of ``paths`` in order.  ``worker_pool(jobs)``: a context manager
    with ``submit`` / ``next`` (audioforge's WorkerPool); None decodes here.  A file that cannot
    be decoded raises :class:`~audioforge.errors.DataError` naming it."""
    n = len(paths)
    out = torch.empty((n, *feature_shape(spec)), dtype=torch.float32)
    size = max(1, min(CHUNK, CHUNK_SAMPLES // spec.num_samples))
    chunks = [(start, [str(p) for p in paths[start:start + size]]) for start in range(0, n, size)]
    jobs = jobs or min(os.cpu_count() or 1, len(chunks))
    with _bar(n, desc) as bar:
        waiting = iter(chunks)
        warm: tuple[float, int] | None = None   # (time, clips done) after the first chunk, which pays warm-up
        for start, chunk in waiting:
            out[start:start + len(chunk)] = extract_chunk(chunk, spec)
            bar.update(len(chunk))
            done = start + len(chunk)
            if warm is None:
                warm = (time.perf_counter(), done)
                continue
            left = (time.perf_counter() - warm[0]) / (done - warm[1]) * (n - done)
            # the second chunk says what this set costs per clip: a pool (whose start costs seconds)
            # takes over only when what is left would take longer than POOL_PAYS_AFTER here
            if worker_pool is not None and jobs > 1 and left > POOL_PAYS_AFTER:
                break
        else:
            return out
        with worker_pool(jobs) as pool:
            # at most 2 chunks per worker in flight: results are small, waveforms stay in workers
            for start, chunk in itertools.islice(waiting, 2 * jobs):
                pool.submit(start, _extract_chunk_task, (chunk, spec))
            while pool.pending:
                start, x = pool.next()
                out[start:start + len(x)] = x
                bar.update(len(x))
                for nxt, chunk in itertools.islice(waiting, 1):
                    pool.submit(nxt, _extract_chunk_task, (chunk, spec))
    return out


def _bar(total: int, desc: str):
    from tqdm import tqdm

    shown = total >= BAR_FROM and logging.getLogger("datamodules").isEnabledFor(logging.INFO)
    return tqdm(total=total, unit="clip", desc=desc, disable=not shown, file=sys.stderr, leave=False,
                dynamic_ncols=True)
