"""``audioforge continual``: class-incremental learning with a rehearsal memory (DDFAD, section 5.1).

The classes arrive in ``steps`` equal groups, in ``orders`` class orders.  A *cell* is one order x
memory x network; it runs every step in turn:

1. **train** on the memory (``per_class`` examples of every class of the earlier steps) plus every
   training clip of the step's new classes, by the ``rule`` (:mod:`audioforge.distill.continual.rules`:
   ``scratch``, a fresh network; ``finetune``, EEIL-style from the previous step's network); SGD,
   the epoch chosen on the validation clips of the classes seen so far; then the test clips of
   the classes seen so far are scored once, the prediction taken among those classes only;
2. **remember**: ``per_class`` examples of each of the step's classes join the memory
   (:mod:`audioforge.distill.continual.memory`: Random, Herding in the new network's embedding, or a set
   distilled from the step's classes alone).

No step sees a later class: its training clips, memory, validation and test hold only the classes
seen so far, and the features are standardised with the first step's training clips.  Each cell
runs in its own process (``jobs`` at a time) as a run nested under the command's MLflow run and
writes every finished step (and, under ``finetune``, its network) to its folder, so a stopped
command resumes at the first unfinished step of each cell.  A learned memory depends on the step's
classes, the cell's network and the distillation settings, never on the rule, so one already in a
step's folder (``memory.pt``) is read back instead of distilled again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audioforge.config import to_dict
from audioforge.distill.continual.config import CORESET_MEMORIES, ContinualConfig
from audioforge.distill.continual.rules import RULES, StepData, carries_weights, network_state
from audioforge.distill.continual.steps import class_orders, split_steps
from audioforge.errors import ConfigError
from audioforge.processes import WorkerPool, progress
from audioforge.run import Run, mean_std
from callbacks.synthetic_validation import kept_start

# Table 4 of the DDFAD paper: final accuracy (%) of class-incremental learning, memory of 20 clips
# per old class; "EEIL" is EEIL with its herding memory, here the ``herding`` memory.
PAPER_TABLE4 = {
    "fsdd": {"resnet18": {"mtt": 92.05, "herding": 80.51, "random": 87.10},
             "convnet": {"mtt": 92.92, "herding": 76.41, "random": 83.33},
             "vgg11": {"mtt": 91.67, "herding": 74.15, "random": 80.77}},
    "urbansound8k": {"resnet18": {"mtt": 46.25, "herding": 21.58, "random": 38.55},
                     "convnet": {"mtt": 51.00, "herding": 13.62, "random": 15.22},
                     "vgg11": {"mtt": 47.12, "herding": 26.74, "random": 31.74}},
    "ravdess": {"resnet18": {"mtt": 39.31, "herding": 15.94, "random": 22.54},
                "convnet": {"mtt": 34.03, "herding": 13.19, "random": 11.11},
                "vgg11": {"mtt": 36.25, "herding": 16.72, "random": 28.31}},
}


@dataclass(frozen=True)
class Cell:
    order_index: int
    order: tuple[int, ...]
    memory: str
    network: str

    @property
    def name(self) -> str:
        return f"{self.memory}-{self.network}-order{self.order_index}"


def plan(cfg: ContinualConfig, num_classes: int) -> list[Cell]:
    orders = class_orders(num_classes, cfg.orders, cfg.order_seed, cfg.class_orders)
    for order in orders:
        split_steps(order, cfg.steps)
    # learned memories first: they take longest, so the pool ends evenly
    memories = sorted(cfg.memory.methods, key=lambda m: m in CORESET_MEMORIES)
    return [Cell(i, tuple(o), m, n) for m in memories for n in cfg.networks for i, o in enumerate(orders)]


def check_data(cfg: ContinualConfig, dm) -> None:
    """Bad sizes fail before anything is recorded: the steps must divide the classes, and every
    class must hold at least ``per_class`` training clips."""
    split_steps(list(range(dm.num_classes)), cfg.steps)
    _, y = dm.tensors(dm.train_split)
    counts = torch.bincount(y, minlength=dm.num_classes)
    small = int(counts.argmin())
    if cfg.memory.per_class > int(counts[small]):
        raise ConfigError(f"memory.per_class {cfg.memory.per_class} is larger than class {dm.class_names[small]!r} "
                          f"({int(counts[small])} training clips in {dm.name}'s {dm.train_split} split)")


def seen_accuracy(model, x: torch.Tensor, y: torch.Tensor, seen: list[int]) -> dict[str, Any]:
    """Accuracy with the prediction taken among the ``seen`` classes only, overall and per class."""
    from lightning_modules.classifier import predict_logits

    logits = predict_logits(model, x)
    mask = torch.full((logits.shape[1],), float("-inf"))
    mask[torch.as_tensor(seen)] = 0.0
    pred = (logits + mask).argmax(1)
    per_class = {int(c): float((pred[y == c] == c).float().mean()) for c in seen}
    return {"acc": float((pred == y).float().mean()), "per_class": per_class}


def _select(dm, split: str, classes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = dm.tensors(split)
    keep = torch.isin(y, torch.as_tensor(classes))
    return x[keep], y[keep]


def run_cell(cfg: ContinualConfig, cell: Cell, folder: str, parent_id: str | None) -> dict[str, Any]:
    """Every step of one cell (in a worker process); finished steps are read back from ``folder``."""
    import dataclasses

    from audioforge.distill.continual import memory as memories
    from audioforge.logs import setup_logging
    from audioforge.training import configure_threads

    setup_logging(quiet=True)
    configure_threads(cfg.trainer)
    out = Path(folder)
    seed = cfg.seeds[0] * 1000 + cell.order_index
    dm = cfg.data.load(cfg.features, seed)
    steps = split_steps(list(cell.order), cfg.steps)
    if cfg.normalize:
        dm.standardize(classes=steps[0])
    augment = dataclasses.asdict(cfg.distill.augment)
    tags = {"audioforge.memory": cell.memory, "audioforge.network": cell.network,
            "audioforge.order": ",".join(map(str, cell.order)), "audioforge.dataset": cfg.data.dataset}
    rule = RULES[cfg.rule]
    empty_x, empty_y = torch.empty((0, *dm.input_shape)), torch.zeros(0, dtype=torch.long)
    mem_x, mem_y, results, previous, rerun = [], [], [], None, False
    with Run("continual", cell.name, out, cfg.tracking, tags, parent_id=parent_id) as run:
        for t, new in enumerate(steps):
            step_dir = out / f"step-{t}"
            seen = [c for s in steps[:t + 1] for c in s]
            last = t == len(steps) - 1
            done = step_dir / "result.json"
            needed = [] if last else ["memory.pt"] + (["model.pt"] if carries_weights(cfg.rule) else [])
            # a step reads back only while every step before it did: a step run again changes what follows
            if not rerun and done.is_file() and all((step_dir / f).is_file() for f in needed):
                result = json.loads(done.read_text())
                if not last:
                    saved = torch.load(step_dir / "memory.pt")
                    mem_x.append(saved["x"])
                    mem_y.append(saved["y"])
                    if carries_weights(cfg.rule):
                        previous = torch.load(step_dir / "model.pt")
                results.append(result)
                progress()
                continue
            rerun = True
            started = time.perf_counter()
            new_x, new_y = _select(dm, dm.train_split, new)
            data = StepData((torch.cat([empty_x, *mem_x]), torch.cat([empty_y, *mem_y])), (new_x, new_y),
                            _select(dm, "val", seen), seen, new, seed * 100 + t)
            model, best, info = rule(cfg, cell.network, dm.num_classes, data, previous, augment)
            x, y = data.train
            train_seconds = time.perf_counter() - started
            test = seen_accuracy(model, *_select(dm, "test", seen), seen)  # scored once, after selection
            old = [c for c in seen if c not in new]
            result = {"step": t, "new_classes": new, "seen_classes": seen, "train_labels": sorted(set(y.tolist())),
                      "train_size": len(y), "memory_counts": {str(c): int((y == c).sum()) for c in old},
                      "val_acc": float(best.best_score), "best_epoch": best.best_epoch, "test_acc": test["acc"],
                      "test_acc_old": float(np.mean([test["per_class"][c] for c in old])) if old else None,
                      "test_acc_new": float(np.mean([test["per_class"][c] for c in new])),
                      "train_seconds": train_seconds} | info
            if not last:  # the memory of this step's classes, for the steps to come
                started = time.perf_counter()
                step_dir.mkdir(parents=True, exist_ok=True)
                if carries_weights(cfg.rule):
                    previous = network_state(model)
                    torch.save(previous, step_dir / "model.pt")
                if cell.memory in CORESET_MEMORIES:
                    model.net.eval()
                    idx = memories.coreset(cell.memory, new_x, new_y, new, cfg.memory.per_class, seed * 100 + t,
                                           embed=model.net.embed)
                    kept = {"x": new_x[idx].clone(), "y": new_y[idx].clone()}
                elif (step_dir / "memory.pt").is_file():
                    kept = torch.load(step_dir / "memory.pt")
                else:
                    kept = memories.learned(cell.memory, cell.network, cfg.distill, dm, new, cfg.memory.per_class,
                                            seed * 100 + t, step_dir / "distill")
                    kept.pop("lr", None)
                if "selection" in kept:
                    result["memory_selection"] = kept["selection"]
                torch.save(kept, step_dir / "memory.pt")
                mem_x.append(kept["x"])
                mem_y.append(kept["y"])
                result["memory_seconds"] = time.perf_counter() - started
            step_dir.mkdir(parents=True, exist_ok=True)
            done.write_text(json.dumps(result, indent=1))
            if run.id:
                run.tracker.log_metrics(run.id, {k: result[k] for k in ("test_acc", "val_acc", "test_acc_new")}
                                        | ({"test_acc_old": result["test_acc_old"]} if old else {}), step=t)
            results.append(result)
            progress()
        report = {"cell": cell.name, "memory": cell.memory, "network": cell.network, "order": list(cell.order),
                  "steps": results, "final_test_acc": results[-1]["test_acc"]}
        (out / "report.json").write_text(json.dumps(report, indent=1))
        if run.id:
            run.tracker.log_metrics(run.id, {"final/test_acc": report["final_test_acc"]})
    return report


def run_continual(cfg: ContinualConfig, progress_bar: bool = True) -> tuple[Path, dict[str, Any]]:
    from tqdm import tqdm

    cfg.validate()
    dm = cfg.data.load(cfg.features, cfg.seeds[0])
    check_data(cfg, dm)
    cells = plan(cfg, dm.num_classes)
    tags = {"audioforge.rule": cfg.rule}
    with Run("continual", cfg.name, cfg.output_dir, cfg.tracking, tags, to_dict(cfg)) as run:
        reports, todo = {}, []
        for cell in cells:
            done = run.out_dir / "cells" / cell.name / "report.json"
            if done.is_file():
                reports[cell.name] = json.loads(done.read_text())
            else:
                todo.append(cell)
        bar = tqdm(total=len(todo) * cfg.steps, unit="step", desc=cfg.name, disable=not progress_bar, dynamic_ncols=True)
        with bar, WorkerPool(cfg.jobs, progress=bar.update, fresh_process=True, status=bar.set_postfix_str) as pool:
            for cell in todo:
                pool.submit(cell.name, run_cell, cfg, cell, str(run.out_dir / "cells" / cell.name), run.id)
            while pool.pending:
                name, report = pool.next()
                reports[name] = report
        report = summarize(cfg, dm, cells, reports)
        plot = step_plot(report, run.out_dir / "accuracy_per_step.png")
        metrics = {f"final/{m}/{n}/test_acc_mean": v["final"]["mean"] for m, by in report["summary"].items()
                   for n, v in by.items()}
        report = run.report(report, markdown(report), metrics, [plot])
    return run.out_dir, report


def summarize(cfg: ContinualConfig, dm, cells: list[Cell], reports: dict[str, dict]) -> dict[str, Any]:
    """Per memory and network: mean ± std over orders of the test accuracy at every step."""
    summary: dict[str, dict[str, Any]] = {}
    for memory in cfg.memory.methods:
        for network in cfg.networks:
            mine = [reports[c.name] for c in cells if c.memory == memory and c.network == network]
            per_step = [[r["steps"][t]["test_acc"] for r in mine] for t in range(cfg.steps)]
            old = [[r["steps"][t]["test_acc_old"] for r in mine] for t in range(1, cfg.steps)]
            kept = [k for r in mine for s in r["steps"][:-1] if (k := kept_start(s.get("memory_selection"))) is not None]
            entry = {"steps": [dict(zip(("mean", "std"), mean_std(v))) for v in per_step],
                     "old": [dict(zip(("mean", "std"), mean_std(v))) for v in old],
                     "final": dict(zip(("mean", "std"), mean_std(per_step[-1]))),
                     "orders": len(mine),
                     "paper_final": PAPER_TABLE4.get(cfg.data.dataset, {}).get(network, {}).get(memory)}
            if kept:
                entry["kept_start"] = [int(sum(kept)), len(kept)]
            summary.setdefault(memory, {})[network] = entry
    return {"name": cfg.name, "dataset": cfg.data.dataset, "classes": dm.class_names, "steps": cfg.steps,
            "rule": cfg.rule, "per_class": cfg.memory.per_class, "network_kwargs": cfg.network_kwargs,
            "orders": [list(c.order) for c in cells if c.memory == cells[0].memory and c.network == cells[0].network],
            "summary": summary, "cells": reports}


RULE_TEXT = {"scratch": "a fresh network per step on memory plus the new classes' clips",
             "finetune": "EEIL-style: the previous step's network fine-tuned on memory plus the new classes' clips "
                         "with a distillation loss on the old classes, then a balanced stage"}


def _pct(entry: dict[str, float]) -> str:
    return f"{100 * entry['mean']:.2f} ± {100 * entry['std']:.2f}"


def _kwargs(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in kwargs.items())


def markdown(report: dict[str, Any]) -> list[str]:
    steps = report["steps"]
    lines = [f"# {report['name']}: class-incremental learning on {report['dataset']}", "",
             f"{len(report['orders'])} class orders, {steps} steps of {len(report['classes']) // steps} classes, "
             f"memory of {report['per_class']} examples per old class, rule `{report['rule']}` "
             f"({RULE_TEXT[report['rule']]}), epoch chosen on the seen classes' validation clips. "
             + (f"Networks built with {_kwargs(report['network_kwargs'])}. " if report.get("network_kwargs") else "")
             + "Test accuracy (%) on all classes seen so far, mean ± std over orders.", "",
             "| memory | network | " + " | ".join(f"step {t + 1}" for t in range(steps)) + " | paper (final) |",
             "|---|---|" + "---|" * (steps + 1)]
    for memory, by in report["summary"].items():
        for network, e in by.items():
            label = memory + (f" (kept start {e['kept_start'][0]}/{e['kept_start'][1]})" if e.get("kept_start")
                              and e["kept_start"][0] else "")
            paper = "-" if e["paper_final"] is None else f"{e['paper_final']:.2f}"
            lines.append(f"| {label} | {network} | " + " | ".join(_pct(s) for s in e["steps"]) + f" | {paper} |")
    lines += ["", "Accuracy on the old classes only (%), from step 2:", "",
              "| memory | network | " + " | ".join(f"step {t + 1}" for t in range(1, steps)) + " |",
              "|---|---|" + "---|" * (steps - 1)]
    for memory, by in report["summary"].items():
        for network, e in by.items():
            lines.append(f"| {memory} | {network} | " + " | ".join(_pct(s) for s in e["old"]) + " |")
    lines += ["", "Class orders: " + "; ".join(" ".join(map(str, o)) for o in report["orders"]) + ".",
              "The paper's column is its Table 4 (memory: DDFAD = mtt, EEIL = herding, Random); its protocol trains "
              "EEIL-style (rule `finetune`).", ""]
    return lines


def step_plot(report: dict[str, Any], path: Path) -> Path:
    from audioforge.plots import plt, save

    networks = list(next(iter(report["summary"].values())))
    fig, axes = plt.subplots(1, len(networks), figsize=(4.5 * len(networks), 3.4), squeeze=False)
    steps = np.arange(1, report["steps"] + 1)
    for ax, network in zip(axes[0], networks):
        for memory, by in report["summary"].items():
            e = by[network]
            ax.errorbar(steps, [100 * s["mean"] for s in e["steps"]], yerr=[100 * s["std"] for s in e["steps"]],
                        marker="o", capsize=3, label=memory)
        ax.set_xticks(steps)
        ax.set_xlabel("step")
        ax.set_ylabel("test accuracy, seen classes (%)")
        ax.set_title(f"{report['dataset']}, {network}", fontsize=10)
        ax.legend(fontsize=8)
    return save(fig, path)
