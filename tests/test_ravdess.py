"""RAVDESS: the two real actors in ../shared/data and small synthetic trees in the same layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audioforge.errors import ConfigError, DataError
from datamodules.ravdess import EMOTIONS, RAVDESSDataModule


@pytest.fixture(scope="module")
def ravdess_root(data_root) -> Path:
    if not (data_root / "ravdess" / "Audio_Speech_Actors_01-24" / "Actor_01").is_dir():
        pytest.skip("RAVDESS actors not found in the shared data")
    return data_root


def test_labels_actor_splits_and_stereo_clips(ravdess_root, tmp_path):
    folder = ravdess_root / "ravdess" / "Audio_Speech_Actors_01-24"
    channels = {sf.info(p).channels for p in folder.glob("Actor_*/*.wav")}
    assert channels == {1, 2} and {sf.info(p).samplerate for p in folder.glob("Actor_*/*.wav")} == {48000}
    dm = RAVDESSDataModule(ravdess_root, val_actors=[], test_actors=[2], cache_dir=tmp_path)
    dm.setup()
    assert dm.num_classes == 8 and dm.x.shape == (120, 1, 64, 219) and np.isfinite(dm.x.numpy()).all()
    assert set(dm.groups("train")) == {"actor01"} and set(dm.groups("test")) == {"actor02"}
    for item, label in zip(dm.items, dm.y.tolist()):
        assert EMOTIONS[int(item.path.name.split("-")[2]) - 1] == dm.class_names[label]
    # seven classes: calm merged into neutral; the same feature cache must not carry the old labels over
    seven = RAVDESSDataModule(ravdess_root, val_actors=[], test_actors=[2], merge_calm=True, cache_dir=tmp_path)
    seven.setup()
    assert seven.last_load_cached and seven.num_classes == 7 and "calm" not in seven.class_names
    calm = [i for i, item in enumerate(seven.items) if item.path.name.split("-")[2] == "02"]
    assert calm and set(seven.y[calm].tolist()) == {seven.class_names.index("neutral")}


def fake_tree(root: Path, names: dict[str, list[str]]) -> Path:
    for actor, files in names.items():
        folder = root / "ravdess" / "Audio_Speech_Actors_01-24" / actor
        folder.mkdir(parents=True)
        for name in files:
            sf.write(folder / name, np.zeros(4800, dtype=np.float32), 48000)
    return root


@pytest.mark.parametrize("names, message", [
    ({"Actor_01": ["03-01-01-01-01-01-01.wav", "hello.wav"]}, "not named 03-01-EE-II-SS-RR-AA.wav: hello.wav"),
    ({"Actor_01": ["03-01-09-01-01-01-01.wav"]}, "unknown emotion id 09"),
    ({"Actor_01": ["03-01-01-01-01-01-05.wav"]}, "actor 05 in the name but the file is in Actor_01"),
    ({"Actor_01": ["03-01-01-01-01-01-01.wav"]}, "split test has no clips: actors present are [1]"),
])
def test_bad_trees_name_the_problem(tmp_path, names, message):
    root = fake_tree(tmp_path, names)
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        RAVDESSDataModule(root, cache_dir=tmp_path / "cache").setup()


def test_missing_folder_and_overlapping_actors(tmp_path):
    with pytest.raises(DataError, match="RAVDESS not found"):
        RAVDESSDataModule(tmp_path).setup()
    with pytest.raises(ConfigError, match="overlap"):
        RAVDESSDataModule(tmp_path, val_actors=[3], test_actors=[3, 4])
