"""Diffusion on ONNX Runtime: text encoder(s), UNet and VAE decoder exported through the
cache, driven by the same denoising loop and scheduler as torch; parity on a UNet call."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from ...devices.base import DeviceProbe
from ...workloads import diffusion as dw
from ..base import Built
from ..parity import DEFINITION, PARITY_TOLERANCE, differences, gate
from ..parity import worst as parity_worst
from .export import cached_export, entry_info, exporter, versions
from .providers import import_ort, make_session, require, short_names

if TYPE_CHECKING:
    from ...spec.diffusion import DiffusionSpec

WRAPPER_VERSION = "diffusion-v1"


def _examples(resolved: dw.ResolvedPipeline, mods: dw.Modules, dtype: torch.dtype) -> dict:
    """Example inputs for tracing: batch 2, a latent side that is a multiple of every UNet level."""
    levels = len(resolved.configs["unet"].get("block_out_channels", [0, 0, 0, 0]))
    side = 2 ** (levels - 1) * 2
    ids = torch.zeros((2, dw.TEXT_LEN), dtype=torch.long)
    with torch.no_grad():
        out = mods.text(ids)
    hidden, pooled = (out, None) if isinstance(out, torch.Tensor) else out
    added = (pooled, torch.zeros((2, 6), dtype=dtype)) if pooled is not None else ()
    return {"ids": ids, "sample": torch.zeros((2, resolved.latent_channels, side, side), dtype=dtype),
            "t": torch.full((2,), 500.0, dtype=torch.float32), "hidden": hidden, "added": added,
            "latents": torch.zeros((2, resolved.latent_channels, side, side), dtype=dtype)}


def _components(resolved, mods, dtype) -> dict:
    """name -> (module, example args, input names, output names, dynamic axes)."""
    ex = _examples(resolved, mods, dtype)
    sdxl = bool(ex["added"])
    spatial = {0: "batch", 2: "height", 3: "width"}
    text_out = ["hidden", "pooled"] if sdxl else ["hidden"]
    unet_in = ["sample", "timestep", "hidden"] + (["text_embeds", "time_ids"] if sdxl else [])
    unet_axes = {"sample": spatial, "timestep": {0: "batch"}, "hidden": {0: "batch"}, "noise": spatial}
    if sdxl:
        unet_axes.update({"text_embeds": {0: "batch"}, "time_ids": {0: "batch"}})
    return {
        "text": (mods.text, (ex["ids"],), ["input_ids"], text_out, {"input_ids": {0: "batch"},
                                                                   **{n: {0: "batch"} for n in text_out}}),
        "unet": (mods.unet, (ex["sample"], ex["t"], ex["hidden"], *ex["added"]), unet_in, ["noise"], unet_axes),
        "vae": (mods.vae, (ex["latents"],), ["latents"], ["image"], {"latents": spatial, "image": spatial}),
    }


class OrtDiffusionExecutor:
    """The loop's tensors stay on the host (torch, CPU); each component call goes through ORT."""

    def __init__(self, sessions: dict, dtype: torch.dtype, info: dict):
        self.sessions, self.dtype, self.info = sessions, dtype, info
        self.device = torch.device("cpu")
        self._np = np.float16 if dtype == torch.float16 else np.float32

    def _run(self, name: str, feeds: dict) -> list[np.ndarray]:
        return self.sessions[name].run(None, feeds)

    def text(self, ids):
        out = self._run("text", {"input_ids": ids.numpy().astype(np.int64)})
        return torch.from_numpy(out[0]), (torch.from_numpy(out[1]) if len(out) > 1 else None)

    def unet(self, sample, timestep, hidden, added):
        n = sample.shape[0]
        feeds = {"sample": sample.numpy().astype(self._np), "timestep": np.full((n,), float(timestep), np.float32),
                 "hidden": hidden.numpy().astype(self._np)}
        if added:
            feeds["text_embeds"], feeds["time_ids"] = (a.numpy().astype(self._np) for a in added)
        return torch.from_numpy(self._run("unet", feeds)[0])

    def decode(self, latents):
        return torch.from_numpy(self._run("vae", {"latents": latents.numpy().astype(self._np)})[0])

    def describe(self) -> dict:
        ort = import_ort()
        return {"name": "onnxruntime", "version": ort.__version__,
                "providers": short_names(self.sessions["unet"].get_providers()),
                "loop": "StableDiffusionPipeline's, one clock read per phase; ORT sessions per component",
                **self.info}


@torch.inference_mode()
def _unet_parity(mods: dw.Modules, ex: OrtDiffusionExecutor, resolved: dw.ResolvedPipeline, resolution: int,
                 seed: int) -> dict:
    """One UNet call (batch 2, timestep 500) in torch fp32 and in ORT, on the same inputs."""
    g = torch.Generator().manual_seed(seed)
    lat = resolution // resolved.vae_scale_factor
    sample = torch.randn((2, resolved.latent_channels, lat, lat), generator=g)
    hidden, pooled = ex.text(torch.randint(3, resolved.vocab_size, (2, dw.TEXT_LEN), generator=g))
    hidden = hidden.float()
    added = (pooled.float(), torch.tensor([[resolution, resolution, 0, 0, resolution, resolution]] * 2,
                                          dtype=torch.float32)) if pooled is not None else ()
    t = torch.full((2,), 500.0)
    ref = mods.unet(sample, t, hidden, *added).float().numpy()
    got = ex.unet(sample.to(ex.dtype), t[0], hidden.to(ex.dtype), tuple(a.to(ex.dtype) for a in added)).float().numpy()
    return {"resolution": resolution, **differences(ref, got)}


def build_diffusion(spec: DiffusionSpec, resolved, probe: DeviceProbe, trust_remote_code: bool = False) -> Built:
    if not isinstance(resolved, dw.ResolvedPipeline):
        from .dit import build_dit
        return build_dit(spec, resolved, probe)
    ep = require(spec.opts.ep or "cpu")
    export_dtype = torch.float16 if spec.dtype == "fp16" else torch.float32
    mods = dw.build_modules(resolved, torch.device("cpu"), torch.float32, spec.seed)
    source = mods if export_dtype == torch.float32 else dw.build_modules(resolved, torch.device("cpu"), export_dtype,
                                                                         spec.seed)
    weights = resolved.info.get("weights_hash") or f"random seed {spec.seed}"
    libs = versions("torch", "transformers", "diffusers", "onnx")
    info: dict = {"requested_ep": ep.short, "ep_options": dict(spec.opts.ep_options), "export": {}, "quantization": None}
    sessions, how = {}, exporter()
    for name, (module, args, inputs, outputs, axes) in _components(resolved, source, export_dtype).items():
        key = {"what": f"diffusion-{name}", "wrapper": WRAPPER_VERSION, **how.key(), "family": resolved.family,
               "configs": resolved.configs, "weights": weights, "dtype": str(export_dtype), **libs}
        entry = cached_export(key, lambda path, m=module, a=args, i=inputs, o=outputs, x=axes:
                              how.export(m, a, path, i, o, x))
        info["export"][name] = entry_info(entry)
        sessions[name], info["session_options"] = make_session(entry.path, ep, spec.opts)
    info.update(how.key())
    ex = OrtDiffusionExecutor(sessions, export_dtype, info)
    tolerance = spec.opts.tolerance(PARITY_TOLERANCE[spec.dtype])
    checks = [_unet_parity(mods, ex, resolved, r, spec.seed) for r in spec.resolution]
    worst = parity_worst(checks)
    info["parity"] = {"checked": True, "component": "unet", "max_abs_diff": worst["max_abs_diff"],
                      "max_rel_diff": worst["max_rel_diff"], "per_resolution": checks, "tolerance": tolerance,
                      "reference": "torch fp32 on cpu", "definition": DEFINITION}
    error = gate(info["parity"], subject="UNet ", detail=f", at {worst['resolution']} px")
    params = mods.params()
    del mods, source
    return Built(None if error else ex, ex.describe(), params, resolved.vocab_size, error)
