"""Datamodules by name, built from config: ``build_datamodule("ravdess", root, {"merge_calm": True})``.

``options`` are the dataset's own constructor arguments (folds, actors, ``allow_partial``,
``simulation``...); ``features`` overrides fields of the dataset's default :class:`FeatureSpec`.
Wrong names or values raise :class:`ConfigError` naming ``data.options.<key>`` or ``features.<key>``.
Options that are dataclasses (:data:`DATACLASS_OPTIONS`) arrive already converted: the config
layer above turns their mappings into these classes.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any, Callable

from audioforge.errors import ConfigError
from datamodules.base import AudioDataModule
from datamodules.features import FeatureSpec
from datamodules.folder import FolderDataModule
from datamodules.fsdd import FSDDDataModule
from datamodules.manifest import ManifestDataModule
from datamodules.ravdess import DEFAULT_FEATURES as RAVDESS_FEATURES
from datamodules.ravdess import RAVDESSDataModule
from datamodules.rir import DEFAULT_FEATURES as RIR_FEATURES
from datamodules.rir import RealRIRDataModule, SimulatedRIRDataModule
from datamodules.rir_simulation import SimulationConfig
from datamodules.urbansound8k import DEFAULT_FEATURES as US8K_FEATURES
from datamodules.urbansound8k import UrbanSound8KDataModule
from datamodules.user import DEFAULT_FEATURES as USER_FEATURES

DATAMODULES: dict[str, type[AudioDataModule]] = {
    "fsdd": FSDDDataModule, "urbansound8k": UrbanSound8KDataModule, "ravdess": RAVDESSDataModule,
    "rir_simulated": SimulatedRIRDataModule, "rir_real": RealRIRDataModule,
    "folder": FolderDataModule, "manifest": ManifestDataModule,
}
# generic use (classification, distillation) sees every FSDD speaker; unlearning builds its own FSDD module
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {"fsdd": {"forget_speakers": []}}
# options given as mappings in YAML and passed to the datamodule as these dataclasses
DATACLASS_OPTIONS: dict[str, type] = {"simulation": SimulationConfig}
DEFAULTS: dict[str, FeatureSpec] = {"fsdd": FeatureSpec(), "urbansound8k": US8K_FEATURES, "ravdess": RAVDESS_FEATURES,
                                    "rir_simulated": RIR_FEATURES, "rir_real": RIR_FEATURES,
                                    "folder": USER_FEATURES, "manifest": USER_FEATURES}


def default_features(dataset: str, overrides: dict[str, Any] | None = None) -> FeatureSpec:
    """The dataset's default features with ``overrides`` applied and checked."""
    check_dataset(dataset)
    overrides = dict(overrides or {})
    known = {f.name for f in dataclasses.fields(FeatureSpec)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"features.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
    spec = dataclasses.replace(DEFAULTS[dataset], **overrides)
    spec.validate("features")
    return spec


def check_dataset(dataset: str) -> None:
    if dataset not in DATAMODULES:
        raise ConfigError(f"data.dataset: unknown dataset {dataset!r} (known: {', '.join(DATAMODULES)})")


def check_options(dataset: str, options: dict[str, Any]) -> None:
    """The names in ``data.options`` are options of ``dataset`` (checked when a config loads, so
    ``--print-config`` refuses what a run would)."""
    check_dataset(dataset)
    own = [c for c in DATAMODULES[dataset].__mro__  # the dataset's classes below the shared base
           if issubclass(c, AudioDataModule) and c is not AudioDataModule and "__init__" in vars(c)]
    accepted = set().union(*(inspect.signature(c.__init__).parameters for c in own)) - {
        "self", "root", "features", "kwargs", "worker_pool"}
    for key in options:
        if key == "root":
            raise ConfigError("data.options.root: the data root is data.root (or --data), the folder that holds "
                              f"{dataset}'s folder")
        if key not in accepted:
            raise ConfigError(f"data.options.{key}: not an option of {dataset} (options: {', '.join(sorted(accepted))})")


def build_datamodule(dataset: str, root: str | Path | None, options: dict[str, Any] | None = None,
                     features: FeatureSpec | None = None, seed: int = 0, cache_dir: str | None = None,
                     batch_size: int = 16, worker_pool: Callable[[int], Any] | None = None,
                     base: dict[str, Any] | None = None) -> AudioDataModule:
    """``base``: arguments of :class:`AudioDataModule` itself (forget set, sealed splits, seed,
    features...), given by the commands rather than the user's ``data.options``."""
    check_options(dataset, options or {})
    cls = DATAMODULES[dataset]
    options = {**DEFAULT_OPTIONS.get(dataset, {}), **(options or {})}
    for key, kind in DATACLASS_OPTIONS.items():
        if key in options and not isinstance(options[key], kind):
            raise ConfigError(f"data.options.{key} must be a mapping of {kind.__name__} fields")
    try:
        arguments = dict(features=features or default_features(dataset), seed=seed, cache_dir=cache_dir,
                         batch_size=batch_size, worker_pool=worker_pool) | dict(base or {})
        return cls(root, **arguments, **options)
    except TypeError as exc:
        raise ConfigError(f"data.options for {dataset}: {exc}") from None
