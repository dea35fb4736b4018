"""Search spaces: suggesting values and turning them into an unlearning config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import json

import optuna

from audioforge.config import from_dict, load_config, override
from audioforge.errors import ConfigError
from audioforge.paths import beside
from audioforge.training import trainer_overrides
from audioforge.unlearning.config import UnlearnConfig
from sweeps.config import ParamSpec, SweepConfig

SCHEME = "scheme"


def suggest(trial: optuna.Trial, params: dict[str, ParamSpec]) -> dict[str, Any]:
    values = {}
    for name, spec in params.items():
        if spec.type == "float":
            values[name] = trial.suggest_float(name, spec.low, spec.high, step=spec.step, log=spec.log)
        elif spec.type == "int":
            values[name] = trial.suggest_int(name, int(spec.low), int(spec.high), step=int(spec.step or 1), log=spec.log)
        else:
            options = categorical_options(spec)
            values[name] = options[trial.suggest_categorical(name, list(options))]
    return values


def categorical_options(spec: ParamSpec) -> dict[Any, Any]:
    """Optuna stores categorical choices as scalars; lists (layer selectors) go in as JSON text."""
    return {c if isinstance(c, (str, int, float, bool)) or c is None else json.dumps(c): c for c in spec.choices}


def decode(params: dict[str, Any], space: dict[str, ParamSpec]) -> dict[str, Any]:
    """A finished trial's ``params`` back in config form."""
    return {k: categorical_options(space[k])[v] if space[k].type == "categorical" else v for k, v in params.items()}


def method_space(name: str) -> dict[str, ParamSpec]:
    """The search space registered with unlearning method ``name``, as config key paths."""
    from audioforge.unlearning.methods import method

    found = method(name)
    if not found.search:
        raise ConfigError(f"method {name!r} registers no search space: give `params`")
    return {f"methods.{name}.{param}": from_dict(ParamSpec, dict(spec), f"{found.name} search.{param}")
            for param, spec in found.search.items()}


def trial_config(sweep: SweepConfig, values: dict[str, Any], base_dir: Path) -> tuple[UnlearnConfig, str]:
    """The unlearning config of one trial (only the trial's scheme or method kept, the test split
    sealed) and that model's name."""
    overrides = [*sweep.unlearn_overrides, *trainer_overrides(sweep.trainer)]
    overrides += [override(k, v) for k, v in values.items() if k != SCHEME]
    if sweep.seeds is not None:
        overrides.append(f"seeds={list(sweep.seeds)}")
    try:
        cfg = load_config(UnlearnConfig, [beside(sweep.unlearn_config, base_dir)], overrides)
    except ConfigError as exc:
        raise ConfigError(f"search space: {exc}") from None
    if cfg.trainer.distributed:
        raise ConfigError("search space: trials run one process each (sampled once, in that process); spread a "
                          "sweep with `workers` (one per device, e.g. CUDA_VISIBLE_DEVICES per worker machine), "
                          "not with trainer.devices > 1 or strategy ddp")
    if sweep.method is not None:
        cfg.methods = {sweep.method: cfg.methods.get(sweep.method, {})}
        cfg.validate()  # the trial's values are checked by the method's params
        cfg.unlearning.schemes, scheme = {}, sweep.method
    else:
        scheme = values.get(SCHEME, sweep.scheme)
        if scheme not in cfg.unlearning.schemes:
            raise ConfigError(f"search space: unknown scheme {scheme!r} (schemes: {', '.join(cfg.unlearning.schemes)})")
        cfg.unlearning.schemes, cfg.methods = {scheme: cfg.unlearning.schemes[scheme]}, {}
    cfg.data.sealed_splits = ["test"]  # a trial is scored on validation and the forget set only
    cfg.membership_inference = cfg.probe = False  # not objectives: a trial skips them
    return cfg, scheme


def check_space(sweep: SweepConfig, base_dir: Path) -> None:
    """Every parameter must name a real config key and give values the key accepts: build the
    trial config at each range end (and every categorical choice) before anything runs."""
    corners: list[dict[str, Any]] = []
    for name, spec in sweep.params.items():
        options = spec.choices if spec.type == "categorical" else [spec.low, spec.high]
        if spec.type == "int":
            options = [int(o) for o in options]
        corners += [{name: o} for o in options]
    for values in corners:
        trial_config(sweep, values, base_dir)
