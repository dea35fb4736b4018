"""The whole experiment: check data and schedule, open the parent MLflow run, run every fit
(in parallel processes), aggregate, write and log the report."""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

from audioforge.config import to_dict
from audioforge.distributed import is_rank_zero
from audioforge.errors import DataError
from audioforge.processes import WorkerPool
from audioforge.run import Run, output_folder
from audioforge.tracking import Tracker
from audioforge.unlearning.config import UnlearnConfig
from audioforge.unlearning.protocol import (Task, build_datamodule, method_epochs, new_model, run_task,
                                            unlearning_fit)
from audioforge.unlearning.report import build_report, markdown, plots
from callbacks.schedule import check_schedule

log = logging.getLogger(__name__)


def worker_count(cfg: UnlearnConfig) -> int:
    if cfg.trainer.distributed:
        return 1  # one fit at a time; the trainer spreads it over devices
    return max(1, min(2 * len(cfg.seeds), cfg.jobs or os.cpu_count() or 1))


def total_epochs_of(cfg: UnlearnConfig) -> int:
    per_seed = cfg.original.epochs + cfg.gold.epochs + len(cfg.unlearning.schemes) * unlearning_fit(cfg).epochs
    per_seed += sum(method_epochs(cfg, name) for name in cfg.methods)
    return per_seed * len(cfg.seeds)


def run_experiment(cfg: UnlearnConfig, progress: bool = True, parent_id: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Run the experiment; returns the report folder and the report (empty on ranks other than 0,
    which run the same fits untracked).  ``parent_id`` nests its MLflow run (a benchmark's cell)."""
    if cfg.trainer.distributed and not is_rank_zero():
        out_dir = output_folder("unlearn", cfg.name, cfg.output_dir)
        run_tasks(cfg, out_dir, None, {}, progress=False)
        return out_dir, {}
    # Fail on bad data or schedule before anything is recorded; this also fills the feature cache.
    dm = build_datamodule(cfg, cfg.seeds[0])
    dm.prepare_data()
    dm.setup()
    check_schedule(cfg.unlearning.phases, cfg.unlearning.schemes, new_model(cfg, dm, cfg.original, cfg.seeds[0]).net)
    split_sizes = {"test": dm.split_size("test"), "excluded": dm.split_size("forget"), "val": dm.split_size("val"),
                   "retain_train": dm.split_size("retain_train"), "full_train": dm.split_size("full_train")}
    if "forget_holdout" in dm.splits:
        split_sizes["excluded_held_out"] = dm.split_size("forget_holdout")
    empty = [split for split, size in split_sizes.items() if size == 0]
    if empty:
        raise DataError(f"unlearning on {cfg.data.dataset} needs clips in every split, but {empty[0]} is empty "
                        f"(sizes: {', '.join(f'{k} {v}' for k, v in split_sizes.items())}); change the dataset's "
                        "split (data.options) or the forget set (data.forget)")
    started = time.perf_counter()
    with Run("unlearn", cfg.name, cfg.output_dir, cfg.tracking, {"audioforge.role": "experiment"}, to_dict(cfg),
             parent_id=parent_id) as run:
        seed_runs = {}
        if run.id:
            seed_runs = {seed: run.tracker.create_run(f"seed {seed}", run.id, {"audioforge.role": "seed",
                                                                              "audioforge.seed": str(seed)})
                         for seed in cfg.seeds}
        results = run_tasks(cfg, run.out_dir, run.tracker, seed_runs, progress,
                            on_seed_done=lambda seed: run.id and run.tracker.end_run(seed_runs[seed], "FINISHED"))
        report = build_report(cfg.name, results, cfg.unlearned, split_sizes)
        report["forget"] = {"dataset": cfg.data.dataset, "set": cfg.data.forget_set().describe()}
        report["timing"]["experiment_seconds"] = time.perf_counter() - started
        report["timing"]["workers"] = worker_count(cfg)
        summary = {f"table{t}/{s}/{split}": v["mean"] for t in (1, 2) for s, splits in report[f"table{t}"].items()
                   for split, v in splits.items()}
        summary |= {f"unlearn_over_gold/{s}": v["mean"] for s, v in report["timing"]["unlearn_over_gold"].items()}
        summary["time/experiment_seconds"] = report["timing"]["experiment_seconds"]
        report = run.report(report, markdown(report), summary, plots(report, run.out_dir))
    return run.out_dir, report


def run_tasks(cfg: UnlearnConfig, out_dir: Path, tracker: Tracker | None, seed_runs: dict[int, str],
              progress: bool, on_seed_done: Callable[[int], None] = lambda seed: None) -> list[dict[str, Any]]:
    """Originals and golds first; a seed's schemes as soon as its original is trained."""
    from tqdm import tqdm

    schemes = cfg.unlearned
    results = {seed: {"seed": seed, "models": {}} for seed in cfg.seeds}
    todo = deque([Task(s, "original") for s in cfg.seeds] + [Task(s, "gold") for s in cfg.seeds])

    def done(task: Task, entry: dict[str, Any]) -> None:
        results[task.seed]["models"][task.role] = entry
        if task.role == "original":
            todo.extend(Task(task.seed, s) for s in schemes)
        if len(results[task.seed]["models"]) == 2 + len(schemes):
            on_seed_done(task.seed)

    with tqdm(total=total_epochs_of(cfg), unit="epoch", desc=cfg.name, disable=not progress,
              dynamic_ncols=True) as bar, WorkerPool(worker_count(cfg), progress=bar.update, status=bar.set_postfix_str) as pool:
        while todo or pool.pending:
            while todo:
                task = todo.popleft()
                pool.submit(task, run_task, cfg, task, str(out_dir), tracker, seed_runs.get(task.seed))
            done(*pool.next())
    return [results[s] for s in cfg.seeds]
