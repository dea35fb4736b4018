"""Optuna studies over experiment configs (objectives, search spaces, study runners)."""
