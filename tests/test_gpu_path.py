"""The GPU path: every command that trains, end to end on CUDA (``--accelerator gpu``), on real
FSDD clips where the command reads FSDD.  Every fit of every process announces the device it ran
on (``$AUDIOFORGE_EVENTS``), so a run that silently fell back to the CPU anywhere (an expert, a
validation student, a worker's cell) fails here.  Skipped where no CUDA device exists (CI has
none); ``test_trainer_flags_reach_every_nested_fit`` checks the same wiring on the CPU."""

from __future__ import annotations

import json

import pytest
import torch

from tests.commands import Command, runs
from tests.test_continual import TINY as CONTINUAL
from tests.test_distillation import TINY as DISTILL
from tests.test_nas import TINY as NAS
from tests.test_privacy import TINY as PRIVACY
from tests.test_stopping import table_args
from tests.test_sweeps import sweep_file
from tests.test_unlearn_bench import TINY as BENCH

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def run(args: list[str], tmp_path, name: str) -> list[dict]:
    """Run ``audioforge *args`` in its own process; its announced epochs (every fit, every process)."""
    cmd = Command(args, tmp_path, name)
    code = cmd.finish()
    assert code == 0, cmd.stderr()
    epochs = [e for e in cmd.lines() if e["event"] == "epoch"]
    assert epochs, f"{name}: no training epoch announced"
    return epochs


def on_cuda(epochs: list[dict], precision: str = "32-true") -> None:
    off = {(e["module"], e["device"], e["precision"]) for e in epochs
           if not e["device"].startswith("cuda") or e["precision"] != precision}
    assert not off, f"fits not on CUDA at {precision}: {sorted(off)}"


@cuda
@pytest.mark.parametrize("arch, precision", [("convnet", "32-true"), ("convnet", "bf16-mixed"),
                                             ("convnet", "16-mixed"), ("resnet18", "32-true"), ("vgg11", "32-true")])
def test_classify_on_cuda(arch, precision, small_fsdd, mlflow_store, tmp_path):
    out = tmp_path / "out"
    epochs = run(["classify", "--data", str(small_fsdd), "--arch", arch, "--accelerator", "gpu", "--precision", precision,
                  "--seeds", "0", "--quiet", "--output", str(out), "fit.epochs=2", f"tracking.store={mlflow_store}",
                  "tracking.experiment=cuda-classify"], tmp_path, "classify")
    on_cuda(epochs, precision)
    report = json.loads((out / "report.json").read_text())
    assert 0.0 <= report["seeds"][0]["test"]["acc"] <= 1.0


@cuda
def test_unlearn_on_cuda(small_fsdd, mlflow_store, tmp_path):
    on_cuda(run(["unlearn", "--preset", "quick", "--data", str(small_fsdd), "--accelerator", "gpu", "--quiet",
                 "--output", str(tmp_path / "out"), "seeds=[0]", "jobs=1", "reuse_base_models=false",
                 "original.epochs=2", "gold.epochs=2", f"tracking.store={mlflow_store}",
                 "tracking.experiment=cuda-unlearn"], tmp_path, "unlearn"))


@cuda
def test_unlearn_bench_cells_on_cuda(synthetic_fsdd, mlflow_store, tmp_path):
    """Every registered method's fit, in the benchmark's worker processes."""
    args = [a for a in BENCH if not a.startswith("methods=")]
    on_cuda(run(["unlearn-bench", *args, "--accelerator", "gpu", "--data", str(synthetic_fsdd),
                 "--output", str(tmp_path / "out"), f"tracking.store={mlflow_store}",
                 "tracking.experiment=cuda-bench"], tmp_path, "bench"))


@cuda
def test_sweep_trials_on_cuda(synthetic_fsdd, mlflow_store, tmp_path):
    path = sweep_file(tmp_path, synthetic_fsdd, mlflow_store, "cuda-sweep", n_trials=2)
    on_cuda(run(["sweep", "--config", str(path), "--accelerator", "gpu", "--quiet"], tmp_path, "sweep"))
    assert {r.info.status for r in runs(mlflow_store, "cuda-sweep")} == {"FINISHED"}


@cuda
@pytest.mark.parametrize("method", ["mtt", "dc", "dsa", "dm"])
def test_distill_on_cuda(method, small_fsdd, mlflow_store, tmp_path):
    out = tmp_path / "out"
    on_cuda(run(["distill", "--data", str(small_fsdd), "--method", method, "--cpc", "2", "--accelerator", "gpu",
                 "--quiet", "--output", str(out), f"tracking.store={mlflow_store}", "tracking.experiment=cuda-distill",
                 *DISTILL, "iterations=4"], tmp_path, "distill"))
    report = json.loads((out / "report.json").read_text())
    resources = report["resources"]
    assert resources["device"] == torch.cuda.get_device_name(0) and resources["peak_gpu_memory_mb"] > 0


@cuda
def test_distill_table_cells_on_cuda(synthetic_fsdd, mlflow_store, tmp_path):
    on_cuda(run([*table_args(synthetic_fsdd, mlflow_store, tmp_path / "table", "cuda-table", 4), "--accelerator", "gpu"],
                tmp_path, "table"))


@cuda
@pytest.mark.parametrize("command, tiny", [("continual", CONTINUAL), ("nas", NAS), ("privacy", PRIVACY)])
def test_distillation_applications_on_cuda(command, tiny, synthetic_fsdd, mlflow_store, tmp_path):
    on_cuda(run([command, *tiny, "--accelerator", "gpu", "--data", str(synthetic_fsdd), "--output",
                 str(tmp_path / "out"), f"tracking.store={mlflow_store}", f"tracking.experiment=cuda-{command}"],
                tmp_path, command))


@cuda
def test_rir_hybrid_on_cuda(mlflow_store, tmp_path):
    on_cuda(run(["rir", "--seeds", "0", "--quiet", "--accelerator", "gpu", "--output", str(tmp_path / "out"),
                 f"tracking.store={mlflow_store}", "tracking.experiment=cuda-rir",
                 "data.options.simulation.rooms_per_size=10", "data.options.simulation.rirs_per_room=3",
                 "data.options.simulation.seconds=0.25", "cnn.epochs=3", "cnn.width=8"], tmp_path, "rir"))


def test_trainer_flags_reach_every_nested_fit(small_fsdd, mlflow_store, tmp_path):
    """On the CPU: ``--precision`` (like ``--accelerator``) reaches every fit of a distillation
    (experts, the bilevel module, the validation students that choose the set, the evaluation
    networks); validation students once trained with the default trainer whatever the flags."""
    epochs = run(["distill", "--data", str(small_fsdd), "--cpc", "2", "--precision", "bf16-mixed", "--quiet",
                  "--output", str(tmp_path / "out"), f"tracking.store={mlflow_store}",
                  "tracking.experiment=cpu-precision", *DISTILL, "iterations=2"], tmp_path, "distill")
    assert {e["module"] for e in epochs} >= {"ClassifierModule", "TrajectoryMatching"}
    assert {(e["device"], e["precision"]) for e in epochs} == {("cpu", "bf16-mixed")}


def test_commands_that_launch_runs_pass_their_trainer_on():
    """The trainer settings of ``unlearn-bench``, ``sweep`` and ``distill-table`` (where the CLI's
    trainer flags land) reach the runs they launch; the distillation inside ``continual``, ``nas``
    and ``privacy`` runs on the command's own trainer; a misspelt key is named."""
    from audioforge.config import load_config
    from audioforge.distill.continual.config import ContinualConfig
    from audioforge.distill.nas.config import NASConfig
    from audioforge.distill.privacy.config import PrivacyConfig
    from audioforge.distill.tables import TableConfig
    from audioforge.errors import ConfigError
    from audioforge.unlearning.bench import BenchConfig, Cell, cell_overrides
    from audioforge.unlearning.config import UnlearnConfig
    from sweeps.config import SweepConfig
    from sweeps.space import trial_config
    from tests.commands import REPO

    gpu = ["trainer.accelerator=gpu", "trainer.precision=bf16-mixed"]
    bench = load_config(BenchConfig, [REPO / "configs" / "unlearn-bench" / "quick.yaml"], gpu)
    cell = load_config(UnlearnConfig, [REPO / "configs" / "unlearn" / "quick.yaml"],
                       cell_overrides(bench, Cell.of_speaker("george"), [0]))
    assert (cell.trainer.accelerator, cell.trainer.precision) == ("gpu", "bf16-mixed")
    sweep = load_config(SweepConfig, [REPO / "configs" / "sweep" / "quick.yaml"], gpu)
    trial, _ = trial_config(sweep, {"scheme": "base"}, REPO / "configs" / "sweep")
    assert (trial.trainer.accelerator, trial.trainer.precision) == ("gpu", "bf16-mixed")
    table = load_config(TableConfig, [REPO / "configs" / "distill-table" / "table1.yaml"], gpu)
    assert (table.distill.trainer.accelerator, table.distill.trainer.precision) == ("gpu", "bf16-mixed")
    for cls, command in ((ContinualConfig, "continual"), (NASConfig, "nas"), (PrivacyConfig, "privacy")):
        files = [REPO / "configs" / command / "default.yaml"]
        nested = load_config(cls, files, gpu).distill.trainer
        assert (nested.accelerator, nested.precision) == ("gpu", "bf16-mixed"), command
        with pytest.raises(ConfigError, match="distill.trainer: the distillation inside this command runs on the "
                                              "command's trainer"):
            load_config(cls, files, ["distill.trainer.precision=bf16-mixed"])
    for cls, file in ((BenchConfig, "unlearn-bench/quick.yaml"), (SweepConfig, "sweep/quick.yaml"),
                      (TableConfig, "distill-table/table1.yaml")):
        with pytest.raises(ConfigError, match="unknown config key trainer.acelerator"):
            load_config(cls, [REPO / "configs" / file], ["trainer.acelerator=gpu"])
        with pytest.raises(ConfigError, match="trainer.threads must be >= 1"):
            load_config(cls, [REPO / "configs" / file], ["trainer.threads=0"])
