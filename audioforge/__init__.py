"""audioforge: tracked audio-ML experiments (machine unlearning, dataset distillation)."""

__version__ = "0.1.0"
