"""LightningDataModules for audio datasets, over one shared in-memory, feature-caching base."""

from datamodules.base import AudioDataModule, AudioItem
from datamodules.features import FeatureSpec
from datamodules.fsdd import FSDDDataModule

DATAMODULES: dict[str, type[AudioDataModule]] = {"fsdd": FSDDDataModule}

__all__ = ["AudioDataModule", "AudioItem", "FeatureSpec", "FSDDDataModule", "DATAMODULES"]
