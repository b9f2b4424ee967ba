"""Scenarios: the loops that drive a runner for one cell (offline batch for now)."""
