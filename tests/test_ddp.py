"""Real 2-process DDP on CPU (gloo) through the unlearning callbacks, launched as a user would:
`audioforge unlearn --accelerator cpu --devices 2 --strategy ddp`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from mlflow.tracking import MlflowClient

from audioforge.cli import main
from audioforge.config import load_config
from audioforge.unlearning.config import UnlearnConfig
from audioforge.unlearning.protocol import build_datamodule
from lightning_modules.classifier import ClassifierModule, predict_logits

from tests.commands import REPO, Command, wait_gone

# One seed, one epoch per fit, with a network whose every operation is per example (ConvNet with
# instance norm, no dropout; BatchNorm statistics would come from each rank's half of the batch) and
# full batches only (data.drop_last): per-device batch 8 on 2 ranks is then exactly the one-process
# batch of 16, and DDP's averaged gradient is the one-process gradient up to float rounding.  Why one
# epoch: Adam amplifies that rounding.  A one-process run that averages the two half-batch gradients
# itself (pure torch, no DDP) reproduces DDP's weights bit for bit, yet drifts from the plain
# 16-example gradient by 0.24 in test logits after 2 epochs (2e-6 after 1); that drift is the
# optimiser's, not DDP's.  The paper's schemes with BatchNorm resets need BatchNorm, so only the base
# scheme runs; both runs use the default memory layout (DDP's; see TrainerConfig.use_channels_last).
MODELS = ("original", "gold", "base")
COMMON = ["unlearn", "--preset", "quick", "--quiet", "seeds=[0]", "reuse_base_models=false", "data.drop_last=true",
          "model.network=convnet", "model.kwargs={width: 16, depth: 2}", "unlearning.schemes={base: []}",
          "trainer.channels_last=false", "original.epochs=1", "gold.epochs=1",
          "unlearning.phases=[{name: reset, epochs: 1, ops: [{op: reset, layers: [linear]}]}]"]
DDP = ["--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "original.batch_size=8", "gold.batch_size=8",
       "unlearning.batch_size=8"]


def run(args: list[str]) -> None:
    env = {**os.environ, "MLFLOW_LOGGING_LEVEL": "WARNING"}
    done = subprocess.run([sys.executable, "-m", "audioforge", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_ddp_ranks_stay_identical_and_equal_a_single_process_run(synthetic_fsdd, mlflow_store, tmp_path):
    tracking = [f"tracking.store={mlflow_store}", "tracking.experiment=ddp", "--data", str(synthetic_fsdd)]
    # the DDP launch in its own process (as a user starts it), the one-process run here meanwhile
    ddp_launch = subprocess.Popen([sys.executable, "-m", "audioforge", *COMMON, *tracking, *DDP, "--output",
                                   str(tmp_path / "ddp")], cwd=REPO, env={**os.environ, "MLFLOW_LOGGING_LEVEL": "WARNING"},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert main([*COMMON, *tracking, "jobs=1", "--output", str(tmp_path / "single")]) == 0
        _, stderr = ddp_launch.communicate(timeout=600)
    finally:
        ddp_launch.kill()
    assert ddp_launch.returncode == 0, stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp" / "report.json").read_text())
    single = json.loads((tmp_path / "single" / "report.json").read_text())
    # parameter checksums equal across both ranks after every epoch, so after every phase
    for model in MODELS:
        checks = json.loads((tmp_path / "ddp" / "seed-0" / model / "rank_checksums.json").read_text())
        assert checks["world_size"] == 2
        assert [e for e, _ in checks["epochs"]] == [0]
        for epoch, digests in checks["epochs"]:
            assert len(digests) == 2 and digests[0] == digests[1], (model, epoch)
    # rank 1 tracked nothing: one experiment run, one seed run, three model runs
    client = MlflowClient(ddp["mlflow"]["tracking_uri"])
    runs = client.search_runs([ddp["mlflow"]["experiment_id"]],
                              filter_string=f"tags.`mlflow.parentRunId` = '{ddp['mlflow']['run_id']}'")
    assert len(runs) == 1
    assert len(client.search_runs([ddp["mlflow"]["experiment_id"]],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{runs[0].info.run_id}'")) == 3
    # the same mathematics: every trained and unlearned model computes the one-process model's
    # function up to float rounding (two partial gradient sums added by all-reduce instead of one).
    # Compared on outputs, not weights: a conv bias before instance norm has a gradient of exactly
    # zero, so Adam turns its rounding noise into a random walk that changes no output.
    cfg = load_config(UnlearnConfig, [REPO / "configs" / "unlearn" / "quick.yaml"], [f"data.root={synthetic_fsdd}"])
    dm = build_datamodule(cfg, 0)
    x, _ = dm.tensors("test")
    for model in MODELS:
        a, b = (ClassifierModule.load_from_checkpoint(tmp_path / run / "seed-0" / model / "model.ckpt")
                for run in ("ddp", "single"))
        la, lb = predict_logits(a, x), predict_logits(b, x)
        assert float((la - lb).abs().max()) <= 1e-4 * float(lb.abs().max()), model
        assert torch.equal(la.argmax(1), lb.argmax(1)), model
        for split in ("test", "excluded"):
            assert ddp["metrics"][model][split]["f1"]["mean"] == pytest.approx(single["metrics"][model][split]["f1"]["mean"])


@pytest.mark.slow  # a second DDP launch; the inline pool's rule it rests on is in tests/test_worker_pool.py
def test_a_rank_that_fails_before_the_barrier_ends_the_whole_launch_failed(synthetic_fsdd, mlflow_store, tmp_path,
                                                                           monkeypatch):
    """Rank 0 trains the original and then cannot cache it (the cache's ``models`` folder is a
    file); rank 1 waits at the barrier for that cache.  The launch must end, non-zero, with rank 0's
    error naming the path, rank 1 saying a peer stopped, the runs FAILED and no rank left behind,
    instead of rank 0 starting the gold model's fit that rank 1 never joins."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "models").write_text("not a folder")
    monkeypatch.setenv("AUDIOFORGE_CACHE", str(cache))
    launch = Command([*COMMON, *DDP, f"tracking.store={mlflow_store}", "tracking.experiment=ddp-rank-fails",
                      "--data", str(synthetic_fsdd), "--output", str(tmp_path / "out")], tmp_path)
    assert launch.finish() != 0  # the launch ends on its own (finish's deadline only turns a hang into a failure)
    stderr = launch.stderr_path.read_text()
    errors = [line for line in stderr.splitlines() if line.startswith("audioforge: error:")]
    assert any(str(cache / "models") in line for line in errors), stderr[-3000:]
    assert any("rank 1: another rank of this launch stopped" in line for line in errors), stderr[-3000:]
    assert "Traceback" not in stderr
    # no process of the launch (its session: ranks, fork servers) outlives it
    left = subprocess.run(["pgrep", "-s", str(launch.pid)], capture_output=True, text=True).stdout.split()
    assert wait_gone({int(pid) for pid in left}) == set()
    client = MlflowClient(f"sqlite:///{mlflow_store / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("ddp-rank-fails").experiment_id])
    assert {r.info.run_name: r.info.status for r in runs} == {"fsdd-unlearning-quick": "FAILED", "seed 0": "FAILED",
                                                            "original": "FAILED"}


@pytest.mark.slow  # a second DDP launch; unlearn's is in the default suite
def test_classify_under_ddp_trains_on_both_ranks_and_records_once(data_root, mlflow_store, tmp_path):
    """`classify` follows the same rule: both ranks fit, rank 0 alone scores the whole test split and
    opens MLflow runs."""
    out = tmp_path / "ddp"
    run(["classify", "--preset", "ravdess", "--data", str(data_root), "--seeds", "0", "--quiet", "--output", str(out),
         "fit.epochs=2", "fit.batch_size=16", f"tracking.store={mlflow_store}", "tracking.experiment=classify-ddp",
         "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp"])
    report = json.loads((out / "report.json").read_text())
    seed = report["seeds"][0]
    assert seed["world_size"] == 2
    assert sum(map(sum, seed["report"]["confusion"])) == report["split_sizes"]["test"]  # not a rank's shard
    client = MlflowClient(f"sqlite:///{mlflow_store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("classify-ddp")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
