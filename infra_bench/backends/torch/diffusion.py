"""Diffusion components as torch modules on any probed device."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ...devices.base import DeviceProbe
from ...devices.torch_probe import DTYPES
from ...workloads import diffusion as dw
from ..base import Built

if TYPE_CHECKING:
    from ...spec.diffusion import DiffusionSpec


class TorchDiffusionExecutor:
    def __init__(self, mods: dw.Modules, device: torch.device, dtype: torch.dtype):
        self.mods, self.device, self.dtype = mods, device, dtype

    def text(self, ids):
        out = self.mods.text(ids)
        return (out, None) if isinstance(out, torch.Tensor) else out

    def unet(self, sample, timestep, hidden, added):
        return self.mods.unet(sample, timestep, hidden, *added)

    def decode(self, latents):
        return self.mods.vae(latents)

    def describe(self) -> dict:
        return {"name": "torch", "version": torch.__version__, "loop": "StableDiffusionPipeline's, one clock read per phase",
                "threads": torch.get_num_threads()}


def build_diffusion(spec: DiffusionSpec, resolved, probe: DeviceProbe, trust_remote_code: bool = False) -> Built:
    if not isinstance(resolved, dw.ResolvedPipeline):
        from ...workloads.dit import DitExecutor
        dex = DitExecutor(resolved, probe.torch_device, DTYPES[spec.dtype], spec.seed)
        return Built(dex, dex.describe(), dex.params(), resolved.vocab_size)
    mods = dw.build_modules(resolved, probe.torch_device, DTYPES[spec.dtype], spec.seed)
    ex = TorchDiffusionExecutor(mods, probe.torch_device, DTYPES[spec.dtype])
    return Built(ex, ex.describe(), mods.params(), resolved.vocab_size)
