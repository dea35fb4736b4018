"""The rehearsal memory: ``per_class`` examples of each class of a finished step.

- ``random``: real clips drawn uniformly per class (the paper's Random, after iCaRL's baseline);
- ``herding``: real clips herded in the embedding of the network just trained at that step (EEIL's
  choice; :func:`~audioforge.distill.coresets.herding_coreset`);
- a learned distillation method of the registry (``mtt`` is DDFAD): distilled on that step's
  classes only (:meth:`~datamodules.base.AudioDataModule.subset_classes`), with the continual
  config's ``distill`` settings, its synthetic set chosen on the validation clips of those classes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import torch

from audioforge.distill.coresets import herding_coreset, random_coreset


def coreset(kind: str, x: torch.Tensor, y: torch.Tensor, classes: list[int], per_class: int, seed: int,
            embed: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Indices into (x, y) of ``per_class`` clips of each of ``classes`` (global labels)."""
    positions = torch.nonzero(torch.isin(y, torch.as_tensor(classes))).flatten()
    local = torch.as_tensor([classes.index(int(c)) for c in y[positions]])
    if kind == "random":
        picked = random_coreset(local, per_class, len(classes), seed)
    else:
        picked = herding_coreset(x[positions], local, per_class, len(classes), embed)
    return positions[picked]


def learned(method: str, network: str, distill, dm, classes: list[int], per_class: int, seed: int,
            folder: Path) -> dict:
    """A set distilled by ``method`` from ``dm``'s clips of ``classes``; labels mapped back to the
    dataset's.  ``distill`` is a :class:`DistillConfig` whose method, CPC, network and seed are set
    here; its ``network_kwargs`` are the cells' (:class:`ContinualConfig` sets them), so the
    network is built as the cell trains it; ``folder`` holds its checkpoints (a rerun resumes)."""
    from audioforge.distill.experiment import distil

    cfg = dataclasses.replace(distill, method=method, cpc=per_class, network=network, seeds=[seed],
                              normalize=False, reconstruct=False, output_dir=str(folder))
    view = dm.subset_classes(classes)
    synthetic, selection = distil(cfg, view, folder, False)
    out = {"x": synthetic["x"].detach().clone(), "y": torch.as_tensor(classes)[synthetic["y"]],
           "selection": {k: v for k, v in selection.items() if k != "val_history"}}
    if "lr" in synthetic:
        out["lr"] = float(synthetic["lr"])
    return out
