"""Offline scenario: the same request, repeated under the stopping rule.

Warm-up requests run first and are not recorded. The measured window covers only the
recorded requests, so throughput = work done in the window / window wall time.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..measure.stopping import StoppingRule
from ..measure.window import MeasurementWindow, WindowMeasurement

T = TypeVar("T")


@dataclass(frozen=True)
class OfflineResult(Generic[T]):
    timings: list[T]
    window: WindowMeasurement
    stop_reason: str


def run_offline(request: Callable[[], T], rule: StoppingRule, window: MeasurementWindow) -> OfflineResult[T]:
    for _ in range(rule.warmup):
        request()
    timings: list[T] = []
    with window:
        t0 = time.perf_counter()
        while not rule.done(len(timings), time.perf_counter() - t0):
            timings.append(request())
        elapsed = time.perf_counter() - t0
    return OfflineResult(timings, window.result, rule.reason(len(timings), elapsed))


def window_metrics(w: WindowMeasurement, units: int, unit: str) -> dict:
    """Memory and energy of a window, energy also per unit of work (`j_per_<unit>`)."""
    e = w.energy
    return {
        "host_peak_rss_bytes": w.host_peak_rss_bytes,
        "device_peak_allocated_bytes": w.device_peak_allocated_bytes,
        "device_peak_reserved_bytes": w.device_peak_reserved_bytes,
        "device_used_peak_bytes": w.device_used_peak_bytes,
        "energy_j": e.energy_j,
        "avg_power_w": e.avg_power_w,
        f"j_per_{unit}": e.energy_j / units if e.energy_j is not None else None,
        "energy_source": e.source,
        "energy_scope": e.scope,
        "energy_note": e.note,
    }
