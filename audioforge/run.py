"""The skeleton every command runs on, written once.

- :class:`DatasetConfig` and :class:`RunConfig`: the fields every experiment config shares (name,
  seeds, output folder, data, features, trainer, tracking), with the checks that go with them.
- :class:`Run`: the output folder, the tracker (opening the store fails orphaned runs), the
  command's MLflow run (nested under a parent when given; ended FINISHED, FAILED or KILLED), its
  logged config, nested runs for seeds or cells, and the report: ``report.md``, ``report.json``
  and the plots in the folder, and all of them as artifacts of the run.
- :func:`mean_std`: how every report summarises seeds or runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audioforge.errors import ConfigError
from audioforge.events import announce
from audioforge.tracking import Tracker, TrackingConfig, final_status, maybe_run
from audioforge.training import TrainerConfig

log = logging.getLogger(__name__)


@dataclass
class DatasetConfig:
    dataset: str = "fsdd"                # a registered dataset: fsdd, urbansound8k, ravdess, rir_simulated, rir_real
    root: str | None = None              # null: $AUDIOFORGE_DATA, else ./data
    cache_dir: str | None = None         # null: $AUDIOFORGE_CACHE or ~/.cache/audioforge
    options: dict[str, Any] = field(default_factory=dict)  # the datamodule's own arguments

    def load(self, features: dict[str, Any], seed: int, batch_size: int = 16):
        """The datamodule, with ``features`` overriding the dataset's defaults, prepared and set up
        (bad data or options fail here, before any run is recorded)."""
        from audioforge.config import from_dict
        from audioforge.paths import data_root
        from audioforge.processes import WorkerPool
        from datamodules import build_datamodule, default_features
        from datamodules.registry import DATACLASS_OPTIONS

        options = {k: from_dict(DATACLASS_OPTIONS[k], v, f"data.options.{k}")
                   if k in DATACLASS_OPTIONS and isinstance(v, dict) else v for k, v in self.options.items()}
        dm = build_datamodule(self.dataset, data_root(self.root), options,
                              default_features(self.dataset, features), seed=seed, cache_dir=self.cache_dir,
                              batch_size=batch_size, worker_pool=WorkerPool)
        dm.prepare_data()
        dm.setup()
        return dm


@dataclass
class RunConfig:
    """What every experiment command's config holds; commands add their own sections and may
    narrow these (a default name, an FSDD-only data section, typed features)."""

    name: str | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    output_dir: str | None = None        # null: outputs/<command>/<name>-<time>
    data: DatasetConfig = field(default_factory=DatasetConfig)
    features: dict[str, Any] = field(default_factory=dict)  # overrides of the dataset's default features
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def validate(self, path: str = "") -> None:
        if not self.seeds:
            raise ConfigError("seeds must hold at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be distinct, got {self.seeds}")
        from datamodules.registry import check_options

        check_options(self.data.dataset, self.data.options)
        if self.name and "{" in self.name:
            fields = self.name_fields()
            try:
                self.name = self.name.format_map(fields)
            except (KeyError, ValueError, IndexError) as exc:
                raise ConfigError(f"name {self.name!r}: cannot fill it in ({exc}); it may name "
                                  f"{', '.join('{' + k + '}' for k in fields)}") from None

    def name_fields(self) -> dict[str, str]:
        """What a run's ``name`` may name in braces (``{dataset}-unlearning``); commands add theirs."""
        return {"dataset": self.data.dataset}


def output_folder(command: str, name: str, output_dir: str | None) -> Path:
    """``output_dir``, else ``outputs/<command>/<name>-<time>``."""
    if output_dir:
        return Path(output_dir)
    return Path("outputs") / command / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    arr = np.asarray(list(values), dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def summary(values) -> dict[str, Any]:
    """Mean, std (:func:`mean_std`) and the values themselves."""
    mean, std = mean_std(values)
    return {"mean": mean, "std": std, "values": [float(v) for v in values]}


def paired_test(a, b) -> dict[str, Any]:
    """Two-sided paired t-test of ``a`` against ``b`` (per seed or rotation); ``t`` and ``p_value``
    are None where fewer than two pairs, or differences all equal, leave them undefined."""
    from scipy.stats import ttest_rel

    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    out = {"n": len(diff), "mean_difference": float(diff.mean()), "t": None, "p_value": None}
    if len(diff) >= 2 and np.ptp(diff) > 0:
        res = ttest_rel(a, b)
        out.update(t=float(res.statistic), p_value=float(res.pvalue))
    return out


class Run:
    """One command's run::

        with Run("classify", cfg.name, cfg.output_dir, cfg.tracking, tags, config=to_dict(cfg)) as run:
            with run.child(f"seed-{seed}", tags) as seed_run: ...
            run.report(report, lines, metrics={...})

    ``run.out_dir`` is created on entry; ``run.tracker`` and ``run.id`` are None when tracking is
    off.  ``parent_id`` nests the run (a table's cell); ``resume_id`` reopens an earlier run of this
    command (a resumed study) instead of creating one.  The run ends FINISHED, FAILED on an error,
    KILLED on a stop, or ``run.outcome`` when the code sets it (a study short of its trials)."""

    def __init__(self, command: str, name: str, output_dir: str | Path | None, tracking: TrackingConfig,
                 tags: dict[str, str] | None = None, config: dict[str, Any] | None = None,
                 parent_id: str | None = None, resume_id: str | None = None):
        self.command, self.name = command, name
        self.out_dir = output_folder(command, name, output_dir)
        dataset = ((config or {}).get("data") or {}).get("dataset")
        # every run says which dataset it saw, so the MLflow UI can filter and compare by it
        self.tags = {"audioforge.command": command, **({"audioforge.dataset": str(dataset)} if dataset else {}), **(tags or {})}
        self.config, self.parent_id, self.resume_id = config, parent_id, resume_id
        self.tracker = Tracker.open(tracking) if tracking.enabled else None
        self.id: str | None = None
        self.outcome: str | None = None

    def __enter__(self) -> "Run":
        self._made_folder = not self.out_dir.exists()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.tracker is None:
            return self
        if self.resume_id:
            self.id = self.resume_id
            self.tracker.client.update_run(self.id, status="RUNNING")
            self.tracker.claim(self.id)
        else:
            self.id = self.tracker.create_run(self.name, self.parent_id, self.tags)
            if self.config is not None:
                self.tracker.log_config(self.id, self.config)
        log.info("MLflow run %s in %s", self.id, self.tracker.uri)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        status = final_status(exc)
        if self.id:
            self.tracker.end_run(self.id, self.outcome if status == "FINISHED" and self.outcome else status)
        if status != "FINISHED" and self._made_folder and self.out_dir.is_dir() and not any(self.out_dir.iterdir()):
            self.out_dir.rmdir()  # a run stopped before writing anything leaves no empty folder behind
        return False

    def child(self, name: str, tags: dict[str, str] | None = None) -> contextlib.AbstractContextManager:
        """A nested run (seed, cell, model) under this one; yields its id or None."""
        return maybe_run(self.tracker, name, self.id, {**self.tags, **(tags or {})})

    def log_metrics(self, metrics: dict[str, float], run_id: str | None = None) -> None:
        if self.tracker is not None and (run_id or self.id):
            self.tracker.log_metrics(run_id or self.id, metrics)

    def report(self, report: dict[str, Any], markdown: str | list[str], metrics: dict[str, float] | None = None,
               files: list[Path] = ()) -> dict[str, Any]:
        """Write ``report.md`` and ``report.json`` into the output folder, log ``metrics`` and the
        report with ``files`` (plots) as artifacts under ``report/``; returns the report with where
        it is tracked."""
        announce("report", command=self.command, folder=str(self.out_dir))
        text = markdown if isinstance(markdown, str) else "\n".join(markdown) + "\n"
        (self.out_dir / "report.md").write_text(text)
        if self.id:
            report["mlflow"] = {"run_id": self.id, "tracking_uri": self.tracker.uri,
                                "experiment_id": self.tracker.experiment_id}
        (self.out_dir / "report.json").write_text(json.dumps(report, indent=2, default=float))
        if self.id:
            if metrics:
                self.tracker.log_metrics(self.id, metrics)
            for path in [self.out_dir / "report.md", self.out_dir / "report.json", *files]:
                self.tracker.log_artifact(self.id, path, "report")
        return report

    def log_artifact(self, path: Path, artifact_path: str | None = None, run_id: str | None = None) -> None:
        if self.tracker is not None and (run_id or self.id):
            self.tracker.log_artifact(run_id or self.id, path, artifact_path)

