"""Room impulse response sets: simulated rooms (small/medium/large) and the real RIRS_NOISES layout.

- :class:`SimulatedRIRDataModule` (default, no download): RIRs regenerated from the official
  ``room_info`` files (see :mod:`datamodules.rir_simulation`), labelled by room-size set.
- :class:`RealRIRDataModule`: ``RIRS_NOISES/real_rirs_isotropic_noises/`` with ``rir_list`` and
  ``noise_list`` (OpenSLR 28, unzipped under ``<data>/rirs_noises/``), labelled by source
  database (RVB2014, RWCP, air) as in the CNN-SVM paper; isotropic noises optional.

Both split by room, so no room is in two splits: per class, rooms are shuffled by seed and
given to test, then validation, until each holds its fraction of that class's clips.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

from audioforge.errors import ConfigError, DataError
from datamodules.base import AudioDataModule, AudioItem
from datamodules.cache import default_cache_dir
from datamodules.features import FeatureSpec
from datamodules.rir_simulation import SimulationConfig, generate_set, read_manifest
from datamodules.rooms import SIZES

# 16 kHz FFT magnitude: 512-point frames, hop 256, 32 frames = 0.5 s of response.
DEFAULT_FEATURES = FeatureSpec(kind="fft", sample_rate=16000, n_fft=512, hop_length=256, n_mels=64, frames=32)
DATABASES = ["RVB2014", "RWCP", "air"]
RIR_LINE = re.compile(r"^--rir-id (?P<id>\S+) --room-id (?P<room>\S+) (?P<path>\S+)$")
NOISE_LINE = re.compile(r"^--noise-id (?P<id>\S+) --noise-type (?P<type>\S+) --room-linkage (?P<room>\S+) (?P<path>\S+)$")
OPENSLR_28 = "https://www.openslr.org/resources/28/rirs_noises.zip"


def room_split(labels: np.ndarray, groups: list[str], val_fraction: float, test_fraction: float,
               seed: int) -> dict[str, np.ndarray]:
    """Indices of train/val/test with every group (room) in exactly one split, per class."""
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(f"data.options.val_fraction and test_fraction must be in (0, 1) and sum below 1, got "
                          f"{val_fraction} and {test_fraction}")
    groups_arr = np.array(groups)
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        rooms = sorted(set(groups_arr[idx].tolist()))
        if len(rooms) < 3:
            raise DataError(f"class {label} has clips from {len(rooms)} room(s); a room-separated train/val/test "
                            f"split needs at least 3")
        rng.shuffle(rooms)
        counts = Counter(groups_arr[idx].tolist())
        want = {"test": test_fraction * len(idx), "val": val_fraction * len(idx)}
        taken = {"test": 0, "val": 0}
        order = iter(rooms)
        assignment = {}
        for split in ("test", "val"):
            for room in order:
                assignment[room] = split
                taken[split] += counts[room]
                if taken[split] >= want[split]:
                    break
        for room in rooms:
            assignment.setdefault(room, "train")
        if "train" not in assignment.values():  # fractions too greedy for few rooms: keep one for training
            assignment[rooms[-1]] = "train"
        for i in idx:
            out[assignment[groups_arr[i]]].append(int(i))
    return {k: np.sort(np.array(v, dtype=np.int64)) for k, v in out.items()}


class _RoomSplitMixin:
    val_fraction: float
    test_fraction: float
    seed: int

    def make_splits(self, items: list[AudioItem]) -> dict[str, np.ndarray]:
        labels = np.array([i.label for i in items])
        return room_split(labels, [i.group for i in items], self.val_fraction, self.test_fraction, self.seed)


class SimulatedRIRDataModule(_RoomSplitMixin, AudioDataModule):
    """Room-size classification (small/medium/large) of image-method RIRs; the default RIR set."""

    name = "rir_simulated"

    def __init__(self, root: str | Path | None = None, simulation: SimulationConfig | None = None,
                 val_fraction: float = 0.15, test_fraction: float = 0.15, features: FeatureSpec | None = None,
                 **kwargs):
        super().__init__(root or ".", features=features or DEFAULT_FEATURES, **kwargs)
        self.simulation = simulation or SimulationConfig()
        self.simulation.validate()
        self.class_names = list(self.simulation.sizes)
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        cache_dir = kwargs.get("cache_dir")
        self.set_root = (Path(cache_dir) if cache_dir else default_cache_dir()) / "rirs"

    def locate(self) -> Path:
        return generate_set(self.simulation, self.seed, self.set_root, self.worker_pool)

    def discover(self, folder: Path) -> list[AudioItem]:
        return [AudioItem(folder / row["file"], self.class_names.index(row["size"]), f"{row['size']}/{row['room']}")
                for row in read_manifest(folder)]


def physical_room(room_id: str) -> str:
    """The room a RIRS_NOISES ``--room-id`` was measured in: AIR ids carry microphone and position
    suffixes (``air_binaural_aula_carolina_1_3_90``, ``air_phone_stairway1``) and the phone and
    binaural sets share rooms; RWCP's ``m10l``/``p20r`` angle series is one room."""
    m = re.match(r"^air_(?:binaural|phone)_(?:bt_)?([a-z]+(?:_[a-z]+)*?)(?:\d*|_\d.*)$", room_id)
    if m:
        return f"air_{m.group(1)}"
    if re.match(r"^RWCP_[mp0]\d\d[lr]\.wav$", room_id):
        return "RWCP_angles"
    if room_id.startswith("RWCP_cirline_ofc"):
        return "RWCP_cirline_ofc"
    return room_id


class RealRIRDataModule(_RoomSplitMixin, AudioDataModule):
    """Source-database classification (RVB2014/RWCP/air) of the real RIRs of RIRS_NOISES."""

    name = "rir_real"
    class_names = DATABASES

    def __init__(self, root: str | Path, include_noises: bool = False, allow_partial: bool = False,
                 val_fraction: float = 0.15, test_fraction: float = 0.25, features: FeatureSpec | None = None,
                 **kwargs):
        super().__init__(root, features=features or DEFAULT_FEATURES, **kwargs)
        self.include_noises, self.allow_partial = include_noises, allow_partial
        self.val_fraction, self.test_fraction = val_fraction, test_fraction

    @property
    def folder(self) -> Path:
        return self.root / "rirs_noises" / "RIRS_NOISES" / "real_rirs_isotropic_noises"

    def locate(self) -> Path:
        if not (self.folder / "rir_list").is_file():
            raise DataError(f"real RIRs not found: {self.folder / 'rir_list'} does not exist (download {OPENSLR_28} "
                            f"and unzip it into {self.root / 'rirs_noises'}; the simulated set needs no download)")
        return self.folder

    def _parse(self, path: Path, pattern: re.Pattern, kind: str) -> list[AudioItem]:
        items = []
        base = self.folder.parent.parent  # paths in the lists start with RIRS_NOISES/
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            m = pattern.match(line.strip())
            if not m:
                raise DataError(f"{path}, line {number}: not a {kind} line: {line.strip()[:120]!r}")
            database = Path(m["path"]).name.split("_")[0]
            if database not in DATABASES:
                raise DataError(f"{path}, line {number}: unknown source database {database!r} in {m['path']} "
                                f"(known: {', '.join(DATABASES)})")
            items.append(AudioItem(base / m["path"], DATABASES.index(database), physical_room(m["room"])))
        return items

    def discover(self, folder: Path) -> list[AudioItem]:
        items = self._parse(folder / "rir_list", RIR_LINE, "rir_list")
        if self.include_noises:
            items += self._parse(folder / "noise_list", NOISE_LINE, "noise_list")
        missing = [i for i in items if not i.path.is_file()]
        if missing:
            message = (f"{len(missing)} of the {len(items)} files listed in {folder} are not on disk "
                       f"(first: {missing[0].path.name})")
            if not self.allow_partial:
                raise DataError(message + "; set data.options.allow_partial=true to use the files present")
            items = [i for i in items if i.path.is_file()]
        return items


__all__ = ["DATABASES", "SIZES", "RealRIRDataModule", "SimulatedRIRDataModule", "physical_room", "room_split"]
