"""Arrival times of an open-loop load: gamma-distributed gaps with mean 1/rate.

The gamma shape is the burstiness: 1 gives exponential gaps (a Poisson process), below 1
burstier traffic, above 1 more regular; the mean gap is 1/rate whatever the shape (vLLM's
definition). An infinite rate sends every request at time 0.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np


def gaps(rate: float, burstiness: float, seed: int) -> Iterator[float]:
    """An endless seeded sequence of inter-arrival gaps in seconds."""
    if rate <= 0 or burstiness <= 0:
        raise ValueError("rate and burstiness must be > 0")
    if math.isinf(rate):
        while True:
            yield 0.0
    rng = np.random.default_rng(seed)
    scale = 1.0 / (rate * burstiness)
    while True:
        yield from rng.gamma(burstiness, scale, 1024).tolist()


def arrival_times(rate: float, burstiness: float, seed: int) -> Iterator[float]:
    """Send times from the start of the load point: the first request at 0, then cumulated gaps."""
    t = 0.0
    for gap in gaps(rate, burstiness, seed):
        yield t
        t += gap
