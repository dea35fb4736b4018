"""The shared LightningDataModule for audio classification sets held in memory.

A dataset subclass says where its files are (:meth:`locate`), what they are
(:meth:`discover`: path, label, group) and how they split (:meth:`make_splits`).  The base
decodes every clip once, extracts features, caches them on disk under a key made of the file
list, the feature parameters and the extractor version, keeps everything as tensors, and hands
out :class:`~datamodules.loader.TensorBatchLoader` loaders for any named split.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import lightning.pytorch as pl
import numpy as np
import torch

from audioforge.errors import ConfigError, DataError
from datamodules.cache import FeatureCache, cache_key, file_fingerprint, relative_name, tensor_digest
from datamodules.extraction import extract_files
from datamodules.features import FeatureSpec, feature_shape
from datamodules.forget import ForgetSet, carve
from datamodules.loader import TensorBatchLoader, eval_batch_size

log = logging.getLogger(__name__)

STANDARDIZE_BY = ("coefficient", "channel", "global")
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif"}


@dataclass(frozen=True)
class AudioItem:
    """One clip: its file, class index, and the group (speaker, actor, room) it belongs to."""

    path: Path
    label: int
    group: str


class AudioDataModule(pl.LightningDataModule):
    """Base class; subclasses set ``name`` and ``class_names`` and implement the three hooks."""

    name: str = "audio"
    class_names: list[str] = []

    def __init__(self, root: str | Path, features: FeatureSpec | None = None, batch_size: int = 16,
                 eval_batch_size: int = 512, seed: int = 0, cache_dir: str | Path | None = None,
                 train_split: str = "train", worker_pool: Callable[[int], Any] | None = None,
                 drop_last: bool = False, sealed: tuple[str, ...] = (), forget: ForgetSet | None = None,
                 forget_holdout: float = 0.0):
        super().__init__()
        # an unlearning experiment's forget set, carved from the training split after make_splits
        # (:mod:`datamodules.forget`); ``forget_holdout`` of it is never trained on
        self.forget, self.forget_holdout = forget, forget_holdout
        if forget is not None:
            forget.validate()
        if not 0 <= forget_holdout < 1:
            raise ConfigError(f"data.forget_holdout must be in [0, 1), got {forget_holdout}")
        # splits whose clips must not be read (a selection that may not look at test): reading
        # one raises DataError naming it; their sizes and groups stay visible
        self.sealed = tuple(sealed)
        # drop a training epoch's last, partial batch: every step then sees a full (global) batch,
        # so a DDP run's batches are exactly a one-process run's (no shard padding involved)
        self.drop_last = drop_last
        # ``worker_pool(jobs)``: a context manager with ``map(fn, items)`` running work in parallel
        # processes (the commands pass audioforge's WorkerPool); None: everything in this process
        self.worker_pool = worker_pool
        self.root = Path(root)
        self.features = features or FeatureSpec()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.seed = seed
        self.cache = FeatureCache(cache_dir)
        self.train_split = train_split
        self.items: list[AudioItem] | None = None
        self.x: torch.Tensor | None = None
        self.y: torch.Tensor | None = None
        self.splits: dict[str, torch.Tensor] = {}
        self.last_load_seconds: float = 0.0
        self.last_load_cached: bool = False
        # hash of what a network sees: file names, labels, feature parameters and the features
        # themselves, not file times (a copied dataset keeps its buffers, models and distilled sets)
        self.content_key: str | None = None

    # --- dataset hooks -------------------------------------------------------------------
    def locate(self) -> Path:
        """The folder holding the audio; fetch it first if the dataset can be downloaded."""
        raise NotImplementedError

    def discover(self, folder: Path) -> list[AudioItem]:
        raise NotImplementedError

    def make_splits(self, items: list[AudioItem]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    # --- public API ------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return feature_shape(self.features)

    def prepare_data(self) -> None:
        """Locate (download) the data and make sure the feature cache exists."""
        if self.x is None:
            self._load()

    def setup(self, stage: str | None = None) -> None:
        if self.x is None:
            self._load()
        if not self.splits:
            splits = self.make_splits(self.items)
            if self.forget is not None:
                splits = carve([i.group for i in self.items], self.y.numpy(), self.class_names, splits, self.forget,
                               self.forget_holdout, self.seed, self.name)
            self.splits = {k: torch.as_tensor(v, dtype=torch.long) for k, v in splits.items()}

    def split_size(self, split: str) -> int:
        return len(self._split_indices(split))

    def tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """All features and labels of ``split`` (in a fixed order)."""
        if split in self.sealed:
            raise DataError(f"split {split!r} of {self.name} is sealed: this run selects on other splits and "
                            "must not read it")
        idx = self._split_indices(split)
        return self.x[idx], self.y[idx]

    def standardize(self, split: str | None = None, by: str = "coefficient",
                    classes: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
        """Standardise every feature in place with statistics of ``split`` (default: the training
        split; with ``classes``, only its clips of those classes); returns them (``mean``, ``std``,
        shaped ``(C, F, 1)``) so features can be mapped back.

        ``by``: ``coefficient``: mean and std per (channel, frequency row) over clips and frames;
        ``channel``: one mean and std per channel; ``global``: the mean per (channel, row) and one
        std for everything, which keeps the channels' relative scale (FD-MFCC's differences stay
        smaller than the coefficients they differ)."""
        if by not in STANDARDIZE_BY:
            raise ConfigError(f"standardize by must be one of {', '.join(STANDARDIZE_BY)}, got {by!r}")
        x, y = self.tensors(split or self.train_split)
        if classes is not None:
            x = x[torch.isin(y, torch.as_tensor(list(classes), dtype=y.dtype))]
        c, f = x.shape[1], x.shape[2]
        if by == "channel":
            mean = x.mean(dim=(0, 2, 3), keepdim=True)[0].expand(c, f, 1).clone()
            std = x.std(dim=(0, 2, 3), keepdim=True)[0].expand(c, f, 1).clone()
        else:
            mean = x.mean(dim=(0, 3), keepdim=True)[0]
            std = (x - mean).std().expand(c, f, 1).clone() if by == "global" else x.std(dim=(0, 3), keepdim=True)[0]
        std = std.clamp_min(1e-6)
        self.x = self.x.sub_(mean).div_(std)  # in place: no second copy of every feature
        self.feature_stats = {"mean": mean, "std": std}
        return self.feature_stats

    def subset_classes(self, classes: Sequence[int]) -> "AudioDataModule":
        """A view holding only the clips of ``classes``, relabelled ``0..k-1`` in the order given:
        every split keeps its clips of those classes, sealed splits stay sealed, and the content
        key names the subset and its features (caches of anything trained on it are its own)."""
        import copy

        classes = [int(c) for c in classes]
        if not classes or len(set(classes)) != len(classes) or not all(0 <= c < self.num_classes for c in classes):
            raise ConfigError(f"classes must be distinct class indices of {self.name} (0..{self.num_classes - 1}), "
                              f"got {classes}")
        self.setup()
        keep = torch.isin(self.y, torch.as_tensor(classes, dtype=self.y.dtype))
        positions = torch.nonzero(keep).flatten()
        moved = torch.full((len(self.y),), -1, dtype=torch.long)
        moved[positions] = torch.arange(len(positions))
        relabel = torch.full((self.num_classes,), -1, dtype=torch.long)
        relabel[torch.as_tensor(classes)] = torch.arange(len(classes))
        view = copy.copy(self)
        view.x, view.y = self.x[positions], relabel[self.y[positions]]
        view.items = [dataclasses.replace(self.items[i], label=int(relabel[self.items[i].label]))
                      for i in positions.tolist()]
        view.class_names = [self.class_names[c] for c in classes]
        view.splits = {k: moved[v][keep[v]] for k, v in self.splits.items()}
        view.content_key = cache_key(parent=self.content_key, classes=classes, x=tensor_digest(view.x))
        return view

    def split_key(self, split: str) -> str:
        """A digest of which clips ``split`` holds (caches of anything trained on a split name it:
        two protocols' training splits of the same files differ)."""
        return tensor_digest(self._split_indices(split))

    def groups(self, split: str) -> list[str]:
        return [self.items[i].group for i in self._split_indices(split).tolist()]

    def loader(self, split: str, shuffle: bool | None = None, batch_size: int | None = None) -> TensorBatchLoader:
        """A loader over ``split``; shuffled by default only for training splits."""
        x, y = self.tensors(split)
        training = shuffle if shuffle is not None else split.endswith("train")
        rank, world = self._rank_world()
        if batch_size is None:
            batch_size = self.batch_size if training else eval_batch_size(self.input_shape, self.eval_batch_size)
        return TensorBatchLoader(x, y, batch_size,
                                 shuffle=training, seed=self.seed, rank=rank, world_size=world,
                                 drop_last=training and self.drop_last)

    def train_dataloader(self) -> TensorBatchLoader:
        return self.loader(self.train_split, shuffle=True)

    def val_dataloader(self) -> TensorBatchLoader:
        return self.loader("val", shuffle=False)

    def test_dataloader(self) -> TensorBatchLoader:
        return self.loader("test", shuffle=False)

    # --- internals -------------------------------------------------------------------------
    def _split_indices(self, split: str) -> torch.Tensor:
        if not self.splits:
            self.setup()
        if split not in self.splits:
            raise KeyError(f"{self.name} has no split {split!r} (splits: {', '.join(self.splits)})")
        return self.splits[split]

    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def _load(self) -> None:
        start = time.perf_counter()
        folder = self.locate()
        items = self.discover(folder)
        if not items:
            raise DataError(f"no audio clips found in {folder}")
        # files are named relative to the dataset's folder (a manifest's: the CSV's), so a moved copy keeps its cache
        folder = folder if folder.is_dir() else folder.parent
        key = cache_key(dataset=self.name, files=file_fingerprint([i.path for i in items], folder),
                        features=self.features.cache_fields())
        payload = self.cache.load(self.name, key)
        self.last_load_cached = payload is not None
        if payload is None:
            payload = {"x": extract_files([i.path for i in items], self.features, self.worker_pool,
                                          desc=f"{self.name} features")}
            self.cache.save(self.name, key, payload)
            log.info("%s: extracted %s features for %d clips into %s", self.name, self.features.kind,
                     len(items), self.cache.path(self.name, key))
        # labels come from discovery every time: how files map to classes is not the cache's business
        self.items, self.x, self.y = items, payload["x"], torch.tensor([i.label for i in items])
        self.content_key = cache_key(dataset=self.name, files=[relative_name(i.path, folder) for i in items],
                                     labels=self.y.tolist(), features=self.features.cache_fields(),
                                     x=tensor_digest(self.x))
        self.last_load_seconds = time.perf_counter() - start


def list_audio_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """(audio files, stray non-audio files) directly in ``folder``; hidden files are ignored."""
    audio, stray = [], []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.is_dir():
            continue
        (audio if p.suffix.lower() in AUDIO_SUFFIXES else stray).append(p)
    return audio, stray


def describe_files(paths: list[Path], limit: int = 5) -> str:
    names = ", ".join(p.name for p in paths[:limit])
    return names + (f" and {len(paths) - limit} more" if len(paths) > limit else "")
