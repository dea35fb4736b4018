"""LightningDataModules for audio datasets, over one shared in-memory, feature-caching base."""

from datamodules.base import AudioDataModule, AudioItem
from datamodules.features import FeatureSpec
from datamodules.fsdd import FSDDDataModule
from datamodules.urbansound8k import UrbanSound8KDataModule

DATAMODULES: dict[str, type[AudioDataModule]] = {"fsdd": FSDDDataModule, "urbansound8k": UrbanSound8KDataModule}

__all__ = ["AudioDataModule", "AudioItem", "FeatureSpec", "FSDDDataModule", "UrbanSound8KDataModule", "DATAMODULES"]
