"""Simulated room impulse responses regenerated offline from the official ``room_info`` files.

For each room (size, receiver position, absorption) sources are drawn uniformly inside the room,
at least ``wall_margin`` from every wall and between ``min_distance`` and ``max_distance`` (5 m,
as the set's README says) from the receiver; each RIR is computed with the image method of
Allen and Berkley in Habets' implementation (PyPI ``rir-generator``, the generator the official
set was made with), wall reflection coefficient ``sqrt(1 - absorption)`` on all six walls.

Determinism: rooms are chosen per size with a generator seeded by ``(seed, size)`` and sources
with one seeded by ``(seed, size, room index)``, so a set is the same whatever the number of
worker processes.  A set is written once as float WAV files plus ``manifest.csv`` into a folder
named by the hash of its parameters, built in a temporary folder and renamed into place.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import soundfile as sf

from audioforge.errors import ConfigError, DataError
from datamodules.cache import cache_key
from datamodules.rooms import SIZES, Room, read_room_info, room_info_path

log = logging.getLogger(__name__)

MANIFEST = "manifest.csv"
MANIFEST_FIELDS = ("file", "size", "room", "source_x", "source_y", "source_z", "distance")
GENERATOR_VERSION = "1"


@dataclass
class SimulationConfig:
    sizes: list[str] = field(default_factory=lambda: list(SIZES))
    rooms_per_size: int = 60             # of the 200 rooms per size in room_info
    rirs_per_room: int = 5               # source positions per room
    seconds: float = 0.5                 # RIR length
    sample_rate: int = 16000             # the official set's rate
    max_distance: float = 5.0            # source to receiver (m)
    min_distance: float = 0.5
    wall_margin: float = 0.1             # sources stay this far from the walls (m)
    reflection_order: int = 30           # image-method order cap (-1: all; see docs/rir.md for cost)
    sound_speed: float = 343.0
    room_info_dir: str | None = None     # null: the official files shipped in datamodules/room_info
    jobs: int = 0                        # worker processes (0: one per CPU core)

    def validate(self, path: str = "data.simulation") -> None:
        unknown = [s for s in self.sizes if s not in SIZES]
        if unknown or not self.sizes or len(set(self.sizes)) != len(self.sizes):
            raise ConfigError(f"{path}.sizes must be distinct values of {list(SIZES)}, got {self.sizes}")
        if self.rooms_per_size < 1 or self.rirs_per_room < 1:
            raise ConfigError(f"{path}.rooms_per_size and rirs_per_room must be >= 1")
        if self.seconds <= 0 or self.sample_rate <= 0 or self.sound_speed <= 0:
            raise ConfigError(f"{path}.seconds, sample_rate and sound_speed must be positive")
        if not 0 <= self.min_distance < self.max_distance:
            raise ConfigError(f"{path}: need 0 <= min_distance < max_distance, got {self.min_distance} and "
                              f"{self.max_distance}")
        if self.reflection_order < -1 or self.reflection_order == 0:
            raise ConfigError(f"{path}.reflection_order must be -1 (all) or >= 1, got {self.reflection_order}")
        if self.jobs < 0:
            raise ConfigError(f"{path}.jobs must be >= 0, got {self.jobs}")

    @property
    def samples(self) -> int:
        return int(round(self.seconds * self.sample_rate))

    def key(self, seed: int) -> str:
        fields = dataclasses.asdict(self)
        fields.pop("jobs")
        fields.pop("room_info_dir")
        return cache_key(simulation=fields, seed=seed, rooms=self.room_digest(), version=GENERATOR_VERSION)

    def room_folder(self) -> Path:
        from datamodules.rooms import SHIPPED

        return Path(self.room_info_dir) if self.room_info_dir else SHIPPED

    def room_digest(self) -> str:
        import hashlib

        h = hashlib.sha256()
        for size in self.sizes:
            path = room_info_path(self.room_folder(), size)
            if not path.is_file():
                raise DataError(f"room_info file not found: {path}")
            h.update(path.read_bytes())
        return h.hexdigest()[:16]


def place_sources(room: Room, count: int, rng: np.random.Generator, cfg: SimulationConfig) -> np.ndarray:
    """``count`` source positions (m) inside ``room`` within the distance band around the receiver."""
    size, receiver = np.array(room.size), np.array(room.receiver)
    low = np.maximum(cfg.wall_margin, receiver - cfg.max_distance)
    high = np.minimum(size - cfg.wall_margin, receiver + cfg.max_distance)
    if np.any(high <= low):
        raise DataError(f"room {room.name} {room.size} is too small for wall_margin {cfg.wall_margin}")
    out = []
    for _ in range(10_000):
        candidates = rng.uniform(low, high, size=(256, 3))
        d = np.linalg.norm(candidates - receiver, axis=1)
        out.extend(candidates[(d >= cfg.min_distance) & (d <= cfg.max_distance)])
        if len(out) >= count:
            return np.array(out[:count])
    raise DataError(f"room {room.name}: no source position between {cfg.min_distance} and {cfg.max_distance} m "
                    f"of the receiver fits inside the room")


def simulate_rir(room: Room, source: np.ndarray, cfg: SimulationConfig) -> np.ndarray:
    import rir_generator

    beta = [float(np.sqrt(1.0 - room.absorption))] * 6
    h = rir_generator.generate(c=cfg.sound_speed, fs=cfg.sample_rate, r=[list(room.receiver)], s=list(map(float, source)),
                               L=list(room.size), beta=beta, nsample=cfg.samples, order=cfg.reflection_order)
    return np.asarray(h[:, 0], dtype=np.float32)


def select_rooms(cfg: SimulationConfig, seed: int) -> list[tuple[str, int, Room]]:
    """(size, index in its room_info, room) for the rooms of a set, chosen per size by seed."""
    chosen = []
    for size_index, size in enumerate(cfg.sizes):
        rooms = read_room_info(room_info_path(cfg.room_folder(), size))
        if cfg.rooms_per_size > len(rooms):
            raise ConfigError(f"data.simulation.rooms_per_size is {cfg.rooms_per_size} but "
                              f"{room_info_path(cfg.room_folder(), size)} lists {len(rooms)} rooms")
        rng = np.random.default_rng([seed, SIZES.index(size)])
        for index in sorted(rng.choice(len(rooms), cfg.rooms_per_size, replace=False).tolist()):
            chosen.append((size, index, rooms[index]))
    return chosen


def _simulate_room(args: tuple[str, int, Room, SimulationConfig, int, str]) -> list[dict]:
    size, index, room, cfg, seed, folder = args
    rng = np.random.default_rng([seed, SIZES.index(size), index])
    rows = []
    for k, source in enumerate(place_sources(room, cfg.rirs_per_room, rng, cfg)):
        name = f"{size}/{room.name}-{k:03d}.wav"
        sf.write(Path(folder) / name, simulate_rir(room, source, cfg), cfg.sample_rate, subtype="FLOAT")
        rows.append({"file": name, "size": size, "room": room.name, "source_x": f"{source[0]:.3f}",
                     "source_y": f"{source[1]:.3f}", "source_z": f"{source[2]:.3f}",
                     "distance": f"{np.linalg.norm(source - np.array(room.receiver)):.3f}"})
    return rows


def generate_set(cfg: SimulationConfig, seed: int, root: Path, worker_pool: Callable[[int], Any] | None = None) -> Path:
    """The folder of the set (``root/<key>``), generating it first if absent; rooms are simulated
    in ``worker_pool(jobs)`` (a context manager with ``map``) when given, else in this process."""
    folder = Path(root) / f"sim-{cfg.key(seed)}"
    if (folder / MANIFEST).is_file():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    rooms = select_rooms(cfg, seed)
    tmp = Path(tempfile.mkdtemp(prefix=".sim-", dir=root))
    try:
        for size in cfg.sizes:
            (tmp / size).mkdir()
        work = [(size, index, room, cfg, seed, str(tmp)) for size, index, room in rooms]
        jobs = min(cfg.jobs or os.cpu_count() or 1, len(work))
        if jobs > 1 and worker_pool is not None:
            with worker_pool(jobs) as pool:
                rows = [r for chunk in pool.map(_simulate_room, work) for r in chunk]
        else:
            rows = [r for item in work for r in _simulate_room(item)]
        with open(tmp / MANIFEST, "w", newline="") as fh:
            writer = csv.DictWriter(fh, MANIFEST_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        try:
            tmp.rename(folder)
        except OSError:  # another process finished the same set first
            if not (folder / MANIFEST).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("simulated %d RIRs (%d rooms) into %s", len(rows), len(rooms), folder)
    return folder


def read_manifest(folder: Path) -> list[dict]:
    with open(Path(folder) / MANIFEST, newline="") as fh:
        return list(csv.DictReader(fh))
