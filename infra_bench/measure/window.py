"""A measured window: host and device memory peaks plus energy between begin() and end()."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .energy import EnergyMeter, EnergyReading
from .memory import PeakSampler

if TYPE_CHECKING:
    from ..devices.base import DeviceProbe


@dataclass(frozen=True)
class WindowMeasurement:
    wall_s: float
    host_peak_rss_bytes: int
    device_peak_allocated_bytes: int | None
    device_peak_reserved_bytes: int | None
    device_used_peak_bytes: int | None
    energy: EnergyReading


class MeasurementWindow:
    """Use as `with MeasurementWindow(probe, meter) as w: ...`; then read `w.result`."""

    def __init__(self, probe: DeviceProbe, meter: EnergyMeter):
        self.probe, self.meter = probe, meter
        self.result: WindowMeasurement | None = None

    def __enter__(self) -> MeasurementWindow:
        self.probe.synchronize()
        self.probe.reset_peak_memory()
        self._sampler = PeakSampler(device_used=self.probe.used_memory_reader())
        self._sampler.start()
        self.meter.begin()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.probe.synchronize()
        wall = time.perf_counter() - self._t0
        energy = self.meter.end()
        self._sampler.stop()
        peaks = self.probe.peak_memory()
        self.result = WindowMeasurement(
            wall_s=wall, host_peak_rss_bytes=self._sampler.peak_rss_bytes,
            device_peak_allocated_bytes=peaks["device_peak_allocated_bytes"],
            device_peak_reserved_bytes=peaks["device_peak_reserved_bytes"],
            device_used_peak_bytes=self._sampler.peak_device_used_bytes, energy=energy)
