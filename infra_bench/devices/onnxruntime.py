"""The device of an ONNX Runtime execution provider, measured around ORT's own allocator.

Built from plain values (backends/onnxruntime/llm.py's ep_probe gives the EP's device family,
provider name and device id), so nothing here imports onnxruntime, torch or the backends.
"""
from __future__ import annotations

from ..measure.energy import EnergyMeter, UnavailableMeter
from .base import DeviceProbe


class EpProbe(DeviceProbe):
    """Measures an ORT execution provider's device. ORT's own allocator is invisible to torch, so
    allocator peaks are null; NVML used memory and energy come from the torch probe when present."""

    timer = "perf_counter_ns (ORT run returns after the device finished)"

    def __init__(self, family: str, provider: str, device_id: int, base: DeviceProbe | None,
                 why_no_base: str | None = None):
        super().__init__(device_id)
        self.provider, self.base, self._why = provider, base, why_no_base
        self.type = family

    def used_memory_reader(self):
        return self.base.used_memory_reader() if self.base else None

    def energy_meter(self, cpu_watts_per_core=None) -> EnergyMeter:
        if self.base is None:
            return UnavailableMeter(f"no meter for {self.name}: {self._why}")
        return self.base.energy_meter(cpu_watts_per_core)

    def describe(self) -> dict:
        info = self.base.describe() if self.base else {"name": self.name, "type": self.type, "index": self.index}
        return {**info, "timer": self.timer, "execution_provider": self.provider}
