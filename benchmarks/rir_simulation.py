"""Simulated-RIR generation speed: RIRs per second per room size in one process, at the default
reflection order beside the uncapped image method, and the default set (configs/rir/default.yaml)
generated end to end with one worker per core (target: within 5 minutes)."""

from __future__ import annotations

import sys
import tempfile
import time

import numpy as np


def rate(size: str, order: int, rooms: int = 12, sources: int = 2) -> float:
    from datamodules.rir_simulation import SimulationConfig, place_sources, simulate_rir
    from datamodules.rooms import SHIPPED, read_room_info, room_info_path

    cfg = SimulationConfig(reflection_order=order)
    chosen = read_room_info(room_info_path(SHIPPED, size))[:rooms]
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for room in chosen:
        for source in place_sources(room, sources, rng, cfg):
            simulate_rir(room, source, cfg)
    return rooms * sources / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict:
    from audioforge.processes import WorkerPool
    from datamodules.rir_simulation import SimulationConfig, generate_set

    out: dict = {"rirs_per_second": {}}
    for size in ("small", "medium", "large"):
        capped, full = rate(size, SimulationConfig().reflection_order), rate(size, -1, rooms=4)
        out["rirs_per_second"][size] = {"order_30": capped, "all_orders": full}
        print(f"{size:>6} rooms, 0.5 s RIRs: {capped:7.1f} RIRs/s at order 30, {full:7.1f} RIRs/s with every order "
              f"({capped / full:.1f}x)")
    cfg = SimulationConfig()
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        generate_set(cfg, seed=0, root=__import__("pathlib").Path(root), worker_pool=WorkerPool)
        seconds = time.perf_counter() - t0
    n = len(cfg.sizes) * cfg.rooms_per_size * cfg.rirs_per_room
    out["default_set"] = {"rirs": n, "seconds": seconds, "target_seconds": 300}
    print(f"default set: {n} RIRs in {seconds:.1f} s, one worker per core ({seconds / 300:.2f} of the 5-minute target)")
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    main(sys.argv[1:])
