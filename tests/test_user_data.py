"""Your own data: the folder-per-class and CSV-manifest datamodules (every audio format, nesting,
groups from a column or a file-name pattern, group-aware splits, clear errors), and the commands
on them: classify, and unlearn forgetting a group of real FSDD clips laid out one folder per digit."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audioforge.cli import main
from audioforge.errors import ConfigError, DataError
from datamodules import build_datamodule
from datamodules.splits import group_split
from tests.commands import runs
from tests.synthetic import SPEAKERS, fsdd_clip

# (sample rate, channels, format, subtype): every sample format the decoder must take
FORMATS = [(8000, 1, "WAV", "PCM_16"), (16000, 2, "WAV", "PCM_24"), (44100, 1, "WAV", "PCM_32"),
           (22050, 2, "WAV", "FLOAT"), (8000, 1, "WAV", "DOUBLE"), (11025, 1, "WAV", "PCM_U8"),
           (16000, 1, "FLAC", "PCM_16"), (8000, 1, "OGG", "VORBIS")]
SUFFIX = {"WAV": ".wav", "FLAC": ".flac", "OGG": ".ogg"}


def write_clip(path: Path, digit: int, speaker: int, take: int, fmt=FORMATS[0]) -> Path:
    import librosa

    sr, channels, container, subtype = fmt
    wave = fsdd_clip(digit, speaker, take)
    if sr != 8000:
        wave = librosa.resample(wave, orig_sr=8000, target_sr=sr)
    data = np.stack([wave, wave], axis=1) if channels == 2 else wave
    path = path.with_suffix(SUFFIX[container])
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sr, format=container, subtype=subtype)
    return path


def digit_tree(root: Path, speakers=SPEAKERS[:4], takes: int = 3, formats=False) -> Path:
    """``root/<digit name>/<speaker>/<speaker>_<take>.<ext>``: nested class folders; with
    ``formats`` the clips cycle through :data:`FORMATS`."""
    names = ["zero", "one", "two", "three"]
    k = 0
    for d, name in enumerate(names):
        for s, speaker in enumerate(speakers):
            for take in range(takes):
                fmt = FORMATS[k % len(FORMATS)] if formats else FORMATS[0]
                write_clip(root / name / speaker / f"{speaker}_{take}", d, s, take, fmt)
                k += 1
    (root / "zero" / "README.txt").write_text("notes beside the clips are skipped\n")
    return root


def folder_module(root: Path, **options):
    return build_datamodule("folder", root, options, cache_dir=str(root.parent / "cache"))


def test_folder_reads_every_format_and_nesting(tmp_path):
    tree = digit_tree(tmp_path / "digits", formats=True)
    dm = folder_module(tree, group_pattern=r"^([a-z]+)_")
    dm.setup()
    assert dm.class_names == ["one", "three", "two", "zero"]
    assert len(dm.items) == 4 * 4 * 3 and dm.x.shape[1:] == (1, 20, 20)
    assert {sf.info(i.path).subtype for i in dm.items} == {f[3] for f in FORMATS}
    assert {i.group for i in dm.items} == set(SPEAKERS[:4])
    # a clip decodes to nearly the same features whatever its format (the lossy one included)
    plain = folder_module(digit_tree(tmp_path / "plain"), group_pattern=r"^([a-z]+)_")
    plain.setup()
    order = {(i.path.parent.parent.name, i.path.stem): n for n, i in enumerate(plain.items)}
    for n, item in enumerate(dm.items):
        reference = plain.x[order[(item.path.parent.parent.name, item.path.stem)]]
        assert torch.corrcoef(torch.stack([dm.x[n].flatten(), reference.flatten()]))[0, 1] > 0.9, item.path


def test_group_splits_never_share_a_group():
    rng = np.random.default_rng(0)
    for seed in range(40):
        n_groups = int(rng.integers(3, 12))
        groups = [f"g{int(g)}" for g in rng.integers(0, n_groups, 200)]
        if len(set(groups)) < 3:
            continue
        labels = rng.integers(0, 4, 200)
        kept = sorted(set(groups))[:1]
        splits = group_split(labels, groups, 0.15, 0.2, seed, "t", keep_in_train=kept)
        seen = [{groups[i] for i in idx} for idx in splits.values()]
        assert all(not (a & b) for k, a in enumerate(seen) for b in seen[k + 1:]), (seed, seen)
        assert sum(len(v) for v in splits.values()) == 200 and all(len(v) for v in splits.values())
        assert set(kept) <= seen[0]  # train
    # no groups (every clip its own): stratified by class
    labels = np.repeat(np.arange(4), 25)
    splits = group_split(labels, [str(i) for i in range(100)], 0.2, 0.2, 0, "t")
    assert [np.bincount(labels[v], minlength=4).tolist() for v in splits.values()] == [[15] * 4, [5] * 4, [5] * 4]


def test_named_groups_and_split_seed(tmp_path):
    tree = digit_tree(tmp_path / "digits")
    dm = folder_module(tree, group_pattern=r"^(?P<group>[a-z]+)_\d", val_groups=["george"], test_groups=["lucas"])
    dm.setup()
    assert set(dm.groups("val")) == {"george"} and set(dm.groups("test")) == {"lucas"}
    assert set(dm.groups("train")) == {"jackson", "nicolas"}
    # the run's seed varies training, not the split: one split for every seed of a run
    a = build_datamodule("folder", tree, {"group_pattern": "^([a-z]+)_"}, seed=0, cache_dir=str(tmp_path / "c"))
    b = build_datamodule("folder", tree, {"group_pattern": "^([a-z]+)_"}, seed=5, cache_dir=str(tmp_path / "c"))
    a.setup(), b.setup()
    assert all(torch.equal(a.splits[k], b.splits[k]) for k in ("train", "val", "test"))


def test_manifest_columns_paths_and_split(tmp_path):
    tree = digit_tree(tmp_path / "digits")
    elsewhere = write_clip(tmp_path / "elsewhere" / "george_9", 3, 0, 9)
    rows = [("digits/" + p.relative_to(tree).as_posix(), p.parent.parent.name, p.stem.split("_")[0])
            for p in sorted(tree.rglob("*.wav"))] + [(str(elsewhere), "three", "george")]
    split_of = {"george": "train", "jackson": "train", "lucas": "validation", "nicolas": "test"}
    with open(tmp_path / "clips.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "word", "speaker", "split"])
        writer.writerows([(p, label, g, split_of[g]) for p, label, g in rows])
    dm = build_datamodule("manifest", tmp_path, {"path": "clips.csv", "path_column": "file", "label_column": "word",
                                                 "group_column": "speaker"}, cache_dir=str(tmp_path / "c"))
    dm.setup()
    assert len(dm.items) == 49 and dm.items[-1].path == elsewhere
    assert set(dm.groups("val")) == {"lucas"} and set(dm.groups("test")) == {"nicolas"}
    assert dm.class_names == ["one", "three", "two", "zero"]
    # a group in two splits of the split column is refused, naming it
    rows[0] = (rows[0][0], rows[0][1], "nicolas")
    with open(tmp_path / "bad.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "group", "split"])
        writer.writerows([(p, label, g, split_of[g] if k else "train") for k, (p, label, g) in enumerate(rows)])
    with pytest.raises(DataError, match="group 'nicolas' has clips in split train and in split test"):
        build_datamodule("manifest", tmp_path, {"path": "bad.csv"}, cache_dir=str(tmp_path / "c")).setup()


@pytest.mark.parametrize("case, expected", [
    ("empty class", r"class folder .*four holds no audio files"),
    ("corrupt file", r"cannot decode audio file .*broken\.wav"),
    ("pattern matches nothing", r"group_pattern '\^X\(\\d\)' does not match the file name of .*\.wav"),
    ("loose clip", r"1 audio file\(s\) outside any class folder: loose\.wav"),
    ("missing label column", r"clips\.csv: no label column 'label' \(header: path, speaker\)"),
    ("unknown split", r"clips\.csv, line 2: unknown split 'dev'"),
    ("missing file", r"clips\.csv, line 2: audio file not found: .*nothing\.wav"),
])
def test_bad_user_data_is_named(tmp_path, case, expected):
    tree = digit_tree(tmp_path / "digits", speakers=SPEAKERS[:3], takes=1)
    dataset, options = "folder", {"path": str(tree)}
    if case == "empty class":
        (tree / "four" / "george").mkdir(parents=True)
    elif case == "corrupt file":
        (tree / "one" / "george" / "broken.wav").write_bytes(b"RIFF\x00\x00not audio at all")
    elif case == "pattern matches nothing":
        options["group_pattern"] = r"^X(\d)"
    elif case == "loose clip":
        shutil.copy(next(tree.rglob("*.wav")), tree / "loose.wav")
    else:
        dataset, options = "manifest", {"path": str(tmp_path / "clips.csv")}
        header, row = {"missing label column": (["path", "speaker"], ["digits/one/george/george_0.wav", "george"]),
                       "unknown split": (["path", "label", "split"], ["digits/one/george/george_0.wav", "one", "dev"]),
                       "missing file": (["path", "label"], ["digits/one/nothing.wav", "one"])}[case]
        with open(tmp_path / "clips.csv", "w", newline="") as fh:
            csv.writer(fh).writerows([header, row])
    with pytest.raises(DataError, match=expected):
        build_datamodule(dataset, tmp_path, options, cache_dir=str(tmp_path / "c")).setup()


def test_bad_options_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="data.options.group_pattern: not a regular expression"):
        build_datamodule("folder", tmp_path, {"group_pattern": "(["})
    with pytest.raises(ConfigError, match="data.options.val_groups and test_groups go together"):
        build_datamodule("folder", tmp_path, {"test_groups": ["a"]})
    with pytest.raises(ConfigError, match="data.options.label: not an option of manifest"):
        build_datamodule("manifest", tmp_path, {"label": "x"})
    with pytest.raises(DataError, match="folder dataset not found"):
        build_datamodule("folder", tmp_path, {"path": "absent"}).setup()


def test_classify_on_a_folder_names_its_run_and_shows_progress(tmp_path, mlflow_store, capfd):
    tree = digit_tree(tmp_path / "digits")
    out = tmp_path / "out"
    args = ["classify", "--dataset", "folder", "--arch", "convnet", "--data", str(tree), "seeds=[0]",
            "data.options.group_pattern=^([a-z]+)_", f"tracking.store={mlflow_store}", "tracking.experiment=user-data"]
    assert main([*args, "--output", str(out), "fit.epochs=2"]) == 0
    assert "folder-convnet: 100%" in capfd.readouterr().err  # the epoch bar, with its time left
    assert main([*args, "--output", str(tmp_path / "quiet"), "--quiet", "fit.epochs=1"]) == 0
    assert "folder-convnet" not in capfd.readouterr().err
    report = json.loads((out / "report.json").read_text())
    from audioforge.tracking import Tracker, TrackingConfig

    tracker = Tracker.open(TrackingConfig(store=str(mlflow_store), experiment="user-data"))
    run = tracker.client.get_run(report["mlflow"]["run_id"])
    assert run.info.run_name == "folder-convnet" and run.data.tags["audioforge.dataset"] == "folder"


@pytest.fixture
def fsdd_digit_folders(data_root, tmp_path) -> Path:
    """Real FSDD clips laid out one folder per digit, one subfolder per speaker (4 x 10 x 6)."""
    target = tmp_path / "digits"
    for speaker in ("george", "jackson", "lucas", "theo"):
        for digit in range(10):
            (target / str(digit) / speaker).mkdir(parents=True)
            for take in range(6):
                name = f"{digit}_{speaker}_{take}.wav"
                shutil.copy(data_root / "fsdd" / "recordings" / name, target / str(digit) / speaker / name)
    return target


def test_unlearn_forgets_a_group_of_a_folder_dataset(fsdd_digit_folders, tmp_path, mlflow_store):
    from tests.test_synthetic_data import UNLEARN_TINY

    out = tmp_path / "unlearn"
    assert main(["unlearn", *UNLEARN_TINY, "--dataset", "folder", "--data", str(fsdd_digit_folders), "--output",
                 str(out), r"data.options.group_pattern=^\d_([a-z]+)_",
                 "data.forget={kind: group, values: [jackson]}", f"tracking.store={mlflow_store}",
                 "tracking.experiment=user-data"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["experiment"] == "folder-unlearning-quick"
    assert report["forget"] == {"dataset": "folder", "set": "group jackson"}
    # every speaker has 60 clips: jackson is the forget set, the three others one split each (whole groups)
    assert report["split_sizes"] == {"test": 60, "excluded": 60, "val": 60, "retain_train": 60, "full_train": 120}
    assert set(report["forgetting"]) >= {"original", "gold", "base"}
    from audioforge.tracking import Tracker, TrackingConfig

    tracker = Tracker.open(TrackingConfig(store=str(mlflow_store), experiment="user-data"))
    run = tracker.client.get_run(report["mlflow"]["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["audioforge.dataset"] == "folder"


def test_unlearn_forgets_a_class_of_a_manifest_with_a_split_column(data_root, tmp_path, mlflow_store):
    """A manifest of real FSDD clips (absolute paths) whose split column puts two speakers in
    training, one in validation, one in test; forgetting class 3 takes its training clips out and
    its clips out of validation and test.  Forgetting a group the split column put in test is refused."""
    from tests.test_synthetic_data import UNLEARN_TINY

    rows = ["path,label,group,split"]
    for speaker, split in (("george", "train"), ("jackson", "train"), ("lucas", "val"), ("theo", "test")):
        for digit in range(10):
            for take in range(6):
                rows.append(f"{data_root / 'fsdd' / 'recordings' / f'{digit}_{speaker}_{take}.wav'},{digit},{speaker},{split}")
    manifest = tmp_path / "clips.csv"
    manifest.write_text("\n".join(rows) + "\n")
    out = tmp_path / "unlearn"
    common = ["unlearn", *UNLEARN_TINY, "--dataset", "manifest", "--data", str(tmp_path),
              "data.options.path=clips.csv", f"tracking.store={mlflow_store}", "tracking.experiment=user-manifest"]
    assert main([*common, "--output", str(out), "data.forget={kind: class, values: ['3']}"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["forget"] == {"dataset": "manifest", "set": "class 3"}
    # 120 training clips, 12 of class 3; validation and test lose their 6 clips of class 3
    assert report["split_sizes"] == {"test": 54, "excluded": 12, "val": 54, "retain_train": 108, "full_train": 120}
    refused = tmp_path / "refused"
    assert main([*common, "--output", str(refused), "data.forget={kind: group, values: [theo]}"]) == 3
    assert not refused.exists()
    from audioforge.tracking import Tracker, TrackingConfig

    tracker = Tracker.open(TrackingConfig(store=str(mlflow_store), experiment="user-manifest"))
    found = tracker.client.search_runs([tracker.experiment_id])
    assert [r.info.status for r in found if r.data.tags.get("mlflow.parentRunId") is None] == ["FINISHED"]


def test_parallel_streamed_extraction_equals_serial(tmp_path, monkeypatch, capfd):
    """Chunks decoded in worker processes land in order, equal to decoding here; the bar shows at INFO."""
    import logging

    from audioforge.processes import WorkerPool
    from datamodules import extraction
    from datamodules.features import FeatureSpec

    tree = digit_tree(tmp_path / "digits", formats=True)
    paths = sorted(p for p in tree.rglob("*") if p.suffix in SUFFIX.values())
    spec = FeatureSpec()
    serial = extraction.extract_files(paths, spec)
    monkeypatch.setattr(extraction, "CHUNK", 5)
    monkeypatch.setattr(extraction, "POOL_PAYS_AFTER", 0.0)   # any work left goes to the pool
    monkeypatch.setattr(extraction, "BAR_FROM", 1)
    logging.getLogger("datamodules").setLevel(logging.INFO)
    try:
        parallel = extraction.extract_files(paths, spec, WorkerPool, jobs=2, desc="digits")
    finally:
        logging.getLogger("datamodules").setLevel(logging.NOTSET)
    assert torch.allclose(serial, parallel, atol=1e-4)
    assert "digits:" in capfd.readouterr().err  # the clip bar (tqdm redraws at most every 0.1 s)
    logging.getLogger("datamodules").setLevel(logging.WARNING)   # --quiet
    try:
        extraction.extract_files(paths[:10], spec, desc="quiet")
    finally:
        logging.getLogger("datamodules").setLevel(logging.NOTSET)
    assert "quiet" not in capfd.readouterr().err


def test_distill_on_a_folder_and_its_validation_requirement(tmp_path, mlflow_store, capfd):
    from tests.test_synthetic_data import DISTILL_TINY

    tree = digit_tree(tmp_path / "digits")
    common = ["distill", "--preset", "quick", "--dataset", "folder", "--data", str(tree), *DISTILL_TINY,
              "data.options.group_pattern=^([a-z]+)_", f"tracking.store={mlflow_store}", "tracking.experiment=user-data"]
    # no validation split: refused before anything is recorded (selection never falls back on test)
    assert main([*common, "--output", str(tmp_path / "none"), "data.options.val_fraction=0"]) == 3  # a data error
    assert "no validation clips" in capfd.readouterr().err and not (tmp_path / "none").exists()
    assert main([*common, "--output", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    # 4 speakers x 12 clips: one whole speaker each for validation and test
    assert report["dataset"] == "folder" and report["split_sizes"] == {"train": 24, "val": 12, "test": 12}


def test_unlearn_bench_runs_forget_set_cells_on_a_folder_dataset(fsdd_digit_folders, tmp_path, mlflow_store, capsys):
    """The benchmark off FSDD: its cells come from ``forget_sets`` (a speaker group of a folder
    dataset), and FSDD's ``speakers`` are refused there.  Registered methods alone, none of the
    paper's schemes."""
    tiny = ("[data.dataset=folder, 'data.options.group_pattern=^\\d_([a-z]+)_', original.epochs=2, gold.epochs=2, "
            "'unlearning.schemes={}', unlearning.phases.0.epochs=1, unlearning.phases.1.rounds=1, "
            "unlearning.phases.2.epochs=1]")
    out = tmp_path / "bench"
    common = ["unlearn-bench", "--preset", "quick", "--quiet", "--data", str(fsdd_digit_folders), "seeds=[0]", "jobs=1",
              "methods={ssd: {}}", f"unlearn_overrides={tiny}", "forgetting_quality.cell=null", "speakers=null",
              f"tracking.store={mlflow_store}", "tracking.experiment=user-bench", "--output", str(out)]
    assert main([*common, "speakers=[george]"]) == 2
    assert "speakers: FSDD's speakers; on folder name the cells under forget_sets" in capsys.readouterr().err
    assert main(common) == 2
    assert "the cells come from forget_sets alone" in capsys.readouterr().err
    sets = "forget_sets=[{kind: group, values: [jackson]}, {kind: fraction, fraction: 0.2}]"
    assert main([*common, sets, "forgetting_quality.cell=class-3"]) == 2
    assert "forgetting_quality.cell 'class-3' is not among the benchmark's cells (group-jackson, fraction-0.2" \
        in capsys.readouterr().err
    assert main([*common, sets, "forgetting_quality.cell=fraction-0.2", "forgetting_quality.models=4"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert list(report["forget_sets"]) == ["group-jackson", "fraction-0.2"] and "leaderboard" not in report
    text = (out / "report.md").read_text()
    assert "## Forgetting a random 20% of the training clips (cell fraction-0.2)" in text
    # forgetting quality on a forget set's cell: its 4 seeds, its table's column, its own section
    fq = report["forgetting_quality"]
    assert fq["cell"] == "fraction-0.2" and fq["models_per_side"] == 4 and set(fq["models"]) == {"original", "ssd"}
    assert json.loads((out / "cells" / "fraction-0.2" / "report.json").read_text())["seeds"] == [0, 1, 2, 3]
    assert json.loads((out / "cells" / "group-jackson" / "report.json").read_text())["seeds"] == [0]
    section = text.split("(cell fraction-0.2)")[1]
    assert "Forgetting quality: cell fraction-0.2 (a random 20% of the training clips), 4 gold" in section
    row = next(line for line in section.splitlines() if line.startswith("| ssd |"))
    assert row.split("|")[-3].strip() == f"{fq['models']['ssd']['forgetting_quality']:.3f}"
    assert (out / "forgetting_vs_test.png").is_file()
    bench_run = next(r for r in runs(mlflow_store, "user-bench") if r.data.tags.get("audioforge.command") == "unlearn-bench")
    assert bench_run.data.metrics["fraction-0.2/ssd/forgetting_quality"] == fq["models"]["ssd"]["forgetting_quality"]
    cell = json.loads((out / "cells" / "group-jackson" / "report.json").read_text())
    assert cell["forget"] == {"dataset": "folder", "set": "group jackson"}
    assert cell["split_sizes"]["excluded"] + cell["split_sizes"]["excluded_held_out"] == 60  # all of jackson's clips
