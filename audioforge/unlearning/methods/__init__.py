"""Unlearning methods by name, one file each, run beside the paper's phase schedules.

A method registers its hyperparameters (a dataclass whose defaults are its documented settings)
and a ``build`` function with ``@register_method("name", Params)``::

    build(inputs: MethodInputs, params) -> Plan

``inputs`` holds a copy of the original model's network to change in place, a frozen copy of the
original, the forget and retain tensors (features, labels) and the seed; the returned
:class:`Plan` says what ``Trainer.fit`` trains (a LightningModule, usually an
:class:`~lightning_modules.unlearning.UnlearningModule` subclass), over which datamodule split,
for how many epochs and with which batch size, or that nothing is trained (the method changed
the network in ``build``).  The command then scores ``inputs.net``.  Adding one is a new file
here plus its import at the bottom of this file; the config check, the CLI help and the
benchmark take the names from :data:`METHODS`.

``search`` (optional) is the method's hyperparameter space for a tuning sweep: param name ->
``{"type": "float" | "int" | "categorical", "low", "high", "log", "choices"}``.  Every method
gets the same number of trials over its own space.

A config may run one method several times under different settings: ``methods`` keys of the
form ``name-label`` (``salun-tuned``) run registered method ``name`` as a model of their own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from audioforge.errors import ConfigError


@dataclass
class MethodInputs:
    net: nn.Module                              # the original's network, to unlearn in place
    original: nn.Module                         # a frozen copy of the original network
    forget: tuple[torch.Tensor, torch.Tensor]   # features, labels
    retain: tuple[torch.Tensor, torch.Tensor]
    num_classes: int
    seed: int
    channels_last: bool = True


@dataclass
class Plan:
    module: Any | None                 # the LightningModule Trainer.fit trains; None: no training
    train_split: str = "retain_train"  # the datamodule split the fit iterates ("retain_train" or "forget")
    epochs: int = 0
    batch_size: int = 16
    callbacks: list = field(default_factory=list)


@dataclass
class TrainingParams:
    """What every trained method has; a method's params dataclass extends it."""

    epochs: int = 5
    lr: float = 1e-3
    batch_size: int = 16

    def validate(self, path: str) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError(f"{path}: epochs and batch_size must be >= 1 and lr > 0, got {self.epochs}, "
                              f"{self.batch_size} and {self.lr}")


VARIANT = "-"  # method names are identifiers; MLflow names allow "-" (not "@")
LEARNING_RATE = {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}  # Adam's usual range, log scale


@dataclass(frozen=True)
class Method:
    name: str
    params: type
    build: Callable[[MethodInputs, Any], Plan]
    doc: str = ""
    search: dict[str, dict[str, Any]] = field(default_factory=dict)


METHODS: dict[str, Method] = {}


def register_method(name: str, params: type, search: dict[str, dict[str, Any]] | None = None):
    def wrap(build: Callable) -> Callable:
        if not name.isidentifier():
            raise TypeError(f"method name {name!r}: a Python identifier (a '{VARIANT}' would read as a variant)")
        known = {f.name for f in dataclasses.fields(params)}
        unknown = set(search or {}) - known
        if unknown:
            raise TypeError(f"method {name}: search names {sorted(unknown)}, not fields of {params.__name__}")
        METHODS[name] = Method(name, params, build, _summary(build), dict(search or {}))
        return build

    return wrap


def _summary(build: Callable) -> str:
    import sys

    doc = (sys.modules[build.__module__].__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def registered_name(key: str) -> str:
    """The registered method a ``methods`` key runs: ``salun-tuned`` -> ``salun``."""
    return key.split(VARIANT, 1)[0]


def method(key: str) -> Method:
    name = registered_name(key)
    if name not in METHODS:
        raise ConfigError(f"unknown unlearning method {name!r} (known: {', '.join(METHODS)})")
    return METHODS[name]


def method_params(name: str, values: dict[str, Any] | None, path: str) -> Any:
    """The params dataclass of method ``name`` (a registered name or a ``name-label`` variant) from
    ``values`` (unknown keys refused, naming ``path``)."""
    from audioforge.config import from_dict

    return from_dict(method(name).params, dict(values or {}), path)  # from_dict runs its validate


def summed_gradients(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                     transform: Callable[[torch.Tensor], torch.Tensor] = lambda g: g) -> tuple[dict[str, torch.Tensor], int]:
    """Per parameter, the sum over batches of ``transform(gradient of the batch's cross-entropy)``,
    with the network in eval mode (mode and gradients restored); and the number of batches."""
    import torch.nn.functional as F

    was_training = net.training
    net.eval()
    sums = {name: torch.zeros_like(p) for name, p in net.named_parameters()}
    batches = 0
    try:
        for i in range(0, len(x), batch_size):
            net.zero_grad(set_to_none=True)
            F.cross_entropy(net(x[i:i + batch_size]), y[i:i + batch_size]).backward()
            for name, p in net.named_parameters():
                if p.grad is not None:
                    sums[name] += transform(p.grad)
            batches += 1
    finally:
        net.zero_grad(set_to_none=True)
        net.train(was_training)
    return sums, batches


def params_dict(params: Any) -> dict[str, Any]:
    return dataclasses.asdict(params)


from audioforge.unlearning.methods import (finetune, gradient_ascent, l1_sparse, neggrad_plus,  # noqa: E402,F401
                                           random_label, salun, scrub, ssd)
