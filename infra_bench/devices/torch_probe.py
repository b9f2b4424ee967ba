"""Probes of devices driven through torch: the dtype names' torch dtypes, the probe's
torch.device, and the torch.cuda-style module calls (synchronize, allocator peaks, cache)."""
from __future__ import annotations

from types import ModuleType

import torch

from .base import DeviceProbe

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class TorchProbe(DeviceProbe):
    """A device that torch places tensors on, as `torch_device`."""

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.name)


class TorchModuleProbe(TorchProbe):
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
