"""The whole experiment: check data, open the parent MLflow run, run seeds (in parallel
processes), aggregate, write and log the report."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue as queue_mod
import threading
import time
from pathlib import Path
from typing import Any

from audioforge.config import to_dict
from audioforge.tracking import Tracker
from audioforge.unlearning.config import UnlearnConfig
from audioforge.unlearning.protocol import build_datamodule, run_seed
from audioforge.unlearning.report import build_report, write_report
from callbacks.schedule import total_epochs

log = logging.getLogger(__name__)


def output_folder(cfg: UnlearnConfig) -> Path:
    if cfg.output_dir:
        return Path(cfg.output_dir)
    return Path("outputs") / "unlearn" / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def worker_count(cfg: UnlearnConfig) -> int:
    if cfg.trainer.distributed:
        return 1  # one seed at a time; the trainer spreads it over devices
    return min(len(cfg.seeds), cfg.jobs or os.cpu_count() or 1)


def total_epochs_of(cfg: UnlearnConfig) -> int:
    per_seed = cfg.original.epochs + cfg.gold.epochs + len(cfg.unlearning.schemes) * total_epochs(cfg.unlearning.phases)
    return per_seed * len(cfg.seeds)


def run_experiment(cfg: UnlearnConfig, progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """Run the experiment; returns the report folder and the report."""
    out_dir = output_folder(cfg)
    # Fail on bad data before anything is recorded; this also fills the feature cache for workers.
    dm = build_datamodule(cfg, cfg.seeds[0])
    dm.prepare_data()
    dm.setup()
    tracker = Tracker.open(cfg.tracking) if cfg.tracking.enabled else None
    started = time.perf_counter()
    if tracker is None:
        results = _run_seeds(cfg, out_dir, None, None, progress)
        return out_dir, _finish(cfg, results, out_dir, None, None, started)
    with tracker.run(cfg.name, tags={"audioforge.role": "experiment", "audioforge.command": "unlearn"}) as parent:
        tracker.log_config(parent, to_dict(cfg))
        log.info("MLflow run %s in %s", parent, tracker.uri)
        results = _run_seeds(cfg, out_dir, tracker, parent, progress)
        return out_dir, _finish(cfg, results, out_dir, tracker, parent, started)


def _finish(cfg, results, out_dir, tracker, parent, started) -> dict[str, Any]:
    report = build_report(cfg.name, results, list(cfg.unlearning.schemes))
    report["timing"]["experiment_seconds"] = time.perf_counter() - started
    report["timing"]["workers"] = worker_count(cfg)
    if parent:
        report["mlflow"] = {"tracking_uri": tracker.uri, "experiment_id": tracker.experiment_id, "run_id": parent}
    files = write_report(report, out_dir)
    if tracker is not None:
        summary = {f"table{t}/{s}/{split}": v["mean"] for t in (1, 2) for s, splits in report[f"table{t}"].items()
                   for split, v in splits.items()}
        summary |= {f"unlearn_over_gold/{s}": v["mean"] for s, v in report["timing"]["unlearn_over_gold"].items()}
        summary["time/experiment_seconds"] = report["timing"]["experiment_seconds"]
        tracker.log_metrics(parent, summary)
        for f in files:
            tracker.log_artifact(parent, f, "report")
    return report


def _run_seeds(cfg: UnlearnConfig, out_dir: Path, tracker: Tracker | None, parent: str | None,
               progress: bool) -> list[dict[str, Any]]:
    from tqdm import tqdm

    bar = tqdm(total=total_epochs_of(cfg), unit="epoch", desc=cfg.name, disable=not progress, dynamic_ncols=True)
    jobs = worker_count(cfg)
    try:
        if jobs == 1:
            return [run_seed(cfg, seed, str(out_dir), tracker, parent, _BarQueue(bar)) for seed in cfg.seeds]
        ctx = mp.get_context("spawn")
        with ctx.Manager() as manager:
            q = manager.Queue()
            stop = threading.Event()
            drain = threading.Thread(target=_drain, args=(q, bar, stop), daemon=True)
            drain.start()
            pool = ctx.Pool(jobs)
            try:
                pending = [pool.apply_async(run_seed, (cfg, seed, str(out_dir), tracker, parent, q)) for seed in cfg.seeds]
                results = [p.get() for p in pending]
                pool.close()
                return results
            except BaseException:
                pool.terminate()
                raise
            finally:
                pool.join()
                stop.set()
                drain.join()
    finally:
        bar.close()


class _BarQueue:
    """In-process stand-in for the worker queue: ``put(n)`` advances the bar."""

    def __init__(self, bar):
        self.bar = bar

    def put(self, n: int) -> None:
        self.bar.update(n)


def _drain(q, bar, stop: threading.Event) -> None:
    while not stop.is_set() or not q.empty():
        try:
            bar.update(q.get(timeout=0.2))
        except (queue_mod.Empty, EOFError, OSError):
            if stop.is_set():
                return
