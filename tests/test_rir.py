"""RIR sets: room_info parsing, image-method simulation (reproducible, physically plausible),
room-separated splits, the real RIRS_NOISES layout on its real file lists, and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audioforge.errors import DataError
from datamodules.rir import RealRIRDataModule, SimulatedRIRDataModule, physical_room
from audioforge.processes import WorkerPool
from datamodules.rir_simulation import SimulationConfig, generate_set, read_manifest, simulate_rir
from datamodules.rooms import SHIPPED, SIZES, Room, read_room_info, room_info_path

TINY = dict(rooms_per_size=4, rirs_per_room=2, seconds=0.25, reflection_order=12)


def rirs_metadata(data_root: Path) -> Path:
    folder = data_root / "rirs_noises" / "metadata"
    if not folder.is_dir():
        pytest.skip(f"RIRS_NOISES lists not found at {folder}")
    return folder


def test_shipped_room_info_is_the_official_set(data_root):
    official = rirs_metadata(data_root) / "simulated_rirs"
    for size in SIZES:
        rooms = read_room_info(room_info_path(SHIPPED, size))
        assert len(rooms) == 200
        assert room_info_path(SHIPPED, size).read_bytes() == room_info_path(official, size).read_bytes()
    small, large = (read_room_info(room_info_path(SHIPPED, s)) for s in ("small", "large"))
    assert max(max(r.size[:2]) for r in small) <= 10 < min(min(r.size[:2]) for r in large)


@pytest.mark.parametrize("line, message", [
    ("small-Room001 8.33 9.15 2.38 5.27 0.89 0.75", "line 2: expected 8 fields"),
    ("small-Room001 8.33 9.15 2.38 5.27 0.89 0.66 0.75 1", "line 2: expected 8 fields"),
    ("small-Room001 8.33 nine 2.38 5.27 0.89 0.66 0.75", "line 2: fields after the room name must be numbers"),
    ("small-Room001 8.33 9.15 2.38 9.27 0.89 0.66 0.75", "line 2: receiver"),
    ("small-Room001 8.33 9.15 2.38 5.27 0.89 0.66 1.5", "line 2: absorption"),
])
def test_bad_room_info_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "smallroom" / "room_info"
    path.parent.mkdir()
    path.write_text("small-Room000 3 4 2.5 1 1 1 0.5\n" + line + "\n")
    with pytest.raises(DataError, match=message) as info:
        read_room_info(path)
    assert str(path) in str(info.value)


def test_simulated_sets_are_reproducible_per_seed_and_worker_count(tmp_path):
    cfg = SimulationConfig(**TINY, jobs=1)
    a = generate_set(cfg, seed=3, root=tmp_path / "a")
    b = generate_set(SimulationConfig(**TINY, jobs=2), seed=3, root=tmp_path / "b", worker_pool=WorkerPool)
    c = generate_set(cfg, seed=4, root=tmp_path / "c")
    rows_a, rows_b, rows_c = read_manifest(a), read_manifest(b), read_manifest(c)
    assert len(rows_a) == 3 * 4 * 2 and rows_a == rows_b
    for row in rows_a:
        wave, sr = sf.read(a / row["file"], dtype="float32")
        assert sr == 16000 and len(wave) == 4000
        np.testing.assert_array_equal(wave, sf.read(b / row["file"], dtype="float32")[0])
        assert 0.5 <= float(row["distance"]) <= 5.0
    assert [r["source_x"] for r in rows_a] != [r["source_x"] for r in rows_c]
    assert generate_set(cfg, seed=3, root=tmp_path / "a") == a  # cached: same folder, not regenerated


def decay_time(h: np.ndarray, sr: int) -> float:
    """T20 x 3: the time the backward-integrated energy takes from -5 to -25 dB, times 3."""
    edc = np.cumsum(h[::-1] ** 2)[::-1]
    db = 10 * np.log10(edc / edc[0] + 1e-300)
    return 3 * (np.argmax(db < -25) - np.argmax(db < -5)) / sr


@pytest.mark.slow  # full-order image method for large rooms
def test_simulated_rirs_decay_and_larger_rooms_reverberate_longer():
    cfg = SimulationConfig(seconds=1.0, reflection_order=-1)
    times = []
    for length, width in ((4.0, 5.0), (15.0, 18.0), (40.0, 45.0)):
        room = Room("r", (length, width, 3.0), (length / 2, width / 2, 1.5), absorption=0.3)
        h = simulate_rir(room, np.array([length / 2 + 2.0, width / 2 + 1.0, 1.2]), cfg)
        assert np.isfinite(h).all() and np.abs(h).max() > 0
        energy = np.add.reduceat(h ** 2, np.arange(0, len(h), 1600))  # 100 ms windows
        assert energy[0] > 100 * energy[-1]  # the response dies away
        times.append(decay_time(h, 16000))
    assert times[0] < times[1] < times[2], times


def test_simulated_datamodule_splits_by_room(tmp_path):
    dm = SimulatedRIRDataModule(simulation=SimulationConfig(**{**TINY, "rooms_per_size": 6}), cache_dir=tmp_path, seed=1)
    dm.setup()
    assert dm.class_names == ["small", "medium", "large"]
    assert dm.input_shape == (1, 257, 32)
    rooms = {s: set(dm.groups(s)) for s in ("train", "val", "test")}
    assert not (rooms["train"] & rooms["val"]) and not (rooms["train"] & rooms["test"]) and not (rooms["val"] & rooms["test"])
    for split in ("train", "val", "test"):
        assert sorted(set(dm.tensors(split)[1].tolist())) == [0, 1, 2]
    again = SimulatedRIRDataModule(simulation=SimulationConfig(**{**TINY, "rooms_per_size": 6}), cache_dir=tmp_path, seed=1)
    again.setup()
    assert again.last_load_cached and np.array_equal(again.x.numpy(), dm.x.numpy())


@pytest.fixture
def real_tree(data_root, tmp_path) -> Path:
    """The real RIRS_NOISES lists with a short WAV (stereo for AIR, as its binaural RIRs) per listed file."""
    lists = rirs_metadata(data_root) / "real_rirs_isotropic_noises"
    folder = tmp_path / "rirs_noises" / "RIRS_NOISES" / "real_rirs_isotropic_noises"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("rir_list", "noise_list"):
        shutil.copy(lists / name, folder / name)
        for line in (folder / name).read_text().splitlines():
            path = tmp_path / "rirs_noises" / line.split()[-1]
            channels = 2 if path.name.startswith("air") else 1
            wave = rng.normal(0, 0.1, (1600, channels)) * np.exp(-np.arange(1600) / 300)[:, None]
            sf.write(path, wave.squeeze(), 16000)
    return tmp_path


def test_real_layout_labels_by_database_and_separates_rooms(real_tree):
    dm = RealRIRDataModule(real_tree, cache_dir=real_tree / "cache")
    dm.setup()
    assert dm.class_names == ["RVB2014", "RWCP", "air"]
    assert np.bincount(dm.y.numpy()).tolist() == [36, 182, 107]
    rooms = {s: set(dm.groups(s)) for s in ("train", "val", "test")}
    assert not (rooms["train"] & rooms["test"]) and not (rooms["train"] & rooms["val"]) and not (rooms["val"] & rooms["test"])
    for split in ("train", "test"):
        assert sorted(set(dm.tensors(split)[1].tolist())) == [0, 1, 2]
    with_noise = RealRIRDataModule(real_tree, include_noises=True, cache_dir=real_tree / "cache")
    with_noise.setup()
    assert len(with_noise.items) == 325 + 92


def test_physical_rooms_merge_positions_of_one_room():
    assert physical_room("air_binaural_aula_carolina_1_3_90") == physical_room("air_binaural_aula_carolina_1_7_90")
    assert physical_room("air_phone_stairway1") == physical_room("air_binaural_stairway_1_2") == "air_stairway"
    assert physical_room("air_phone_bt_office") == "air_office"
    assert physical_room("RWCP_m10l.wav") == physical_room("RWCP_p90r.wav")
    assert physical_room("RVB2014_largeroom1") != physical_room("RVB2014_largeroom2")


def test_real_layout_bad_input(real_tree):
    folder = real_tree / "rirs_noises" / "RIRS_NOISES" / "real_rirs_isotropic_noises"
    missing = sorted(folder.glob("RWCP*.wav"))[:3]
    for p in missing:
        p.unlink()
    with pytest.raises(DataError, match="3 of the 325 files listed"):
        RealRIRDataModule(real_tree, cache_dir=real_tree / "cache").setup()
    dm = RealRIRDataModule(real_tree, allow_partial=True, cache_dir=real_tree / "cache")
    dm.setup()
    assert len(dm.items) == 322
    lines = (folder / "rir_list").read_text().splitlines()
    (folder / "rir_list").write_text("\n".join(lines[:4] + ["--rir-id 5 RVB2014_x.wav"] + lines[5:]) + "\n")
    with pytest.raises(DataError, match=r"rir_list, line 5: not a rir_list line"):
        RealRIRDataModule(real_tree, cache_dir=real_tree / "cache").setup()
    bad_db = lines[0].replace("RVB2014_type1", "ACE_type1")
    (folder / "rir_list").write_text("\n".join([bad_db] + lines[1:]) + "\n")
    with pytest.raises(DataError, match=r"line 1: unknown source database 'ACE'"):
        RealRIRDataModule(real_tree, cache_dir=real_tree / "cache").setup()
    with pytest.raises(DataError, match="rirs_noises.zip"):
        RealRIRDataModule(real_tree / "nowhere").setup()
