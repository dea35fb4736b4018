"""BLAS threads in worker processes: the quick unlearning benchmark (2 workers) run alternately with
NumPy's and SciPy's OpenBLAS at their default (one thread per core in every process) and at one
thread per process, from the same cached features and an empty model cache each time.

    python -m benchmarks.blas_threads [--data DIR] [--repeats 3]

Run it on otherwise idle cores.  The variants alternate (ABBA...), so a drift of the machine during
the run reaches both.  Prints each run's wall time, each variant's median and the ratio.

Since ``trainer.threads`` also sets the BLAS threads of every process (``audioforge.training:
configure_threads``), the environment variable no longer changes what a worker runs, and the ratio
should be 1 within the runs' spread; before, the default was the slower (``docs/benchmarks.md``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, data_root

VARIANTS = {"default": {}, "one BLAS thread": {"OPENBLAS_NUM_THREADS": "1"}}


def run_quick_bench(root: Path, work: Path, cache: Path, extra_env: dict[str, str]) -> float:
    """Wall seconds of the quick preset with its outputs under ``work`` and its cache at ``cache``."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    env.update(extra_env, AUDIOFORGE_CACHE=str(cache), MLFLOW_LOGGING_LEVEL="WARNING")
    cmd = [sys.executable, "-m", "audioforge", "unlearn-bench", "--preset", "quick", "--data", str(root), "--quiet",
           f"output_dir={work}/out", f"tracking.store={work}/mlruns"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args, _ = parser.parse_known_args(argv)
    root = data_root(argv)
    names = list(VARIANTS)
    times: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run_quick_bench(root, tmp / "warm", tmp / "base", {})  # not timed: extracts the features every run starts from
        for i in range(args.repeats):
            order = names if i % 2 == 0 else names[::-1]
            for name in order:
                work = tmp / "run"
                shutil.rmtree(work, ignore_errors=True)
                shutil.copytree(tmp / "base" / "features", work / "cache" / "features")
                seconds = run_quick_bench(root, work, work / "cache", VARIANTS[name])
                times[name].append(seconds)
                print(f"run {i + 1}, {name}: {seconds:.1f} s", flush=True)
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    ratio = medians["default"] / medians["one BLAS thread"]
    for name in names:
        print(f"{name}: median {medians[name]:.1f} s over {len(times[name])} runs "
              f"({', '.join(f'{t:.1f}' for t in times[name])})")
    print(f"default / one BLAS thread: {ratio:.3f}")
    return {"default_seconds": medians["default"], "one_thread_seconds": medians["one BLAS thread"], "ratio": ratio}


if __name__ == "__main__":
    main(sys.argv[1:])
