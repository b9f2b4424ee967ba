"""The device probe interface: synchronize, read a clock, peak memory, energy, dtypes.

It does not import torch, so a device driven by something else (an ONNX Runtime execution
provider, devices/onnxruntime.py) has a home here; probes driven through torch build on
devices/torch_probe.py.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

from ..measure.energy import EnergyMeter


class DeviceProbe:
    """One device of one family. Subclasses map these calls to their runtime's API."""

    type: ClassVar[str]
    timer: ClassVar[str] = "synchronize+perf_counter_ns"

    def __init__(self, index: int | None = None):
        self.index = index

    @classmethod
    def presence(cls) -> tuple[int, str | None]:
        """(number of devices, None) or (0, why none is usable)."""
        raise NotImplementedError

    @property
    def name(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def synchronize(self) -> None:
        """Wait for queued device work, so a clock read after it is honest."""

    def now_ns(self) -> int:
        self.synchronize()
        return time.perf_counter_ns()

    def reset_peak_memory(self) -> None:
        """Start a new peak-memory window."""

    def peak_memory(self) -> dict[str, int | None]:
        return {"device_peak_allocated_bytes": None, "device_peak_reserved_bytes": None}

    def release_cached_memory(self) -> None:
        """Return the allocator's cached blocks (after a failed cell or a finished model)."""

    def used_memory_reader(self) -> Callable[[], int | None] | None:
        """A callable returning device memory in use (NVML-style), or None."""
        return None

    def energy_meter(self, cpu_watts_per_core: float | None = None) -> EnergyMeter:
        raise NotImplementedError

    def supported_dtypes(self) -> tuple[str, ...]:
        return ("fp32", "fp16", "bf16")

    def describe(self) -> dict:
        return {"name": self.name, "type": self.type, "index": self.index, "timer": self.timer}
