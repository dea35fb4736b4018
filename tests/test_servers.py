"""`audioforge ui` starts real servers on loopback: the MLflow REST API shows the study's runs and
optuna-dashboard answers for the study."""

from __future__ import annotations

import pytest

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from audioforge.cli import main
from tests.test_sweeps import REPO, sweep_file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, data: dict | None = None, timeout: float = 2.0):
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null") if "json" in resp.headers.get("Content-Type", "") else resp.read()


def wait_for(url: str, seconds: float = 90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            get(url)
            return
        except Exception:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {seconds} s")


@pytest.mark.slow  # a sweep and two servers: about a minute
def test_ui_serves_mlflow_and_optuna_dashboard(synthetic_fsdd, tmp_path):
    store = tmp_path / "mlruns"
    path = sweep_file(tmp_path, synthetic_fsdd, store, "served", n_trials=2, workers=1)
    assert main(["sweep", "--config", str(path), "--quiet"]) == 0
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    mlflow_port, dash_port = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "audioforge", "ui", "--store", str(store), "--storage", storage,
                             "--mlflow-port", str(mlflow_port), "--dashboard-port", str(dash_port)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        wait_for(f"http://127.0.0.1:{mlflow_port}/health")
        wait_for(f"http://127.0.0.1:{dash_port}/api/studies")
        exp = get(f"http://127.0.0.1:{mlflow_port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=served")
        runs = get(f"http://127.0.0.1:{mlflow_port}/api/2.0/mlflow/runs/search",
                   {"experiment_ids": [exp["experiment"]["experiment_id"]], "max_results": 100})["runs"]
        roles = {}
        for run in runs:
            tags = {t["key"]: t["value"] for t in run["data"].get("tags", [])}
            roles.setdefault(tags.get("audioforge.role"), []).append(run["info"]["status"])
        assert roles["study"] == ["FINISHED"]
        assert roles["trial"] == ["FINISHED", "FINISHED"]
        studies = get(f"http://127.0.0.1:{dash_port}/api/studies")
        assert [s["study_name"] for s in studies["study_summaries"]] == ["served"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert f"http://127.0.0.1:{mlflow_port}" in out and f"http://127.0.0.1:{dash_port}" in out
    for port in (mlflow_port, dash_port):  # both servers are gone
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
