"""The paper's tables as commands (``audioforge distill-table --preset table1|table2|ablation|robustness``).

A table is a grid of distillation cells (method x CPC x network x feature), each run by
:func:`run_distill` in its own fresh process (so its wall time and peak memory are its own)
into ``<output>/cells/<cell>/``; a cell whose ``report.json`` exists is reused, so an interrupted
table resumes.  The table's MLflow run is the parent of the cells' runs.  Every table writes
``report.md``, ``report.json`` and a plot, and the resource table (wall time, peak memory per
cell) comes with each.

Two protocols (``protocol``).  ``paper``: the dataset's own split (FSDD: stratified at random over
every speaker, so every test speaker is also a training speaker).  ``speaker`` (the default, FSDD):
train, validation and test speakers are disjoint; the test speaker rotates over ``speakers``
(null: every speaker), the next speaker in alphabetical order (cyclically) validates, the others
train.  Every cell then runs once per rotation (``<cell>-<test speaker>``) and the table shows
the mean ± std over rotations.  Each learned cell says when selection kept its starting set
(iteration 0, the random real clips it started from), and each cell's gain over Random at the
same CPC under the identical evaluation is paired by rotation.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from audioforge.config import to_dict
from audioforge.distill.config import DistillConfig
from audioforge.errors import ConfigError, DataError
from audioforge.logs import progress_shown
from audioforge.processes import WorkerPool
from audioforge.run import Run, paired_test, summary
from audioforge.training import apply_trainer
from callbacks.synthetic_validation import kept_start

PROTOCOLS = ("paper", "speaker")


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
    whole_runs: int = 2                  # fresh networks per whole-data entry
    whole_epochs: int = 30
    whole_batch_size: int = 64           # 38 SGD steps per epoch on FSDD's 2430 clips (VGG11 needs the steps: 60% after 150 at 256)
    protocol: str = "speaker"            # speaker: train/val/test speakers disjoint, test speaker rotated; paper: FSDD's random split
    speakers: list[str] | None = None    # speaker protocol: the test speakers rotated over (null: every speaker)
    noise_sigmas: list[float] = field(default_factory=lambda: [0.0, 0.001, 0.005, 0.01, 0.05])
    jobs: int = 1                        # cells run at once, each in its own process (1 torch thread each)
    sets: list[str] = field(default_factory=list)  # robustness: distilled.pt files to use instead of distilling cells
    run_missing: bool = True             # false: only assemble the cells already run (the rest show as not run)
    distill: DistillConfig = field(default_factory=DistillConfig)
    # DistillConfig fields by cell: a key names a method (``mtt``) or a cell name's prefix
    # (``datm-cpc1``, ``mtt-cpc50-resnet18``); a cell takes every key that matches it, the more
    # specific later, so ``datm-cpc1`` refines ``datm``
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    trainer: dict[str, Any] = field(default_factory=dict)  # applied to distill.trainer (--accelerator gpu ... land here)

    def validate(self, path: str = "") -> None:
        from audioforge.distill.methods import METHODS, method

        if self.kind not in ("table1", "table2", "ablation", "robustness"):
            raise ConfigError(f"kind must be table1, table2, ablation or robustness, got {self.kind!r}")
        if self.methods is None:
            self.methods = list(METHODS)
        self.distill.trainer = apply_trainer(self.distill.trainer, self.trainer)
        for name in self.methods:
            method(name)
        if not self.methods or not self.cpcs or not self.networks or not self.features:
            raise ConfigError("methods, cpcs, networks and features must each name at least one value")
        for key in self.overrides:
            check_override_key(key)
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if self.protocol == "speaker" and self.distill.data.dataset != "fsdd":
            raise ConfigError(f"protocol speaker splits FSDD by speaker; {self.distill.data.dataset} has its own "
                              "split (by actor for RAVDESS, by fold for UrbanSound8K): set protocol: paper")
        if self.speakers is not None and (not self.speakers or len(set(self.speakers)) != len(self.speakers)):
            raise ConfigError(f"speakers must name distinct test speakers, got {self.speakers}")
        if min(self.whole_runs, self.whole_epochs, self.whole_batch_size) < 1:
            raise ConfigError("whole_runs, whole_epochs and whole_batch_size must be >= 1")


@dataclass(frozen=True)
class Rotation:
    """One split of a table: ``suffix`` of its cells' names and the datamodule options it sets."""
    test: str | None = None
    val: str | None = None

    @property
    def suffix(self) -> str:
        return f"-{self.test}" if self.test else ""

    @property
    def options(self) -> dict[str, Any]:
        return {"test_speakers": [self.test], "val_speakers": [self.val]} if self.test else {}

    def data(self, data):
        """``data`` (a DatasetConfig) with this rotation's split options added."""
        return dataclasses.replace(data, options={**data.options, **self.options})


def rotations(cfg: TableConfig) -> list[Rotation]:
    """The table's splits: one for ``paper``, one per test speaker for ``speaker`` (the speakers
    are read from the data, which must hold at least three)."""
    if cfg.protocol == "paper":
        return [Rotation()]
    dm = cfg.distill.data.load(cfg.distill.features, cfg.distill.seed)
    found = sorted({item.group for item in dm.items})
    if len(found) < 3:
        raise DataError(f"protocol speaker needs at least 3 speakers (test, validation, training); the data holds "
                        f"{len(found)}: {', '.join(found)}")
    unknown = [s for s in cfg.speakers or [] if s not in found]
    if unknown:
        raise ConfigError(f"speakers: unknown speaker {unknown[0]!r} (the data holds {', '.join(found)})")
    return [Rotation(s, found[(found.index(s) + 1) % len(found)]) for s in cfg.speakers or found]


def check_cpcs(cfg: TableConfig, rots: list[Rotation]) -> None:
    """Every CPC fits the smallest class of every rotation's training split (before any cell runs)."""
    from audioforge.distill.coresets import check_cpc

    for rotation in rots:
        dm = rotation.data(cfg.distill.data).load(cfg.distill.features, cfg.distill.seed)
        labels = dm.tensors(dm.train_split)[1]
        try:
            check_cpc(labels, max(cfg.cpcs), dm.num_classes)
        except ConfigError as exc:
            where = f" with test speaker {rotation.test}" if rotation.test else ""
            raise ConfigError(f"cpcs{where}: {exc}") from None

def cell_name(method: str, cpc: int, network: str, feature: str, rotation: Rotation = Rotation()) -> str:
    return f"{method}-cpc{cpc}-{network}-{feature}{rotation.suffix}"


OVERRIDE_PARTS = ("method", "cpc", "network", "feature")  # a cell name's parts, in order


def check_override_key(key: str) -> None:
    """``overrides.<key>`` names a registered method, optionally followed by ``-cpc<N>``, a network
    and a feature, as a cell's name does."""
    from audioforge.distill.methods import METHODS

    parts = str(key).split("-")
    if parts[0] not in METHODS or len(parts) > len(OVERRIDE_PARTS) or (
            len(parts) > 1 and re.fullmatch(r"cpc\d+", parts[1]) is None):
        raise ConfigError(f"overrides.{key}: expected <method>[-cpc<N>[-<network>[-<feature>]]] with a method "
                          f"from {', '.join(METHODS)}, as in 'datm' or 'datm-cpc1'")


def cell_overrides(cfg: TableConfig, method: str, cpc: int, network: str, feature: str) -> dict[str, Any]:
    """The ``overrides`` a cell takes, merged from the least to the most specific key."""
    from audioforge.config import deep_merge

    name = cell_name(method, cpc, network, feature).split("-")
    merged: dict[str, Any] = {}
    for key in sorted(cfg.overrides, key=lambda k: k.count("-")):
        parts = key.split("-")
        if parts == name[:len(parts)]:
            merged = deep_merge(merged, cfg.overrides[key])
    return merged


def cells(cfg: TableConfig, rots: list[Rotation] | None = None) -> list[tuple[str, DistillConfig]]:
    from audioforge.config import deep_merge, from_dict

    out = []
    for rotation in rots or [Rotation()]:
        for feature in cfg.features:
            for network in cfg.networks:
                for cpc in cfg.cpcs:
                    for method in cfg.methods:
                        cell = cell_name(method, cpc, network, feature, rotation)
                        data = to_dict(cfg.distill)
                        data = deep_merge(data, cell_overrides(cfg, method, cpc, network, feature))
                        data |= {"method": method, "cpc": cpc, "network": network, "name": cell,
                                 "features": {**data["features"], "kind": feature}}
                        data["data"] = {**data["data"], "options": {**data["data"]["options"], **rotation.options}}
                        if cfg.kind == "table2" and cfg.eval_archs:
                            data["eval"] = {**data["eval"], "archs": list(cfg.eval_archs)}
                        out.append((cell, from_dict(DistillConfig, data, f"cell {cell}")))
    return out


def _run_cell(cfg: DistillConfig, parent_id: str | None) -> dict[str, Any]:
    from audioforge.distill.experiment import run_distill
    from audioforge.logs import setup_logging

    setup_logging(quiet=True)
    return run_distill(cfg, parent_id)[1]


def run_tasks(tasks: list[tuple[str, Path, Any, tuple]], jobs: int, run_missing: bool = True) -> dict[str, dict[str, Any]]:
    """Each task ``(name, result_path, fn, args)`` in a fresh process (``jobs`` at a time), longest
    first as listed; a task whose result file exists is read back; with ``run_missing=False`` tasks
    without one are left out."""
    results, pending = {}, []
    for name, path, fn, args in tasks:
        if path.is_file():
            results[name] = json.loads(path.read_text())
        else:
            pending.append((name, fn, args))
    if pending and run_missing:
        bar = tqdm(total=len(pending), unit="cell", desc="table cells", disable=not progress_shown(),
                   dynamic_ncols=True)
        with bar, WorkerPool(jobs, fresh_process=True, status=bar.set_postfix_str) as pool:
            for name, fn, args in pending:
                pool.submit(name, fn, *args)
            while pool.pending:
                name, result = pool.next()
                results[name] = result
                bar.update(1)
    return {name: results[name] for name, *_ in tasks if name in results}


def existing_set(path: str) -> dict[str, Any]:
    """The report of the distill run that wrote ``path`` (its folder's report.json)."""
    report = Path(path).parent / "report.json"
    if not Path(path).is_file() or not report.is_file():
        raise DataError(f"{path}: not a distilled set with its report.json beside it")
    return json.loads(report.read_text()) | {"distilled": str(path)}


def fill_command(cfg: TableConfig, out_dir: Path) -> str:
    """Write the table's resolved config to ``<out_dir>/table.yaml`` (every cell run) and return the
    command that fills the table's missing cells from it: finished cells are read back, so only
    those not run yet train."""
    import shlex

    import yaml

    data = to_dict(cfg) | {"output_dir": str(out_dir.resolve()), "run_missing": True}
    paths = [(data["distill"]["data"], "root"), (data["distill"]["data"], "cache_dir"), (data["distill"]["tracking"], "store")]
    for section, key in paths:  # the command works from any folder
        if section.get(key) and "://" not in str(section[key]):
            section[key] = str(Path(section[key]).resolve())
    path = out_dir / "table.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return f"audioforge distill-table --config {shlex.quote(str(path))}"


def run_table(cfg: TableConfig) -> tuple[Path, dict[str, Any]]:
    with Run("distill-table", cfg.name, cfg.output_dir, cfg.distill.tracking, {"audioforge.table": cfg.kind},
             to_dict(cfg)) as run:
        out_dir = run.out_dir
        rots = [Rotation()] if cfg.kind == "robustness" and cfg.sets else rotations(cfg)
        configs: dict[str, DistillConfig] = {}
        not_run: list[str] = []
        if cfg.kind == "robustness" and cfg.sets:
            results = {Path(s).parent.name: existing_set(s) for s in cfg.sets}
        else:
            check_cpcs(cfg, rots)
            todo = cells(cfg, rots)
            for cell, cell_cfg in todo:
                cell_cfg.output_dir = str(out_dir / "cells" / cell)
            configs = dict(todo)
            fill = fill_command(cfg, out_dir)
            # whole-data entries (the longest tasks) first, then the cells, all on one pool
            whole = whole_tasks(cfg, rots, out_dir / "whole") if cfg.kind == "table1" and cfg.whole_dataset else []
            tasks = whole + [(cell, Path(c.output_dir) / "report.json", _run_cell, (c, run.id)) for cell, c in todo]
            done = run_tasks(tasks, cfg.jobs, cfg.run_missing)
            results = {cell: done[cell] for cell in configs if cell in done}
            not_run = [name for name, *_ in tasks if name not in done]
        report: dict[str, Any] = {"name": cfg.name, "kind": cfg.kind, "protocol": cfg.protocol,
                                  "rotations": [{"test": r.test, "val": r.val} for r in rots if r.test],
                                  "cells": results}
        if not_run:
            report["not_run"] = {"cells": not_run, "command": fill}
        if cfg.kind == "table1" and cfg.whole_dataset:
            report["whole_dataset"] = {name.removeprefix(WHOLE): done[name] for name, *_ in whole if name in done}
        if cfg.kind == "robustness":
            report["robustness"] = {cell: robustness(configs.get(cell, cfg.distill), r, cfg.noise_sigmas) for cell, r in results.items()}
        report["summary"] = summarize(cfg, rots, results, report.get("whole_dataset", {}))
        lines, plots = markdown(out_dir, cfg, report)
        report = run.report(report, lines, files=plots)
    return out_dir, report


WHOLE = "whole-"


def whole_tasks(cfg: TableConfig, rots: list[Rotation], folder: Path) -> list[tuple[str, Path, Any, tuple]]:
    """Each network trained on the whole real training split (the tables' upper bound), per
    rotation, and under the ``speaker`` protocol also on the paper split (so both are reported):
    one task each (``whole-<network>-<feature>[-<speaker>][-paper]``), its result written to
    ``folder`` and read back by a rerun."""
    folder.mkdir(parents=True, exist_ok=True)
    splits = [("", r) for r in rots] + ([("paper", Rotation())] if cfg.protocol == "speaker" else [])
    evaluation = dataclasses.replace(cfg.distill.eval, runs=cfg.whole_runs, epochs=cfg.whole_epochs,
                                     batch_size=cfg.whole_batch_size, val_every=max(1, cfg.whole_epochs // 6))
    tasks = []
    for feature in cfg.features:
        for tag, rotation in splits:
            dcfg = dataclasses.replace(cfg.distill, features={**cfg.distill.features, "kind": feature},
                                       data=rotation.data(cfg.distill.data), eval=evaluation)
            for network in cfg.networks:
                key = f"{network}-{feature}{rotation.suffix}" + (f"-{tag}" if tag else "")
                path = folder / f"{key}.json"
                tasks.append((WHOLE + key, path, _whole_entry, (network, dcfg, path)))
    return tasks


def _whole_entry(network: str, cfg: DistillConfig, path: Path) -> dict[str, Any]:
    """One whole-data entry: ``cfg.eval`` networks trained on the whole training split, the
    epoch chosen on validation, test scored once; written to ``path``."""
    from audioforge.distill.evaluate import evaluate_set
    from audioforge.distill.experiment import datamodule, real_split
    from audioforge.logs import setup_logging
    from audioforge.training import configure_threads

    setup_logging(quiet=True)
    configure_threads(cfg.trainer)
    dm = datamodule(cfg)
    x, y = real_split(dm, "train")
    res = evaluate_set(network, {"x": x, "y": y}, real_split(dm, "val"), real_split(dm, "test"), dm.num_classes,
                       cfg.eval, cfg.seed, trainer=cfg.trainer, augment=dataclasses.asdict(cfg.augment))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=2, default=float))
    tmp.replace(path)
    return json.loads(path.read_text())


def combine(entries: list[dict | None]) -> dict | None:
    """One table entry from a cell's per-rotation results (each ``mean``/``std`` over runs): the
    mean ± std over rotations, or the one rotation's own mean ± std over runs."""
    entries = [e for e in entries if e]
    if not entries:
        return None
    if len(entries) == 1:
        return {"mean": entries[0]["mean"], "std": entries[0]["std"], "n": 1}
    means = [e["mean"] for e in entries]
    return {"mean": float(np.mean(means)), "std": float(np.std(means, ddof=1)), "n": len(means)}


def summarize(cfg: TableConfig, rots: list[Rotation], results: dict[str, dict], whole: dict[str, dict]) -> dict:
    """Per (method, CPC, network, feature): accuracy over rotations, gain over Random (paired by
    rotation), fraction of the whole-data accuracy, and how many rotations kept the starting set;
    table2 cells per evaluated architecture."""
    out = {}
    for feature in cfg.features:
        for network in cfg.networks:
            for cpc in cfg.cpcs:
                for method in cfg.methods:
                    names = [cell_name(method, cpc, network, feature, r) for r in rots]
                    reports = [results.get(n) for n in names]
                    archs = (cfg.eval_archs or cfg.networks) if cfg.kind == "table2" else [network]
                    entry: dict[str, Any] = {"runs": sum(r is not None for r in reports), "rotations": len(rots)}
                    for arch in archs:
                        own = [r["eval"].get(arch) if r else None for r in reports]
                        entry.setdefault("eval", {})[arch] = combine(own)
                    acc = entry["eval"].get(network)  # on its own architecture (table2 may not evaluate it)
                    learned = [k for r in reports if r and (k := kept_start(r.get("selection"))) is not None]
                    entry["kept_start"] = sum(learned) if learned else None
                    if method != "random" and "random" in cfg.methods:
                        randoms = (results.get(cell_name("random", cpc, network, feature, rt)) for rt in rots)
                        pairs = [(r["eval"][network]["mean"], q["eval"][network]["mean"]) for r, q in zip(reports, randoms)
                                 if r and q and network in r["eval"] and network in q["eval"]]
                        if pairs:
                            entry["gain_over_random"] = paired_gain([a - b for a, b in pairs])
                    whole_acc = combine([whole.get(f"{network}-{feature}{r.suffix}") for r in rots])
                    if acc and whole_acc:
                        entry["fraction_of_whole"] = acc["mean"] / whole_acc["mean"]
                    out[cell_name(method, cpc, network, feature)] = entry
    for network in cfg.networks:
        for feature in cfg.features:
            key = f"{network}-{feature}"
            entry = combine([whole.get(f"{key}{r.suffix}") for r in rots])
            if entry:
                out[f"whole-{key}"] = entry
            if f"{key}-paper" in whole:
                out[f"whole-{key}-paper"] = combine([whole[f"{key}-paper"]])
    return out


def paired_gain(gains: list[float]) -> dict[str, Any]:
    """Mean ± std of per-rotation differences, and the two-sided p of a paired t-test that they
    are 0 (None where undefined: :func:`audioforge.run.paired_test`)."""
    return summary(gains) | {"n": len(gains), "p": paired_test(gains, [0.0] * len(gains))["p_value"]}


def robustness(distill: DistillConfig, cell_report: dict, sigmas: list[float]) -> dict[str, Any]:
    """Gaussian noise of variance sigma on the waveforms rebuilt from a distilled set: features
    re-extracted, fresh networks trained on them, accuracy on the real test split."""

    from audioforge.distill.evaluate import evaluate_set
    from audioforge.distill.experiment import datamodule, load_distilled, raw_features, real_split
    from audioforge.distill.reconstruct import features_to_audio, noisy_features

    payload = load_distilled(cell_report["distilled"])
    meta = payload["meta"]
    dcfg = dataclasses.replace(distill, features={**distill.features, "kind": meta["features"]["kind"]})
    dm = datamodule(dcfg)
    waves = features_to_audio(raw_features(payload["x"], meta), dm.features)
    stats = getattr(dm, "feature_stats", None)
    out = {}
    for sigma in sigmas:
        x = noisy_features(waves, sigma, dm.features, seed=dcfg.seed)
        if stats:  # the same standardisation the real splits went through
            x = (x - stats["mean"]) / stats["std"]
        res = evaluate_set(meta["network"], {"x": x, "y": payload["y"]} | ({"lr": payload["lr"]} if "lr" in payload else {}),
                           real_split(dm, "val"), real_split(dm, "test"), dm.num_classes, dcfg.eval, dcfg.seed,
                           trainer=dcfg.trainer, augment=dataclasses.asdict(dcfg.augment))
        out[str(sigma)] = {"mean": res["mean"], "std": res["std"]}
    return out


def fmt(res: dict | None) -> str:
    return f"{100 * res['mean']:.2f} ± {100 * res['std']:.2f}" if res else "not run"


def cell_text(entry: dict | None, arch: str | None = None) -> str:
    """A table cell: accuracy, and the starting set kept by selection where it was."""
    if not entry or not entry["runs"]:
        return "not run"
    text = fmt(entry["eval"][arch] if arch else next(iter(entry["eval"].values())))
    if entry["runs"] < entry["rotations"]:
        text += f" ({entry['runs']}/{entry['rotations']} rotations)"
    if entry.get("kept_start"):
        text += f" **kept start {entry['kept_start']}/{entry['runs']}**"
    return text


def relative_text(entry: dict | None) -> str:
    if not entry or not entry["runs"]:
        return "not run"
    parts = []
    if "gain_over_random" in entry:
        g = entry["gain_over_random"]
        if g["n"] < 2:  # no spread over rotations to show
            parts.append(f"{100 * g['mean']:+.2f} (one rotation)")
        else:
            parts.append(f"{100 * g['mean']:+.2f} ± {100 * g['std']:.2f}"
                         + (f" (p = {g['p']:.2f})" if g.get("p") is not None else ""))
    if "fraction_of_whole" in entry:
        parts.append(f"{entry['fraction_of_whole']:.3f} of whole")
    return "; ".join(parts) or "-"


def markdown(out_dir: Path, cfg: TableConfig, report: dict[str, Any]) -> tuple[list[str], list[Path]]:
    """The table's report lines, and its plot in ``out_dir``."""
    from audioforge.plots import grouped_bars, plt, save

    cells_, summary, plots = report["cells"], report["summary"], []
    rots = report.get("rotations") or []
    over = f"mean ± std over {cfg.distill.eval.runs} runs ({cfg.protocol} protocol)"
    if rots:  # one rotation: its own spread over runs
        spread = f"{len(rots)} test speakers" if len(rots) > 1 else f"{cfg.distill.eval.runs} runs with one test speaker"
        over = (f"mean ± std over {spread} (speaker protocol: "
                + ", ".join(f"test {r['test']} / val {r['val']}" for r in rots) + "; the other speakers train)")
    lines = [f"# {cfg.name} ({cfg.kind})", "", f"Test accuracy (%) of fresh networks trained on the distilled sets, {over}; "
             "sets and epochs chosen on validation. **kept start k/n**: in k of n rotations selection kept the "
             "starting set (the random real clips at iteration 0), so the cell measures Random, not the method.", ""]
    if cfg.kind in ("table1", "ablation"):
        cols = cfg.methods if cfg.kind == "table1" else cfg.features
        whole = cfg.kind == "table1" and "whole_dataset" in report
        lines += ["| network | CPC | " + " | ".join(cols) + (" | whole dataset |" if whole else " |"),
                  "|---|---" + "|---" * (len(cols) + whole) + "|"]
        relative = []
        series: dict[str, tuple[list[float], list[float]]] = {c: ([], []) for c in cols}
        groups = []
        for feature in cfg.features if cfg.kind == "table1" else [None]:
            for network in cfg.networks:
                for cpc in cfg.cpcs:
                    names = ([cell_name(m, cpc, network, feature) for m in cfg.methods] if cfg.kind == "table1"
                             else [cell_name(cfg.methods[0], cpc, network, f) for f in cfg.features])
                    entries = [summary.get(n) for n in names]
                    label = f"{network}{'' if feature is None or len(cfg.features) == 1 else ' ' + feature}"
                    row = f"| {label} | {cpc} | " + " | ".join(cell_text(e) for e in entries)
                    if whole:
                        row += f" | {fmt(summary.get(f'whole-{network}-{feature}'))}"
                    lines.append(row + " |")
                    relative.append(f"| {label} | {cpc} | " + " | ".join(relative_text(e) for e in entries) + " |")
                    groups.append(f"{network} CPC {cpc}")
                    for c, e in zip(cols, entries):
                        v = next(iter(e["eval"].values())) if e and e["runs"] else None
                        series[c][0].append(100 * v["mean"] if v else np.nan)
                        series[c][1].append(100 * v["std"] if v else 0.0)
        if cfg.kind == "table1":
            lines += ["", "Gain over Random at the same CPC and network (points, paired by rotation, mean ± std; p: "
                      "two-sided paired t-test that the gain is 0, which few rotations rarely reject) and the "
                      "fraction of the whole-data accuracy:", "",
                      "| network | CPC | " + " | ".join(cols) + " |", "|---|---" + "|---" * len(cols) + "|", *relative]
            papers = [(n, summary[f"whole-{n}-{f}-paper"]) for n in cfg.networks for f in cfg.features
                      if f"whole-{n}-{f}-paper" in summary]
            if papers:
                lines += ["", "Whole-data accuracy on the paper's split (every speaker in training and test): "
                          + ", ".join(f"{n} {fmt(e)}" for n, e in papers) + "."]
        fig = grouped_bars(groups, series, "test accuracy (%)", cfg.name)
        plots.append(save(fig, out_dir / f"{cfg.kind}.png"))
    elif cfg.kind == "table2":
        archs = cfg.eval_archs or cfg.networks
        lines += ["| distilled with \\ evaluated on | " + " | ".join(archs) + " |", "|---" * (len(archs) + 1) + "|"]
        for feature in cfg.features:
            for network in cfg.networks:
                for cpc in cfg.cpcs:
                    for method in cfg.methods:
                        e = summary.get(cell_name(method, cpc, network, feature))
                        lines.append(f"| {network} ({method}, CPC {cpc}) | "
                                     + " | ".join(cell_text(e, a) for a in archs) + " |")
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
    if not_run := report.get("not_run"):
        lines += ["", f"**Not run: {len(not_run['cells'])} of {len(not_run['cells']) + len(cells_)} cells** "
                  f"({', '.join(not_run['cells'])}). `{not_run['command']}` runs only those (add "
                  "`--accelerator gpu` for a GPU); the finished cells are read back."]
    lines += ["", "## Resources per cell", "", "| cell | device | distillation (s) | peak memory (MB) | peak GPU memory (MB) "
              "| evaluation (s) |", "|---|---|---|---|---|---|"]
    for cell, r in cells_.items():
        res = r["resources"]
        gpu = f"{res['peak_gpu_memory_mb']:.0f}" if "peak_gpu_memory_mb" in res else "-"
        lines.append(f"| {cell} | {res.get('device', 'cpu')} | {res['distill_seconds']:.0f} | {res['peak_memory_mb']:.0f} "
                     f"| {gpu} | {res['eval_seconds']:.0f} |")
    return lines, plots
