"""Measurement primitives: statistics, stopping rule, memory and energy windows."""
