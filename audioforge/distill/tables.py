"""The paper's tables as commands (``audioforge distill-table --preset table1|table2|ablation|robustness``).

A table is a grid of distillation cells (method x CPC x network x feature), each run by
:func:`run_distill` in its own fresh process (so its wall time and peak memory are its own)
into ``<output>/cells/<cell>/``; a cell whose ``report.json`` exists is reused, so an interrupted
table resumes.  The table's MLflow run is the parent of the cells' runs.  Every table writes
``report.md``, ``report.json`` and a plot, and the resource table (wall time, peak memory per
cell) comes with each.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audioforge.config import to_dict
from audioforge.distill.config import DistillConfig
from audioforge.errors import ConfigError, DataError
from audioforge.processes import WorkerPool
from audioforge.run import Run


@dataclass
class TableConfig:
    name: str = "table1"
    kind: str = "table1"                 # table1, table2, ablation, robustness
    output_dir: str | None = None
    methods: list[str] | None = None     # null: every registered method
    cpcs: list[int] = field(default_factory=lambda: [1, 10, 50])
    networks: list[str] = field(default_factory=lambda: ["convnet"])
    features: list[str] = field(default_factory=lambda: ["fdmfcc"])
    eval_archs: list[str] | None = None  # table2: the architectures each set is evaluated on
    whole_dataset: bool = True           # table1: accuracy of each network trained on the whole training split
    noise_sigmas: list[float] = field(default_factory=lambda: [0.0, 0.001, 0.005, 0.01, 0.05])
    jobs: int = 1                        # cells run at once, each in its own process (1 torch thread each)
    sets: list[str] = field(default_factory=list)  # robustness: distilled.pt files to use instead of distilling cells
    run_missing: bool = True             # false: only assemble the cells already run (the rest show as not run)
    distill: DistillConfig = field(default_factory=DistillConfig)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # per method: DistillConfig fields

    def validate(self, path: str = "") -> None:
        from audioforge.distill.methods import METHODS, method

        if self.kind not in ("table1", "table2", "ablation", "robustness"):
            raise ConfigError(f"kind must be table1, table2, ablation or robustness, got {self.kind!r}")
        if self.methods is None:
            self.methods = list(METHODS)
        for name in self.methods:
            method(name)
        if not self.methods or not self.cpcs or not self.networks or not self.features:
            raise ConfigError("methods, cpcs, networks and features must each name at least one value")


def cells(cfg: TableConfig) -> list[tuple[str, DistillConfig]]:
    from audioforge.config import deep_merge, from_dict

    out = []
    for feature in cfg.features:
        for network in cfg.networks:
            for cpc in cfg.cpcs:
                for method in cfg.methods:
                    cell = f"{method}-cpc{cpc}-{network}-{feature}"
                    data = to_dict(cfg.distill)
                    data = deep_merge(data, cfg.overrides.get(method, {}))
                    data |= {"method": method, "cpc": cpc, "network": network, "name": cell,
                             "features": {**data["features"], "kind": feature}}
                    if cfg.kind == "table2" and cfg.eval_archs:
                        data["eval"] = {**data["eval"], "archs": list(cfg.eval_archs)}
                    out.append((cell, from_dict(DistillConfig, data, f"cell {cell}")))
    return out


def _run_cell(cfg: DistillConfig, parent_id: str | None) -> dict[str, Any]:
    from audioforge.distill.experiment import run_distill
    from audioforge.logs import setup_logging

    setup_logging(quiet=True)
    return run_distill(cfg, parent_id)[1]


def run_cells(todo: list[tuple[str, DistillConfig]], parent_id: str | None, jobs: int,
              run_missing: bool = True) -> dict[str, dict[str, Any]]:
    """Each cell in a fresh process (``jobs`` at a time); a cell whose report exists is read back;
    with ``run_missing=False`` cells without a report are left out."""
    results, pending = {}, []
    for cell, cfg in todo:
        report_path = Path(cfg.output_dir) / "report.json"
        if report_path.is_file():
            results[cell] = json.loads(report_path.read_text())
        else:
            pending.append((cell, cfg))
    if pending and run_missing:
        with WorkerPool(jobs, fresh_process=True) as pool:
            for cell, cfg in pending:
                pool.submit(cell, _run_cell, cfg, parent_id)
            while pool.pending:
                cell, report = pool.next()
                results[cell] = report
    return {cell: results[cell] for cell, _ in todo if cell in results}


def existing_set(path: str) -> dict[str, Any]:
    """The report of the distill run that wrote ``path`` (its folder's report.json)."""
    report = Path(path).parent / "report.json"
    if not Path(path).is_file() or not report.is_file():
        raise DataError(f"{path}: not a distilled set with its report.json beside it")
    return json.loads(report.read_text()) | {"distilled": str(path)}


def run_table(cfg: TableConfig) -> tuple[Path, dict[str, Any]]:
    with Run("distill-table", cfg.name, cfg.output_dir, cfg.distill.tracking, {"audioforge.table": cfg.kind},
             to_dict(cfg)) as run:
        out_dir = run.out_dir
        if cfg.kind == "robustness" and cfg.sets:
            results = {Path(s).parent.name: existing_set(s) for s in cfg.sets}
        else:
            todo = cells(cfg)
            for cell, cell_cfg in todo:
                cell_cfg.output_dir = str(out_dir / "cells" / cell)
            results = run_cells(todo, run.id, cfg.jobs, cfg.run_missing)
        report: dict[str, Any] = {"name": cfg.name, "kind": cfg.kind, "cells": results}
        if cfg.kind == "table1" and cfg.whole_dataset:
            cached = out_dir / "whole_dataset.json"  # like the cells, computed once per table folder
            if not cached.is_file():
                cached.write_text(json.dumps(whole_dataset(cfg), indent=2, default=float))
            report["whole_dataset"] = json.loads(cached.read_text())
        if cfg.kind == "robustness":
            report["robustness"] = {cell: robustness(cfg, r) for cell, r in results.items()}
        lines, plots = markdown(out_dir, cfg, report)
        report = run.report(report, lines, files=plots)
    return out_dir, report


def whole_dataset(cfg: TableConfig) -> dict[str, dict]:
    """Each network trained on the whole real training split (the tables' upper bound)."""
    from audioforge.distill.evaluate import evaluate_set
    from audioforge.distill.experiment import datamodule, real_split

    out = {}
    for feature in cfg.features:
        dcfg = dataclasses.replace(cfg.distill, features={**cfg.distill.features, "kind": feature})
        dm = datamodule(dcfg)
        x, y = real_split(dm, "train")
        for network in cfg.networks:
            out[f"{network}-{feature}"] = evaluate_set(network, {"x": x, "y": y}, real_split(dm, "val"),
                                                        real_split(dm, "test"), dm.num_classes,
                                                        dataclasses.replace(dcfg.eval, epochs=min(dcfg.eval.epochs, 30),
                                                                            val_every=5), dcfg.seed)
    return out


def robustness(cfg: TableConfig, cell_report: dict) -> dict[str, Any]:
    """Gaussian noise of variance sigma on the waveforms rebuilt from a distilled set: features
    re-extracted, fresh networks trained on them, accuracy on the real test split."""

    from audioforge.distill.evaluate import evaluate_set
    from audioforge.distill.experiment import datamodule, load_distilled, raw_features, real_split
    from audioforge.distill.reconstruct import features_to_audio, noisy_features

    payload = load_distilled(cell_report["distilled"])
    meta = payload["meta"]
    dcfg = dataclasses.replace(cfg.distill, features={**cfg.distill.features, "kind": meta["features"]["kind"]})
    dm = datamodule(dcfg)
    waves = features_to_audio(raw_features(payload["x"], meta), dm.features)
    stats = getattr(dm, "feature_stats", None)
    out = {}
    for sigma in cfg.noise_sigmas:
        x = noisy_features(waves, sigma, dm.features, seed=dcfg.seed)
        if stats:  # the same standardisation the real splits went through
            x = (x - stats["mean"]) / stats["std"]
        res = evaluate_set(meta["network"], {"x": x, "y": payload["y"]} | ({"lr": payload["lr"]} if "lr" in payload else {}),
                           real_split(dm, "val"), real_split(dm, "test"), dm.num_classes, dcfg.eval, dcfg.seed)
        out[str(sigma)] = {"mean": res["mean"], "std": res["std"]}
    return out


def fmt(res: dict | None) -> str:
    return f"{100 * res['mean']:.2f} ± {100 * res['std']:.2f}" if res else "not run"


def markdown(out_dir: Path, cfg: TableConfig, report: dict[str, Any]) -> tuple[list[str], list[Path]]:
    """The table's report lines, and its plot in ``out_dir``."""
    from audioforge.plots import grouped_bars, plt, save

    cells_, plots = report["cells"], []
    lines = [f"# {cfg.name} ({cfg.kind})", "", "Test accuracy (%) of fresh networks trained on the distilled sets, "
             f"mean ± std over {cfg.distill.eval.runs} runs; sets and epochs chosen on validation.", ""]

    def own(cell: str) -> dict | None:
        r = cells_.get(cell)
        return r["eval"][r["network"]] if r else None

    if cfg.kind in ("table1", "ablation"):
        cols = cfg.methods if cfg.kind == "table1" else cfg.features
        lines += ["| network | CPC | " + " | ".join(cols) + (" | whole dataset |" if "whole_dataset" in report else " |"),
                  "|---|---" + "|---" * (len(cols) + ("whole_dataset" in report)) + "|"]
        series: dict[str, tuple[list[float], list[float]]] = {c: ([], []) for c in cols}
        groups = []
        for feature in cfg.features if cfg.kind == "table1" else [None]:
            for network in cfg.networks:
                for cpc in cfg.cpcs:
                    if cfg.kind == "table1":
                        vals = [own(f"{m}-cpc{cpc}-{network}-{feature}") for m in cfg.methods]
                    else:
                        vals = [own(f"{cfg.methods[0]}-cpc{cpc}-{network}-{f}") for f in cfg.features]
                    row = f"| {network}{'' if feature is None or len(cfg.features) == 1 else ' ' + feature} | {cpc} | "
                    row += " | ".join(fmt(v) for v in vals)
                    if "whole_dataset" in report:
                        row += f" | {fmt(report['whole_dataset'].get(f'{network}-{feature}'))}"
                    lines.append(row + " |")
                    groups.append(f"{network} CPC {cpc}")
                    for c, v in zip(cols, vals):
                        series[c][0].append(100 * v["mean"] if v else np.nan)
                        series[c][1].append(100 * v["std"] if v else 0.0)
        fig = grouped_bars(groups, series, "test accuracy (%)", cfg.name)
        plots.append(save(fig, out_dir / f"{cfg.kind}.png"))
    elif cfg.kind == "table2":
        archs = cfg.eval_archs or cfg.networks
        lines += ["| distilled with \\ evaluated on | " + " | ".join(archs) + " |", "|---" * (len(archs) + 1) + "|"]
        for cell, r in cells_.items():
            lines.append(f"| {r['network']} ({r['method']}, CPC {r['cpc']}) | "
                         + " | ".join(fmt(r["eval"].get(a)) for a in archs) + " |")
    else:
        lines += ["| set | " + " | ".join(f"σ = {s}" for s in cfg.noise_sigmas) + " |",
                  "|---" * (len(cfg.noise_sigmas) + 1) + "|"]
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for cell, rob in report["robustness"].items():
            lines.append(f"| {cell} | " + " | ".join(fmt(rob[str(s)]) for s in cfg.noise_sigmas) + " |")
            ax.errorbar(cfg.noise_sigmas, [100 * rob[str(s)]["mean"] for s in cfg.noise_sigmas],
                        yerr=[100 * rob[str(s)]["std"] for s in cfg.noise_sigmas], marker="o", capsize=3, label=cell)
        ax.set_xscale("symlog", linthresh=1e-3)
        ax.set_xlabel("noise variance σ")
        ax.set_ylabel("test accuracy (%)")
        ax.legend(fontsize=7)
        plots.append(save(fig, out_dir / "robustness.png"))
    lines += ["", "## Resources per cell", "", "| cell | distillation (s) | peak memory (MB) | evaluation (s) |",
              "|---|---|---|---|"]
    for cell, r in cells_.items():
        res = r["resources"]
        lines.append(f"| {cell} | {res['distill_seconds']:.0f} | {res['peak_memory_mb']:.0f} | {res['eval_seconds']:.0f} |")
    return lines, plots
