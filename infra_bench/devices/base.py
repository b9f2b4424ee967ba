"""The device probe interface: synchronize, read a clock, peak memory, energy, dtypes."""
from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import ClassVar

import torch

from ..measure.energy import EnergyMeter

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class DeviceProbe:
    """One device of one family. Subclasses map these calls to their torch API."""

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

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.name)

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
        return tuple(DTYPES)

    def describe(self) -> dict:
        return {"name": self.name, "type": self.type, "index": self.index, "timer": self.timer}


class TorchModuleProbe(DeviceProbe):
    """A device driven through a torch.cuda-style module (torch.cuda, torch.npu, torch.mlu, ...)."""

    _mod: ModuleType

    def synchronize(self) -> None:
        self._mod.synchronize(self.index)

    def reset_peak_memory(self) -> None:
        self._mod.reset_peak_memory_stats(self.index)

    def peak_memory(self) -> dict[str, int | None]:
        return {"device_peak_allocated_bytes": self._mod.max_memory_allocated(self.index),
                "device_peak_reserved_bytes": self._mod.max_memory_reserved(self.index)}

    def release_cached_memory(self) -> None:
        self._mod.empty_cache()
