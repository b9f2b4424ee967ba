"""Embedding and reranker models on ONNX Runtime: exported through the cache (optionally int8
dynamic quantization, also cached), run on the chosen execution provider, parity-checked
against the torch fp32 model before any timing. A reranker whose config has type_vocab_size > 1 is
exported with a third input, token_type_ids, so a served pair's second text is marked as the model
was trained to read it; timing runs feed it all zeros, the model's own default."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...backends.base import Built
from ...backends.onnxruntime.export import cached_export, entry_info, exporter, versions
from ...backends.onnxruntime.providers import import_ort, make_session, require, short_names
from ...backends.parity import DEFINITION, PARITY_TOLERANCE, differences, gate
from ...devices.base import DeviceProbe
from . import workload as ew
from .spec import EmbeddingSpec

WRAPPER_VERSION = "embedding-v1"
QUANT_NOTE = "quantized: dynamic int8 weights (ONNX Runtime quantize_dynamic); not numerically equal to fp32"
INPUTS = ["input_ids", "attention_mask"]
TYPES = "token_type_ids"


def input_names(resolved: ew.ResolvedEmbedding) -> list[str]:
    return INPUTS + [TYPES] if resolved.token_types else INPUTS


def output_name(resolved: ew.ResolvedEmbedding) -> str:
    return "scores" if resolved.arch.task == "rerank" else "embeddings"


class OrtEmbeddingExecutor:
    def __init__(self, session, info: dict):
        self.session, self.info = session, info
        self.typed = TYPES in {i.name for i in session.get_inputs()}

    def prepare(self, spec: EmbeddingSpec, resolved: ew.ResolvedEmbedding, cell: dict) -> dict:
        ids = ew.token_ids(resolved, spec, cell).numpy()
        return {"input_ids": ids, "attention_mask": np.ones_like(ids),
                **({TYPES: np.zeros_like(ids)} if self.typed else {})}

    def run(self, inputs: dict, now) -> ew.EmbeddingTiming:
        start = now()
        self.session.run(None, inputs)
        end = now()
        ids = inputs["input_ids"]
        return ew.EmbeddingTiming(start, end, ids.shape[0], ids.shape[1])

    def embed(self, ids: np.ndarray, attention_mask: np.ndarray | None = None,
              token_type_ids: np.ndarray | None = None) -> np.ndarray:
        """Vectors [B, H] (or reranker scores [B]) as float32 for int64 ids [B, L]; all tokens
        attended unless a mask is given; token types when given (all 0 where the export takes them and
        none are given)."""
        if token_type_ids is not None and not self.typed:
            raise ValueError("token_type_ids given to an ONNX export without that input")
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        mask = np.ones_like(ids) if attention_mask is None else np.ascontiguousarray(attention_mask, dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if self.typed:
            feed[TYPES] = np.zeros_like(ids) if token_type_ids is None else \
                np.ascontiguousarray(token_type_ids, dtype=np.int64)
        return self.session.run(None, feed)[0].astype(np.float32)

    def describe(self) -> dict:
        return {"name": "onnxruntime", "version": import_ort().__version__, "engine": "infra-bench ORT session",
                "providers": short_names(self.session.get_providers()),
                "request_end": "outputs returned to the host", **self.info}


def _export(spec: EmbeddingSpec, resolved: ew.ResolvedEmbedding, model: ew.EmbeddingModel) -> tuple[Path, dict]:
    export_dtype = torch.float16 if spec.dtype == "fp16" else torch.float32  # int8 quantizes the fp32 export
    source = model if export_dtype == torch.float32 else \
        ew.build_model(resolved, spec, torch.device("cpu"), export_dtype)
    a, how, out = resolved.arch, exporter(), output_name(resolved)
    key = {"what": "embedding", "wrapper": WRAPPER_VERSION, **how.key(), "family": a.family, "task": a.task,
           "pooling": a.pooling, "normalize": a.normalize, "arch": a.config,
           "weights": resolved.info.get("weights_hash") or f"random seed {spec.seed}",
           "dtype": str(export_dtype), **versions("torch", "transformers", "onnx")}
    names = input_names(resolved)
    if TYPES in names:  # only then: every other export keeps its key, and its cached entry
        key["inputs"] = names

    def export(path):
        ids = torch.randint(ew.FIRST_ID, resolved.vocab_size, (2, 16))
        types = (torch.zeros_like(ids).index_fill_(1, torch.arange(8, 16), 1),) if TYPES in names else ()
        how.export(source, (ids, torch.ones_like(ids), *types), path, names, [out],
                   {**{n: {0: "batch", 1: "tokens"} for n in names}, out: {0: "batch"}})
    entry = cached_export(key, export)
    return entry.path, {**entry_info(entry), **how.key()}


def _quantize(src: Path, source_key: str) -> tuple[Path, dict]:
    from ...backends.onnxruntime.llm_export import quantize_int8

    entry = cached_export({"what": "int8-dynamic", "source": source_key, **versions("onnxruntime", "onnx")},
                          lambda path: quantize_int8(src, path))
    return entry.path, {"method": "dynamic int8 (QInt8 weights)", "path": str(entry.path),
                        "cache_hit": entry.cache_hit, "quantize_s": entry.build_s}


def build(spec: EmbeddingSpec, resolved: ew.ResolvedEmbedding, probe: DeviceProbe,
          trust_remote_code: bool = False) -> Built:
    ep = require(spec.opts.ep or "cpu")
    model = ew.build_model(resolved, spec, torch.device("cpu"), torch.float32)  # also the parity reference
    path, export_info = _export(spec, resolved, model)
    info: dict = {"requested_ep": ep.short, "ep_options": dict(spec.opts.ep_options), "export": export_info,
                  "quantization": None}
    notes = []
    if spec.dtype == "int8":
        path, info["quantization"] = _quantize(path, export_info["cache_key"])
        notes.append(QUANT_NOTE)
    session, info["session_options"] = make_session(path, ep, spec.opts)
    ex = OrtEmbeddingExecutor(session, info)
    ids = ew.token_ids(resolved, spec, {"batch_size": 2, "seq_len": min(spec.seq_len)})
    mask = torch.ones_like(ids)
    mask[1, max(1, ids.shape[1] // 2):] = 0  # the second sequence right-padded: the mask path is checked too
    types = None
    if ex.typed:  # the first sequence a pair (its second half type 1): the token type path is checked too
        types = torch.zeros_like(ids)
        types[0, ids.shape[1] // 2:] = 1
    with torch.inference_mode():
        ref = model(ids, mask, types).float().numpy()
    got = ex.embed(ids.numpy(), mask.numpy(), None if types is None else types.numpy())
    tolerance = spec.opts.tolerance(PARITY_TOLERANCE[spec.dtype])
    out = output_name(resolved)
    if got.shape != ref.shape:
        info["parity"] = {"checked": True, "shape_torch": list(ref.shape), "shape_ort": list(got.shape),
                          "tolerance": tolerance}
        error = f"parity gate failed: {out} shape {list(got.shape)} from ORT vs {list(ref.shape)} from torch"
    else:
        info["parity"] = {"checked": True, "component": out, **differences(ref, got), "tolerance": tolerance,
                          "inputs": f"batch 2, {ids.shape[1]} tokens, the second half-padded"
                          + (", the first a pair (token types 0, then 1)" if ex.typed else ""),
                          "reference": "torch fp32 on cpu", "definition": DEFINITION}
        error = gate(info["parity"], subject=f"{out} ")
    ex.info = info
    return Built(None if error else ex, ex.describe(), ew.param_count(model), resolved.vocab_size, error, notes)
