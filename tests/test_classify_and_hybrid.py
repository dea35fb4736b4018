"""``audioforge classify`` on the real UrbanSound8K and RAVDESS samples and ``audioforge rir``
(the CNN-SVM hybrid) end to end on a small simulated set, with a real MLflow store."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from audioforge.cli import main
from audioforge.tracking import PARENT_TAG


def runs_of(store, experiment: str):
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    return client, client.search_runs([exp.experiment_id])


@pytest.mark.parametrize("preset, classes", [
    ("urbansound8k", 10),
    # the same command on the other real set; RAVDESS's parsing and splits are in test_ravdess.py
    pytest.param("ravdess", 8, marks=pytest.mark.slow)])
def test_classify_on_real_samples(preset, classes, data_root, mlflow_store, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["classify", "--preset", preset, "--data", str(data_root), "--seeds", "0", "--quiet",
                 "--output", str(out), "fit.epochs=2", f"tracking.store={mlflow_store}",
                 f"tracking.experiment=classify-{preset}"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    seed = report["seeds"][0]
    assert len(seed["report"]["confusion"]) == classes
    assert 0.0 <= seed["test"]["acc"] <= 1.0
    assert sum(map(sum, seed["report"]["confusion"])) == report["split_sizes"]["test"]
    for png in ("confusion.png", "precision_recall.png", "f1.png"):
        assert (out / "seed-0" / png).is_file()
    client, runs = runs_of(mlflow_store, f"classify-{preset}")
    assert {r.info.status for r in runs} == {"FINISHED"} and len(runs) == 2
    child = next(r for r in runs if PARENT_TAG in r.data.tags)
    assert "final/test/acc" in child.data.metrics and "train/loss" in child.data.metrics


def test_classify_bad_options_name_the_key(data_root, capsys):
    assert main(["classify", "--dataset", "ravdess", "--data", str(data_root), "data.options.actors=[1]"]) == 2
    assert "data.options.actors" in capsys.readouterr().err
    assert main(["classify", "--dataset", "ravdess", "--arch", "nonet", "--data", str(data_root),
                 "tracking.enabled=false", "--output", "/tmp/never"]) == 2
    assert "unknown network 'nonet'" in capsys.readouterr().err
    assert main(["classify", "--dataset", "esc50"]) == 2
    assert "unknown dataset 'esc50'" in capsys.readouterr().err


def test_rir_hybrid_end_to_end_on_a_small_simulated_set(mlflow_store, tmp_path, capsys):
    out = tmp_path / "rir"
    code = main(["rir", "--seeds", "0", "--quiet", "--output", str(out), f"tracking.store={mlflow_store}",
                 "tracking.experiment=rir-test", "data.options.simulation.rooms_per_size=10",
                 "data.options.simulation.rirs_per_room=3", "data.options.simulation.seconds=0.25",
                 "cnn.epochs=3", "cnn.width=8"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    seed = report["seeds"][0]
    assert set(seed["test_acc"]) == {"svm", "cnn", "combined"}
    # the fused weight is chosen on validation, where w = 0 and w = 1 are candidates
    assert seed["val_acc"]["combined"] >= max(seed["val_acc"]["svm"], seed["val_acc"]["cnn"])
    svm_report = seed["reports"]["svm"]
    assert {"macro avg", "weighted avg", "small", "medium", "large"} <= set(svm_report)
    md = (out / "report.md").read_text()
    assert "| mean ± std |" in md and "weighted avg" in md
    for model in ("svm", "cnn", "combined"):
        for plot in ("confusion", "precision_recall", "f1"):
            assert (out / "seed-0" / f"{model}_{plot}.png").is_file()
    client, runs = runs_of(mlflow_store, "rir-test")
    assert {r.info.status for r in runs} == {"FINISHED"}
    child = next(r for r in runs if PARENT_TAG in r.data.tags)
    assert {"final/test/svm_acc", "final/test/cnn_acc", "final/test/combined_acc", "train/recon"} <= set(child.data.metrics)


def test_rir_refuses_a_non_rir_dataset(capsys):
    assert main(["rir", "data.dataset=fsdd"]) == 2
    assert "data.dataset must be rir_simulated or rir_real" in capsys.readouterr().err


def test_fusion_weight_breaks_accuracy_ties_by_log_loss():
    import numpy as np

    from audioforge.rir.svm import choose_fusion_weight

    y = np.array([0, 1, 0, 1])
    confident = np.array([[0.95, 0.05], [0.05, 0.95], [0.9, 0.1], [0.1, 0.9]])
    hesitant = np.array([[0.55, 0.45], [0.45, 0.55], [0.6, 0.4], [0.4, 0.6]])
    w, acc = choose_fusion_weight(confident, hesitant, y, 11)   # both perfect: the sharper one wins
    assert acc == 1.0 and w == 1.0
    wrong = hesitant[:, ::-1]
    w, acc = choose_fusion_weight(wrong, confident, y, 11)      # accuracy decides first
    assert acc == 1.0 and w < 0.5


@pytest.mark.parametrize("names", [[str(d) for d in range(10)],
                                   ["air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling",
                                    "engine_idling", "gun_shot", "jackhammer", "siren", "street_music"]])
def test_confusion_labels_neither_overlap_nor_leave_the_figure(names):
    import numpy as np

    from audioforge.plots import confusion_figure

    fig = confusion_figure(np.arange(len(names) ** 2).reshape(len(names), -1), names, "title")
    fig.canvas.draw()
    renderer, ax = fig.canvas.get_renderer(), fig.axes[0]
    whole = fig.bbox
    for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
        boxes = [t.get_window_extent(renderer) for t in labels]
        assert all(b.x0 >= whole.x0 and b.x1 <= whole.x1 and b.y0 >= whole.y0 and b.y1 <= whole.y1 for b in boxes)
        assert not any(a.overlaps(b) for k, a in enumerate(boxes) for b in boxes[k + 1:]), [t.get_text() for t in labels]
