"""The quick unlearning experiment end to end on the real FSDD, through the CLI, read back from MLflow."""

from __future__ import annotations

import json
import math

import pytest
from mlflow.tracking import MlflowClient

from audioforge.cli import main
from audioforge.tracking import PARENT_TAG

SCHEMES = ("base", "all_bn", "conv_bn")


@pytest.fixture(scope="module")
def quick_run(data_root, mlflow_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("quick")
    code = main(["unlearn", "--preset", "quick", "--data", str(data_root), "--output", str(out), "--quiet",
                 f"tracking.store={mlflow_store}", "tracking.experiment=e2e", "reuse_base_models=false"])
    assert code == 0
    return out, json.loads((out / "report.json").read_text())


def test_report_files_and_tables(quick_run):
    out, report = quick_run
    for name in ("report.md", "report.json", "table1.png", "table2.png", "membership.png"):
        assert (out / name).is_file(), name
    for seed in (0, 1):
        for model in ("original", "gold", *SCHEMES):
            assert (out / f"seed-{seed}" / model / "confusion_test.png").is_file()
            assert (out / f"seed-{seed}" / model / "model.ckpt").is_file()
    for table in ("table1", "table2"):
        for scheme in SCHEMES:
            for split in ("test", "excluded"):
                entry = report[table][scheme][split]
                assert set(entry) == {"mean", "std"} and math.isfinite(entry["mean"]) and entry["std"] >= 0
    for scheme in SCHEMES:
        ratio = report["timing"]["unlearn_over_gold"][scheme]["mean"]
        assert 0 < ratio < 2
        assert set(report["timing"]["phase_seconds"][scheme]) == {"reset", "perturb", "finetune"}
    assert report["split_sizes"] == {"test": 250, "excluded": 500, "val": 225, "retain_train": 2025, "full_train": 2525}
    for metric in ("acc", "precision", "recall", "f1"):
        assert set(report["deltas"]["gold"][metric]) == set(SCHEMES)
    p = report["paired_test"]["conv_bn_vs_base"]["excluded"]
    assert p["n"] == 2 and (p["p_value"] is None or 0 <= p["p_value"] <= 1)
    assert set(report["membership"]) == {"original", "gold", *SCHEMES}
    text = (out / "report.md").read_text()
    assert "Table 1" in text and "Table 2" in text and "conv_bn vs base" in text


def test_the_papers_direction_shows(quick_run):
    _, report = quick_run
    m = report["metrics"]
    # the gold model never saw the excluded speaker; the original did
    assert m["original"]["excluded"]["f1"]["mean"] > m["gold"]["excluded"]["f1"]["mean"]
    # unlearning costs the excluded speaker more F1 than the retained test set
    drops = [report["table1"][s]["excluded"]["mean"] - report["table1"][s]["test"]["mean"] for s in SCHEMES]
    assert sum(drops) / len(drops) < 0


def test_mlflow_holds_parent_seed_and_model_runs(quick_run):
    _, report = quick_run
    info = report["mlflow"]
    client = MlflowClient(info["tracking_uri"])
    parent = client.get_run(info["run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.params["original.epochs"] == "6" and parent.data.params["features.n_mfcc"] == "20"
    assert "table2/conv_bn/excluded" in parent.data.metrics
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"config.yaml", "report"}
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "report")} >= {
        "report/report.md", "report/report.json", "report/table1.png"}

    def children(run_id):
        return client.search_runs([info["experiment_id"]], filter_string=f"tags.`{PARENT_TAG}` = '{run_id}'")

    seeds = children(parent.info.run_id)
    assert sorted(r.data.tags["audioforge.seed"] for r in seeds) == ["0", "1"]
    for seed_run in seeds:
        assert seed_run.info.status == "FINISHED"
        models = {r.info.run_name: r for r in children(seed_run.info.run_id)}
        assert set(models) == {"original", "gold", *SCHEMES}
        for name, run in models.items():
            assert run.info.status == "FINISHED"
            assert "final/excluded/f1" in run.data.metrics and "final/test/acc" in run.data.metrics
            history = client.get_metric_history(run.info.run_id, "val/f1")
            epochs = 6 if name in ("original", "gold") else 4
            assert len(history) == epochs  # per-epoch metrics
            paths = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
            assert "plots/confusion_excluded.png" in paths
            assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")] == ["checkpoints/model.ckpt"]
        assert "unlearn/phase" in models["conv_bn"].data.metrics


@pytest.mark.slow  # three unlearn runs
def test_base_models_are_reused_from_the_cache(synthetic_fsdd, mlflow_store, tmp_path):
    args = ["unlearn", "--preset", "quick", "--data", str(synthetic_fsdd), "--quiet", "seeds=[3]", "original.epochs=2",
            "gold.epochs=2", f"tracking.store={mlflow_store}", "tracking.experiment=reuse"]
    assert main([*args, "--output", str(tmp_path / "first")]) == 0
    assert main([*args, "--output", str(tmp_path / "second")]) == 0
    first = json.loads((tmp_path / "first" / "report.json").read_text())
    second = json.loads((tmp_path / "second" / "report.json").read_text())
    assert second["metrics"]["original"] == first["metrics"]["original"]
    assert second["metrics"]["gold"] == first["metrics"]["gold"]
    # the unlearning starts from the very same original weights
    assert second["metrics"]["conv_bn"] == first["metrics"]["conv_bn"]
    client = MlflowClient(second["mlflow"]["tracking_uri"])
    runs = client.search_runs([second["mlflow"]["experiment_id"]], filter_string="tags.`audioforge.reused` = 'true'")
    assert sorted(r.info.run_name for r in runs) == ["gold", "original"]
    assert all("final/excluded/f1" in r.data.metrics for r in runs)
    assert not (tmp_path / "second" / "seed-3" / "original" / "model.ckpt").exists()
    assert (tmp_path / "first" / "seed-3" / "original" / "model.ckpt").exists()
    fresh = main([*args, "--output", str(tmp_path / "third"), "reuse_base_models=false"])
    assert fresh == 0 and (tmp_path / "third" / "seed-3" / "original" / "model.ckpt").exists()
