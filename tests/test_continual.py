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
        "distill.validation.epochs=2", "distill.validation.val_every=1",
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
    (["rule=eeil"], "rule must be one of scratch, finetune"),
    (["finetune.temperature=0"], "finetune: temperature and balanced_lr_scale must be > 0"),
    (["network_kwargs={widht: 16}"], "network_kwargs: bad arguments for network 'convnet'"),
])
def test_bad_continual_input_fails_before_anything_is_recorded(synthetic_fsdd, mlflow_store, tmp_path, capsys,
                                                                extra, message):
    out = tmp_path / "bad"
    code = main(["continual", *TINY, "--data", str(synthetic_fsdd), "--output", str(out),
                 f"tracking.store={mlflow_store}", "tracking.experiment=synthetic-continual-bad", *extra])
    assert code == 2
    assert len(re.findall(message, capsys.readouterr().err)) == 1
    assert runs(mlflow_store, "synthetic-continual-bad") == [] and not (out / "cells").exists()


def test_distillation_term_is_stationary_where_the_student_matches_its_teacher():
    from lightning_modules.incremental import distillation_loss

    teacher = torch.randn(8, 4)
    student = teacher.clone().requires_grad_(True)
    distillation_loss(student, teacher, 2.0).backward()
    assert student.grad.abs().max() < 1e-6
    moved = (teacher + torch.randn(8, 4)).requires_grad_(True)
    distillation_loss(moved, teacher, 2.0).backward()
    assert moved.grad.abs().max() > 1e-3


def test_incremental_classifier_masks_unseen_classes_and_never_trains_its_teachers():
    from audioforge.distill.evaluate import EvalConfig, fit_student
    from lightning_modules.incremental import IncrementalClassifier
    from lightning_modules.networks import build_network

    torch.manual_seed(0)
    teacher = build_network("convnet", (1, 8, 8), 6, width=8)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    model = IncrementalClassifier("convnet", (1, 8, 8), 6, seen=[1, 4, 5], teachers=[(teacher, [1, 4])],
                                  lr=0.05, optimizer="sgd", network_kwargs={"width": 8})
    assert not {id(p) for p in teacher.parameters()} & {id(p) for p in model.parameters()}
    x, y = torch.randn(30, 1, 8, 8), torch.tensor([1, 4, 5] * 10)
    fit_student(model, x, y, (x, y), EvalConfig(epochs=2, batch_size=10, val_every=1), seed=0)
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
    logits = model(torch.randn(50, 1, 8, 8))
    assert set(logits.argmax(1).tolist()) <= {1, 4, 5} and torch.isinf(logits[:, [0, 2, 3]]).all()
    with pytest.raises(ValueError, match="outside the seen classes"):
        IncrementalClassifier("convnet", (1, 8, 8), 6, seen=[1], teachers=[(teacher, [2])])


def test_finetune_carries_each_steps_network_into_the_next_and_resumes(synthetic_fsdd, tmp_path, monkeypatch):
    """Rule finetune, one random-memory cell: every later step starts from the previous step's
    network (saved as model.pt), distils the old classes from a frozen copy of it, then fine-tunes
    on a class-balanced set; a rerun trains nothing."""
    from audioforge.distill import evaluate
    from audioforge.distill.continual import experiment

    cfg = tiny_config(synthetic_fsdd, tmp_path / "c", "steps=5", "memory.methods=[random]", "rule=finetune",
                      "finetune.balanced_epochs=1")
    fits = []
    real_fit = evaluate.fit_student

    def fit(model, x, y, val, *args, **kwargs):
        fits.append({"start": {k: v.clone() for k, v in model.net.state_dict().items()}, "counts":
                     torch.bincount(y, minlength=10), "teachers": [sorted(c.tolist()) for _, c in
                                                               getattr(model, "teachers", [])]})
        return real_fit(model, x, y, val, *args, **kwargs)

    monkeypatch.setattr(evaluate, "fit_student", fit)
    cell = experiment.plan(cfg, 10)[0]
    folder = tmp_path / "cell"
    report = experiment.run_cell(cfg, cell, str(folder), None)
    order = list(cell.order)
    assert len(fits) == 1 + 2 * 4  # step 1 from scratch, then fine-tuning and the balanced stage per step
    assert fits[0]["teachers"] == []
    for t in range(1, 5):
        previous = torch.load(folder / f"step-{t - 1}" / "model.pt")
        first, balanced = fits[2 * t - 1], fits[2 * t]
        assert all(torch.equal(first["start"][k], v) for k, v in previous.items())
        old, new = sorted(order[:2 * t]), sorted(order[2 * t:2 * t + 2])
        assert first["teachers"] == [old] and balanced["teachers"] == [old, new]
        seen = order[:2 * (t + 1)]
        assert [int(balanced["counts"][c]) for c in seen] == [3] * len(seen)  # balanced: per_class of each
        assert all(int(first["counts"][c]) > 3 for c in new)
        assert isinstance(report["steps"][t]["balanced_kept"], bool)
    assert not (folder / "step-4" / "model.pt").exists()  # the last step's network carries nowhere
    fits.clear()
    again = experiment.run_cell(cfg, cell, str(folder), None)
    assert fits == [] and again["steps"] == report["steps"]
    # a step whose network is missing trains again from its predecessor's network, and so does
    # every step after it
    (folder / "step-2" / "model.pt").unlink()
    experiment.run_cell(cfg, cell, str(folder), None)
    assert len(fits) == 3 * 2
    assert all(torch.equal(fits[0]["start"][k], v) for k, v in torch.load(folder / "step-1" / "model.pt").items())


def test_a_learned_memory_in_the_step_folder_is_read_back(synthetic_fsdd, tmp_path, monkeypatch):
    from audioforge.distill.continual import experiment, memory

    cfg = tiny_config(synthetic_fsdd, tmp_path / "c", "memory.methods=[mtt]")
    cell = experiment.plan(cfg, 10)[0]
    classes = list(cell.order[:5])
    step = tmp_path / "cell" / "step-0"
    step.mkdir(parents=True)
    shape = cfg.data.load(cfg.features, 0).x.shape[1:]
    saved = {"x": torch.randn(15, *shape), "y": torch.as_tensor(classes * 3), "selection": {"best_iteration": 7}}
    torch.save(saved, step / "memory.pt")

    def refuse(*args, **kwargs):
        raise AssertionError("distilled again")

    monkeypatch.setattr(memory, "learned", refuse)
    report = experiment.run_cell(cfg, cell, str(tmp_path / "cell"), None)
    assert report["steps"][0]["memory_selection"] == {"best_iteration": 7}
    assert report["steps"][1]["memory_counts"] == {str(c): 3 for c in sorted(classes)}


def test_network_kwargs_build_every_steps_network_and_the_memorys_distillation(synthetic_fsdd, tmp_path, monkeypatch):
    """``network_kwargs`` reach the networks every step trains (carried from step to step under
    finetune, so a mismatch would fail to load) and the network each memory is distilled for."""
    from audioforge.distill import experiment as distillation
    from audioforge.distill.continual import experiment

    cfg = tiny_config(synthetic_fsdd, tmp_path / "c", "memory.methods=[mtt]", "rule=finetune",
                      "finetune.balanced_epochs=1", "network_kwargs={width: 16}")
    distilled_for = []
    real_distil = distillation.distil

    def distil(dcfg, *args, **kwargs):
        distilled_for.append((dcfg.network, dict(dcfg.network_kwargs)))
        return real_distil(dcfg, *args, **kwargs)

    monkeypatch.setattr(distillation, "distil", distil)
    cell = experiment.plan(cfg, 10)[0]
    report = experiment.run_cell(cfg, cell, str(tmp_path / "cell"), None)
    assert distilled_for == [("convnet", {"width": 16})]
    state = torch.load(tmp_path / "cell" / "step-0" / "model.pt")
    assert {v.shape[0] for v in state.values() if v.dim() == 4} == {16}
    assert len(report["steps"]) == 2
    assert "Networks built with width 16." in "\n".join(experiment.markdown(
        experiment.summarize(cfg, cfg.data.load(cfg.features, 0), [cell], {cell.name: report})))
