"""Trained original and gold models, cached by a hash of everything that determines them.

The key covers the data (file list and feature parameters, via the datamodule's content key),
the forget speakers and split fractions, the network, the fit settings, the seed and
:data:`VERSION` (bump it when training code changes results).  A hit gives the network weights,
the recorded initial weights and the scores the model got when it was trained, so reruns of an
experiment and every trial of a sweep start from the same models without retraining them.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from audioforge.config import to_dict
from datamodules.cache import cache_key, default_cache_dir

VERSION = "2"  # 2: entries carry the probe AUC and the attack's new features


def base_model_key(cfg, role: str, seed: int, content_key: str) -> str:
    fit = cfg.original if role == "original" else cfg.gold
    d = cfg.data
    return cache_key(kind="unlearning-base-model", version=VERSION, role=role, seed=seed, data=content_key,
                     forget=sorted(d.forget_speakers), fractions=[d.val_fraction, d.test_fraction],
                     model=to_dict(cfg.model), fit=asdict(fit), precision=cfg.trainer.precision,
                     **({"drop_last": True} if d.drop_last else {}),  # absent when false: older keys stay valid
                     **({"forget_holdout": d.forget_holdout} if d.forget_holdout else {}),
                     # a model scored with sealed splits has no scores for them: kept apart
                     **({"sealed": sorted(d.sealed_splits)} if d.sealed_splits else {}),
                     # a forget set other than FSDD's speakers, and a dataset's own split options
                     **({"forget_set": to_dict(d.forget)} if d.forget is not None else {}),
                     **({"options": to_dict(d.options)} if d.options else {}))


class BaseModelCache:
    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory else default_cache_dir() / "models"

    def folder(self, key: str) -> Path:
        return self.directory / key

    def load(self, key: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(weights {"net", "initial_state"}, entry) or None."""
        folder = self.folder(key)
        try:
            entry = json.loads((folder / "entry.json").read_text())
            weights = torch.load(folder / "weights.pt")
        except (OSError, ValueError, RuntimeError):
            return None
        return weights, entry

    def save(self, key: str, weights: dict[str, Any], entry: dict[str, Any], replace: bool = False) -> Path:
        """Store atomically; an existing entry is kept unless ``replace`` (a deliberate retrain)."""
        folder = self.folder(key)
        tmp = folder.with_name(f"{key}.tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        torch.save(weights, tmp / "weights.pt")
        (tmp / "entry.json").write_text(json.dumps(entry))
        if folder.exists() and replace:
            shutil.rmtree(folder)
        if folder.exists():  # written meanwhile by another process: keep theirs
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, folder)
        return folder
