import pytest
from mlflow.tracking import MlflowClient

from audioforge.tracking import PARENT_TAG, Tracker, TrackingConfig, artifact_root, keep_tracking_env, tracking_uri


def test_default_store_is_sqlite_under_the_store_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = tracking_uri(TrackingConfig(store=str(tmp_path / "mlruns")))
    assert uri == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/db")
    assert tracking_uri(TrackingConfig(store=str(tmp_path))) == "sqlite:////elsewhere/db"
    assert tracking_uri(TrackingConfig(uri="http://127.0.0.1:5000")) == "http://127.0.0.1:5000"
    assert artifact_root("sqlite:////data/store/mlflow.db") == "file:///data/store/artifacts"
    assert artifact_root("postgresql://db/mlflow") is None


def test_mlflow_logger_does_not_leak_its_uri_into_the_environment(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with keep_tracking_env():
        mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/x.db")  # what Lightning's MLFlowLogger does
    assert "MLFLOW_TRACKING_URI" not in __import__("os").environ


def test_runs_end_finished_or_failed_and_children_are_not_left_running(mlflow_store):
    tracker = Tracker.open(TrackingConfig(store=str(mlflow_store), experiment="tracking-test"))
    client = MlflowClient(tracker.uri)
    with tracker.run("ok") as ok:
        tracker.log_config(ok, {"a": {"b": 1, "c": [1, 2]}, "name": "x"})
        tracker.log_metrics(ok, {"m": 0.5})
    run = client.get_run(ok)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"a.b": "1", "a.c": "[1, 2]", "name": "x"}
    assert run.data.metrics == {"m": 0.5}
    assert [a.path for a in client.list_artifacts(ok)] == ["config.yaml"]
    artifact_dir = client.get_experiment(tracker.experiment_id).artifact_location
    assert artifact_dir.startswith("file://") and str(mlflow_store) in artifact_dir

    with pytest.raises(RuntimeError):
        with tracker.run("parent") as parent:
            child = tracker.create_run("orphan", parent_id=parent)  # as if its worker died
            grandchild = tracker.create_run("orphan-child", parent_id=child)
            raise RuntimeError("boom")
    assert client.get_run(parent).info.status == "FAILED"
    assert client.get_run(child).info.status == "FAILED"
    assert client.get_run(grandchild).info.status == "FAILED"
    assert client.get_run(child).data.tags[PARENT_TAG] == parent

    with pytest.raises(KeyboardInterrupt):
        with tracker.run("interrupted") as killed:
            raise KeyboardInterrupt
    assert client.get_run(killed).info.status == "KILLED"


def test_a_folder_holding_the_store_is_uploaded_without_the_store(tmp_path):
    out = tmp_path / "out"
    (out / "plots").mkdir(parents=True)
    (out / "report.md").write_text("r")
    (out / "plots" / "a.png").write_bytes(b"png")
    tracker = Tracker.open(TrackingConfig(store=str(out / "mlruns"), experiment="store-inside"))
    client = MlflowClient(tracker.uri)
    with tracker.run("r") as run_id:
        tracker.log_artifact(run_id, out, "report")
    names = {a.path for a in client.list_artifacts(run_id, "report")}
    assert names == {"report/report.md", "report/plots"}
    assert [a.path for a in client.list_artifacts(run_id, "report/plots")] == ["report/plots/a.png"]


def test_a_run_that_dies_before_writing_leaves_no_empty_folder(tmp_path, mlflow_store):
    from audioforge.run import Run
    from audioforge.tracking import TrackingConfig

    tracking = TrackingConfig(store=str(mlflow_store), experiment="empty-folders")
    with pytest.raises(RuntimeError):
        with Run("classify", "dies", tmp_path / "new", tracking) as run:
            raise RuntimeError("bad data")
    assert not (tmp_path / "new").exists()
    assert run.tracker.client.get_run(run.id).info.status == "FAILED"
    (tmp_path / "mine").mkdir()  # a folder the user made is theirs, and one with files is kept
    for folder, write in ((tmp_path / "mine", False), (tmp_path / "written", True)):
        with pytest.raises(RuntimeError):
            with Run("classify", "dies", folder, tracking) as run:
                if write:
                    (folder / "partial.json").write_text("{}")
                raise RuntimeError("bad data")
        assert folder.is_dir()
