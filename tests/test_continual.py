"""Class-incremental learning (``audioforge continual``) on a synthetic FSDD-layout tree: no step
sees a later class (training clips, memory, validation, normalisation), test is scored only after
each step's selection, the memory holds exactly ``per_class`` clips of every old class, the command
resumes, and bad sizes fail before anything is recorded."""

from __future__ import annotations

import json
import re

import pytest
import torch

from audioforge.cli import main
from tests.commands import runs

TINY = ["--preset", "quick", "--quiet", "steps=2", "orders=1", "memory.per_class=3", "train.epochs=2",
        "train.val_every=1", "train.batch_size=32", "distill.iterations=2", "distill.iterations_per_epoch=1",
        "distill.network_kwargs.width=16", "distill.validation.epochs=2", "distill.validation.val_every=1",
        "distill.buffer.experts=1", "distill.buffer.epochs=2", "distill.mtt.expert_epochs=1",
        "distill.mtt.max_start_epoch=1", "distill.mtt.syn_steps=2", "jobs=1"]


def tiny_config(root, out, *extra: str):
    from audioforge.config import load_config
    from audioforge.distill.continual.config import ContinualConfig
    from audioforge.paths import preset

    overrides = [o for o in TINY if "=" in o] + [f"data.root={root}", f"output_dir={out}", "tracking.enabled=false",
                                                 *extra]
    return load_config(ContinualConfig, [preset("continual", "quick")], overrides)


def test_subset_classes_is_a_relabelled_view_of_those_classes(synthetic_fsdd):
    from audioforge.run import DatasetConfig

    dm = DatasetConfig(root=str(synthetic_fsdd)).load({"kind": "fdmfcc"}, seed=0)
    view = dm.subset_classes([7, 2])
    assert view.num_classes == 2 and view.class_names == [dm.class_names[7], dm.class_names[2]]
    for split in (dm.train_split, "val", "test"):
        x, y = view.tensors(split)
        px, py = dm.tensors(split)
        assert torch.equal(x[y == 0], px[py == 7]) and torch.equal(x[y == 1], px[py == 2])
        assert len(y) == int(((py == 7) | (py == 2)).sum())
    assert [i.label for i in view.items] == view.y.tolist()
    assert view.content_key not in (dm.content_key, dm.subset_classes([2, 7]).content_key)
    assert dm.num_classes == 10 and len(dm.y) == 360  # the parent is untouched
    with pytest.raises(Exception, match="distinct class indices"):
        dm.subset_classes([1, 1])


def test_standardize_with_classes_uses_only_their_clips(synthetic_fsdd):
    from audioforge.run import DatasetConfig

    dm = DatasetConfig(root=str(synthetic_fsdd)).load({"kind": "fdmfcc"}, seed=0)
    x, y = dm.tensors(dm.train_split)
    own = x[(y == 3) | (y == 5)]
    stats = dm.standardize(classes=[3, 5])
    assert torch.allclose(stats["mean"], own.mean(dim=(0, 3))[..., None], atol=1e-5)
    everything = x.mean(dim=(0, 3))[..., None]
    assert not torch.allclose(stats["mean"], everything, atol=1e-3)


def test_steps_see_only_their_classes_and_test_comes_after_selection(synthetic_fsdd, tmp_path, monkeypatch):
    """One herding cell run in this process with spies on training and test scoring."""
    from audioforge.distill.continual import experiment
    from audioforge.distill import evaluate

    cfg = tiny_config(synthetic_fsdd, tmp_path / "c", "steps=5", "memory.methods=[herding]")
    events = []
    real_train, real_score = evaluate.train_student, experiment.seen_accuracy

    def train(network, x, y, val, *args, **kwargs):
        events.append(("train", set(y.tolist()), set(val[1].tolist()), torch.bincount(y, minlength=10)))
        return real_train(network, x, y, val, *args, **kwargs)

    def score(model, x, y, seen):
        assert events and events[-1][0] == "train", "test scored before the step's selection finished"
        events.append(("test", set(y.tolist()), set(seen)))
        return real_score(model, x, y, seen)

    monkeypatch.setattr(evaluate, "train_student", train)
    monkeypatch.setattr(experiment, "seen_accuracy", score)
    cell = experiment.plan(cfg, 10)[0]
    report = experiment.run_cell(cfg, cell, str(tmp_path / "cell"), None)
    order = list(cell.order)
    assert [e[0] for e in events] == ["train", "test"] * 5
    for t in range(5):
        seen, new = set(order[:2 * (t + 1)]), order[2 * t:2 * t + 2]
        _, train_labels, val_labels, counts = events[2 * t]
        assert train_labels == val_labels == seen and events[2 * t + 1][1] == events[2 * t + 1][2] == seen
        old = seen - set(new)
        assert all(int(counts[c]) == 3 for c in old)  # exactly per_class of every old class
        assert all(int(counts[c]) > 3 for c in new)   # every training clip of the new classes
        step = report["steps"][t]
        assert set(step["train_labels"]) == seen and step["memory_counts"] == {str(c): 3 for c in sorted(old)}
    # a second run reads every finished step back: nothing trains again
    events.clear()
    again = experiment.run_cell(cfg, cell, str(tmp_path / "cell"), None)
    assert events == [] and again["steps"] == report["steps"]


def test_continual_command_on_a_synthetic_tree(synthetic_fsdd, mlflow_store, tmp_path):
    out = tmp_path / "cont"
    args = ["continual", *TINY, "--data", str(synthetic_fsdd), "--output", str(out), f"tracking.store={mlflow_store}",
            "tracking.experiment=synthetic-continual"]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert list(report["summary"]) == ["mtt", "herding", "random"]
    for memory, by in report["summary"].items():
        entry = by["convnet"]
        assert entry["orders"] == 1 and len(entry["steps"]) == 2 and 0 <= entry["final"]["mean"] <= 1
    cells = report["cells"]
    assert len(cells) == 3
    for cell in cells.values():
        first, second = cell["steps"]
        assert set(first["train_labels"]) == set(first["new_classes"]) == set(cell["order"][:5])
        assert second["memory_counts"] == {str(c): 3 for c in sorted(cell["order"][:5])}
    learned = torch.load(out / "cells" / "mtt-convnet-order0" / "step-0" / "memory.pt")
    assert learned["x"].shape[0] == 15 and sorted(learned["y"].tolist()) == sorted(cells["mtt-convnet-order0"]["order"][:5] * 3)
    assert "best_iteration" in cells["mtt-convnet-order0"]["steps"][0]["memory_selection"]
    assert (out / "accuracy_per_step.png").is_file() and "| mtt | convnet |" in (out / "report.md").read_text()
    found = runs(mlflow_store, "synthetic-continual")
    assert sorted(r.info.status for r in found) == ["FINISHED"] * 4  # the command and its three cells
    # rerun on the same folder: every cell's report is read back, none runs again
    before = {p: p.stat().st_mtime_ns for p in out.glob("cells/*/report.json")}
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("cells/*/report.json")} == before
    assert json.loads((out / "report.json").read_text())["cells"] == cells


@pytest.mark.parametrize("extra, message", [
    (["memory.per_class=500"], "memory.per_class 500 is larger than class"),
    (["steps=3"], "steps must divide the 10 classes"),
    (["memory.methods=[herding, coreset]"], "unknown memory 'coreset'"),
    (["class_orders=[[0, 1, 2]]"], "class_orders\\[0\\] must be a permutation"),
    (["distill.mtt.max_start_epoch=5"], "must be <= buffer.epochs"),
])
def test_bad_continual_input_fails_before_anything_is_recorded(synthetic_fsdd, mlflow_store, tmp_path, capsys,
                                                                extra, message):
    out = tmp_path / "bad"
    code = main(["continual", *TINY, "--data", str(synthetic_fsdd), "--output", str(out),
                 f"tracking.store={mlflow_store}", "tracking.experiment=synthetic-continual-bad", *extra])
    assert code == 2
    assert len(re.findall(message, capsys.readouterr().err)) == 1
    assert runs(mlflow_store, "synthetic-continual-bad") == [] and not (out / "cells").exists()
