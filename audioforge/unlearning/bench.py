"""``audioforge unlearn-bench``: every method and scheme, on every forget speaker and any other
forget sets, over seeds, with forgetting quality from many models, as one resumable grid and one
leaderboard.

A *cell* is one ``audioforge unlearn`` experiment forgetting one forget set (its original, gold,
schemes and methods for each seed; fits in parallel worker processes; a nested MLflow run under
the benchmark's): an FSDD speaker (``speakers``; the leaderboard rotates over them) or an entry
of ``forget_sets`` (a class, a random fraction of the training clips, a group of any dataset:
each reported in its own table).  A cell whose ``report.json`` exists is read back, so a stopped benchmark
resumes at its first unfinished cell.  The forgetting-quality cell (a speaker's or any forget
set's) runs ``N`` seeds (``forgetting_quality.models``): ``N`` gold and ``N`` unlearned models per method, from which
:mod:`audioforge.unlearning.forgetting` scores each method; the other cells run ``seeds``.

Per model the leaderboard gives, over speakers x seeds (mean ± std): macro F1 on forget,
retain-train, validation and test; the average absolute gap to the gold model of accuracy over
those four splits (as SalUn reports it); the Jensen-Shannon divergence of forget outputs to gold;
the membership attack's AUC at telling forget clips from same-speaker held-out clips; the linear
probe's AUC; the time over the gold model's.  Nothing here selects anything: every number is a
report of fixed configurations.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from audioforge.config import load_config, override, to_dict
from audioforge.errors import ConfigError
from audioforge.paths import beside, data_root
from audioforge.run import Run, mean_std
from audioforge.tracking import TrackingConfig
from audioforge.training import trainer_overrides
from audioforge.unlearning.config import UnlearnConfig
from audioforge.unlearning.forgetting import MIN_MODELS, forgetting_quality, logit_margin
from audioforge.unlearning.likelihood_ratio import MIN_MODELS as LIRA_MIN_MODELS
from audioforge.unlearning.likelihood_ratio import attack as lira_attack
from audioforge.unlearning.methods import METHODS, VARIANT, method
from datamodules.forget import ForgetSet

log = logging.getLogger(__name__)
SPLITS = {"forget": "excluded", "retain_train": "retain_train", "val": "val", "test": "test"}


@dataclass
class ForgettingQualityConfig:
    # the cell that runs `models` seeds: an FSDD speaker (george) or any cell's name (speaker-george,
    # class-3, fraction-0.1, group-jackson); null: no forgetting quality
    cell: str | None = "george"
    models: int = 32                  # N gold and N unlearned models per method
    delta: float = 0.01

    def validate(self, path: str) -> None:
        if self.cell is not None and self.models < MIN_MODELS:
            raise ConfigError(f"{path}.models must be >= {MIN_MODELS} (forgetting quality compares "
                              f"distributions over models), got {self.models}")


@dataclass
class TuningConfig:
    """Each method's own Optuna study (the same number of trials each) on the tuning speaker and
    seeds, test sealed; the chosen settings then run in every cell as ``<method>-tuned`` beside the
    defaults, on the benchmark's seeds (never the tuning seeds) and on every speaker."""

    trials: int = 0                    # completed trials per method; 0: no tuning
    speaker: str | None = None         # null: the forgetting-quality cell's speaker, else the first speaker
    seeds: list[int] = field(default_factory=lambda: [100])
    workers: int = 2                   # processes sharing each study
    sampler_seed: int | None = 0
    methods: list[str] | None = None   # null: every benchmarked method with a search space
    # what a trial minimises, sum(weight * value) (sweeps.config.ObjectiveConfig); null: the sweeps' default
    objective: dict[str, float] | None = None

    def validate(self, path: str) -> None:
        if self.trials < 0 or self.workers < 1:
            raise ConfigError(f"{path}: trials must be >= 0 and workers >= 1, got {self.trials} and {self.workers}")
        if self.trials and not self.seeds:
            raise ConfigError(f"{path}.seeds must hold at least one seed")


TUNED = "tuned"


@dataclass
class BenchConfig:
    name: str = "unlearning-benchmark"
    unlearn_config: str = "configs/unlearn/paper.yaml"   # the protocol every cell runs
    unlearn_overrides: list[str] = field(default_factory=list)
    methods: dict[str, dict[str, Any]] | None = None     # null: every registered method, its defaults
    speakers: list[str] | None = None                    # FSDD: null = every speaker in the data; [] = none
    forget_sets: list[ForgetSet] = field(default_factory=list)  # more cells: a class, a fraction, a group
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    forget_holdout: float = 0.2                          # same-speaker non-members for the attack
    forgetting_quality: ForgettingQualityConfig = field(default_factory=ForgettingQualityConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    data_root: str | None = None                         # null: the unlearn config's data.root
    output_dir: str | None = None                        # null: outputs/unlearn-bench/<name>
    jobs: int = 0                                        # worker processes per cell (0 = one per core)
    trainer: dict[str, Any] = field(default_factory=dict)  # every run's trainer (--accelerator gpu ... land here)
    tracking: TrackingConfig = field(default_factory=lambda: TrackingConfig(experiment="audioforge-unlearning-bench"))

    def validate(self, path: str = "") -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError("seeds must hold at least one seed, all distinct")
        if self.jobs < 0:
            raise ConfigError(f"jobs must be >= 0, got {self.jobs}")
        trainer_overrides(self.trainer)
        for i, forget in enumerate(self.forget_sets):
            forget.validate(f"forget_sets.{i}")
        if self.tuning.trials:
            scored = set(self.seeds) | (set(range(self.forgetting_quality.models))
                                        if self.forgetting_quality.cell is not None else set())
            shared = sorted(scored & set(self.tuning.seeds))
            if shared:
                raise ConfigError(f"tuning.seeds: seed {shared[0]} is also a benchmark seed; the chosen settings are "
                                  "scored on fresh seeds (give tuning seeds outside the benchmark's)")

    def benchmarked_methods(self) -> dict[str, dict[str, Any]]:
        return dict(self.methods) if self.methods is not None else {name: {} for name in METHODS}

    def tuned_methods(self) -> list[str]:
        """The methods the tuning studies cover (checked against the benchmarked ones)."""
        if not self.tuning.trials:
            return []
        methods = self.benchmarked_methods()
        if self.tuning.methods is None:
            return [m for m in methods if method(m).search]
        missing = [m for m in self.tuning.methods if m not in methods]
        if missing:
            raise ConfigError(f"tuning.methods: {missing[0]!r} is not a benchmarked method ({', '.join(methods)})")
        for m in self.tuning.methods:
            if not method(m).search:
                raise ConfigError(f"tuning.methods: method {m!r} registers no search space")
        return list(self.tuning.methods)


@dataclass
class Cell:
    """One forget set of the grid: an FSDD speaker (``speaker`` set) or a ``forget_sets`` entry."""

    name: str                  # its folder and nested MLflow run: speaker-george, class-3, fraction-0.1
    forget: ForgetSet
    speaker: str | None = None

    @classmethod
    def of_speaker(cls, speaker: str) -> Cell:
        return cls(f"speaker-{speaker}", ForgetSet("group", [speaker]), speaker)

    @classmethod
    def of_forget_set(cls, forget: ForgetSet) -> Cell:
        label = f"{forget.fraction:g}" if forget.kind == "fraction" else "+".join(map(str, forget.values))
        return cls(f"{forget.kind}-{re.sub(r'[^A-Za-z0-9_.+-]', '_', label)}", forget)

    def named(self, name: str) -> bool:
        """Whether ``name`` names this cell (its folder name, or an FSDD speaker's bare name)."""
        return name in (self.name, self.speaker)

    def forget_override(self) -> str:
        if self.speaker is not None:
            return f"data.forget_speakers=[{self.speaker}]"
        return override("data.forget", asdict(self.forget))


def cell_overrides(bench: BenchConfig, cell: Cell, seeds: list[int]) -> list[str]:
    """The unlearn-config overrides of ``cell`` over ``seeds``."""
    overrides = [*bench.unlearn_overrides, override("methods", bench.benchmarked_methods()), cell.forget_override(),
                 f"seeds={seeds}", f"data.forget_holdout={bench.forget_holdout}", f"jobs={bench.jobs}",
                 f"name={cell.name}", f"tracking.store={bench.tracking.store}",
                 f"tracking.experiment={bench.tracking.experiment}",
                 f"tracking.enabled={str(bench.tracking.enabled).lower()}", *trainer_overrides(bench.trainer)]
    if bench.tracking.uri:
        overrides.append(f"tracking.uri={bench.tracking.uri}")
    if bench.data_root:
        overrides.append(f"data.root={bench.data_root}")
    return overrides


def tuning_overrides(bench: BenchConfig, name: str, speaker: str) -> list[str]:
    """The unlearn-config overrides of method ``name``'s tuning trials (its benchmark settings as the start)."""
    overrides = cell_overrides(bench, Cell.of_speaker(speaker), list(bench.tuning.seeds))
    return overrides + [override(f"methods.{name}.{k}", v) for k, v in bench.benchmarked_methods()[name].items()]


def cell_configs(bench: BenchConfig, cells: list[Cell], config_dir: Path) -> list[tuple[Cell, UnlearnConfig]]:
    """One unlearn config per cell (checked now: a bad key fails before anything runs)."""
    fq = bench.forgetting_quality
    out = []
    for cell in cells:
        fq_cell = fq.cell is not None and cell.named(fq.cell)
        seeds = sorted(set(bench.seeds) | set(range(fq.models))) if fq_cell else list(bench.seeds)
        out.append((cell, load_config(UnlearnConfig, [beside(bench.unlearn_config, config_dir)],
                                      cell_overrides(bench, cell, seeds))))
    return out


def check_forget_sets(cells: list[tuple[Cell, UnlearnConfig]]) -> None:
    """Each ``forget_sets`` cell's data carved once now, so a class, group or fraction the data
    cannot give fails (naming it) before any cell runs."""
    from audioforge.unlearning.protocol import build_datamodule

    for cell, cfg in cells:
        if cell.speaker is None:
            build_datamodule(cfg, cfg.seeds[0]).setup()


def all_speakers(cfg: UnlearnConfig) -> list[str]:
    from datamodules.fsdd import FSDDDataModule

    dm = FSDDDataModule(data_root(cfg.data.root), forget_speakers=[], download=cfg.data.download,
                        features=cfg.features, cache_dir=cfg.data.cache_dir)
    dm.prepare_data()
    return sorted({item.group for item in dm.items})


def bench_cells(bench: BenchConfig, probe: UnlearnConfig) -> tuple[list[Cell], list[str]]:
    """The grid's cells (speakers first) and the data's speakers (none off FSDD)."""
    if probe.data.dataset == "fsdd":
        available = all_speakers(probe)
        speakers = available if bench.speakers is None else list(bench.speakers)
    else:
        if bench.speakers:
            raise ConfigError(f"speakers: FSDD's speakers; on {probe.data.dataset} name the cells under forget_sets "
                              "(e.g. forget_sets=[{kind: group, values: [...]}])")
        available, speakers = [], []
    unknown = [s for s in speakers if s not in available]
    if unknown:
        raise ConfigError(f"speakers: unknown speaker {unknown[0]!r} (the data has {', '.join(available)})")
    cells = [Cell.of_speaker(s) for s in speakers] + [Cell.of_forget_set(f) for f in bench.forget_sets]
    if not cells:
        raise ConfigError("speakers and forget_sets are both empty: the benchmark has no cell to run"
                          + ("" if probe.data.dataset == "fsdd" else f" (on {probe.data.dataset} the cells come from "
                                                                     "forget_sets alone)"))
    names = [c.name for c in cells]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"forget_sets: cell {twice[0]!r} is named twice (each forget set once)")
    return cells, available


# tune(method, unlearn config path, overrides, tuning, study folder, tracking, parent run id, progress) -> result
Tuner = Callable[..., dict[str, Any]]


def run_bench(bench: BenchConfig, config_dir: Path, progress: bool = True,
              tune: Tuner | None = None) -> tuple[Path, dict[str, Any]]:
    """Run (or resume) the benchmark; ``config_dir`` is where relative paths in ``bench`` start;
    ``tune`` runs one method's tuning study (:func:`sweeps.tuning.tune_method`, which the command
    passes in: the sweeps sit above the drivers)."""
    from audioforge.unlearning.experiment import run_experiment
    from audioforge.unlearning.plots import bench_plots

    # the unlearn config's data section (a placeholder forget set lets any dataset's config load)
    probe = load_config(UnlearnConfig, [beside(bench.unlearn_config, config_dir)],
                        [*bench.unlearn_overrides, override("methods", bench.benchmarked_methods()),
                         *([f"data.root={bench.data_root}"] if bench.data_root else []),
                         override("data.forget", asdict(ForgetSet("fraction")))])
    cells, available = bench_cells(bench, probe)
    speakers = [c.speaker for c in cells if c.speaker is not None]
    fq_cell = quality_cell(bench.forgetting_quality, cells)
    tuned = bench.tuned_methods()
    tuning_speaker = bench.tuning.speaker or (fq_cell.speaker if fq_cell else None) or (speakers[0] if speakers else None)
    if tuned and tuning_speaker is None:
        raise ConfigError("tuning.trials: the studies tune on an FSDD speaker and the benchmark has none "
                          "(set tuning.trials=0, or add speakers)")
    if tuned and tuning_speaker not in available:
        raise ConfigError(f"tuning.speaker: unknown speaker {tuning_speaker!r} (the data has {', '.join(available)})")
    if tuned and tune is None:
        raise ConfigError("tuning.trials: this entry point runs no tuning studies (run `audioforge unlearn-bench`)")
    cells = cell_configs(bench, cells, config_dir)
    check_forget_sets(cells)
    unlearn_config = beside(bench.unlearn_config, config_dir)
    studies = {name: tuning_overrides(bench, name, tuning_speaker) for name in tuned}
    for name, overrides in studies.items():  # every search space checked before anything runs
        tune(name, unlearn_config, overrides, bench.tuning, Path("."), bench.tracking, None, progress, check_only=True)
    with Run("unlearn-bench", bench.name, bench.output_dir, bench.tracking, {"audioforge.role": "benchmark"},
             to_dict(bench)) as run:
        tuning = {}
        for name, overrides in studies.items():
            tuning[name] = tune(name, unlearn_config, overrides, bench.tuning, run.out_dir / "tuning", bench.tracking,
                                run.id, progress)
            for _, cfg in cells:
                cfg.methods[f"{name}{VARIANT}{TUNED}"] = {**cfg.methods[name], **tuning[name]["params"]}
                cfg.validate()
        reports = {}
        for cell, cfg in cells:
            cfg.output_dir = str(run.out_dir / "cells" / cell.name)
            done = Path(cfg.output_dir) / "report.json"
            if done.is_file():
                log.info("cell %s: reusing %s", cell.name, done)
                reports[cell.name] = json.loads(done.read_text())
            else:
                reports[cell.name] = run_experiment(cfg, progress=progress, parent_id=run.id)[1]
        by_speaker = {c.speaker: reports[c.name] for c, _ in cells if c.speaker is not None}
        report = leaderboard(bench, by_speaker)
        report["forget_sets"] = {c.name: {"forget_set": c.forget.describe(), "seeds": list(bench.seeds),
                                          "leaderboard": model_rows(bench, {c.name: reports[c.name]},
                                                                    list(reports[c.name]["metrics"]))}
                                 for c, _ in cells if c.speaker is None}
        if fq_cell is not None:
            folder = next(Path(cfg.output_dir) for c, cfg in cells if c is fq_cell)
            report["forgetting_quality"] = forgetting_table(folder, reports[fq_cell.name], bench.forgetting_quality,
                                                            fq_cell)
        if tuning:
            report["tuning"] = tuning_table(bench, by_speaker, tuning, tuning_speaker)
        tables = {"": report.get("leaderboard", {})} | {f"{c}/": t["leaderboard"]
                                                         for c, t in report["forget_sets"].items()}
        summary = {f"{prefix}{m}/{k}": v["mean"] for prefix, rows in tables.items() for m, row in rows.items()
                   for k, v in row.items() if isinstance(v, dict) and v.get("mean") is not None}
        fq_prefix = "" if fq_cell is None or fq_cell.speaker is not None else f"{fq_cell.name}/"
        for m, v in report.get("forgetting_quality", {}).get("models", {}).items():
            m = f"{fq_prefix}{m}"
            summary |= {f"{m}/forgetting_quality": v["forgetting_quality"], f"{m}/lira_example_auc": v["lira"]["example_auc"],
                        f"{m}/lira_model_auc": v["lira"]["model_auc"]}
        report = run.report(report, markdown(report), summary, bench_plots(report, run.out_dir))
    return run.out_dir, report


def model_rows(bench: BenchConfig, reports: dict[str, dict[str, Any]], models: list[str]) -> dict[str, dict[str, Any]]:
    """Per model, mean ± std of each metric over the cells in ``reports`` x the benchmark's seeds."""
    first = next(iter(reports.values()))
    rows: dict[str, dict[str, Any]] = {}
    for model in models:
        values: dict[str, list[float]] = {}

        def add(key: str, v: float | None) -> None:
            if v is not None:
                values.setdefault(key, []).append(float(v))

        for speaker, report in reports.items():
            index = [report["seeds"].index(s) for s in bench.seeds]
            m, gold = report["metrics"][model], report["metrics"]["gold"]
            for i in index:
                for name, split in SPLITS.items():
                    add(f"{name}_f1", m[split]["f1"]["values"][i])
                    add(f"{name}_acc", m[split]["acc"]["values"][i])
                add("avg_gap", np.mean([abs(m[split]["acc"]["values"][i] - gold[split]["acc"]["values"][i])
                                        for split in SPLITS.values()]))
                forgetting = report.get("forgetting", {}).get(model, {})
                for key in ("js_to_gold", "probe_auc", "attack_auc_forget_vs_held_out"):
                    if key in forgetting:
                        add(key, forgetting[key]["values"][i])
                add("time_over_gold", report["timing"]["seconds"][model]["values"][i]
                    / report["timing"]["seconds"]["gold"]["values"][i])
        rows[model] = {k: dict(zip(("mean", "std"), mean_std(v))) | {"n": len(v)} for k, v in values.items()}
        rows[model]["epochs"] = first["timing"]["unlearn_epochs_over_gold_epochs"].get(model)
    return rows


def quality_cell(fq: ForgettingQualityConfig, cells: list[Cell]) -> Cell | None:
    """The cell ``forgetting_quality.cell`` names (None when it is null)."""
    if fq.cell is None:
        return None
    for cell in cells:
        if cell.named(fq.cell):
            return cell
    raise ConfigError(f"forgetting_quality.cell {fq.cell!r} is not among the benchmark's cells "
                      f"({', '.join(c.name for c in cells)}; a speaker's cell by its bare name too)")


def leaderboard(bench: BenchConfig, reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every model's row over speakers x the benchmark's seeds (none when the benchmark has no speaker)."""
    out: dict[str, Any] = {"name": bench.name, "speakers": list(reports), "seeds": list(bench.seeds)}
    if not reports:
        return out
    models = list(next(iter(reports.values()))["metrics"])
    out |= {"models": models, "leaderboard": model_rows(bench, reports, models)}
    return out


def tuning_table(bench: BenchConfig, reports: dict[str, dict[str, Any]], tuning: dict[str, dict[str, Any]],
                 speaker: str) -> dict[str, Any]:
    """Each tuned method: its chosen settings, the validation objective of those and of the defaults
    on the tuning seeds, and default against tuned on the speakers it was not tuned on."""
    others = {s: r for s, r in reports.items() if s != speaker}
    out: dict[str, Any] = {"speaker": speaker, "seeds": list(bench.tuning.seeds),
                           "trials_per_method": bench.tuning.trials,
                           "weights": next(iter(tuning.values())).get("weights", {}), "methods": {}}
    for name, result in tuning.items():
        entry = {**result}
        if others:
            rows = model_rows(bench, others, [name, f"{name}{VARIANT}{TUNED}"])
            entry["other_speakers"] = {"speakers": list(others), "default": rows[name], "tuned": rows[f"{name}{VARIANT}{TUNED}"]}
        out["methods"][name] = entry
    return out


def forgetting_table(folder: Path, report: dict[str, Any], fq: ForgettingQualityConfig, cell: Cell) -> dict[str, Any]:
    """Forgetting quality of every model against the gold models, on ``fq.models`` seeds; the gold
    models' halves against each other give the estimate's floor (at half the models)."""
    import torch

    seeds = list(range(fq.models))

    def margins(model: str) -> np.ndarray:
        rows = []
        for seed in seeds:
            saved = torch.load(folder / f"seed-{seed}" / model / "forget_logits.pt")
            rows.append(logit_margin(saved["logits"].numpy(), saved["labels"].numpy()))
        return np.stack(rows)

    gold = margins("gold")
    models = {}
    for m in report["metrics"]:
        if m != "gold":
            outputs = margins(m)
            models[m] = forgetting_quality(gold, outputs, fq.delta) | {"lira": lira_attack(outputs, gold)}
    half = fq.models // 2
    floor = forgetting_quality(gold[:half], gold[half:2 * half], fq.delta) if half >= MIN_MODELS else None
    if floor is not None and half >= LIRA_MIN_MODELS:
        floor["lira"] = lira_attack(gold[:half], gold[half:2 * half])
    return {"cell": cell.name, "forget_set": cell.forget.describe(), "models_per_side": fq.models, "delta": fq.delta, "statistic": "logit margin",
            "models": models, "gold_vs_gold_half": floor}


def _cell(entry: dict[str, Any] | None, digits: int = 3) -> str:
    if not entry or entry.get("mean") is None:
        return "-"
    return f"{entry['mean']:.{digits}f} ± {entry['std']:.{digits}f}"


TABLE_HEAD = ["| model | forget acc | forget F1 | test F1 | avg gap to gold | JS to gold | attack AUC | probe AUC | "
              "forgetting quality | time / gold |", "|---|---|---|---|---|---|---|---|---|---|"]


def table_lines(rows: dict[str, Any], quality: dict[str, Any]) -> list[str]:
    """One leaderboard table: original and gold first, then by average gap to gold."""
    lines = list(TABLE_HEAD)
    order = sorted(rows, key=lambda m: (m not in ("original", "gold"), rows[m].get("avg_gap", {}).get("mean") or 0))
    for model in order:
        r = rows[model]
        q = quality.get(model, {}).get("forgetting_quality")
        lines.append(f"| {model} | {_cell(r.get('forget_acc'))} | {_cell(r.get('forget_f1'))} | "
                     f"{_cell(r.get('test_f1'))} | {_cell(r.get('avg_gap'))} | "
                     f"{_cell(r.get('js_to_gold'), 4)} | {_cell(r.get('attack_auc_forget_vs_held_out'))} | "
                     f"{_cell(r.get('probe_auc'))} | {'-' if q is None else f'{q:.3f}'} | "
                     f"{_cell(r.get('time_over_gold'))} |")
    return lines


def quality_rows(report: dict[str, Any]) -> dict[str, Any]:
    """The table of the forgetting-quality cell: a forget set's, or the speakers' leaderboard."""
    cell = report["forgetting_quality"]["cell"]
    return report["forget_sets"][cell]["leaderboard"] if cell in report.get("forget_sets", {}) else report["leaderboard"]


def markdown(report: dict[str, Any]) -> list[str]:
    fq = report.get("forgetting_quality")
    home = quality_rows(report) if fq else None  # the table that gets the forgetting-quality column
    lines = [f"# {report['name']}", ""]
    if "leaderboard" in report:
        lines += [f"Forget speakers {', '.join(report['speakers'])}; seeds {report['seeds']} per speaker; mean ± std "
                  "over speakers x seeds. Gap: mean |accuracy - gold's| over forget, retain-train, validation and test. "
                  "Attack AUC: forget clips against held-out clips of the same speaker (the original's value is the "
                  "attack's power). Fixed configurations: nothing is selected here.", "",
                  *table_lines(report["leaderboard"], fq["models"] if home is report["leaderboard"] else {})]
        if home is report["leaderboard"]:
            lines += quality_markdown(fq)
    for name, entry in report.get("forget_sets", {}).items():
        here = home is entry["leaderboard"]
        lines += ["", f"## Forgetting {entry['forget_set']} (cell {name})", "",
                  f"Seeds {entry['seeds']}; mean ± std over seeds. Validation and test hold no clip of a forgotten "
                  "group or class; the attack tells forget clips from held-out clips of the same forget set. On one "
                  "class, macro F1 counts every class a model predicts there (a wrong guess is a class at F1 0): read "
                  "forget accuracy.", "",
                  *table_lines(entry["leaderboard"], fq["models"] if here else {})]
        if here:
            lines += quality_markdown(fq)
    if "tuning" in report:
        lines += tuning_markdown(report["tuning"])
    lines.append("")
    return lines


def quality_markdown(fq: dict[str, Any]) -> list[str]:
    """Forgetting quality's paragraph (its column is in the cell's table) and the likelihood-ratio table."""
    floor = fq.get("gold_vs_gold_half")
    lines = ["", f"Forgetting quality: cell {fq['cell']} ({fq['forget_set']}), {fq['models_per_side']} gold and "
             f"{fq['models_per_side']} unlearned models per method, per-example epsilon from thresholds on the "
             f"{fq['statistic']} (delta {fq['delta']}), mean halving score (1 best, "
             f"{next(iter(fq['models'].values()))['worst_possible']:.4f} for fully separable outputs)."
             + (f" Gold against gold ({fq['models_per_side'] // 2} per side): "
                f"{floor['forgetting_quality']:.3f}, the estimate's own noise at that size." if floor else "")]
    return lines + lira_markdown(fq)


def lira_markdown(fq: dict[str, Any]) -> list[str]:
    """The likelihood-ratio attack's table: its power (original against gold) first."""
    models = fq["models"]
    lines = ["", "## Likelihood-ratio attack from many models", "",
             f"Cell {fq['cell']}, {fq['models_per_side']} models per side. Per forget clip, Gaussians of the "
             f"{fq['statistic']} under the model's kind and under gold, fitted leaving the target model out; "
             "per-example AUC over (model, clip) pairs, TPR at 1% FPR, and per-model AUC of the summed ratio "
             "(audioforge/unlearning/likelihood_ratio.py). The original's row is the attack's power; 0.5 is "
             "indistinguishable from gold.", "",
             "| model | per-example AUC | TPR at 1% FPR | per-model AUC |", "|---|---|---|---|"]
    floor = (fq.get("gold_vs_gold_half") or {}).get("lira")
    rows = [(m, v["lira"]) for m, v in models.items() if "lira" in v]
    rows.sort(key=lambda r: (r[0] != "original", r[1]["example_auc"]))
    if floor:
        rows.insert(1 if rows and rows[0][0] == "original" else 0, (f"gold vs gold ({floor['models']} per side)", floor))
    for m, a in rows:
        lines.append(f"| {m} | {a['example_auc']:.3f} | {a['tpr_at_1pct_fpr']:.3f} | {a['model_auc']:.3f} |")
    return lines


OBJECTIVE_TERMS = {"excluded_gap": "|forget F1 - gold's|", "val_gap": "|validation F1 - gold's|",
                   "time_ratio": "time over gold",
                   "forget_margin": "the forget margins' distance to gold's (a share of the original's)"}


def objective_text(weights: dict[str, float]) -> str:
    """``{"excluded_gap": 1, "time_ratio": 0.1}`` -> ``|forget F1 - gold's| + 0.1 x time over gold``."""
    return " + ".join(("" if w == 1 else f"{w:g} x ") + OBJECTIVE_TERMS.get(k, k) for k, w in weights.items() if w) or "-"


def tuning_markdown(tuning: dict[str, Any]) -> list[str]:
    lines = ["", "## Tuned settings", "",
             f"Each method's own Optuna study, {tuning['trials_per_method']} completed trials each, on speaker "
             f"{tuning['speaker']} with seeds {tuning['seeds']} (not benchmark seeds), test sealed. Objective: "
             f"{objective_text(tuning.get('weights', {}))} (lower is better). The `-tuned` "
             "rows above run the chosen settings on the benchmark's seeds; here default against tuned on the "
             "speakers the study never saw.", "",
             "| method | chosen settings | objective: default → tuned | avg gap, other speakers: default → tuned | "
             "forget F1, other speakers: default → tuned |", "|---|---|---|---|---|"]
    for name, t in tuning["methods"].items():
        settings = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in t["params"].items()) \
            or "the defaults (no trial beat them)"
        objective = f"{t['baseline']['score']:.3f} → {t['score']:.3f}"
        other = t.get("other_speakers")
        gap = f"{_cell(other['default'].get('avg_gap'))} → {_cell(other['tuned'].get('avg_gap'))}" if other else "-"
        f1 = f"{_cell(other['default'].get('forget_f1'))} → {_cell(other['tuned'].get('forget_f1'))}" if other else "-"
        lines.append(f"| {name} | {settings} | {objective} | {gap} | {f1} |")
    return lines
