"""Naming groups of layers, and the small operations unlearning callbacks share.

A *selector* picks layers (modules with their own parameters or running statistics) of a
network: a kind (``linear``, ``conv``, ``batchnorm``, ``conv_bn`` = BatchNorm right after a
convolution, ``linear_bn`` = BatchNorm right after a linear layer, ``all``) or a glob over module
names (``classifier.*``, ``features.0``).  Layers come back in network order.
"""

from __future__ import annotations

import fnmatch
import hashlib

import torch
from torch import nn

from audioforge.errors import ConfigError

NORMS = (nn.modules.batchnorm._BatchNorm,)
CONVS = (nn.modules.conv._ConvNd,)


def network_of(pl_module: nn.Module) -> nn.Module:
    """The network inside a LightningModule (its ``net``), or the module itself."""
    return getattr(pl_module, "net", pl_module)


def layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Leaf layers that own parameters or buffers, in registration order."""
    out = []
    for name, module in model.named_modules():
        own = list(module.parameters(recurse=False)) + list(module.buffers(recurse=False))
        if name and own:
            out.append((name, module))
    return out


def _kind_of_previous(ordered: list[tuple[str, nn.Module]], i: int) -> str | None:
    for _, module in reversed(ordered[:i]):
        if isinstance(module, CONVS):
            return "conv"
        if isinstance(module, nn.Linear):
            return "linear"
    return None


def select(model: nn.Module, selectors: list[str]) -> list[tuple[str, nn.Module]]:
    """The layers of ``model`` matched by any of ``selectors``; ConfigError if a selector matches none."""
    ordered = layers(model)
    chosen: set[str] = set()
    for sel in selectors:
        hits = set()
        for i, (name, module) in enumerate(ordered):
            if sel == "all":
                hit = True
            elif sel == "linear":
                hit = isinstance(module, nn.Linear)
            elif sel == "conv":
                hit = isinstance(module, CONVS)
            elif sel == "batchnorm":
                hit = isinstance(module, NORMS)
            elif sel in ("conv_bn", "linear_bn"):
                hit = isinstance(module, NORMS) and _kind_of_previous(ordered, i) == sel.split("_")[0]
            else:
                hit = fnmatch.fnmatchcase(name, sel)
            if hit:
                hits.add(name)
        if not hits:
            names = ", ".join(n for n, _ in ordered)
            raise ConfigError(f"layer selector {sel!r} matches no layer of {type(model).__name__} "
                              f"(kinds: all, linear, conv, batchnorm, conv_bn, linear_bn; layers: {names})")
        chosen |= hits
    return [(n, m) for n, m in ordered if n in chosen]


def seeded_generator(*parts: int | str) -> torch.Generator:
    """A CPU generator whose seed is a stable hash of ``parts`` (e.g. seed, phase, round): every
    process and every DDP rank that asks with the same parts draws the same numbers."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def forget_optimizer_state(trainer, params: list[nn.Parameter]) -> None:
    """Drop optimizer state (momenta, step counts) of ``params`` so they restart fresh."""
    for optimizer in getattr(trainer, "optimizers", []):
        for p in params:
            optimizer.state.pop(p, None)
