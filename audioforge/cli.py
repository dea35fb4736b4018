"""The ``audioforge`` command.

    audioforge unlearn [--preset quick | --config FILE ...] [--data DIR] [key.path=value ...]
    audioforge classify --dataset D --arch A [--preset P] [--data DIR] [key.path=value ...]
    audioforge rir [--real] [--preset P] [--data DIR] [key.path=value ...]
    audioforge buffer | distill [--method M --cpc N --arch A --feature F] [--preset P] [key.path=value ...]
    audioforge distill-eval SET.pt [SET.pt ...] [--archs A,B] [key.path=value ...]

Configs are YAML (``configs/<command>/*.yaml``); any key can be overridden on the command line
(``original.epochs=10``, ``unlearning.phases.1.ops.0.scale=0.1``, ``seeds=[0,1]``).  Errors in
input (config, data) print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from audioforge.errors import AudioforgeError, ConfigError
from audioforge.logs import setup_logging

log = logging.getLogger("audioforge")


def _trainer_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("trainer (passed to lightning.pytorch.Trainer)")
    group.add_argument("--accelerator", help="cpu, gpu, cuda, mps, auto")
    group.add_argument("--devices", help="number of devices, a list like [0,1], or auto")
    group.add_argument("--strategy", help="auto, ddp, ddp_spawn, ...")
    group.add_argument("--precision", help="32-true, 16-mixed, bf16-mixed, ...")
    group.add_argument("--num-nodes", type=int, dest="num_nodes")


DATA_HELP = ("the folder holding the datasets' folders (fsdd/, ravdess/, urbansound8k/, ...), e.g. ../shared/data "
             "(default: $AUDIOFORGE_DATA or ./data)")


def _presets(command: str) -> list[str]:
    from audioforge.paths import preset

    return sorted(p.stem for p in preset(command, "x").parent.glob("*.yaml"))


def _common_flags(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--config", action="append", default=[], metavar="FILE",
                        help=f"YAML config (repeatable, later files win; default configs/{command}/"
                             f"{DEFAULT_PRESET.get(command, 'paper')}.yaml)")
    parser.add_argument("--preset", help=f"a config under configs/{command}/ by name: {', '.join(_presets(command))}")
    parser.add_argument("--data", help=DATA_HELP)
    parser.add_argument("--output", help="report folder (default: outputs/<command>/<name>-<time>)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar, warnings and errors only")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("overrides", nargs="*", metavar="key.path=value", help="config overrides")
    _trainer_flags(parser)


def registered() -> dict[str, str]:
    """The names in each registry, for the help texts (adding a method, network or dataset adds it here)."""
    from audioforge.distill.methods import METHODS
    from audioforge.unlearning.methods import METHODS as UNLEARNING_METHODS
    from callbacks.operations import OPERATIONS
    from datamodules.features import EXTRACTORS
    from datamodules.registry import DATAMODULES
    from lightning_modules.networks import NETWORKS

    return {"methods": ", ".join(METHODS), "networks": ", ".join(sorted(NETWORKS)),
            "datasets": ", ".join(DATAMODULES), "features": ", ".join(EXTRACTORS),
            "operations": ", ".join(OPERATIONS), "unlearning_methods": ", ".join(UNLEARNING_METHODS)}


def _distill_flags(parser: argparse.ArgumentParser, names: dict[str, str]) -> None:
    parser.add_argument("--arch", help=f"a registered network: {names['networks']}")
    parser.add_argument("--feature", help=f"features: {names['features']}")
    parser.add_argument("--dataset", help=f"a registered dataset (default fsdd): {names['datasets']}")


def build_parser() -> argparse.ArgumentParser:
    names = registered()
    parser = argparse.ArgumentParser(
        prog="audioforge", description="Tracked audio-ML experiments (MLflow store: mlruns/ unless MLFLOW_TRACKING_URI).",
        epilog="Each command takes YAML configs and key.path=value overrides; see README.md.")
    sub = parser.add_subparsers(dest="command", required=True)
    unlearn = sub.add_parser("unlearn", help="unlearning a forget set (an FSDD speaker by default; any dataset's "
                                             "group, class or random fraction with data.forget=...): original, gold, "
                                             f"schemes of registered operations: {names['operations']}; methods: "
                                             f"{names['unlearning_methods']}")
    _common_flags(unlearn, "unlearn")
    unlearn.add_argument("--dataset", help=f"a registered dataset (default fsdd; others need data.forget): "
                                           f"{names['datasets']}")
    unlearn.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2")
    unlearn.add_argument("--jobs", type=int, help="fits run in this many parallel worker processes (0 = one per CPU core)")
    classify = sub.add_parser("classify", help="train a registered network on any dataset, tracked in MLflow")
    _common_flags(classify, "classify")
    classify.add_argument("--dataset", help=f"a registered dataset: {names['datasets']}")
    classify.add_argument("--arch", help=f"a registered network: {names['networks']}")
    classify.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2")
    rir = sub.add_parser("rir", help="CNN-SVM hybrid on room impulse responses (simulated rooms by default)")
    _common_flags(rir, "rir")
    rir.add_argument("--real", action="store_true", help="the real RIRS_NOISES layout under --data (source databases)")
    rir.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2")
    buffer = sub.add_parser("buffer", help="train expert trajectories (SGD, a snapshot per epoch) for MTT")
    _common_flags(buffer, "distill")
    _distill_flags(buffer, names)
    distill = sub.add_parser("distill", help=f"distil a dataset ({names['methods']}) and evaluate it")
    _common_flags(distill, "distill")
    _distill_flags(distill, names)
    distill.add_argument("--method", help=f"a registered method: {names['methods']}")
    distill.add_argument("--cpc", type=int, help="clips per class")
    distill_eval = sub.add_parser("distill-eval", help="train fresh networks on saved distilled sets, score on test")
    _common_flags(distill_eval, "distill")
    _distill_flags(distill_eval, names)
    distill_eval.add_argument("--set", action="append", default=[], dest="sets", metavar="DISTILLED.pt",
                              help="a distilled set written by distill (repeatable)")
    distill_eval.add_argument("--archs", help="comma-separated architectures to evaluate on")
    table = sub.add_parser("distill-table", help="the distillation paper's tables: table1, table2, ablation, robustness")
    _common_flags(table, "distill-table")
    continual = sub.add_parser("continual", help="class-incremental learning with a rehearsal memory (random, "
                                                 "herding, or a distilled set per step)")
    _common_flags(continual, "continual")
    continual.add_argument("--dataset", help=f"a registered dataset (default fsdd): {names['datasets']}")
    continual.add_argument("--jobs", type=int, help="cells run in this many parallel worker processes (0 = one per CPU core)")
    nas = sub.add_parser("nas", help="architecture-search proxies: random, herding and distilled sets and early "
                                     "stopping, ranked against networks trained on the whole split")
    _common_flags(nas, "nas")
    nas.add_argument("--dataset", help=f"a registered dataset (default fsdd): {names['datasets']}")
    nas.add_argument("--jobs", type=int, help="trainings run in this many parallel worker processes (0 = one per CPU core)")
    privacy = sub.add_parser("privacy", help="membership attacks and closeness to real clips: does a distilled set "
                                             "keep its source clips private?")
    _common_flags(privacy, "privacy")
    privacy.add_argument("--set", help="a distilled.pt to examine (default: distil one with the config's distill)")
    privacy.add_argument("--jobs", type=int, help="networks trained in this many parallel worker processes (0 = one per CPU core)")
    bench = sub.add_parser("unlearn-bench", help="every unlearning method and scheme on every forget speaker, "
                                                  "over seeds, with forgetting quality from many models")
    _common_flags(bench, "unlearn-bench")
    bench.add_argument("--jobs", type=int, help="fits run in this many parallel worker processes (0 = one per CPU core)")
    sweep = sub.add_parser("sweep", help="Optuna study over the unlearning procedure, tracked in MLflow")
    sweep.add_argument("--config", action="append", default=[], metavar="FILE",
                       help="sweep YAML (default configs/sweep/quick.yaml)")
    sweep.add_argument("--preset", help=f"a config under configs/sweep/ by name: {', '.join(_presets('sweep'))}")
    sweep.add_argument("--data", help=DATA_HELP)
    sweep.add_argument("--workers", type=int, help="processes working on the study")
    sweep.add_argument("--n-trials", type=int, dest="n_trials", help="completed trials wanted, across workers")
    sweep.add_argument("--storage", help="Optuna storage URL (default sqlite:///sweeps/studies.db)")
    sweep.add_argument("--export-best", metavar="FILE", help="write the best trial's unlearn config as YAML")
    sweep.add_argument("--quiet", "-q", action="store_true", help="warnings and errors only")
    sweep.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    sweep.add_argument("overrides", nargs="*", metavar="key.path=value", help="config overrides")
    _trainer_flags(sweep)
    ui = sub.add_parser("ui", help="MLflow UI on the store and optuna-dashboard on the sweep storage")
    ui.add_argument("--store", default="mlruns", help="MLflow store folder (default mlruns)")
    ui.add_argument("--storage", default=None,
                    help="Optuna storage URL (default sqlite:///sweeps/studies.db when that file exists)")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--mlflow-port", type=int, default=5000)
    ui.add_argument("--dashboard-port", type=int, default=8080)
    ui.add_argument("--quiet", "-q", action="store_true")
    ui.set_defaults(overrides=[])
    return parser


def collect_overrides(args: argparse.Namespace) -> list[str]:
    out = []
    if getattr(args, "data", None):
        out.append(f"data.root={args.data}")
    if getattr(args, "output", None):
        out.append(f"output_dir={args.output}")
    if getattr(args, "seeds", None):
        out.append(f"seeds=[{args.seeds}]")
    if getattr(args, "dataset", None):
        out.append(f"data.dataset={args.dataset}")
    if getattr(args, "arch", None):
        out.append(f"{'network' if args.command in DISTILL_COMMANDS else 'model.network'}={args.arch}")
    if getattr(args, "feature", None):
        out.append(f"features.kind={args.feature}")
    if getattr(args, "method", None):
        out.append(f"method={args.method}")
    if getattr(args, "cpc", None) is not None:
        out.append(f"cpc={args.cpc}")
    if getattr(args, "archs", None):
        out.append(f"eval.archs=[{args.archs}]")
    if getattr(args, "real", False):
        out.append("data.dataset=rir_real")
    if getattr(args, "jobs", None) is not None:
        out.append(f"jobs={args.jobs}")
    for flag in ("workers", "n_trials", "storage"):
        if getattr(args, flag, None) is not None:
            out.append(f"{flag}={getattr(args, flag)}")
    for flag in ("accelerator", "devices", "strategy", "precision", "num_nodes"):
        value = getattr(args, flag, None)
        if value is not None:
            out.append(f"trainer.{flag}={value}")
    return out + list(args.overrides)


def config_files(args: argparse.Namespace, command: str) -> list[Path]:
    from audioforge.paths import preset

    if args.preset and args.config:
        raise ConfigError("give --preset or --config, not both")
    if args.preset:
        path = preset(command, args.preset)
        if not path.is_file():
            names = sorted(p.stem for p in path.parent.glob("*.yaml"))
            raise ConfigError(f"unknown preset {args.preset!r} for {command} (presets: {', '.join(names)})")
        return [path]
    return [Path(c) for c in args.config] or [preset(command, DEFAULT_PRESET[command])]


def cmd_unlearn(args: argparse.Namespace) -> int:
    import yaml

    from audioforge.config import load_config, to_dict
    from audioforge.unlearning.config import UnlearnConfig

    cfg = load_config(UnlearnConfig, config_files(args, "unlearn"), collect_overrides(args))
    if args.print_config:
        print(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        return 0
    from audioforge.unlearning.experiment import run_experiment

    out_dir, report = run_experiment(cfg, progress=not args.quiet)
    if not report:  # a DDP rank other than 0: rank 0 reports
        return 0
    print(f"report: {out_dir / 'report.md'}")
    if "mlflow" in report:
        print(f"mlflow: run {report['mlflow']['run_id']} in {report['mlflow']['tracking_uri']}")
    return 0


def print_config_or(args: argparse.Namespace, cfg) -> bool:
    import yaml

    from audioforge.config import to_dict

    if args.print_config:
        print(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return args.print_config


def announce(out_dir: Path, report: dict) -> None:
    print(f"report: {out_dir / 'report.md'}")
    if "mlflow" in report:
        print(f"mlflow: run {report['mlflow']['run_id']} in {report['mlflow']['tracking_uri']}")


def cmd_classify(args: argparse.Namespace) -> int:
    from audioforge.classify.config import ClassifyConfig
    from audioforge.config import load_config

    cfg = load_config(ClassifyConfig, config_files(args, "classify"), collect_overrides(args))
    if print_config_or(args, cfg):
        return 0
    from audioforge.classify.experiment import run_classify

    out_dir, report = run_classify(cfg, progress=not args.quiet)
    if report:
        acc, sd = report["summary"]["acc"]
        print(f"test accuracy {acc:.4f} ± {sd:.4f} over {len(cfg.seeds)} seed(s)")
        announce(out_dir, report)
    return 0


def cmd_rir(args: argparse.Namespace) -> int:
    from audioforge.config import load_config
    from audioforge.rir.config import HybridConfig

    cfg = load_config(HybridConfig, config_files(args, "rir"), collect_overrides(args))
    if print_config_or(args, cfg):
        return 0
    from audioforge.rir.experiment import run_hybrid

    out_dir, report = run_hybrid(cfg)
    for model, (acc, sd) in report["summary"].items():
        print(f"{model:>9} test accuracy {acc:.4f} ± {sd:.4f}")
    announce(out_dir, report)
    return 0


def load_distill(args: argparse.Namespace):
    from audioforge.config import load_config
    from audioforge.distill.config import DistillConfig

    return load_config(DistillConfig, config_files(args, "distill"), collect_overrides(args))


def cmd_buffer(args: argparse.Namespace) -> int:
    cfg = load_distill(args)
    if print_config_or(args, cfg):
        return 0
    from audioforge.distill.experiment import run_buffer

    folder, summary = run_buffer(cfg)
    print(f"buffer: {len(summary['experts'])} expert trajectories in {folder} ({summary['seconds']:.0f} s)")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    cfg = load_distill(args)
    if print_config_or(args, cfg):
        return 0
    from audioforge.distill.experiment import run_distill

    out_dir, report = run_distill(cfg)
    for arch, res in report["eval"].items():
        print(f"{cfg.method} cpc {cfg.cpc} -> {arch}: test accuracy {100 * res['mean']:.2f} ± {100 * res['std']:.2f} %")
    print(f"distilled set: {report['distilled']}")
    announce(out_dir, report)
    return 0


def cmd_distill_eval(args: argparse.Namespace) -> int:
    cfg = load_distill(args)
    if print_config_or(args, cfg):
        return 0
    if not args.sets:
        raise ConfigError("distill-eval needs at least one --set DISTILLED.pt")
    from audioforge.distill.experiment import run_distill_eval

    out_dir, report = run_distill_eval(cfg, args.sets)
    print((out_dir / "report.md").read_text().rstrip())
    announce(out_dir, report)
    return 0


def cmd_distill_table(args: argparse.Namespace) -> int:
    from audioforge.config import load_config
    from audioforge.distill.tables import TableConfig

    overrides = [f"distill.{o}" if o.startswith("data.root=") else o for o in collect_overrides(args)]
    cfg = load_config(TableConfig, config_files(args, "distill-table"), overrides)
    if print_config_or(args, cfg):
        return 0
    from audioforge.distill.tables import run_table

    out_dir, report = run_table(cfg)
    print((out_dir / "report.md").read_text().rstrip())
    announce(out_dir, report)
    return 0


def _application(args: argparse.Namespace, config: str, runner: str, extra: list[str] = ()) -> int:
    """A distillation application: load ``config`` (``module:Class``), print it or run ``runner``
    (``module:function`` taking the config and ``progress_bar``), then print its report."""
    import importlib

    from audioforge.config import load_config

    def attribute(path: str):
        module, name = path.split(":")
        return getattr(importlib.import_module(module), name)

    cfg = load_config(attribute(config), config_files(args, args.command), collect_overrides(args) + list(extra))
    if print_config_or(args, cfg):
        return 0
    out_dir, report = attribute(runner)(cfg, progress_bar=not args.quiet)
    print((out_dir / "report.md").read_text().rstrip())
    announce(out_dir, report)
    return 0


def cmd_continual(args: argparse.Namespace) -> int:
    return _application(args, "audioforge.distill.continual.config:ContinualConfig",
                        "audioforge.distill.continual.experiment:run_continual")


def cmd_nas(args: argparse.Namespace) -> int:
    return _application(args, "audioforge.distill.nas.config:NASConfig", "audioforge.distill.nas.experiment:run_nas")


def cmd_privacy(args: argparse.Namespace) -> int:
    return _application(args, "audioforge.distill.privacy.config:PrivacyConfig",
                        "audioforge.distill.privacy.experiment:run_privacy", [f"set={args.set}"] if args.set else [])


def cmd_unlearn_bench(args: argparse.Namespace) -> int:
    import yaml

    from audioforge.config import load_config, to_dict
    from audioforge.unlearning.bench import BenchConfig

    files = config_files(args, "unlearn-bench")
    data, args.data = args.data, None
    cfg = load_config(BenchConfig, files, collect_overrides(args) + ([f"data_root={data}"] if data else []))
    if args.print_config:
        print(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        return 0
    from audioforge.unlearning.bench import run_bench
    from sweeps.tuning import tune_method

    out_dir, report = run_bench(cfg, files[-1].parent, progress=not args.quiet, tune=tune_method)
    print(f"report: {out_dir / 'report.md'}")
    if "mlflow" in report:
        print(f"mlflow: run {report['mlflow']['run_id']} in {report['mlflow']['tracking_uri']}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    import yaml

    from audioforge.config import load_config, to_dict
    from sweeps.config import SweepConfig

    files = config_files(args, "sweep")
    data, args.data = args.data, None  # the data root belongs to the unlearn config a trial varies
    cfg = load_config(SweepConfig, files, collect_overrides(args))
    if data:
        cfg.unlearn_overrides.append(f"data.root={data}")
    if args.print_config:
        print(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        return 0
    from sweeps.study import run_sweep

    summary = run_sweep(cfg, files[-1].parent, progress=not args.quiet)
    if args.export_best:
        if summary["best"] is None:
            raise ConfigError(f"study {cfg.name!r} has no completed trial to export")
        best = Path(cfg.output_dir or Path("outputs") / "sweep" / cfg.name) / "best.yaml"
        Path(args.export_best).write_text(best.read_text())
        print(f"best config: {args.export_best}")
    print(yaml.safe_dump(summary, sort_keys=False).rstrip())
    return 0 if summary["completed"] >= cfg.n_trials else 1


def cmd_ui(args: argparse.Namespace) -> int:
    from audioforge.servers import serve

    storage = args.storage
    if storage is None and Path("sweeps/studies.db").is_file():
        storage = f"sqlite:///{Path('sweeps/studies.db').resolve()}"
    return serve(Path(args.store), storage, args.host, args.mlflow_port, args.dashboard_port)


DEFAULT_PRESET = {"unlearn": "paper", "unlearn-bench": "benchmark", "sweep": "quick", "classify": "default", "rir": "default", "distill": "default",
                  "distill-table": "table1", "continual": "default", "nas": "default", "privacy": "default"}
DISTILL_COMMANDS = ("buffer", "distill", "distill-eval")
COMMANDS = {"unlearn": cmd_unlearn, "unlearn-bench": cmd_unlearn_bench, "classify": cmd_classify, "rir": cmd_rir, "buffer": cmd_buffer,
            "distill": cmd_distill, "distill-eval": cmd_distill_eval, "distill-table": cmd_distill_table, "continual": cmd_continual, "nas": cmd_nas, "privacy": cmd_privacy,
            "sweep": cmd_sweep, "ui": cmd_ui}


POOLED = ("unlearn", "unlearn-bench", "sweep", "distill-table", "rir", "continual", "nas", "privacy")  # commands that open worker pools


def main(argv: list[str] | None = None) -> int:
    rank = os.environ.get("LOCAL_RANK", "0") not in ("", "0")  # a DDP rank the launcher started
    words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")]
    if not rank and words and words[0] in POOLED:
        from audioforge.forkserver import warm_up

        warm_up()  # its imports run beside this process's own, which start here
    from audioforge import events, signals

    signals.install()  # SIGTERM and SIGINT unwind: runs end KILLED, workers are stopped

    if rank:
        from audioforge.processes import die_with_parent

        die_with_parent(os.getppid())
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    stray = [a for a in extra if a.startswith("-") or "=" not in a]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    args.overrides = [*args.overrides, *extra]  # overrides may come before, between or after options
    setup_logging(args.quiet)
    events.announce("command", command=args.command)
    try:
        code = COMMANDS[args.command](args)
    except AudioforgeError as exc:
        print(f"audioforge: error: {exc}", file=sys.stderr)
        code = exc.exit_code
    except BrokenPipeError:  # output piped into a pager or head that closed early
        code = 0
    except OSError as exc:  # unwritable output folder, full disk, ...
        print(f"audioforge: error: {exc}", file=sys.stderr)
        code = 1
    except (KeyboardInterrupt, SystemExit) as exc:  # Lightning turns an interrupt into exit(1)
        if isinstance(exc, SystemExit) and signals.received() is None:
            raise
        code = 130
    if signals.received() is not None:
        import signal

        print(f"audioforge: stopped by {signal.Signals(signals.received()).name}", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
