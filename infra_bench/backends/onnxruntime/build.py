"""Planning checks and runner construction for the onnxruntime backend: export (cached),
optional int8 quantization (cached), session on the chosen EP, parity gate."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ...devices.base import DeviceProbe
from ...errors import UserError
from ...workloads import llm as llm_workload
from ..base import Built
from ..parity import PARITY_TOLERANCE, gate
from . import llm_export
from .export import cached_export, entry_info, exporter, versions
from .llm import OrtLlmRunner, ep_probe, parity
from .providers import make_session, require

if TYPE_CHECKING:
    from ...spec.llm import LlmSpec

QUANT_NOTE = "quantized: dynamic int8 weights (ONNX Runtime quantize_dynamic); not numerically equal to fp32"
UNCHECKED_NOTE = "parity: not checked (a user .onnx file has no torch reference); its outputs are not verified"


def check(spec) -> DeviceProbe:
    ep = require(spec.opts.ep or "cpu")
    if ep.short == "cpu" and spec.opts.ep_options:  # known now: make_session would fail every cell after the export
        raise UserError(f"spec '{spec.label}': the cpu execution provider takes no provider options (given: "
                        f"{', '.join(spec.opts.ep_options)}); drop --ep-option/ep_options, or choose --ep")
    if spec.dtype == "bf16":
        raise UserError(f"spec '{spec.label}': bf16 is not supported by the onnxruntime backend; "
                        f"use fp32, fp16 (GPU execution providers) or int8 (cpu)")
    if spec.dtype == "fp16" and ep.short == "cpu":
        raise UserError(f"spec '{spec.label}': fp16 on the cpu execution provider lacks kernels; "
                        f"use fp32 or int8 on cpu, or fp16 with a GPU provider (--ep cuda)")
    if spec.dtype == "int8" and ep.short != "cpu":
        raise UserError(f"spec '{spec.label}': int8 (dynamic quantization) runs on the cpu execution "
                        f"provider; use --ep cpu, or fp16 on {ep.short}")
    probe = ep_probe(ep, spec.opts.ep_options)
    if spec.device not in ("auto", probe.name):
        raise UserError(f"spec '{spec.label}': with the onnxruntime backend the execution provider picks the "
                        f"device ({ep.short} -> {probe.name}); drop device/--device or choose --ep")
    if spec.model is not None and Path(spec.model).suffix == ".onnx" and Path(spec.model).is_file():
        layout = llm_export.read_layout(*llm_export.graph_io(Path(spec.model)), spec.model)
        file_dtype = {"float32": "fp32", "float16": "fp16"}.get(layout.kv_dtype, layout.kv_dtype)
        if spec.dtype != "int8" and spec.dtype != file_dtype:
            raise UserError(f"{spec.model}: the file is {file_dtype} but the spec asks for {spec.dtype}; "
                            f"set dtype: {file_dtype} (or int8 to quantize it)")
    return probe


def check_model(spec: LlmSpec, resolved, model: torch.nn.Module) -> None:
    """Refuse, when the spec is planned, a model whose export is known to fail after minutes of building:
    one whose cache the export's KV layout cannot carry (`cache_gap`), or one whose experts run through
    transformers' experts dispatch (integrations/moe.py, the mixture-of-experts models). Its default, grouped_mm, counts tokens per expert with aten::histc, which the TorchScript exporter
    cannot convert, and the torch.export-based one has no conversion for grouped_mm itself. Checked on tiny random
    configs (torch 2.13, transformers 5.25, 2026-12): Mixtral, Qwen3-MoE, gpt-oss and MiniMax-M2 fail so with both
    exporters, Qwen2-MoE, OLMoE and PhiMoE with the default (TorchScript) one; DeepSeek-V3 and GLM-5 fail earlier,
    on their MLA cache, which the export's KV layout does not fit, and Qwen3.5-MoE on its linear-attention layers.
    `model` is the model made on the meta device (nothing allocated); a model of its own code (auto_map) is not
    judged, nor built."""
    model_type = resolved.config.get_text_config().model_type
    try:
        from transformers.integrations import moe
    except ImportError:  # a transformers without the experts dispatch
        moe = None
    if moe and any(getattr(type(m).forward, "__code__", None) is not None and type(m).forward.__code__.co_filename == moe.__file__
           for m in model.modules()):
        raise UserError(f"spec '{spec.label}': {model_type} is a mixture-of-experts "
                        f"model, whose expert routing (transformers' grouped_mm, aten::histc) torch.onnx cannot "
                        f"export; use --backend torch")
    if gap := cache_gap(resolved.config):
        raise UserError(f"spec '{spec.label}': {model_type} has {gap}, which the ONNX export's KV cache (keys and "
                        f"values of num_key_value_heads x head_dim in every layer) cannot carry; use --backend torch")


def cache_gap(config) -> str | None:
    """What of a model's cache the export's layout (llm_export.LlmIoLayout) cannot carry, or None: multi-head
    latent attention (DeepSeek-V2/V3, Kimi K2, GLM-5: a compressed latent, keys and values of other sizes) or
    layers whose cache is a recurrent state (linear attention: Qwen3-Next, Qwen3.5; short convolutions). Dense
    tiny configs of both failed in the export's cache wrapper with either exporter (torch 2.13, transformers
    5.25, 2026-12), after the model was built."""
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    from ..torch.llm import new_cache

    text = config.get_text_config()
    if getattr(text, "kv_lora_rank", None) is not None:  # the planner's test for MLA too (local_shape.py)
        return "multi-head latent attention (MLA)"
    layers = new_cache(config).layers
    odd = [i for i, layer in enumerate(layers) if type(layer) not in (DynamicLayer, DynamicSlidingWindowLayer)]
    if not odd:
        return None
    types = list(getattr(text, "layer_types", None) or [])
    kinds = sorted({types[i] if i < len(types) else type(layers[i]).__name__ for i in odd})
    return f"{len(odd)} of {len(layers)} layers without a KV cache ({', '.join(kinds)}: a recurrent state)"


def _export(spec: LlmSpec, resolved, model: torch.nn.Module) -> tuple[Path, dict, llm_export.LlmIoLayout]:
    export_dtype = torch.float16 if spec.dtype == "fp16" else torch.float32
    layout = llm_export.layout_from_config(resolved.config, export_dtype)
    weights = resolved.info.get("weights_hash") or f"random seed {spec.seed}"
    how = exporter()
    key = {"what": "llm", "wrapper": llm_export.WRAPPER_VERSION, **how.key(), "config": resolved.config.to_dict(),
           "weights": weights, "dtype": str(export_dtype), **versions("torch", "transformers", "onnx")}
    source = model if export_dtype == torch.float32 else copy.deepcopy(model).to(export_dtype)
    entry = cached_export(key, lambda path: llm_export.export_llm(source, layout, path, how))
    return entry.path, {**how.key(), **entry_info(entry)}, layout


def _quantize(src: Path, base_key: str) -> tuple[Path, dict]:
    key = {"what": "int8-dynamic", "source": base_key, **versions("onnxruntime", "onnx")}
    entry = cached_export(key, lambda path: llm_export.quantize_int8(src, path))
    return entry.path, {"method": "dynamic int8 (QInt8 weights)", "path": str(entry.path),
                        "cache_hit": entry.cache_hit, "quantize_s": entry.build_s}


def build_llm(spec, resolved, probe: DeviceProbe, trust_remote_code: bool) -> Built:
    ep = require(spec.opts.ep or "cpu")
    user_file = resolved.info.get("format") == "onnx"
    model = None
    info: dict = {"name": "onnxruntime", "requested_ep": ep.short, "ep_options": dict(spec.opts.ep_options)}
    notes: list[str] = []
    if user_file:
        path = Path(resolved.info["path"])
        layout = llm_export.read_layout(*llm_export.graph_io(path), path)
        info["export"] = {"user_file": str(path)}
        params = None
    else:
        model = llm_workload.build(spec, resolved, torch.device("cpu"), trust_remote_code, dtype=torch.float32)
        params = llm_workload.param_count(model)
        path, info["export"], layout = _export(spec, resolved, model)
    info["quantization"] = None
    if spec.dtype == "int8":
        path, info["quantization"] = _quantize(path, info["export"].get("cache_key") or resolved.info["weights_hash"])
        notes.append(QUANT_NOTE)
    session, info["session_options"] = make_session(path, ep, spec.opts)
    runner = OrtLlmRunner(session, layout, ep, spec.opts.ep_options, probe, info)
    vocab = layout.vocab_size or 100
    if user_file and layout.vocab_size is None:
        notes.append("prompt token ids drawn from 0..99: the file's vocabulary size is not fixed in its graph")
    if user_file and spec.dtype != "int8":
        info["parity"] = {"checked": False, "reason": "no torch reference for a user .onnx file"}
        notes.append(UNCHECKED_NOTE)
        return Built(runner, runner.describe(), params, vocab, notes=notes)
    # a user's file quantized to int8 is checked against the file itself, the one reference there is
    reference = model if model is not None else OrtLlmRunner(
        make_session(Path(resolved.info["path"]), ep, spec.opts)[0], layout, ep, spec.opts.ep_options, probe, {})
    tolerance = spec.opts.tolerance(PARITY_TOLERANCE[spec.dtype])
    info["parity"] = {**parity(reference, runner, vocab, spec.seed), "tolerance": tolerance}
    del model, reference
    error = gate(info["parity"], detail=f", top-1 agreement {info['parity']['top1_agreement']:.0%}")
    return Built(None if error else runner, runner.describe(), params, vocab, error, notes)
