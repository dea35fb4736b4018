"""Keep every core busy while something else runs, to check that it gives the same verdict under load.

    python benchmarks/cpu_hog.py --seconds 3600 &      # one spinning process per core (or --procs N)
    make test; make test; make test
    kill %1

The spinners stop by themselves after ``--seconds`` (or when this process is stopped).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import sys
import time


def spin(deadline: float) -> None:
    x = 0
    while time.monotonic() < deadline:
        for _ in range(100_000):
            x = (x * 1_103_515_245 + 12_345) & 0xFFFFFFFF


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=float, default=3600.0)
    args = parser.parse_args()
    deadline = time.monotonic() + args.seconds
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # `kill %1`: the finally below stops the spinners
    procs = [mp.Process(target=spin, args=(deadline,), daemon=True) for _ in range(args.procs)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    finally:
        for p in procs:
            p.terminate()


if __name__ == "__main__":
    main()
