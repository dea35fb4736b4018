"""UrbanSound8K: the real official layout in ../shared/data, and small synthetic trees in the same layout."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audioforge.errors import ConfigError, DataError
from datamodules.urbansound8k import COLUMNS, UrbanSound8KDataModule, cv_split


@pytest.fixture(scope="module")
def us8k_root(data_root) -> Path:
    if not (data_root / "urbansound8k" / "UrbanSound8K" / "metadata" / "UrbanSound8K.csv").is_file():
        pytest.skip("UrbanSound8K metadata not found in the shared data")
    return data_root


def test_partial_dataset_is_refused_with_counts_per_fold(us8k_root):
    with pytest.raises(DataError, match=r"8655 of the 8732 clips .* not on disk \(fold1: 843, fold2: 857, fold3: 909, "
                                        r"fold4: 990.*allow_partial"):
        UrbanSound8KDataModule(us8k_root).setup()


def test_real_clips_every_format_decodes_and_folds_stay_apart(us8k_root):
    folder = us8k_root / "urbansound8k" / "UrbanSound8K" / "audio"
    on_disk = {f: len(list((folder / f"fold{f}").glob("*.wav"))) for f in (1, 2, 3)}
    formats = {(sf.info(p).samplerate, sf.info(p).channels, sf.info(p).subtype) for p in folder.glob("fold*/*.wav")}
    assert {fmt[2] for fmt in formats} >= {"PCM_16", "FLOAT"} and {fmt[1] for fmt in formats} == {1, 2}
    dm = UrbanSound8KDataModule(us8k_root, train_folds=[1], val_folds=[2], test_folds=[3], allow_partial=True)
    dm.setup()
    assert {k: dm.split_size(k) for k in ("train", "val", "test")} == {"train": on_disk[1], "val": on_disk[2],
                                                                      "test": on_disk[3]}
    assert dm.x.shape[1:] == (1, 64, 173) and np.isfinite(dm.x.numpy()).all()
    for split, fold in (("train", "fold1"), ("val", "fold2"), ("test", "fold3")):
        assert set(dm.groups(split)) == {fold}
    assert set(dm.y.tolist()) <= set(range(10))


def write_tree(root: Path, per_fold: int = 2, rows_extra: list[list[str]] = ()) -> Path:
    """A synthetic UrbanSound8K: 10 folds, tones in 16-bit, 24-bit and float, mono and stereo."""
    base = root / "urbansound8k" / "UrbanSound8K"
    rows, rng = [], np.random.default_rng(0)
    formats = [(22050, 1, "PCM_16"), (44100, 2, "PCM_24"), (48000, 2, "FLOAT"), (16000, 1, "PCM_16")]
    for fold in range(1, 11):
        (base / "audio" / f"fold{fold}").mkdir(parents=True)
        for k in range(per_fold):
            class_id = (fold + k) % 10
            sr, ch, subtype = formats[(fold + k) % len(formats)]
            t = np.arange(int(sr * 1.5)) / sr
            wave = 0.3 * np.sin(2 * np.pi * (200 + 100 * class_id) * t) + 0.01 * rng.normal(size=t.size)
            data = np.stack([wave] * ch, axis=1) if ch > 1 else wave
            name = f"{1000 * fold + k}-{class_id}-0-0.wav"
            sf.write(base / "audio" / f"fold{fold}" / name, data, sr, subtype=subtype)
            rows.append([name, str(1000 * fold + k), "0", "1.5", "1", str(fold), str(class_id), "x"])
    (base / "metadata").mkdir()
    with open(base / "metadata" / "UrbanSound8K.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows([*rows, *rows_extra])
    return root


def test_official_and_cross_validation_splits(tmp_path):
    root = write_tree(tmp_path)
    dm = UrbanSound8KDataModule(root, cache_dir=tmp_path / "cache")
    dm.setup()
    assert {k: sorted(set(dm.groups(k))) for k in ("train", "val", "test")} == {
        "train": sorted(f"fold{f}" for f in range(1, 9)), "val": ["fold9"], "test": ["fold10"]}
    cv = UrbanSound8KDataModule(root, cv_fold=3, cache_dir=tmp_path / "cache")
    cv.setup()
    assert set(cv.groups("test")) == {"fold3"} and set(cv.groups("val")) == {"fold4"}
    assert "fold3" not in cv.groups("train") and len(cv.groups("train")) == 16
    assert cv_split(10) == ([f for f in range(2, 10)], [1], [10])
    with pytest.raises(ConfigError, match="cv_fold must be in 1..10"):
        cv_split(11)


@pytest.mark.parametrize("row, message", [
    (["a.wav", "1", "0", "1", "1", "x", "3", "dog_bark"], "line 22: fold and classID must be integers"),
    (["a.wav", "1", "0", "1", "1", "3", "12", "dog_bark"], "line 22: unknown classID 12"),
    (["a.wav", "1", "0", "1", "1", "11", "3", "dog_bark"], "line 22: unknown fold 11"),
])
def test_bad_metadata_lines_are_named(tmp_path, row, message):
    root = write_tree(tmp_path, rows_extra=[row])
    with pytest.raises(DataError, match=message):
        UrbanSound8KDataModule(root, cache_dir=tmp_path / "cache").setup()


def test_missing_fold_and_corrupt_file(tmp_path):
    root = write_tree(tmp_path)
    audio = root / "urbansound8k" / "UrbanSound8K" / "audio"
    for f in (audio / "fold9").iterdir():
        f.unlink()
    (audio / "fold9").rmdir()
    with pytest.raises(DataError, match=r"2 of the 20 clips .* \(fold9: 2\)"):
        UrbanSound8KDataModule(root, cache_dir=tmp_path / "cache").setup()
    with pytest.raises(DataError, match=r"split val \(folds \[9\]\) has no clips"):
        UrbanSound8KDataModule(root, allow_partial=True, cache_dir=tmp_path / "cache").setup()
    bad = next((audio / "fold1").iterdir())
    bad.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(DataError, match=f"cannot decode audio file {bad}"):
        UrbanSound8KDataModule(root, allow_partial=True, val_folds=[10], test_folds=[2], train_folds=[1],
                               cache_dir=tmp_path / "cache").setup()


def test_missing_metadata_is_named(tmp_path):
    with pytest.raises(DataError, match="UrbanSound8K metadata not found"):
        UrbanSound8KDataModule(tmp_path).setup()


def test_error_hints_name_keys_the_cli_accepts(tmp_path, capsys):
    """Each hint of a missing-fold error is applied as written and takes the run past that error."""
    import re

    from audioforge.cli import main

    root = write_tree(tmp_path)
    audio = root / "urbansound8k" / "UrbanSound8K" / "audio"
    for f in (audio / "fold9").iterdir():
        f.unlink()
    (audio / "fold9").rmdir()
    args = ["classify", "--dataset", "urbansound8k", "--data", str(root), "--quiet", "--output", str(tmp_path / "o"),
            "seeds=[0]", "fit.epochs=1", "tracking.enabled=false", f"data.cache_dir={tmp_path / 'cache'}"]
    assert main(args) == 3
    first = capsys.readouterr().err
    hint = re.search(r"set (data\.options\.allow_partial=true)", first)
    assert hint, first
    assert main([*args, hint.group(1)]) == 3
    second = capsys.readouterr().err
    named = re.search(r"folds present: \[([\d, ]+)\]: set (data\.options\.val_folds)=", second)
    assert named, second
    present = [int(f) for f in named.group(1).split(",")]
    assert 9 not in present and 10 in present
    assert main([*args, hint.group(1), f"{named.group(2)}=[8]", "data.options.train_folds=[1,2,3,4,5,6,7]"]) == 0
