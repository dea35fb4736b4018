"""Wall time of the unlearning experiment: the quick preset (target 90 s) and, unless --skip-paper,
the full paper protocol (3 seeds; target 15 minutes, aim 5), each as a fresh `audioforge unlearn`
process with tracking into a temporary store; also the same paper protocol with jobs=1 for the
parallel speed-up."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from benchmarks.common import REPO, data_root


def run(preset: str, root, *extra: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "audioforge", "unlearn", "--preset", preset, "--data", str(root), "--quiet",
               "--output", f"{tmp}/out", f"tracking.store={tmp}/mlruns", *extra]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, "MLFLOW_LOGGING_LEVEL": "WARNING"},
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict[str, float]:
    argv = list(argv or [])
    root = data_root(argv)
    out = {"quick_seconds": run("quick", root)}
    print(f"quick preset: {out['quick_seconds']:.1f} s (target 90)")
    if "--skip-paper" not in argv:
        out["paper_seconds"] = run("paper", root)
        print(f"paper protocol, 3 seeds, {os.cpu_count()} workers: {out['paper_seconds']:.0f} s "
              f"= {out['paper_seconds'] / 60:.1f} min (target 15, aim 5)")
        if "--with-serial" in argv:
            out["paper_serial_seconds"] = run("paper", root, "jobs=1")
            print(f"paper protocol, jobs=1: {out['paper_serial_seconds']:.0f} s; parallel speed-up "
                  f"{out['paper_serial_seconds'] / out['paper_seconds']:.2f}x")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
