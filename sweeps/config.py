"""Configuration of an Optuna sweep over the unlearning procedure (``audioforge sweep``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from audioforge.errors import ConfigError
from audioforge.tracking import TrackingConfig

OBJECTIVES = ("excluded_gap", "val_gap", "time_ratio", "forget_margin")


@dataclass
class ParamSpec:
    """One searched value: a config key path (``unlearning.phases.1.ops.0.scale``) or ``scheme``."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    def validate(self, path: str) -> None:
        if self.type == "categorical":
            if not self.choices:
                raise ConfigError(f"{path}.choices must list at least one value")
            return
        if self.low is None or self.high is None:
            raise ConfigError(f"{path} needs low and high")
        if not self.low < self.high:
            raise ConfigError(f"{path} has an empty range: low {self.low} is not below high {self.high}")
        if self.log and self.low <= 0:
            raise ConfigError(f"{path}: a log range needs low > 0, got {self.low}")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ConfigError(f"{path}: an int range needs whole low and high, got {self.low} and {self.high}")


@dataclass
class ObjectiveConfig:
    """``single``: minimise ``sum(weights[k] * value[k])``; ``multi``: minimise all four (Pareto front).

    excluded_gap and val_gap are |macro F1 unlearned - gold| on the excluded speaker and on the
    validation split, averaged over seeds; time_ratio is unlearning wall time over gold training
    wall time; forget_margin is how far the model's logit margins on the forget set lie from the
    gold model's, as a share of the original's distance
    (:func:`audioforge.unlearning.forgetting.margin_distance`: 0 gold's distribution, 1 the
    original's).  Every value is computed and logged; the weights say which ones choose.  No
    objective reads the test split: trials run with it sealed."""

    mode: Literal["single", "multi"] = "single"
    weights: dict[str, float] = field(default_factory=lambda: {"excluded_gap": 1.0, "val_gap": 1.0,
                                                               "time_ratio": 0.1})

    def validate(self, path: str) -> None:
        if "test_gap" in self.weights:
            raise ConfigError(f"{path}.weights: objective 'test_gap' would select on the test split; a sweep "
                              "selects on validation (val_gap) and the forget set (excluded_gap)")
        unknown = set(self.weights) - set(OBJECTIVES)
        if unknown:
            raise ConfigError(f"{path}.weights: unknown objective {sorted(unknown)[0]!r} (known: {', '.join(OBJECTIVES)})")

    def score(self, values: dict[str, float]) -> float:
        return sum(self.weights.get(k, 0.0) * values[k] for k in OBJECTIVES)


@dataclass
class SweepConfig:
    name: str | None = "unlearning-sweep"              # the study's name; null: tune-<method>
    unlearn_config: str = "configs/unlearn/quick.yaml"   # the experiment a trial varies
    unlearn_overrides: list[str] = field(default_factory=list)
    trainer: dict[str, Any] = field(default_factory=dict)  # every trial's trainer (--accelerator gpu ... land here)
    seeds: list[int] | None = None                      # null: the unlearn config's seeds
    scheme: str = "conv_bn"                             # unless "scheme" is a searched parameter
    # a registered unlearning method (or name-label) tuned instead of a scheme; empty `params` then
    # mean the method's own search space (methods.<name>.<param> keys)
    method: str | None = None
    baseline_overrides: list[str] = field(default_factory=list)  # the reference the best trial must beat
    n_trials: int = 20                                  # completed trials, counted across workers
    workers: int = 1                                    # processes sharing the study
    sampler: Literal["tpe", "nsga2"] = "tpe"
    sampler_seed: int | None = None
    pruning: bool = True                                # single mode, schemes: median pruner on val/loss per epoch
    storage: str | None = None                          # null: sqlite:///sweeps/studies.db
    heartbeat_seconds: int = 5                          # a trial silent for 3x this is marked failed
    output_dir: str | None = None                       # null: outputs/sweep/<name>
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    params: dict[str, ParamSpec] = field(default_factory=dict)
    tracking: TrackingConfig = field(default_factory=lambda: TrackingConfig(experiment="audioforge-sweeps"))

    def validate(self, path: str = "") -> None:
        from audioforge.training import trainer_overrides

        trainer_overrides(self.trainer)
        if self.name is None:
            if self.method is None:
                raise ConfigError("name: a sweep of the schedules needs a study name")
            self.name = f"tune-{self.method}"
        if self.method is not None:
            from sweeps.space import method_space

            self.params = self.params or method_space(self.method)
            if "scheme" in self.params:
                raise ConfigError("params: `scheme` is searched over the paper's schedules, not with `method`")
        if not self.params:
            raise ConfigError("params must name at least one searched parameter")
        if self.n_trials < 1 or self.workers < 1:
            raise ConfigError(f"n_trials and workers must be >= 1, got {self.n_trials} and {self.workers}")
        if self.heartbeat_seconds < 1:
            raise ConfigError(f"heartbeat_seconds must be >= 1, got {self.heartbeat_seconds}")
