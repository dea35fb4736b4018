"""Forget sets beyond FSDD's speakers: a group, a class or a random fraction of any dataset's
training split, with validation and test never holding a forgotten group or class."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from audioforge.cli import main
from audioforge.errors import ConfigError, DataError
from datamodules.forget import ForgetSet, carve
from datamodules.fsdd import FSDDDataModule
from datamodules.ravdess import RAVDESSDataModule
from tests.commands import runs

# 40 clips: groups a-d (10 each), classes 0-4 cycling; the dataset's own split: group d is test,
# c's first half validation, the rest training
GROUPS = np.repeat(["a", "b", "c", "d"], 10)
LABELS = np.tile(np.arange(5), 8)
CLASSES = ["zero", "one", "two", "three", "four"]
SPLITS = {"train": np.r_[0:20, 25:30], "val": np.r_[20:25], "test": np.r_[30:40]}


def test_a_group_leaves_training_and_never_reaches_validation_or_test():
    out = carve(GROUPS, LABELS, CLASSES, SPLITS, ForgetSet("group", ["b"]), holdout=0.2, seed=0)
    assert set(GROUPS[out["forget"]]) == set(GROUPS[out["forget_holdout"]]) == {"b"}
    assert len(out["forget"]) == 8 and len(out["forget_holdout"]) == 2
    assert "b" not in set(GROUPS[out["retain_train"]]) and len(out["retain_train"]) == 15
    assert sorted(out["full_train"]) == sorted([*out["retain_train"], *out["forget"]])  # held-out never trained
    np.testing.assert_array_equal(out["test"], SPLITS["test"])
    # a group the dataset put in test is not a training group
    with pytest.raises(DataError, match="group 'd' has no clips in data's training split"):
        carve(GROUPS, LABELS, CLASSES, SPLITS, ForgetSet("group", ["d"]))
    with pytest.raises(DataError, match=r"has no group 'e' \(groups: a, b, c, d\)"):
        carve(GROUPS, LABELS, CLASSES, SPLITS, ForgetSet("group", ["e"]))


def test_a_class_is_removed_from_validation_and_test_too():
    out = carve(GROUPS, LABELS, CLASSES, SPLITS, ForgetSet("class", ["two"]), seed=0)
    assert set(LABELS[out["forget"]]) == {2} and len(out["forget"]) == 5
    for split in ("retain_train", "val", "test"):
        assert 2 not in set(LABELS[out[split]]), split
    assert len(out["test"]) == 8 and len(out["val"]) == 4
    with pytest.raises(DataError, match="has no class 'seven'"):
        carve(GROUPS, LABELS, CLASSES, SPLITS, ForgetSet("class", ["seven"]))


def test_a_random_fraction_is_stratified_and_deterministic_per_seed():
    groups, labels = np.repeat(["a"], 200), np.tile(np.arange(4), 50)
    splits = {"train": np.arange(160), "val": np.arange(160, 180), "test": np.arange(180, 200)}
    a = carve(groups, labels, ["w", "x", "y", "z"], splits, ForgetSet("fraction", fraction=0.25), seed=1)
    assert len(a["forget"]) == 40 and Counter(labels[a["forget"]].tolist()) == {0: 10, 1: 10, 2: 10, 3: 10}
    np.testing.assert_array_equal(a["test"], splits["test"])  # other clips: nothing to remove
    b = carve(groups, labels, ["w", "x", "y", "z"], splits, ForgetSet("fraction", fraction=0.25), seed=1)
    c = carve(groups, labels, ["w", "x", "y", "z"], splits, ForgetSet("fraction", fraction=0.25), seed=2)
    np.testing.assert_array_equal(a["forget"], b["forget"])
    assert not np.array_equal(a["forget"], c["forget"])


@pytest.mark.parametrize("forget, message", [
    (ForgetSet("group", []), "values must name at least one group"),
    (ForgetSet("fraction", ["a"]), "a random fraction names no groups"),
    (ForgetSet("fraction", fraction=1.0), "fraction must be in (0, 1)"),
    (ForgetSet("speaker", ["a"]), "kind must be one of group, class, fraction"),
])
def test_bad_forget_sets(forget, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        forget.validate()


def test_fsdd_class_forgetting_keeps_the_digit_out_of_every_evaluation_split(synthetic_fsdd, tmp_path):
    dm = FSDDDataModule(synthetic_fsdd, forget=ForgetSet("class", ["3"]), forget_holdout=0.2, cache_dir=tmp_path,
                        download=False)
    dm.setup()
    assert set(dm.tensors("forget")[1].tolist()) == {3} and set(dm.tensors("forget_holdout")[1].tolist()) == {3}
    for split in ("retain_train", "val", "test"):
        assert 3 not in set(dm.tensors(split)[1].tolist()), split
    assert len(set(dm.groups("forget"))) == 6  # every speaker's 3s
    speaker = FSDDDataModule(synthetic_fsdd, forget=ForgetSet("group", ["theo"]), cache_dir=tmp_path, download=False)
    speaker.setup()  # a speaker: FSDD's own protocol, as forget_speakers gives it
    paper = FSDDDataModule(synthetic_fsdd, forget_speakers=["theo"], cache_dir=tmp_path, download=False)
    paper.setup()
    assert all(np.array_equal(speaker.splits[k], paper.splits[k]) for k in paper.splits)


def test_ravdess_actor_and_emotion_forget_sets(data_root, tmp_path):
    if not (data_root / "ravdess" / "Audio_Speech_Actors_01-24" / "Actor_01").is_dir():
        pytest.skip(f"RAVDESS sample clips absent under {data_root}/ravdess")
    common = dict(val_actors=[], test_actors=[2], cache_dir=tmp_path)
    angry = RAVDESSDataModule(data_root, forget=ForgetSet("class", ["angry"]), **common)
    angry.setup()
    assert set(angry.groups("forget")) == {"actor01"} and angry.split_size("forget") == 8
    assert "angry" not in {angry.class_names[i] for i in angry.tensors("test")[1].tolist()}
    with pytest.raises(DataError, match="selects every training clip"):
        RAVDESSDataModule(data_root, forget=ForgetSet("group", ["actor01"]), **common).setup()
    with pytest.raises(DataError, match="group 'actor02' has no clips in ravdess's training split"):
        RAVDESSDataModule(data_root, forget=ForgetSet("group", ["actor02"]), **common).setup()


def test_unlearn_forgets_a_class_on_any_dataset_config(synthetic_fsdd, mlflow_store, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["unlearn", "--preset", "quick", "--quiet", "--data", str(synthetic_fsdd), "--output", str(out),
            "--seeds", "0", "--jobs", "2", "original.epochs=2", "gold.epochs=2", "unlearning.schemes={base: []}",
            "methods={finetune: {epochs: 1}}", "data.forget={kind: class, values: ['3']}", "data.forget_holdout=0.2",
            f"tracking.store={mlflow_store}", "tracking.experiment=forget-class"]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["forget"] == {"dataset": "fsdd", "set": "class 3"}
    sizes = report["split_sizes"]  # 36 clips of each digit, some in validation and test before the carve
    assert 20 < sizes["excluded"] + sizes["excluded_held_out"] < 36 and sizes["excluded_held_out"] > 0
    gold = report["metrics"]["gold"]["excluded"]["acc"]["mean"]
    assert gold == 0.0  # the gold model never saw a 3: it cannot call one
    assert {r.info.status for r in runs(mlflow_store, "forget-class")} == {"FINISHED"}
    # another dataset needs its forget set named; bad values fail before anything is recorded
    assert main(["unlearn", "--preset", "quick", "--dataset", "ravdess", "--data", str(synthetic_fsdd)]) == 2
    assert "data.forget: name the forget set on ravdess" in capsys.readouterr().err
    assert main([*args[:-2], "data.forget={kind: class, values: ['ten']}", "tracking.experiment=forget-bad"]) != 0
    assert "has no class 'ten'" in capsys.readouterr().err
    assert runs(mlflow_store, "forget-bad") == []
