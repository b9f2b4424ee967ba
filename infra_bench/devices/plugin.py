"""Accelerators reached through a torch plug-in package that mirrors the torch.cuda API:
Huawei Ascend (torch_npu -> torch.npu), Cambricon (torch_mlu -> torch.mlu), Moore Threads
(torch_musa -> torch.musa). Not tested on real hardware yet: each call follows the plug-in's
documented torch.cuda-compatible name."""
from __future__ import annotations

import importlib
from types import ModuleType

from ..measure.energy import EnergyMeter, UnavailableMeter
from .torch_probe import TorchModuleProbe


class PluginProbe(TorchModuleProbe):
    package: str  # the pip/import name of the plug-in

    @classmethod
    def module(cls) -> ModuleType:
        """Import the plug-in (which registers the device with torch) and return torch.<type>."""
        importlib.import_module(cls.package)
        import torch
        return getattr(torch, cls.type)

    @classmethod
    def presence(cls) -> tuple[int, str | None]:
        try:
            mod = cls.module()
        except Exception as e:  # ImportError, or a plug-in whose driver libraries fail to load
            return 0, f"the {cls.package} package does not import ({type(e).__name__}: {e})".rstrip()
        if not mod.is_available():
            return 0, f"{cls.package} imports but torch.{cls.type}.is_available() is False"
        return mod.device_count(), None

    def __init__(self, index: int | None = None):
        super().__init__(0 if index is None else index)
        self._mod = self.module()

    def energy_meter(self, cpu_watts_per_core: float | None = None) -> EnergyMeter:
        return UnavailableMeter(f"no energy reader for {self.type} yet (vendor tools give power, not energy)")

    def describe(self) -> dict:
        return {**super().describe(), "model": self._mod.get_device_name(self.index), "plugin": self.package}


class NpuProbe(PluginProbe):
    type, package = "npu", "torch_npu"


class MluProbe(PluginProbe):
    type, package = "mlu", "torch_mlu"


class MusaProbe(PluginProbe):
    type, package = "musa", "torch_musa"
