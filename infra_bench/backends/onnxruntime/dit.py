"""Diffusion transformers (FLUX.1, SD3.5) on ONNX Runtime: the transformer exported per resolution with
a dynamic batch, called from inside diffusers' own pipeline; the text encoders, scheduler and VAE stay
in torch on the host. A transformer call in fp32 torch and in ORT on the same inputs gates the cell.

The export uses the torch.export-based exporter: the TorchScript one has no `aten::rms_norm` (FLUX's
q/k norm) below opset 23 and bakes the traced batch into FLUX's rotary code. torch.export fixes a
dimension of size 1, so the batch is traced at 2.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ...devices.base import DeviceProbe
from ...errors import UserError
from ...planner import dit
from ..base import Built
from ..parity import DEFINITION, PARITY_TOLERANCE, differences, gate
from ..parity import worst as parity_worst
from .export import Exporter, cached_export, entry_info, versions
from .providers import import_ort, make_session, require, short_names

if TYPE_CHECKING:
    from ...spec.diffusion import DiffusionSpec
    from ...workloads.dit import ResolvedDit

WRAPPER_VERSION = "dit-v1"
FAMILIES = ("flux", "sd3")
UNBATCHED = ("img_ids", "txt_ids")  # FLUX's position ids: one per token, shared by the batch


class _Positional(torch.nn.Module):
    """The transformer with plain tensor arguments in a fixed order (what the exporter traces)."""

    def __init__(self, transformer, names: list[str]):
        super().__init__()
        self.transformer, self.names = transformer, names

    def forward(self, *tensors):
        return self.transformer(**dict(zip(self.names, tensors)), return_dict=False)[0]


def _inputs(resolved: ResolvedDit, transformer, batch: int, resolution: int, seed: int) -> dict[str, torch.Tensor]:
    """Random inputs of one transformer call, shaped as the pipeline passes them (FLUX's ids are the
    pipeline's own positions)."""
    shapes = dit.transformer_inputs(resolved.entry, transformer, batch, resolution, device="meta")
    g = torch.Generator().manual_seed(seed)
    out = {k: torch.randn(v.shape, generator=g) for k, v in shapes.items() if v is not None}
    if "timestep" in out:
        out["timestep"] = torch.full((batch,), 0.5 if resolved.family == "flux" else 500.0)
    if resolved.family == "flux":
        lat = dit.latent_side(resolved.entry, resolution) // 2
        ids = torch.zeros(lat, lat, 3)
        ids[..., 1], ids[..., 2] = torch.arange(lat)[:, None], torch.arange(lat)[None, :]
        out["img_ids"], out["txt_ids"] = ids.reshape(-1, 3), torch.zeros_like(out["txt_ids"])
        if "guidance" in out:
            out["guidance"] = torch.full((batch,), 3.5)
    return out


class _OrtTransformer:
    """The transformer's forward, answered by the ORT session for the call's latent shape."""

    def __init__(self, sessions: dict[tuple, object], names: list[str], dtype: torch.dtype):
        self.sessions, self.names, self.dtype = sessions, names, dtype

    def __call__(self, return_dict: bool = False, **kw):
        session = self.sessions[tuple(kw["hidden_states"].shape[1:])]
        feeds = {n: kw[n].detach().float().cpu().numpy() for n in self.names}
        out = torch.from_numpy(session.run(None, feeds)[0]).to(kw["hidden_states"].device, self.dtype)
        return (out,)


def check(spec: DiffusionSpec, resolved: ResolvedDit) -> None:
    if resolved.family not in FAMILIES:
        raise UserError(f"spec '{spec.label}': onnxruntime runs the FLUX.1 and SD3.5 transformers; {resolved.arch}'s "
                        f"({resolved.family}) export is not built: set backend: torch")
    if spec.dtype != "fp32":
        raise UserError(f"spec '{spec.label}': onnxruntime runs DiT transformers in fp32 here (the export is "
                        f"checked in fp32); set dtype: fp32, or backend: torch for {spec.dtype}")


def build_dit(spec: DiffusionSpec, resolved: ResolvedDit, probe: DeviceProbe) -> Built:
    from ...workloads.dit import DitExecutor

    ep = require(spec.opts.ep or "cpu")
    dex = DitExecutor(resolved, torch.device("cpu"), torch.float32, spec.seed)
    reference = dex.transformer.forward
    how = Exporter(dynamo=True)
    libs = versions("torch", "transformers", "diffusers", "onnx", "onnxscript")
    info: dict = {"requested_ep": ep.short, "ep_options": dict(spec.opts.ep_options), "export": {},
                  "quantization": None, **how.key(),
                  "ort_part": "the transformer; text encoders, scheduler and VAE decode run in torch on the host"}
    sessions, checks, names = {}, [], []
    for res in spec.resolution:
        example = _inputs(resolved, dex.transformer, 2, res, spec.seed)
        names = list(example)
        axes = {n: {0: "batch"} for n in names if n not in UNBATCHED}
        key = {"what": "dit-transformer", "wrapper": WRAPPER_VERSION, **how.key(), "arch": resolved.arch,
               "config": resolved.entry["components"]["transformer"]["config"], "resolution": res,
               "weights": resolved.info.get("weights_hash") or f"random seed {spec.seed}", **libs}
        module, args = _Positional(dex.transformer, names), tuple(example.values())
        entry = cached_export(key, lambda path, m=module, a=args, i=names, x=axes:
                              how.export(m, a, path, i, ["sample"], x))
        info["export"][str(res)] = entry_info(entry)
        session, info["session_options"] = make_session(entry.path, ep, spec.opts)
        sessions[tuple(example["hidden_states"].shape[1:])] = session
        with torch.inference_mode():
            ref = reference(**example, return_dict=False)[0].numpy()
        got = session.run(None, {n: v.numpy() for n, v in example.items()})[0]
        checks.append({"resolution": res, **differences(ref, got)})
    dex.transformer.forward = _OrtTransformer(sessions, names, torch.float32)
    worst = parity_worst(checks)
    info["parity"] = {"checked": True, "component": "transformer", "max_abs_diff": worst["max_abs_diff"],
                      "max_rel_diff": worst["max_rel_diff"], "per_resolution": checks,
                      "tolerance": spec.opts.tolerance(PARITY_TOLERANCE["fp32"]), "reference": "torch fp32 on cpu",
                      "definition": DEFINITION}
    error = gate(info["parity"], subject="transformer ", detail=f", at {worst['resolution']} px")
    ort = import_ort()
    describe = {"name": "onnxruntime", "version": ort.__version__, "providers": short_names(session.get_providers()),
                "loop": f"diffusers {dex.pipe.__class__.__name__}, the transformer's calls through ORT", **info}
    return Built(None if error else dex, describe, dex.params(), resolved.vocab_size, error)
