"""Lightning callbacks: unlearning operations scheduled by epoch, and their phase schedule."""

from callbacks.base import EpochCallback
from callbacks.batchnorm import BatchNormReset
from callbacks.freeze import TrainableLayers
from callbacks.perturb import WeightPerturbation
from callbacks.reset import LayerReset
from callbacks.schedule import OpConfig, PhaseConfig, PhaseTimer, build_callbacks, total_epochs

__all__ = ["EpochCallback", "BatchNormReset", "TrainableLayers", "WeightPerturbation", "LayerReset",
           "OpConfig", "PhaseConfig", "PhaseTimer", "build_callbacks", "total_epochs"]
