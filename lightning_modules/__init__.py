"""Networks and LightningModules."""

from lightning_modules.classifier import ClassifierModule, classification_metrics, predict_logits
from lightning_modules.networks import NETWORKS, build_network, register_network

__all__ = ["ClassifierModule", "classification_metrics", "predict_logits", "NETWORKS", "build_network",
           "register_network"]
