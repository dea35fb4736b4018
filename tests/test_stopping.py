"""Every command ends promptly on SIGTERM or SIGINT with its runs KILLED and no process left, and
nothing is left behind by SIGKILL: workers die with their command, and the next command marks the
killed command's runs FAILED.  Real commands, real signals, real MLflow store; every wait is for a
state the command announces (``$AUDIOFORGE_EVENTS``)."""

from __future__ import annotations

import contextlib
import json
import shlex
import signal

import lightning.pytorch as pl
import pytest

from audioforge.cli import main
from audioforge.tracking import ORPHANED_TAG, OWNER_PID
from tests.commands import Command, runs, wait_gone

LONG = 100_000  # epochs or iterations: the command is still inside them when the signal arrives


def unlearn_args(root, store, out, experiment: str, epochs: int) -> list[str]:
    return ["unlearn", "--preset", "quick", "--data", str(root), "--quiet", "--output", str(out), "seeds=[0]",
            "jobs=2", "reuse_base_models=false", f"original.epochs={epochs}", f"gold.epochs={epochs}",
            f"tracking.store={store}", f"tracking.experiment={experiment}"]


def test_sigterm_stops_unlearn_and_its_workers_and_a_rerun_starts_cleanly(synthetic_fsdd, mlflow_store, tmp_path):
    cmd = Command(unlearn_args(synthetic_fsdd, mlflow_store, tmp_path / "out", "stop-unlearn", LONG), tmp_path)
    cmd.wait_for("epoch", in_worker=True, processes=2)  # original and gold are training in the two workers
    workers = cmd.worker_pids()
    assert len(workers) == 2
    cmd.send(signal.SIGTERM)
    assert cmd.finish() == 130, cmd.stderr()
    assert "Traceback" not in cmd.stderr()
    assert wait_gone(workers) == set()
    statuses = {r.info.run_name: r.info.status for r in runs(mlflow_store, "stop-unlearn")}
    assert statuses["fsdd-unlearning-quick"] == "KILLED"
    assert statuses["original"] == statuses["gold"] == "KILLED"  # ended by the workers themselves
    assert "RUNNING" not in statuses.values()
    # the same command, with a budget that ends, starts cleanly in the same folder and store
    assert main([*unlearn_args(synthetic_fsdd, mlflow_store, tmp_path / "out", "stop-unlearn", 2), "jobs=1"]) == 0
    assert json.loads((tmp_path / "out" / "report.json").read_text())["table1"]


def test_a_fit_keeps_the_commands_sigterm_handler_not_lightnings():
    """Lightning installs its own SIGTERM handler as a fit starts; under DDP that handler broadcasts
    from inside the handler and can deadlock against another rank's all-reduce.  Inside every
    epoch, the handler in place must be the command's (raise ``KeyboardInterrupt``)."""
    import torch

    from audioforge import signals
    from audioforge.training import TrainerConfig, make_trainer
    from datamodules.loader import TensorBatchLoader
    from lightning_modules.classifier import ClassifierModule

    seen = []

    class Probe(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            seen.append(signal.getsignal(signal.SIGTERM))

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        signals.install()
        torch.manual_seed(0)
        data = TensorBatchLoader(torch.randn(32, 1, 20, 20), torch.randint(0, 10, (32,)), 16)
        make_trainer(TrainerConfig(), 2, callbacks=[Probe()], validate=False).fit(
            ClassifierModule("unlearning_cnn", (1, 20, 20), 10), train_dataloaders=data)
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
    assert seen == [signals._handle, signals._handle]


@pytest.mark.slow  # a DDP launch; the rule it rests on is checked in-process just above
def test_sigterm_stops_a_ddp_launch_inside_its_fit(synthetic_fsdd, mlflow_store, tmp_path):
    """A 2-rank CPU launch stopped while both ranks train: the command exits 130 with its runs
    KILLED and both ranks gone.  (Lightning's own SIGTERM handler broadcasts from inside the
    handler, which deadlocks against the other rank's backward all-reduce until the process group's
    timeout; the command's handler is kept in its place.)"""
    args = [*unlearn_args(synthetic_fsdd, mlflow_store, tmp_path / "out", "stop-ddp", LONG), "jobs=1",
            "model.network=convnet", "model.kwargs={width: 16, depth: 2}", "unlearning.schemes={base: []}",
            "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "original.batch_size=8"]
    cmd = Command(args, tmp_path)
    cmd.wait_for("epoch")  # rank 0 trains the original, so rank 1 has joined the fit's process group
    ranks = {e["pid"] for e in cmd.lines() if e["event"] == "command"}
    assert len(ranks) == 2
    cmd.send(signal.SIGTERM)
    assert cmd.finish() == 130, cmd.stderr()
    assert "Traceback" not in cmd.stderr()
    assert wait_gone(ranks) == set()
    statuses = {r.info.run_name: r.info.status for r in runs(mlflow_store, "stop-ddp")}
    assert statuses == {"fsdd-unlearning-quick": "KILLED", "seed 0": "KILLED", "original": "KILLED"}


@pytest.mark.slow  # the default suite has both halves: the sweep's SIGKILL test (workers die with the
#                   command) and the table's (the next command fails the orphaned runs)
def test_sigkill_of_unlearn_takes_its_workers_and_the_next_command_fails_its_runs(synthetic_fsdd, mlflow_store,
                                                                                  tmp_path):
    cmd = Command(unlearn_args(synthetic_fsdd, mlflow_store, tmp_path / "out", "kill-unlearn", LONG), tmp_path)
    cmd.wait_for("epoch", in_worker=True)
    workers = cmd.worker_pids()
    cmd.send(signal.SIGKILL)  # the command only: its workers must go by themselves
    assert cmd.finish() == -signal.SIGKILL
    assert wait_gone(workers) == set()
    left = [r for r in runs(mlflow_store, "kill-unlearn") if r.info.status == "RUNNING"]
    assert left and all(r.data.tags[OWNER_PID] in {str(cmd.pid), *map(str, workers)} for r in left)
    assert main([*unlearn_args(synthetic_fsdd, mlflow_store, tmp_path / "next", "kill-unlearn", 2), "jobs=1"]) == 0
    after = {r.info.run_id: r for r in runs(mlflow_store, "kill-unlearn")}
    for run in left:
        assert after[run.info.run_id].info.status == "FAILED"
        assert "ended without ending this run" in after[run.info.run_id].data.tags[ORPHANED_TAG]
    assert "RUNNING" not in {r.info.status for r in after.values()}


def table_args(root, store, out, experiment: str, iterations: int) -> list[str]:
    return ["distill-table", "--data", str(root), "--quiet", "--output", str(out), "methods=[mtt]", "cpcs=[2]",
            "protocol=paper", "jobs=1", "whole_dataset=false", "distill.network_kwargs.width=16", f"distill.iterations={iterations}",
            "distill.iterations_per_epoch=2", "distill.buffer.experts=1", "distill.buffer.epochs=3",
            "distill.mtt.max_start_epoch=1", "distill.mtt.syn_steps=2", "distill.val_every=1000",
            "distill.validation.epochs=2", "distill.validation.val_every=1", "distill.eval.runs=1",
            "distill.eval.epochs=2", "distill.eval.val_every=1", "distill.reconstruct=false",
            f"distill.tracking.store={store}", f"distill.tracking.experiment={experiment}"]


@pytest.mark.slow  # the default suite has each part: SIGTERM to a command with workers (unlearn, sweep), a
# cell's worker stopped (test_distillation), a distillation resumed from last.ckpt and a table resumed by cell
def test_sigterm_stops_distill_table_and_a_rerun_resumes_the_cell(synthetic_fsdd, mlflow_store, tmp_path):
    out = tmp_path / "table"
    cmd = Command(table_args(synthetic_fsdd, mlflow_store, out, "stop-table", LONG), tmp_path)
    # epoch 1 has begun, so the checkpoint written at the end of epoch 0 is there to resume from
    cmd.wait_for("epoch", in_worker=True, module="TrajectoryMatching", epoch=1)
    workers = cmd.worker_pids()
    cmd.send(signal.SIGTERM)
    assert cmd.finish() == 130, cmd.stderr()
    assert wait_gone(workers) == set()
    statuses = sorted((r.data.tags["audioforge.command"], r.info.status) for r in runs(mlflow_store, "stop-table"))
    assert statuses == [("distill", "KILLED"), ("distill-table", "KILLED")]
    assert main(table_args(synthetic_fsdd, mlflow_store, out, "stop-table", 4)) == 0
    cell = json.loads((out / "cells" / "mtt-cpc2-convnet-fdmfcc" / "report.json").read_text())
    assert cell["selection"]["resumed_from"].endswith("last.ckpt")


def test_sigkill_of_distill_table_takes_its_cell_and_the_next_command_fails_its_runs(synthetic_fsdd, mlflow_store,
                                                                                        tmp_path):
    cmd = Command(table_args(synthetic_fsdd, mlflow_store, tmp_path / "table", "kill-table", LONG), tmp_path)
    cmd.wait_for("epoch", in_worker=True, module="TrajectoryMatching")
    workers = cmd.worker_pids()
    cmd.send(signal.SIGKILL)
    assert cmd.finish() == -signal.SIGKILL
    assert wait_gone(workers) == set()
    left = {r.info.run_id for r in runs(mlflow_store, "kill-table") if r.info.status == "RUNNING"}
    assert len(left) == 2  # the table's run and its cell's
    # the next command: the same table, only assembling what is finished (nothing)
    out = tmp_path / "table"
    assert main([*table_args(synthetic_fsdd, mlflow_store, out, "kill-table", 4), "run_missing=false"]) == 0
    after = {r.info.run_id: r.info.status for r in runs(mlflow_store, "kill-table")}
    assert {after[r] for r in left} == {"FAILED"} and "RUNNING" not in after.values()
    # the report names the missing cell and the command that fills it, which works from another folder
    report = json.loads((out / "report.json").read_text())
    assert report["not_run"]["cells"] == ["mtt-cpc2-convnet-fdmfcc"]
    assert "**Not run: 1 of 1 cells** (mtt-cpc2-convnet-fdmfcc)" in (out / "report.md").read_text()
    command = shlex.split(report["not_run"]["command"])
    assert command[:2] == ["audioforge", "distill-table"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with contextlib.chdir(elsewhere):
        assert main([*command[1:], "--quiet"]) == 0
    assert (out / "cells" / "mtt-cpc2-convnet-fdmfcc" / "report.json").is_file()
    assert "not_run" not in json.loads((out / "report.json").read_text())
    assert "Not run" not in (out / "report.md").read_text() and not any(elsewhere.iterdir())


@pytest.mark.parametrize("command, signum", [
    ("classify", signal.SIGINT),
    # the same path (one process, a fit inside Trainer) for three more commands: about 12 s each
    pytest.param("rir", signal.SIGTERM, marks=pytest.mark.slow),
    pytest.param("buffer", signal.SIGTERM, marks=pytest.mark.slow),
    pytest.param("distill", signal.SIGTERM, marks=pytest.mark.slow)])
def test_single_process_commands_stop_with_their_runs_killed(command, signum, synthetic_fsdd, mlflow_store, tmp_path):
    common = ["--quiet", "--output", str(tmp_path / "out"), f"tracking.store={mlflow_store}",
              f"tracking.experiment=stop-{command}"]
    args = {
        "classify": ["classify", "--data", str(synthetic_fsdd), "--seeds", "0", f"fit.epochs={LONG}", "fit.patience=null"],
        "rir": ["rir", "--seeds", "0", "data.options.simulation.rooms_per_size=10",
                "data.options.simulation.rirs_per_room=3", "data.options.simulation.seconds=0.25",
                f"cnn.epochs={LONG}", f"cnn.patience={LONG}"],
        "buffer": ["buffer", "--data", str(synthetic_fsdd), "network_kwargs.width=16", "buffer.experts=1",
                   f"buffer.epochs={LONG}"],
        "distill": ["distill", "--data", str(synthetic_fsdd), "--method", "dm", "--cpc", "2", "network_kwargs.width=16",
                    f"iterations={LONG}", "val_every=1000"],
    }[command]
    cmd = Command([*args, *common], tmp_path)
    cmd.wait_for("epoch")
    cmd.send(signum)
    assert cmd.finish() == 130, cmd.stderr()
    statuses = [r.info.status for r in runs(mlflow_store, f"stop-{command}")]
    assert statuses and set(statuses) == {"KILLED"}


DEFERRED = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from audioforge import signals

signals.install()
signals.defer()
os.kill(os.getpid(), signal.SIGTERM)  # delivered now, inside the section
print("section finished", flush=True)
try:
    signals.resume()
except KeyboardInterrupt as stop:
    print("stopped at resume:", stop, flush=True)
    sys.exit(130)
"""


def test_a_stop_inside_a_deferred_section_waits_for_its_end(tmp_path):
    """A real SIGTERM inside ``signals.defer()`` is remembered, not raised; ``resume()`` raises it
    (the sweep's workers defer from asking for a trial until its owner is recorded)."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "deferred.py"
    script.write_text(DEFERRED.format(repo=str(Path(__file__).resolve().parents[1])))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, done.stderr
    assert done.stdout.splitlines() == ["section finished", "stopped at resume: signal SIGTERM"]
