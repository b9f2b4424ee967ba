"""Exporting a causal LM with its KV cache as one ONNX graph that serves prefill and decode.

I/O convention (also what a user's own .onnx file must follow):

  inputs   input_ids                [batch, seq]                   int64
           attention_mask           [batch, past + seq]            int64
           position_ids             [batch, seq]                   int64
           past_key_values.{i}.key  [batch, kv_heads, past, head_dim]  float (i = 0 .. layers-1)
           past_key_values.{i}.value  (same)
  outputs  logits                   [batch, 1 or seq, vocab]        (the last position is used)
           present.{i}.key / present.{i}.value  [batch, kv_heads, past + seq, head_dim]

Prefill passes past tensors with past = 0. Our graph computes logits for the last position
only, as serving engines do; a user's may compute them for all (the runner records which).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ...errors import UserError
from .export import Exporter

WRAPPER_VERSION = "llm-kv-v1"  # bump when the wrapper's graph changes, to invalidate caches


@dataclass(frozen=True)
class LlmIoLayout:
    layers: int
    kv_heads: int
    head_dim: int
    vocab_size: int | None
    kv_dtype: str  # numpy dtype name of the past tensors

    def past_names(self) -> list[str]:
        return [f"past_key_values.{i}.{t}" for i in range(self.layers) for t in ("key", "value")]

    def present_names(self) -> list[str]:
        return [f"present.{i}.{t}" for i in range(self.layers) for t in ("key", "value")]

    def input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "position_ids", *self.past_names()]

    def output_names(self) -> list[str]:
        return ["logits", *self.present_names()]


class _KvWrapper(torch.nn.Module):
    """Flat tensors in and out, a DynamicCache inside: the form torch.onnx.export can trace."""
    logits_to_keep = 1  # the last position only, as serving engines do (0 would keep them all)

    def __init__(self, model: torch.nn.Module, layers: int):
        super().__init__()
        self.model, self.layers = model, layers

    def forward(self, input_ids, attention_mask, position_ids, *past):
        from ..torch.llm import cache_argument, new_cache
        cache = new_cache(self.model.config, [(past[2 * i], past[2 * i + 1]) for i in range(self.layers)])
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         use_cache=True, logits_to_keep=self.logits_to_keep, **{cache_argument(self.model): cache})
        flat = []
        for layer in cache.layers:  # extended in place by the forward pass
            flat += [layer.keys, layer.values]
        return (out.logits, *flat)


def layout_from_config(config, dtype: torch.dtype) -> LlmIoLayout:
    text = config.get_text_config()
    heads = text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    return LlmIoLayout(text.num_hidden_layers, kv_heads, head_dim, text.vocab_size,
                       str(torch.empty(0, dtype=dtype).numpy().dtype) if dtype != torch.bfloat16 else "bfloat16")


def example_inputs(layout: LlmIoLayout, dtype: torch.dtype) -> tuple[tuple, dict]:
    """Example inputs that trace a KV-cache graph of `layout`, and its dynamic axes (logits: batch only)."""
    b, s, p = 2, 8, 16  # example shapes; none of them 0 or 1, so nothing is specialised on them
    ids = torch.randint(0, min(layout.vocab_size or 100, 100), (b, s))
    mask = torch.ones(b, p + s, dtype=torch.long)
    pos = torch.arange(p, p + s).expand(b, s)
    past = [torch.zeros(b, layout.kv_heads, p, layout.head_dim, dtype=dtype) for _ in range(2 * layout.layers)]
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "total"},
            "position_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch"}}
    axes.update({n: {0: "batch", 2: "past"} for n in layout.past_names()})
    axes.update({n: {0: "batch", 2: "total"} for n in layout.present_names()})
    return (ids, mask, pos, *past), axes


def export_llm(model: torch.nn.Module, layout: LlmIoLayout, path: Path, how: Exporter) -> None:
    """Trace `model` (already in its export dtype, on CPU) into `path`."""
    args, axes = example_inputs(layout, next(model.parameters()).dtype)
    how.export(_KvWrapper(model, layout.layers).eval(), args, path, layout.input_names(), layout.output_names(), axes)


class _DropQuantizerAdvice(logging.Filter):
    """onnxruntime's quantizer logs pre-processing advice on the root logger; this drops those records
    (and only those) while it runs, leaving every logger's level and everyone else's records alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "/onnxruntime/quantization/" not in record.pathname.replace("\\", "/")


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization of weights (activations quantized at run time), for CPU."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root, drop = logging.getLogger(), _DropQuantizerAdvice()
    root.addFilter(drop)
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    finally:
        root.removeFilter(drop)


_ONNX_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(bfloat16)": "bfloat16"}


@dataclass(frozen=True)
class IoInfo:
    name: str
    shape: list
    type: str


def graph_io(path: Path) -> tuple[list[IoInfo], list[IoInfo]]:
    """Inputs and outputs of an ONNX file, read without loading external weight data."""
    import onnx
    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as e:
        raise UserError(f"{path}: not a readable ONNX model ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    names = {v: k for k, v in onnx.TensorProto.DataType.items()}

    def info(v) -> IoInfo:
        t = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]
        return IoInfo(v.name, dims, f"tensor({names.get(t.elem_type, '?').lower()})")
    initializers = {i.name for i in graph.initializer}
    return [info(v) for v in graph.input if v.name not in initializers], [info(v) for v in graph.output]


def read_layout(inputs_list: list[IoInfo], outputs_list: list[IoInfo], path: Path | str) -> LlmIoLayout:
    """Check inputs and outputs against the convention; a one-line error if they differ."""
    inputs = {i.name: i for i in inputs_list}
    outputs = {o.name for o in outputs_list}
    missing = [n for n in ("input_ids", "attention_mask", "position_ids") if n not in inputs]
    keys = sorted(int(m.group(1)) for n in inputs if (m := re.fullmatch(r"past_key_values\.(\d+)\.key", n)))
    if missing or not keys or "logits" not in outputs:
        need = missing + ([] if keys else ["past_key_values.0.key ..."]) + ([] if "logits" in outputs else ["logits (output)"])
        raise UserError(f"{path}: inputs/outputs do not follow the LLM convention: missing {', '.join(need)} "
                        f"(found inputs: {', '.join(list(inputs)[:6])}); see docs/onnxruntime.md")
    layers = len(keys)
    layout_names = [f"past_key_values.{i}.{t}" for i in range(layers) for t in ("key", "value")]
    absent = [n for n in layout_names if n not in inputs] + \
             [n for n in (f"present.{i}.{t}" for i in range(layers) for t in ("key", "value")) if n not in outputs]
    if keys != list(range(layers)) or absent:
        raise UserError(f"{path}: KV cache inputs/outputs are incomplete (missing {', '.join(absent[:3]) or 'layer indices'}); "
                        f"see docs/onnxruntime.md")
    shape = inputs["past_key_values.0.key"].shape
    if len(shape) != 4 or not isinstance(shape[1], int) or not isinstance(shape[3], int):
        raise UserError(f"{path}: past_key_values.0.key must be [batch, kv_heads, past, head_dim] with fixed "
                        f"kv_heads and head_dim (found {shape})")
    logits_shape = next(o.shape for o in outputs_list if o.name == "logits")
    vocab = logits_shape[-1] if isinstance(logits_shape[-1], int) else None
    kv_type = _ONNX_DTYPES.get(inputs["past_key_values.0.key"].type)
    if kv_type is None:
        raise UserError(f"{path}: past tensors of type {inputs['past_key_values.0.key'].type} are not supported")
    return LlmIoLayout(layers, shape[1], shape[3], vocab, kv_type)
