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


def efficiencies(efficiency: dict | None = None, calibration: dict | None = None) -> dict:
    """The priors, overridden by explicit factors, then by a calibrated decode MBU."""
    return {**PRIORS, **(efficiency or {}), **({"mbu": calibration["mbu"]} if calibration else {})}


def check_precision(precision: str) -> None:
    if precision not in BYTES_PER_PARAM:
        raise UserError(f"unknown precision '{precision}'{closest(precision, BYTES_PER_PARAM)}; "
                        f"use {', '.join(BYTES_PER_PARAM)}")


def peak_tflops(hw: HardwareProfile, precision: str) -> float | None:
    """The dense peak for the precision's compute type; fp32 at half the 16-bit rate where unpublished."""
    compute = COMPUTE_DTYPE[precision]
    peak = hw.peak_tflops.get(compute) or (hw.dense_tflops if compute in ("bf16", "fp16") else None)
    if compute == "fp32" and not peak:
        peak = (hw.dense_tflops or 0) / 2 or None
    return peak


def unsupported(hw: HardwareProfile, precision: str) -> str | None:
    """Why the model cannot predict this precision on this profile, or None."""
    if not peak_tflops(hw, precision):
        return (f"{hw.id} has no published {COMPUTE_DTYPE[precision]} peak, so {precision} cannot be predicted "
                f"on it; try --precision bf16 (see infra-bench profiles show {hw.id})")
    if not hw.memory_gb or not hw.memory_bandwidth_tbs:
        return f"{hw.id} lacks memory size or bandwidth in its profile; add them with --profiles DIR"
    return None


@dataclass(frozen=True)
class Replica:
    """One replica (`tp` devices) serving requests of one shape: the terms of the model as plain
    numbers, so the sizing search can evaluate a step time in a few operations."""
    shape: LlmShape
    tp: int
    input_len: int
    output_len: int
    eff: dict
    weights_bytes: float
    kv_bytes_per_token: float
    usable_bytes: float
    flops_peak: float
    bandwidth: float
    link_gbs: float | None
    bytes_per_param: float

    @property
    def reserve_bytes(self) -> float:
        return self.eff["runtime_reserve_gb"] * 1e9

    @property
    def max_concurrency(self) -> int:
        """Requests of this length whose KV cache fits beside the weights and reserve."""
        ctx = self.input_len + self.output_len
        free = self.usable_bytes - self.weights_bytes / self.tp - self.reserve_bytes
        return max(0, math.floor(free / (ctx * self.kv_bytes_per_token / self.tp)))

    def memory(self, batch: int) -> dict:
        kv = batch * (self.input_len + self.output_len) * self.kv_bytes_per_token / self.tp
        total = self.weights_bytes / self.tp + kv + self.reserve_bytes
        return {"weights_gb_per_device": self.weights_bytes / self.tp / 1e9, "kv_cache_gb_per_device": kv / 1e9,
                "runtime_reserve_gb": self.reserve_bytes / 1e9, "total_gb_per_device": total / 1e9,
                "usable_gb_per_device": self.usable_bytes / 1e9, "kv_bytes_per_token": self.kv_bytes_per_token}

    def prefill_terms(self, batch: int = 1) -> tuple[float, float]:
        """(compute, communication) seconds to prefill `batch` prompts together."""
        s, i = self.shape, self.input_len
        flops = batch * (2 * s.active_params * i + 2 * s.layers * i**2 * s.hidden)
        comm = 2 * s.layers * _allreduce_s(batch * i * s.hidden * ACT_BYTES, self.tp, self.link_gbs, self.eff)
        return flops / (self.flops_peak * self.eff["mfu_prefill"]), comm

    def prefill_s(self, batch: int = 1) -> float:
        """Time to first token of `batch` prompts prefilled together."""
        compute, comm = self.prefill_terms(batch)
        return compute + comm + self.eff["t_fixed_s"]

    def decode_terms(self, batch: int) -> dict:
        s = self.shape
        weights_read = s.active_params * self.bytes_per_param
        if s.moe and s.experts_per_token:  # experts touched by B tokens, uniform routing
            k_over_e = s.experts_per_token / s.experts
            expert_total = (s.total_params - s.active_params) / (1 - k_over_e)
            dense_part = s.total_params - expert_total
            weights_read = (dense_part + expert_total * (1 - (1 - k_over_e) ** batch)) * self.bytes_per_param
        avg_ctx = self.input_len + self.output_len / 2
        t_mem = (weights_read + batch * avg_ctx * self.kv_bytes_per_token) / (self.bandwidth * self.eff["mbu"])
        t_compute = 2 * s.active_params * batch / (self.flops_peak * self.eff["mfu_decode"])
        t_comm = 2 * s.layers * _allreduce_s(batch * s.hidden * ACT_BYTES, self.tp, self.link_gbs, self.eff)
        return {"memory_bandwidth": t_mem, "compute": t_compute, "communication": t_comm,
                "fixed_overhead": self.eff["t_fixed_s"]}

    def step_s(self, batch: int) -> float:
        """One decode step (TPOT) with `batch` requests running."""
        t = self.decode_terms(batch)
        return max(t["memory_bandwidth"], t["compute"]) + t["communication"] + t["fixed_overhead"]


ACT_BYTES = 2.0  # activations stay 16-bit


def replica(shape: LlmShape, hw: HardwareProfile, precision: str, tp: int, input_len: int, output_len: int,
            eff: dict) -> Replica:
    """The replica's terms; raises UserError when the profile lacks what the model needs."""
    check_precision(precision)
    why = unsupported(hw, precision)
    if why:
        raise UserError(why)
    return Replica(shape, tp, input_len, output_len, eff, shape.total_params * BYTES_PER_PARAM[precision],
                   kv_bytes_per_token(shape, precision), hw.memory_gb * 1e9 * eff["usable_memory_fraction"],
                   tp * peak_tflops(hw, precision) * 1e12, tp * hw.memory_bandwidth_tbs * 1e12,
                   hw.scale_up.bandwidth_gbs if hw.scale_up else None, BYTES_PER_PARAM[precision])


def predict(shape: LlmShape, hw: HardwareProfile, precision: str = "bf16", tp: int = 1, count: int | None = None,
            batch: int = 1, input_len: int = 1024, output_len: int = 256, efficiency: dict | None = None,
            calibration: dict | None = None) -> Prediction:
    """Predicted TTFT, TPOT and throughput of `batch` concurrent requests on `tp` devices.
    `calibration` ({mbu, interval, key, n}) replaces the MBU prior with a fitted value."""
    eff = efficiencies(efficiency, calibration)
    count = count or tp
    if tp < 1 or count < tp or count % tp:
        raise UserError(f"--count {count} must be a multiple of --tp {tp}")
    r = replica(shape, hw, precision, tp, input_len, output_len, eff)
    if calibration:
        interval = calibration["interval"]
        notes = [f"calibrated decode MBU {calibration['mbu']:.3f} from {calibration['n']} measurement(s) "
                 f"({calibration['key']}); interval +-{interval:.0%}; prefill and overheads are priors"]
    else:
        interval = PRIOR_INTERVAL
        notes = ["efficiencies are priors (not calibrated): interval +-30%"]
    if shape.moe:
        notes.append("MoE: uniform expert routing assumed (random weights misrepresent routing)")

    memory = r.memory(batch)
    base = dict(model=shape.id, hardware=hw.id, precision=precision, tp=tp, count=count, batch=batch,
                input_len=input_len, output_len=output_len, memory=memory, max_concurrency=r.max_concurrency,
                efficiency=eff, interval=interval, calibrated=calibration is not None)
    if memory["total_gb_per_device"] > memory["usable_gb_per_device"]:
        notes.append(f"does not fit: {memory['total_gb_per_device']:.1f} GB per device needed, "
                     f"{memory['usable_gb_per_device']:.1f} GB usable; raise --tp or lower --batch "
                     f"(at most {r.max_concurrency} requests fit)")
        return Prediction(fits=False, ttft_s=None, tpot_s=None, output_tokens_per_s=None,
                          output_tokens_per_s_per_device=None, bound={}, notes=notes, **base)

    compute, comm = r.prefill_terms(batch)
    terms = r.decode_terms(batch)
    tpot = r.step_s(batch)
    bound = {"decode": max(terms, key=terms.get), "decode_terms_s": terms,
             "prefill": "compute" if compute >= comm else "communication"}
    tok_s = batch / tpot * (count // tp)
    return Prediction(fits=True, ttft_s=r.prefill_s(batch), tpot_s=tpot, output_tokens_per_s=tok_s,
                      output_tokens_per_s_per_device=tok_s / count, bound=bound, notes=notes, **base)
