"""NVIDIA (and ROCm, which torch also calls cuda) GPUs: CUDA sync, torch allocator peaks,
NVML for used memory and energy."""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..measure.energy import (
    CounterMeter,
    EnergyMeter,
    PowerIntegratingMeter,
    UnavailableMeter,
)
from . import nvml
from .torch_probe import TorchModuleProbe


def dtypes_for_capability(major: int, minor: int) -> tuple[str, ...]:
    """bf16 needs compute capability 8.0 (Ampere) or newer."""
    return ("fp32", "fp16", "bf16") if (major, minor) >= (8, 0) else ("fp32", "fp16")


class CudaProbe(TorchModuleProbe):
    type = "cuda"

    def __init__(self, index: int | None = None):
        super().__init__(0 if index is None else index)
        self._mod = torch.cuda
        props = torch.cuda.get_device_properties(self.index)
        self._props = props
        self._nvml = nvml.handle_for_uuid(str(getattr(props, "uuid", "") or ""))

    @classmethod
    def presence(cls) -> tuple[int, str | None]:
        if not torch.cuda.is_available():
            build = "this torch build has no CUDA" if torch.version.cuda is None and torch.version.hip is None \
                else "no GPU is visible to torch"
            return 0, f"torch.cuda.is_available() is False ({build}; torch {torch.__version__})"
        return torch.cuda.device_count(), None

    def used_memory_reader(self) -> Callable[[], int | None] | None:
        h = self._nvml
        return (lambda: nvml.used_bytes(h)) if h is not None else None

    def energy_meter(self, cpu_watts_per_core: float | None = None) -> EnergyMeter:
        h = self._nvml
        if h is None:
            return UnavailableMeter(f"NVML has no handle for {self.name}: {nvml.nvml()[1] or 'UUID not matched'}")
        if nvml.energy_joules(h) is not None:
            return CounterMeter(lambda: nvml.energy_joules(h), "nvml_counter", "device")
        if nvml.power_watts(h) is not None:
            return PowerIntegratingMeter(lambda: nvml.power_watts(h), "device")
        return UnavailableMeter(f"NVML reads neither energy nor power on {self.name}")

    def supported_dtypes(self) -> tuple[str, ...]:
        return dtypes_for_capability(self._props.major, self._props.minor)

    def describe(self) -> dict:
        p = self._props
        info = {**super().describe(), "model": p.name, "memory_total_bytes": p.total_memory,
                "compute_capability": f"{p.major}.{p.minor}", "torch_cuda": torch.version.cuda,
                "torch_hip": torch.version.hip}
        if self._nvml is not None:
            info["nvml"] = nvml.describe(self._nvml)
        return info
