"""``audioforge ui``: the MLflow UI on the project's store and optuna-dashboard on the sweep storage."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from audioforge.errors import ConfigError


def commands(store: Path, storage: str | None, host: str, mlflow_port: int, dashboard_port: int) -> list[list[str]]:
    store = store.resolve()
    out = [[sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
            "--default-artifact-root", str(store / "artifacts"), "--host", host, "--port", str(mlflow_port)]]
    if storage:
        dashboard = shutil.which("optuna-dashboard", path=str(Path(sys.executable).parent)) or shutil.which("optuna-dashboard")
        if dashboard is None:
            raise ConfigError("optuna-dashboard is not installed (pip install optuna-dashboard)")
        out.append([dashboard, storage, "--host", host, "--port", str(dashboard_port), "--quiet"])
    return out


def serve(store: Path, storage: str | None, host: str = "127.0.0.1", mlflow_port: int = 5000,
          dashboard_port: int = 8080) -> int:
    """Start both servers, print their addresses, stop both on Ctrl-C or SIGTERM."""
    if not (store / "mlflow.db").exists():
        raise ConfigError(f"no MLflow store at {store / 'mlflow.db'}: run an experiment first or pass --store")
    procs = [subprocess.Popen(cmd) for cmd in commands(store, storage, host, mlflow_port, dashboard_port)]
    print(f"MLflow UI:        http://{host}:{mlflow_port}", flush=True)
    if storage:
        print(f"Optuna dashboard: http://{host}:{dashboard_port}  ({storage})", flush=True)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        while not stop["now"] and all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0
