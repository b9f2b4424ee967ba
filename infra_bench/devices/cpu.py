"""The host CPU as a device: nothing to synchronize; energy from RAPL or a labelled estimate."""
from __future__ import annotations

import torch

from ..measure.energy import EnergyMeter, cpu_meter
from .host import cpu_model
from .torch_probe import TorchProbe


class CpuProbe(TorchProbe):
    type = "cpu"
    timer = "perf_counter_ns"

    @classmethod
    def presence(cls) -> tuple[int, str | None]:
        return 1, None

    @property
    def torch_device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def name(self) -> str:
        return "cpu"

    def energy_meter(self, cpu_watts_per_core: float | None = None) -> EnergyMeter:
        return cpu_meter(cpu_watts_per_core)

    def describe(self) -> dict:
        return {**super().describe(), "model": cpu_model(), "threads": torch.get_num_threads()}
