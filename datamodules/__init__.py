"""LightningDataModules for audio datasets, over one shared in-memory, feature-caching base."""

from datamodules.base import AudioDataModule, AudioItem
from datamodules.features import FeatureSpec
from datamodules.fsdd import FSDDDataModule
from datamodules.ravdess import RAVDESSDataModule
from datamodules.urbansound8k import UrbanSound8KDataModule

DATAMODULES: dict[str, type[AudioDataModule]] = {"fsdd": FSDDDataModule, "urbansound8k": UrbanSound8KDataModule,
                                                  "ravdess": RAVDESSDataModule}

__all__ = ["AudioDataModule", "AudioItem", "FeatureSpec", "FSDDDataModule", "RAVDESSDataModule",
           "UrbanSound8KDataModule", "DATAMODULES"]
