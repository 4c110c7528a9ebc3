"""Surrogate model, acquisition and backtest for the active-learning loop."""
