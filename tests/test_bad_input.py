"""Bad input: one clear line naming the problem, a non-zero exit, no traceback, no RUNNING run."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from audioforge.cli import main
from audioforge.config import load_config
from audioforge.errors import ConfigError
from audioforge.paths import preset
from audioforge.tracking import PARENT_TAG, Tracker, TrackingConfig
from audioforge.unlearning.config import UnlearnConfig
from audioforge.unlearning.protocol import Task, run_task

TINY = ["seeds=[0]", "original.epochs=1", "gold.epochs=1"]


def run_cli(capsys, store, *args):
    code = main(["unlearn", "--preset", "quick", "--quiet", f"tracking.store={store}",
                 "tracking.experiment=bad-input", *TINY, *args])
    err = capsys.readouterr().err
    return code, err


def assert_no_running_runs(store):
    uri = f"sqlite:///{store / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert not client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'")


def check(capsys, store, args, message, code=None):
    got, err = run_cli(capsys, store, *args)
    assert got != 0 if code is None else got == code
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.startswith("audioforge: error:")]
    assert len(lines) == 1, err
    assert message in lines[0], lines[0]
    assert_no_running_runs(store)
    return lines[0]


def test_missing_data_folder(capsys, mlflow_store, tmp_path):
    check(capsys, mlflow_store, ["--data", str(tmp_path / "nowhere"), "data.download=false"],
          f"data folder {tmp_path / 'nowhere'} does not exist", code=3)


def test_dataset_absent_without_download(capsys, mlflow_store, tmp_path):
    check(capsys, mlflow_store, ["--data", str(tmp_path), "data.download=false"], "FSDD not found")


def test_empty_data_folder(capsys, mlflow_store, tmp_path):
    (tmp_path / "fsdd" / "recordings").mkdir(parents=True)
    check(capsys, mlflow_store, ["--data", str(tmp_path)], "is empty")


def test_zero_length_wav(capsys, mlflow_store, small_fsdd):
    bad = small_fsdd / "fsdd" / "recordings" / "3_george_77.wav"
    bad.write_bytes(b"")
    check(capsys, mlflow_store, ["--data", str(small_fsdd)], f"audio file is empty (0 bytes): {bad}")


def test_corrupt_wav(capsys, mlflow_store, small_fsdd):
    bad = small_fsdd / "fsdd" / "recordings" / "4_theo_77.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunkjunkjunk" * 8)
    check(capsys, mlflow_store, ["--data", str(small_fsdd)], f"cannot decode audio file {bad}")


def test_stray_non_audio_files(capsys, mlflow_store, small_fsdd):
    (small_fsdd / "fsdd" / "recordings" / "notes.txt").write_text("hello")
    (small_fsdd / "fsdd" / "recordings" / ".DS_Store").write_bytes(b"\0")  # hidden files are ignored
    check(capsys, mlflow_store, ["--data", str(small_fsdd)], "notes.txt")


def test_misnamed_wav(capsys, mlflow_store, small_fsdd):
    (small_fsdd / "fsdd" / "recordings" / "seven_george.wav").write_bytes(b"")
    check(capsys, mlflow_store, ["--data", str(small_fsdd)], "seven_george.wav")


def test_unknown_forget_speaker(capsys, mlflow_store, small_fsdd):
    line = check(capsys, mlflow_store, ["--data", str(small_fsdd), "data.forget_speakers=[bob]"],
                 "unknown forget speaker 'bob'")
    assert "george, jackson, theo" in line


@pytest.mark.parametrize("args, message", [
    (["original.epohcs=3"], "unknown config key original.epohcs"),
    (["gold.epochs=many"], "gold.epochs must be an integer"),
    (["unlearning.phases.0.ops.0.layers=[lstm]"], "unlearning.phases.0: layer selector 'lstm' matches no layer"),
    (["unlearning.schemes.conv_bn.0.layers=[linear]"], "unlearning.schemes.conv_bn: bn_reset layers"),
    (["model.network=transformer"], "unknown network 'transformer'"),
])
def test_bad_config_values(capsys, mlflow_store, data_root, args, message):
    check(capsys, mlflow_store, ["--data", str(data_root), *args], message)


@pytest.mark.parametrize("args, message", [
    (["unlearn", "data.val_fraction=0.95"], "data.val_fraction and data.test_fraction must be in"),
    (["classify", "data.options.val_fraction=0.95"], "data.options.val_fraction and test_fraction must be in"),
    (["classify", "--dataset", "ravdess", "data.options.val_actors=[1]", "data.options.test_actors=[1]"],
     "data.options.val_actors and test_actors overlap"),
    (["classify", "--dataset", "urbansound8k", "data.options.cv_fold=11"], "data.options.cv_fold must be in 1..10"),
])
def test_a_bad_value_is_named_by_the_key_that_sets_it(capsys, data_root, tmp_path, args, message):
    """The key a message names is the one the command accepts (fractions are top-level keys of
    unlearn's FSDD protocol and datamodule options everywhere else)."""
    assert main([*args, "--quiet", "--data", str(data_root), "--output", str(tmp_path / "out"),
                 "tracking.enabled=false"]) == 2
    err = capsys.readouterr().err
    assert message in err and "unknown config key" not in err


def test_unknown_preset(capsys):
    assert main(["unlearn", "--preset", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


def test_unwritable_output_folder(capsys, mlflow_store, data_root, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    check(capsys, mlflow_store, ["--data", str(data_root), "--output", str(blocker / "out")], "file")


def test_failure_inside_a_seed_marks_its_runs_failed(mlflow_store, data_root, tmp_path):
    """A schedule that breaks mid-protocol (bypassing the up-front check): every run it opened ends FAILED."""
    cfg = load_config(UnlearnConfig, [preset("unlearn", "quick")],
                      [*TINY, f"data.root={data_root}", "unlearning.phases.1.ops.0.layers=[lstm]"])
    tracker = Tracker.open(TrackingConfig(store=str(mlflow_store), experiment="mid-run-failure"))
    with pytest.raises(ConfigError, match="'lstm' matches no layer"):
        with tracker.run("experiment") as parent:
            seed_run = tracker.create_run("seed 0", parent)
            run_task(cfg, Task(0, "original"), str(tmp_path), tracker, seed_run)
            run_task(cfg, Task(0, "base"), str(tmp_path), tracker, seed_run)
    client = MlflowClient(tracker.uri)
    runs = {r.info.run_name: r for r in client.search_runs([tracker.experiment_id])}
    assert runs["experiment"].info.status == "FAILED"
    assert runs["seed 0"].info.status == "FAILED" and runs["seed 0"].data.tags[PARENT_TAG] == parent
    assert runs["original"].info.status == "FINISHED"
    assert runs["base"].info.status == "FAILED"
    assert_no_running_runs(mlflow_store)


@pytest.mark.parametrize("command", ["classify", "distill", "continual", "nas"])
def test_print_config_refuses_data_options_a_run_would_refuse(capsys, command):
    assert main([command, "--print-config", "data.options.root=/somewhere"]) == 2
    assert "data.options.root: the data root is data.root (or --data)" in capsys.readouterr().err
    assert main([command, "--print-config", "data.options.fold=3"]) == 2
    assert "data.options.fold: not an option of fsdd" in capsys.readouterr().err
    assert main([command, "--print-config", "data.options.test_fraction=0.2"]) == 0


def test_every_preset_of_every_command_loads():
    """A preset (and what it inherits through ``base``) holds only keys and data options its
    command accepts."""
    from audioforge.paths import preset as preset_path

    checked = 0
    for folder in sorted(preset_path("classify", "x").parent.parent.iterdir()):
        for file in sorted(folder.glob("*.yaml")):
            assert main([folder.name, "--preset", file.stem, "--print-config"]) == 0, f"{folder.name} --preset {file.stem}"
            checked += 1
    assert main(["rir", "--real", "--print-config"]) == 0
    assert checked >= 20
