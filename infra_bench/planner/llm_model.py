"""The analytic LLM performance model: memory gate, prefill (compute-bound), decode (memory-bound
with an explicit fixed per-step overhead) and tensor-parallel all-reduces over the scale-up link.

    weights   = params x bytes/param;  KV/token from the architecture (MLA: the latent cache)
    prefill   = (2 N_active T + 2 L T^2 d) B FLOPs  /  (TP x peak x MFU)  + 2L all-reduces
    decode    = max(bytes read / (TP x BW x MBU), 2 N_active B / (TP x peak x MFU)) + 2L all-reduces + t_fixed
    bytes read per step = active weights (MoE: experts touched by B tokens) + B x context x KV/token

Efficiencies are priors here (`calibrated: false`), with a +-30% interval; the calibration step
of the planner will replace them with fitted values keyed by accelerator, engine and precision.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass
from functools import lru_cache

from ..errors import UserError, closest
from ..paths import data_dir
from .profiles import HardwareProfile

BYTES_PER_PARAM = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
KV_BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 2.0}  # int4 is weight-only
COMPUTE_DTYPE = {"fp32": "fp32", "bf16": "bf16", "fp16": "fp16", "fp8": "fp8", "int8": "int8", "int4": "fp16"}

# Priors (planner_anchors.md: decode MBU 0.65-0.70 on H100 BF16; aiconfigurator-style fixed
# per-step overhead; runtime reserve ~3.5 GB + collective buffers; usable HBM ~90%).
PRIORS = {"mfu_prefill": 0.5, "mfu_decode": 0.5, "mbu": 0.68, "t_fixed_s": 3e-4, "allreduce_latency_s": 1e-5,
          "link_efficiency": 0.7, "runtime_reserve_gb": 4.0, "usable_memory_fraction": 0.9}
PRIOR_INTERVAL = 0.30


@dataclass(frozen=True)
class LlmShape:
    id: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    total_params: int
    active_params: int
    kv_bytes_per_token_bf16: int
    experts: int | None
    experts_per_token: int | None
    attention: str
    source: str

    @property
    def moe(self) -> bool:
        return bool(self.experts)


@lru_cache(maxsize=1)
def shapes() -> dict[str, LlmShape]:
    text = (data_dir("workloads") / "architectures" / "llm_reference.csv").read_text()
    rows = csv.DictReader(io.StringIO("".join(l for l in text.splitlines(True) if not l.startswith("#"))))
    out = {}
    for r in rows:
        n = lambda k: int(float(r[k])) if r.get(k) else None  # noqa: E731
        out[r["id"]] = LlmShape(r["id"], n("num_layers"), n("hidden_size"), n("num_attention_heads"),
                                n("num_kv_heads"), n("head_dim"), n("total_params_exact"), n("active_params_exact"),
                                n("kv_cache_bytes_per_token_bf16"), n("moe_num_experts"), n("moe_experts_per_token"),
                                r["attention_type"], r["source"])
    return out


def get_shape(model_id: str) -> LlmShape:
    s = shapes()
    if model_id not in s:
        raise UserError(f"unknown model '{model_id}'{closest(model_id, s)}; known: {', '.join(s)}")
    return s[model_id]


@dataclass(frozen=True)
class Prediction:
    model: str
    hardware: str
    precision: str
    tp: int
    count: int
    batch: int
    input_len: int
    output_len: int
    fits: bool
    memory: dict
    max_concurrency: int
    ttft_s: float | None
    tpot_s: float | None
    output_tokens_per_s: float | None
    output_tokens_per_s_per_device: float | None
    bound: dict
    efficiency: dict
    interval: float
    calibrated: bool
    notes: list

    def to_dict(self) -> dict:
        return asdict(self)


def kv_bytes_per_token(shape: LlmShape, precision: str) -> float:
    return shape.kv_bytes_per_token_bf16 * KV_BYTES[precision] / 2.0


def _allreduce_s(message_bytes: float, tp: int, link_gbs: float | None, eff: dict) -> float:
    """Ring all-reduce: 2(p-1)/p x M / link bandwidth + a fixed latency; 0 without TP."""
    if tp <= 1:
        return 0.0
    bw = (link_gbs or 64.0) * 1e9 / 2 * eff["link_efficiency"]  # profile figure is bidirectional
    return 2 * (tp - 1) / tp * message_bytes / bw + eff["allreduce_latency_s"]


def predict(shape: LlmShape, hw: HardwareProfile, precision: str = "bf16", tp: int = 1, count: int | None = None,
            batch: int = 1, input_len: int = 1024, output_len: int = 256, efficiency: dict | None = None,
            calibration: dict | None = None) -> Prediction:
    """Predicted TTFT, TPOT and throughput of `batch` concurrent requests on `tp` devices.
    `calibration` ({mbu, interval, key, n}) replaces the MBU prior with a fitted value."""
    eff = {**PRIORS, **(efficiency or {}), **({"mbu": calibration["mbu"]} if calibration else {})}
    count = count or tp
    if tp < 1 or count < tp or count % tp:
        raise UserError(f"--count {count} must be a multiple of --tp {tp}")
    if precision not in BYTES_PER_PARAM:
        raise UserError(f"unknown precision '{precision}'{closest(precision, BYTES_PER_PARAM)}; "
                        f"use {', '.join(BYTES_PER_PARAM)}")
    compute = COMPUTE_DTYPE[precision]
    peak = hw.peak_tflops.get(compute) or (hw.dense_tflops if compute in ("bf16", "fp16") else None)
    if compute == "fp32" and not peak:
        peak = (hw.dense_tflops or 0) / 2 or None  # fp32 at half the 16-bit rate where not published
    if not peak:
        raise UserError(f"{hw.id} has no published {compute} peak, so {precision} cannot be predicted on it; "
                        f"try --precision bf16 (see infra-bench profiles show {hw.id})")
    if not hw.memory_gb or not hw.memory_bandwidth_tbs:
        raise UserError(f"{hw.id} lacks memory size or bandwidth in its profile; add them with --profiles DIR")
    if calibration:
        interval = calibration["interval"]
        notes = [f"calibrated decode MBU {calibration['mbu']:.3f} from {calibration['n']} measurement(s) "
                 f"({calibration['key']}); interval +-{interval:.0%}; prefill and overheads are priors"]
    else:
        interval = PRIOR_INTERVAL
        notes = ["efficiencies are priors (not calibrated): interval +-30%"]
    if shape.moe:
        notes.append("MoE: uniform expert routing assumed (random weights misrepresent routing)")

    bpp = BYTES_PER_PARAM[precision]
    kv_tok = kv_bytes_per_token(shape, precision)
    weights = shape.total_params * bpp
    ctx = input_len + output_len
    usable = hw.memory_gb * 1e9 * eff["usable_memory_fraction"]
    reserve = eff["runtime_reserve_gb"] * 1e9
    kv_needed = batch * ctx * kv_tok / tp
    per_device = weights / tp + kv_needed + reserve
    max_conc = max(0, math.floor((usable - weights / tp - reserve) / (ctx * kv_tok / tp)))
    memory = {"weights_gb_per_device": weights / tp / 1e9, "kv_cache_gb_per_device": kv_needed / 1e9,
              "runtime_reserve_gb": reserve / 1e9, "total_gb_per_device": per_device / 1e9,
              "usable_gb_per_device": usable / 1e9, "kv_bytes_per_token": kv_tok}
    base = dict(model=shape.id, hardware=hw.id, precision=precision, tp=tp, count=count, batch=batch,
                input_len=input_len, output_len=output_len, memory=memory, max_concurrency=max_conc,
                efficiency=eff, interval=interval, calibrated=calibration is not None)
    if per_device > usable:
        notes.append(f"does not fit: {per_device / 1e9:.1f} GB per device needed, {usable / 1e9:.1f} GB usable; "
                     f"raise --tp or lower --batch (at most {max_conc} requests fit)")
        return Prediction(fits=False, ttft_s=None, tpot_s=None, output_tokens_per_s=None,
                          output_tokens_per_s_per_device=None, bound={}, notes=notes, **base)

    flops_peak = tp * peak * 1e12
    bw = tp * hw.memory_bandwidth_tbs * 1e12
    link = hw.scale_up.bandwidth_gbs if hw.scale_up else None
    act_bytes = 2.0  # activations stay 16-bit

    prefill_flops = batch * (2 * shape.active_params * input_len + 2 * shape.layers * input_len**2 * shape.hidden)
    t_prefill_compute = prefill_flops / (flops_peak * eff["mfu_prefill"])
    t_prefill_comm = 2 * shape.layers * _allreduce_s(batch * input_len * shape.hidden * act_bytes, tp, link, eff)
    ttft = t_prefill_compute + t_prefill_comm + eff["t_fixed_s"]

    weights_read = shape.active_params * bpp
    if shape.moe and shape.experts_per_token:  # experts touched by B tokens, uniform routing
        k_over_e = shape.experts_per_token / shape.experts
        expert_total = (shape.total_params - shape.active_params) / (1 - k_over_e)
        dense_part = shape.total_params - expert_total
        touched = 1 - (1 - k_over_e) ** batch
        weights_read = (dense_part + expert_total * touched) * bpp
    avg_ctx = input_len + output_len / 2
    bytes_step = weights_read + batch * avg_ctx * kv_tok
    t_mem = bytes_step / (bw * eff["mbu"])
    t_compute = 2 * shape.active_params * batch / (flops_peak * eff["mfu_decode"])
    t_comm = 2 * shape.layers * _allreduce_s(batch * shape.hidden * act_bytes, tp, link, eff)
    tpot = max(t_mem, t_compute) + t_comm + eff["t_fixed_s"]
    terms = {"memory_bandwidth": t_mem, "compute": t_compute, "communication": t_comm, "fixed_overhead": eff["t_fixed_s"]}
    bound = {"decode": max(terms, key=terms.get), "decode_terms_s": terms,
             "prefill": "compute" if t_prefill_compute >= t_prefill_comm else "communication"}
    tok_s = batch / tpot * (count // tp)
    return Prediction(fits=True, ttft_s=ttft, tpot_s=tpot, output_tokens_per_s=tok_s,
                      output_tokens_per_s_per_device=tok_s / count, bound=bound, notes=notes, **base)
