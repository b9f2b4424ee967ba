"""LLM workloads: the built-in architecture catalog, model building and prompt tokens.

Random weights are built from a config with no network access; a local checkpoint is read
from safetensors only (pickled weights are refused), and its content is hashed for the record.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

from ..catalog import architectures
from ..devices.torch_probe import DTYPES
from ..errors import UserError, closest
from ..spec.llm import LlmSpec
from .files import check_loaded, hash_files, hf_folder, own_code


@dataclass(frozen=True)
class Architecture:
    id: str
    model_type: str
    description: str
    source: str
    params: int | None
    config: dict = field(default_factory=dict)


@lru_cache(maxsize=1)
def catalog() -> dict[str, Architecture]:
    """Built-in architectures from workloads/architectures/llm.yaml; a published model's shapes, source
    and parameter count come from the one catalog that the planner reads too (infra_bench/catalog.py)."""
    from ..catalog import hf_config, llm_rows

    raw = architectures("llm")
    out = {}
    for k, entry in raw.items():
        v = {f: x for f, x in entry.items() if f != "catalog"}  # the cached catalog stays as read
        if entry.get("catalog"):
            row = llm_rows()[k]
            v = {**v, "source": row["source"], "params": int(row["total_params_exact"]),
                 "config": {**hf_config(k, v["model_type"]), **v.get("config", {})}}
        out[k] = Architecture(id=k, **v)
    return out


@dataclass
class ResolvedModel:
    """A spec's model, resolved to a Hugging Face config plus what the record says about it."""
    config: object
    info: dict

    @property
    def max_positions(self) -> int | None:
        c = self.config
        return getattr(c, "max_position_embeddings", None) or getattr(c, "n_positions", None)


def resolve(spec: LlmSpec, trust_remote_code: bool = False) -> ResolvedModel:
    """Turn a spec's arch or model folder into a config; every problem is a UserError."""
    from transformers import AutoConfig

    if spec.arch is not None:
        archs = catalog()
        if spec.arch not in archs:
            raise UserError(f"unknown architecture '{spec.arch}'{closest(spec.arch, archs)}; "
                            f"built-in: {', '.join(archs)}; or give model: PATH")
        a = archs[spec.arch]
        cfg = AutoConfig.for_model(a.model_type, **a.config)
        return ResolvedModel(cfg, {"arch": a.id, "model_type": a.model_type, "weights": "random",
                                   "source": a.source, "params_reference": a.params})
    folder = Path(spec.model)
    if folder.suffix == ".onnx":
        if not folder.is_file():
            raise UserError(f"model file not found: {folder}; give the path to an exported .onnx file")
        return ResolvedModel(None, {"path": str(folder.resolve()), "format": "onnx", "weights": "checkpoint",
                                    "weights_hash": hash_files([folder])})
    cfg, raw, weights = hf_folder(folder, trust_remote_code)
    if not raw.get("auto_map"):
        _check_causal_lm(folder, cfg)
    return ResolvedModel(cfg, {"path": str(folder.resolve()), "model_type": cfg.model_type,
                               "weights": "checkpoint", "weights_hash": hash_files(weights + [folder / "config.json"]),
                               **own_code(raw)})


def _check_causal_lm(folder: Path, cfg) -> None:
    """Refuse a folder whose checkpoint is not a causal LM (an encoder, a classifier): transformers would
    build its model type's LM head with random weights and the run would time a model nobody serves."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES as causal,
    )

    if cfg.model_type not in causal:
        raise UserError(f"{folder}: model_type '{cfg.model_type}' has no causal language model in transformers, "
                        f"so kind: llm cannot generate with it; give the folder of a *ForCausalLM checkpoint")
    heads = {n for v in causal.values() for n in ((v,) if isinstance(v, str) else v)}
    saved = list(getattr(cfg, "architectures", None) or [])
    if saved and not heads.intersection(saved):
        own = causal[cfg.model_type]
        raise UserError(f"{folder}: config.json's architectures {', '.join(saved)} is not a causal language model "
                        f"(no LM head in the checkpoint: transformers would make one up with random weights); "
                        f"kind: llm needs a checkpoint saved from a causal LM such as "
                        f"{own if isinstance(own, str) else own[0]}")


def check_cells(spec: LlmSpec, resolved: ResolvedModel) -> None:
    """Refuse request shapes the model cannot take, before anything runs."""
    if resolved.config is None:  # a user .onnx file: its limits are not known
        return
    meta = None
    if spec.backend == "onnxruntime" and (meta := _meta_model(resolved)) is not None:  # one for both checks
        from ..backends.onnxruntime.build import check_model
        check_model(spec, resolved, meta)
    check_host_memory(spec, resolved, model=meta)
    limit = resolved.max_positions
    longest = max(spec.prompt_len) + max(spec.output_len)
    if limit and longest > limit:
        raise UserError(f"spec '{spec.label}': prompt_len + output_len = {longest} exceeds the model's "
                        f"{limit} positions; use shorter prompt_len or output_len")


def _meta_model(resolved: ResolvedModel) -> torch.nn.Module | None:
    """The model built on the meta device (nothing allocated), for the checks made when a spec is planned;
    None for a user .onnx file or a model of its own code, which are not built here."""
    from transformers import AutoModelForCausalLM

    if resolved.config is None or getattr(resolved.config, "auto_map", None):
        return None
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(resolved.config)


def check_host_memory(spec: LlmSpec, resolved: ResolvedModel, free: int | None = None,
                      model: torch.nn.Module | None = None) -> None:
    """Refuse a model whose weights cannot fit in this host's free memory (`free`, default what this host
    has) before building it (workloads/host_memory.py); for ONNX Runtime, the estimated peak of the export and
    session beside the torch model. The size is the config's, counted on the meta device (`model`, made here
    when not given)."""
    from .host_memory import on_host, ort_build_peak, refuse

    if resolved.config is None or getattr(resolved.config, "auto_map", None):
        return  # a user .onnx file, or a model of its own code: not counted here
    if not on_host(spec, resolved.info["weights"] == "checkpoint"):
        return  # random weights are made on the accelerator itself
    params = param_count(model or _meta_model(resolved))
    if spec.backend == "onnxruntime":  # exported from an fp32 model, which the session's copy joins
        return refuse(spec.label, params, ort_build_peak(params * 4, spec.dtype),
                      "fp32 (an estimate of the peak: the torch model, its ONNX export and the session)",
                      "export and run in ONNX Runtime", free=free)
    smaller = "; bf16 halves it" if spec.dtype == "fp32" and spec.backend == "torch" else ""
    refuse(spec.label, params, params * DTYPES[spec.dtype].itemsize, spec.dtype, "load", smaller, free)


def build(spec: LlmSpec, resolved: ResolvedModel, device: torch.device,
          trust_remote_code: bool = False, dtype: torch.dtype | None = None) -> torch.nn.Module:
    """The model in eval mode on `device` (in the spec's dtype unless `dtype` is given):
    random weights seeded by the spec, or the checkpoint."""
    from transformers import AutoModelForCausalLM

    dtype = DTYPES[spec.dtype] if dtype is None else dtype
    if resolved.info["weights"] == "random":
        torch.manual_seed(spec.seed)
        with device:  # allocate and initialise directly on the device
            model = AutoModelForCausalLM.from_config(resolved.config, dtype=dtype)
    else:
        model, loading = AutoModelForCausalLM.from_pretrained(
            spec.model, dtype=dtype, local_files_only=True, use_safetensors=True,
            trust_remote_code=trust_remote_code, output_loading_info=True)
        check_loaded(spec.model, model, list(loading.get("missing_keys", ())))
        model = model.to(device)
    return model.eval()


def prompt_tokens(batch_size: int, prompt_len: int, vocab_size: int, seed: int,
                  device: torch.device) -> torch.Tensor:
    """Seeded random token ids. Performance of a dense model depends on shapes, not on ids."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (batch_size, prompt_len), generator=g).to(device)


def param_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def metrics(result) -> dict:
    """Per-cell LLM metrics with the names docs/metrics.md defines."""
    from ..measure.stats import summarize
    from ..scenarios.offline import window_metrics

    t, w = result.timings, result.window
    batch = t[0].batch_size
    out_tokens = sum(x.batch_size * x.output_len for x in t)
    in_tokens = sum(x.batch_size * x.prompt_len for x in t)
    ttft = [x.ttft_s for x in t]
    return {
        "iterations": len(t),
        "requests": len(t) * batch,
        "output_tokens": out_tokens,
        "window_s": w.wall_s,
        "ttft_s": summarize(ttft),
        "tpot_s": summarize([x.tpot_s for x in t]),
        "itl_s": summarize([g for x in t for g in x.itl_s]),
        "e2e_s": summarize([x.e2e_s for x in t]),
        "output_tokens_per_s": out_tokens / w.wall_s,
        "prefill_tokens_per_s": in_tokens / sum(ttft),
        "requests_per_s": len(t) * batch / w.wall_s,
        **window_metrics(w, out_tokens, "token"),
    }


def measure(spec: LlmSpec, resolved: ResolvedModel, built, cell: dict, window, rule) -> dict:
    """Run one cell; return the fields of its ok record."""
    from ..scenarios.offline import run_offline

    ids = built.runner.prepare(prompt_tokens(cell["batch_size"], cell["prompt_len"], built.vocab_size, spec.seed,
                                             torch.device("cpu")))
    warm = getattr(built.runner, "warm", None)
    compiled = warm(ids, cell["output_len"]) if warm else None   # compiling: timed apart, before warm-up
    result = run_offline(lambda: built.runner.run(ids, cell["output_len"]), rule, window)
    return {"metrics": metrics(result), "stop_reason": result.stop_reason, "compile": compiled,
            "samples": [{"ttft_s": t.ttft_s, "e2e_s": t.e2e_s, "itl_s": t.itl_s} for t in result.timings]}
