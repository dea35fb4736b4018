"""Optuna sweeps over unlearning: real SQLite storage, real worker processes, real MLflow store."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import optuna
import pytest
import sqlalchemy
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from audioforge.cli import main
from audioforge.tracking import PARENT_TAG
from tests.commands import Command, wait_gone

REPO = Path(__file__).resolve().parents[1]
TINY_UNLEARN = ["original.epochs=2", "gold.epochs=2", "unlearning.phases.0.epochs=1", "unlearning.phases.2.epochs=1"]


def sweep_file(tmp_path: Path, data_root: Path, store: Path, name: str, **extra) -> Path:
    cfg = {
        "name": name,
        "unlearn_config": str(REPO / "configs" / "unlearn" / "quick.yaml"),
        "unlearn_overrides": [*TINY_UNLEARN, f"data.root={data_root}"],
        "seeds": [0],
        "n_trials": 3,
        "workers": 2,
        "sampler_seed": 0,
        "heartbeat_seconds": 1,
        "storage": f"sqlite:///{tmp_path / 'studies.db'}",
        "output_dir": str(tmp_path / "out"),
        "params": {
            "unlearning.phases.1.ops.0.scale": {"type": "float", "low": 0.01, "high": 0.2, "log": True},
            "unlearning.phases.1.rounds": {"type": "int", "low": 1, "high": 2},
            "unlearning.phases.0.ops.0.layers": {"type": "categorical", "choices": [["linear"], ["linear", "conv"]]},
            "scheme": {"type": "categorical", "choices": ["base", "conv_bn"]},
        },
        "tracking": {"store": str(store), "experiment": name},
        **extra,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def trials(tmp_path: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'studies.db'}").get_trials()


def test_two_workers_complete_the_study_and_the_best_config_runs(synthetic_fsdd, mlflow_store, tmp_path, capsys):
    path = sweep_file(tmp_path, synthetic_fsdd, mlflow_store, "two-workers")
    best = tmp_path / "best.yaml"
    assert main(["sweep", "--config", str(path), "--export-best", str(best)]) == 0
    err = capsys.readouterr().err
    renders = [r for r in err.split("\r") if r.startswith("two-workers:")]
    assert all("/3 [" in r for r in renders) and "3/3 [" in renders[-1]  # the bar counts trials, nothing else
    assert "sweep worker" in err  # each worker's stage on it
    recorded = trials(tmp_path, "two-workers")
    done = [t for t in recorded if t.state == TrialState.COMPLETE]
    assert len(done) == 3
    # two workers ending trials at the same instant may both start one more; the later steps aside
    assert all(t.state == TrialState.PRUNED and t.user_attrs["surplus"] for t in recorded if t not in done)
    # trials ran in the worker processes, not the driver; how many each took is the scheduler's
    # choice (on a busy machine one worker may end the study before the other asks for a trial)
    pids = {t.user_attrs["worker_pid"] for t in done}
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids
    assert len({tuple(sorted(t.params.items())) for t in done}) == 3  # no draw repeated across the workers
    for t in done:
        assert {"excluded_gap", "val_gap", "time_ratio", "forget_margin", "mlflow_run_id"} <= set(t.user_attrs)
        assert t.user_attrs["forget_margin"] >= 0  # logged although its weight is 0
    # MLflow: the study is a parent run, each trial a nested run with params and objective metrics
    study = optuna.load_study(study_name="two-workers", storage=f"sqlite:///{tmp_path / 'studies.db'}")
    client = MlflowClient(f"sqlite:///{mlflow_store / 'mlflow.db'}")
    parent = client.get_run(study.user_attrs["mlflow_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.metrics["completed_trials"] == 3
    children = client.search_runs([parent.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
    trial_runs = [r for r in children if r.data.tags.get("audioforge.role") == "trial"]
    assert len(trial_runs) == 3 and all(r.info.status == "FINISHED" for r in trial_runs)
    assert all("objective/excluded_gap" in r.data.metrics for r in trial_runs)
    assert any(r.data.tags.get("audioforge.role") == "baseline" for r in children)
    # selection never read the test split: trials, baseline and base models ran with it sealed (a
    # read raises), so no model of the study has a test score
    every = client.search_runs([parent.info.experiment_id])
    assert len(every) > 6 and not [k for r in every for k in r.data.metrics if k.startswith("final/test/")]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "study")}
    assert {"study/best.yaml", "study/summary.yaml", "study/optimization_history.png"} <= artifacts
    # the exported config runs through `audioforge unlearn` as is
    exported = yaml.safe_load(best.read_text())
    assert list(exported["unlearning"]["schemes"]) in (["base"], ["conv_bn"])
    assert main(["unlearn", "--config", str(best), "--quiet", "--output", str(tmp_path / "best-run"),
                 f"tracking.store={mlflow_store}"]) == 0
    assert (tmp_path / "best-run" / "report.json").is_file()
    # a second call finds the study complete and runs nothing more
    assert main(["sweep", "--config", str(path), "--quiet"]) == 0
    assert len(trials(tmp_path, "two-workers")) == len(recorded)
    # its trials' values are scores under its weights: other weights are refused, nothing recorded
    reweighted = sweep_file(tmp_path, synthetic_fsdd, mlflow_store, "two-workers",
                            objective={"weights": {"excluded_gap": 1.0, "val_gap": 1.0, "forget_margin": 1.0}})
    assert main(["sweep", "--config", str(reweighted), "--quiet"]) == 2
    assert "objective.weights: study 'two-workers'" in capsys.readouterr().err
    assert len(trials(tmp_path, "two-workers")) == len(recorded)


def test_killed_sweep_resumes_without_losing_or_repeating_trials(synthetic_fsdd, mlflow_store, tmp_path):
    """SIGKILL the sweep's driver mid-trial: its workers die with it, and the rerun fails the killed
    trials at once (their worker is gone), keeps the completed ones and completes the study."""
    path = sweep_file(tmp_path, synthetic_fsdd, mlflow_store, "killed", n_trials=4)
    cmd = Command(["sweep", "--config", str(path), "--quiet"], tmp_path)
    try:
        epochs = 0
        while True:  # a state the study records: one trial complete, another running, read while
            epochs += 1  # the workers (which record the trials) are frozen
            cmd.wait_for("epoch", in_worker=True, count=epochs)
            workers = cmd.worker_pids()
            cmd.freeze(workers)
            try:
                states = [t.state for t in trials(tmp_path, "killed")]
            except (sqlalchemy.exc.OperationalError, optuna.exceptions.StorageInternalError):
                states = []  # a frozen worker holds the database's write lock: read again later
            if states.count(TrialState.COMPLETE) >= 1 and TrialState.RUNNING in states:
                break
            cmd.thaw(workers)
        cmd.send(signal.SIGKILL)  # the driver only; its frozen workers die with it, never running again
    finally:
        cmd.finish()
    assert wait_gone(workers) == set()
    before = {t.number: t for t in trials(tmp_path, "killed")}
    completed_before = {n for n, t in before.items() if t.state == TrialState.COMPLETE}
    running_before = {n for n, t in before.items() if t.state == TrialState.RUNNING}
    assert running_before
    assert main(["sweep", "--config", str(path), "--quiet"]) == 0
    after = {t.number: t for t in trials(tmp_path, "killed")}
    assert sum(t.state == TrialState.COMPLETE for t in after.values()) == 4
    for n in completed_before:  # kept, not re-run
        assert after[n].state == TrialState.COMPLETE and after[n].values == before[n].values
    for n in running_before:  # the killed trials are failed, not completed later
        assert after[n].state == TrialState.FAIL
    client = MlflowClient(f"sqlite:///{mlflow_store / 'mlflow.db'}")
    exp = client.get_experiment_by_name("killed")
    assert not client.search_runs([exp.experiment_id], filter_string="attributes.status = 'RUNNING'")
    study = optuna.load_study(study_name="killed", storage=f"sqlite:///{tmp_path / 'studies.db'}")
    assert client.get_run(study.user_attrs["mlflow_run_id"]).info.status == "FINISHED"


@pytest.mark.slow  # the frozen-worker stop below takes the same path and the harder case
def test_sigterm_stops_the_sweep_and_its_workers(synthetic_fsdd, mlflow_store, tmp_path):
    path = sweep_file(tmp_path, synthetic_fsdd, mlflow_store, "sigterm", n_trials=4)
    cmd = Command(["sweep", "--config", str(path), "--quiet"], tmp_path)
    cmd.wait_for("trial", in_worker=True)  # a trial running, its owner recorded
    workers = cmd.worker_pids()
    cmd.send(signal.SIGTERM)
    assert cmd.finish() == 130, cmd.stderr()
    assert wait_gone(workers) == set()
    assert TrialState.RUNNING not in {t.state for t in trials(tmp_path, "sigterm")}
    client = MlflowClient(f"sqlite:///{mlflow_store / 'mlflow.db'}")
    exp = client.get_experiment_by_name("sigterm")
    statuses = {r.data.tags.get("audioforge.role"): r.info.status for r in client.search_runs([exp.experiment_id])}
    assert statuses["study"] == "KILLED" and "RUNNING" not in statuses.values()


def test_a_worker_killed_before_it_ends_its_trial_leaves_no_running_trial(synthetic_fsdd, mlflow_store, tmp_path):
    """Workers frozen mid-trial cannot unwind when the stop reaches them, so the pool kills them
    after its grace period; the command then fails their trials itself (what a loaded machine
    produces when a worker is slower than the grace period)."""
    path = sweep_file(tmp_path, synthetic_fsdd, mlflow_store, "frozen-stop", n_trials=4)
    cmd = Command(["sweep", "--config", str(path), "--quiet"], tmp_path)
    try:
        trial = cmd.wait_for("trial", in_worker=True)  # a trial running, its owner recorded
        workers = cmd.worker_pids()
        cmd.freeze(workers)  # (the study's storage is read only once they are dead: a frozen writer holds its lock)
        cmd.send(signal.SIGTERM)
    finally:
        code = cmd.finish()  # whatever failed above, nothing is left running
    assert code == 130, cmd.stderr()
    assert wait_gone(workers) == set()
    after = {t.number: t for t in trials(tmp_path, "frozen-stop")}
    assert after[trial["number"]].state == TrialState.FAIL
    # every trial is ended, one whose worker was frozen between creating it and recording its owner too
    assert TrialState.RUNNING not in {t.state for t in after.values()}
    client = MlflowClient(f"sqlite:///{mlflow_store / 'mlflow.db'}")
    exp = client.get_experiment_by_name("frozen-stop")
    statuses = {r.data.tags.get("audioforge.role"): r.info.status for r in client.search_runs([exp.experiment_id])}
    assert statuses["study"] == "KILLED" and "RUNNING" not in statuses.values(), statuses


@pytest.mark.parametrize("extra, message", [
    ({"params": {"unlearning.phases.1.ops.0.scael": {"type": "float", "low": 0.1, "high": 0.2}}},
     "search space: unknown config key unlearning.phases.1.ops.0.scael"),
    ({"params": {"unlearning.phases.1.rounds": {"type": "int", "low": 3, "high": 3}}}, "empty range"),
    ({"params": {"unlearning.lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}}, "log range needs low > 0"),
    ({"params": {"scheme": {"type": "categorical", "choices": ["base", "magic"]}}}, "unknown scheme 'magic'"),
    ({"storage": "sqlite:////nonexistent-dir/x/studies.db"}, "cannot open Optuna storage sqlite:////nonexistent-dir"),
    ({"storage": "postgresql://nobody@127.0.0.1:1/studies"}, "cannot open Optuna storage postgresql://"),
    ({"objective": {"weights": {"accuracy": 1.0}}}, "unknown objective 'accuracy'"),
    ({"objective": {"weights": {"test_gap": 1.0}}}, "objective 'test_gap' would select on the test split"),
    ({"unlearn_overrides": ["trainer.devices=2", "trainer.strategy=ddp"]}, "trials run one process each"),
    ({"method": "forget_all", "params": {}}, "unknown unlearning method 'forget_all'"),
    ({"method": "ssd"}, "`scheme` is searched over the paper's schedules, not with `method`"),
    ({"method": "ssd", "params": {"methods.ssd.alpah": {"type": "float", "low": 1, "high": 2}}},
     "unknown config key methods.ssd.alpah"),
])
def test_bad_sweep_input(synthetic_fsdd, mlflow_store, tmp_path, capsys, extra, message):
    path = sweep_file(tmp_path, synthetic_fsdd, mlflow_store, "bad", **extra)
    assert main(["sweep", "--config", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and message in err, err
    assert not (tmp_path / "studies.db").exists() or not optuna.get_all_study_summaries(f"sqlite:///{tmp_path / 'studies.db'}")


def test_a_study_scored_before_an_objective_existed_is_not_resumed_with_its_weight(synthetic_fsdd, mlflow_store,
                                                                                   tmp_path, capsys):
    """A study from before weights were recorded (its trials hold the three first objectives only)."""
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    old = optuna.create_study(study_name="old", storage=storage)
    old.add_trial(optuna.trial.create_trial(value=0.3, params={}, distributions={},
                                            user_attrs={"excluded_gap": 0.2, "val_gap": 0.05, "time_ratio": 0.5}))
    path = sweep_file(tmp_path, synthetic_fsdd, mlflow_store, "old",
                      objective={"weights": {"excluded_gap": 1.0, "val_gap": 1.0, "forget_margin": 1.0}})
    assert main(["sweep", "--config", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "objective.weights: trial 0 of study 'old'" in err and "has no 'forget_margin'" in err, err
    assert len(trials(tmp_path, "old")) == 1 and "objective_weights" not in optuna.load_study(
        study_name="old", storage=storage).user_attrs


@pytest.mark.slow  # a third sweep
def test_multi_objective_nsga2_keeps_a_pareto_front(synthetic_fsdd, mlflow_store, tmp_path):
    from sweeps.config import OBJECTIVES

    path = sweep_file(tmp_path, synthetic_fsdd, mlflow_store, "multi", workers=1, n_trials=3, sampler="nsga2",
                      objective={"mode": "multi"})
    best = tmp_path / "best.yaml"
    assert main(["sweep", "--config", str(path), "--quiet", "--export-best", str(best)]) == 0
    study = optuna.load_study(study_name="multi", storage=f"sqlite:///{tmp_path / 'studies.db'}")
    assert [d.name for d in study.directions] == ["MINIMIZE"] * len(OBJECTIVES)  # every objective, weighted or not
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert all("NSGAIISampler:generation" in t.system_attrs for t in done)  # drawn by NSGA-II
    assert len(done) == 3 and all(len(t.values) == len(OBJECTIVES) for t in done)
    front = {t.number for t in study.best_trials}
    summary = yaml.safe_load((tmp_path / "out" / "summary.yaml").read_text())
    assert summary["best"]["number"] in front
    assert (tmp_path / "out" / "pareto_front.png").is_file()
    assert yaml.safe_load(best.read_text())["unlearning"]["schemes"]


@pytest.mark.slow  # the default suite has both halves: the pool's own test of a worker killed outright, and
# the resumed study after a SIGKILL (test_killed_sweep_resumes_without_losing_or_repeating_trials)
def test_a_killed_worker_fails_the_sweep_naming_it_and_a_rerun_completes(synthetic_fsdd, mlflow_store, tmp_path):
    """SIGKILL one of two workers mid-trial: the sweep stops with an error naming that worker (it
    never waits for a lost task), its trial is failed, and a rerun completes the study."""
    path = sweep_file(tmp_path, synthetic_fsdd, mlflow_store, "one-worker-killed", n_trials=4)
    cmd = Command(["sweep", "--config", str(path), "--quiet"], tmp_path)
    victim = cmd.wait_for("epoch", in_worker=True)["pid"]
    os.kill(victim, signal.SIGKILL)
    assert cmd.finish() == 5
    assert f"process {victim} running task 'sweep worker" in cmd.stderr() and "SIGKILL" in cmd.stderr(), cmd.stderr()
    killed = [t for t in trials(tmp_path, "one-worker-killed") if t.user_attrs.get("worker_pid") == victim]
    assert main(["sweep", "--config", str(path), "--quiet"]) == 0
    after = {t.number: t for t in trials(tmp_path, "one-worker-killed")}
    assert killed and all(after[t.number].state == TrialState.FAIL for t in killed)
    assert sum(t.state == TrialState.COMPLETE for t in after.values()) == 4
    client = MlflowClient(f"sqlite:///{mlflow_store / 'mlflow.db'}")
    exp = client.get_experiment_by_name("one-worker-killed")
    assert not client.search_runs([exp.experiment_id], filter_string="attributes.status = 'RUNNING'")


def test_every_registered_search_space_builds_a_trial_config_at_its_corners():
    """A space whose ends a config would refuse (a learning rate written 1e-06 read back as text)
    fails here rather than minutes into a benchmark."""
    from audioforge.unlearning.bench import TuningConfig
    from audioforge.unlearning.methods import METHODS
    from sweeps.tuning import tune_method

    searched = [name for name, m in METHODS.items() if m.search]
    assert len(searched) == len(METHODS)
    for name in searched:
        assert tune_method(name, REPO / "configs" / "unlearn" / "quick.yaml", [], TuningConfig(trials=2), Path("."),
                           None, None, check_only=True) == {}


def test_a_trial_started_past_the_count_steps_aside(tmp_path):
    """The race two workers finishing at once can run into, replayed in order on real storage: the
    trial numbered after n_trials complete-or-running ones is surplus, an earlier one is not, and a
    failed trial leaves room for another."""
    from sweeps.objective import surplus

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", study_name="race")
    first, second = study.ask(), study.ask()
    study.tell(first, 1.0)
    third = study.ask()   # worker A, having seen 1 complete + 1 running < 3
    fourth = study.ask()  # worker B, in the same instant
    assert not surplus(first, 3) and not surplus(third, 3) and surplus(fourth, 3)
    study.tell(second, state=TrialState.FAIL)
    assert not surplus(fourth, 3)  # the failed trial no longer counts


def test_a_trial_whose_worker_died_before_recording_itself_is_failed_on_resume(tmp_path):
    """SIGKILL between creating a trial and recording its owner leaves a RUNNING trial with no owner
    and perhaps no heartbeat (which optuna would never fail): the next command fails it once it has
    stayed so for the grace period, and leaves a trial whose owner lives alone."""
    import subprocess
    import sys

    from audioforge.tracking import OWNER_PID, OWNER_START, owner_tags, process_start
    from sweeps.study import OWNER_ATTR, fail_orphaned_trials

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", study_name="orphans")
    unowned, alive, dead = study.ask(), study.ask(), study.ask()
    alive.set_user_attr(OWNER_ATTR, owner_tags())  # this process
    worker = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    dead.set_user_attr(OWNER_ATTR, owner_tags() | {OWNER_PID: str(worker.pid), OWNER_START: process_start(worker.pid)})
    worker.communicate()  # the worker ends
    assert sorted(fail_orphaned_trials(study, grace=0.3)) == [unowned.number, dead.number]
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {unowned.number: TrialState.FAIL, alive.number: TrialState.RUNNING, dead.number: TrialState.FAIL}
