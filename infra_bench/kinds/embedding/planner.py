"""Embedding and reranker predictions, and the `embedding` demand service that `plan` sizes.

A request embeds (or scores) `batch` sequences of `seq_len` tokens in one forward pass:

    t(batch) = max(batch x FLOPs per sequence / (peak x MFU), weight bytes / (bandwidth x MBU)) + t_call

FLOPs are counted from the catalog's shapes (no torch): 2 x the layers' weights per token, plus
4 x seq_len x attention width per token and layer for the score and value products. The
efficiencies are assumed priors (no published embedding-server measurement is in the reference
data) with a +-50% interval until `infra-bench calibrate` fits an MFU from records of your runs.
A server batches waiting requests dynamically (as TEI and vLLM do): a request waits for the pass
running when it arrives, then runs merged with every request waiting in the next. `plan` ranks on that
queue's analytic approximation (planner/merge_queue.py) and simulates the top candidates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from ...catalog import architectures
from ...errors import UserError, closest
from ...planner.demand import MEDIA_PRECISIONS, Service, Strict, precisions
from ...planner.iteration import borrowed_peak
from ...planner.media_model import BYTES_PER_PARAM, MediaPrediction
from ...planner.profiles import HardwareProfile

PRIORS = {"mfu": 0.3, "mbu": 0.6, "t_call_s": 3e-3, "runtime_reserve_gb": 1.0, "usable_memory_fraction": 0.9}
MAX_MERGED = 64  # requests a server merges into one forward pass at most


def shape(model: str) -> dict:
    """Per-sequence work of the model: its parameters and the weights a token passes through."""
    cat = architectures("embedding")
    if model not in cat:
        raise UserError(f"unknown embedding model '{model}'{closest(model, cat)}; known: {', '.join(cat)}")
    a, c = cat[model], cat[model]["config"]
    h, layers, inter = c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"]
    head_dim = c.get("head_dim") or h // c["num_attention_heads"]
    q_dim, kv_dim = c["num_attention_heads"] * head_dim, c.get("num_key_value_heads", c["num_attention_heads"]) * head_dim
    mlp = (3 if a["family"] == "qwen3" else 2) * h * inter  # gated (SwiGLU) or plain
    per_layer = h * q_dim + 2 * h * kv_dim + q_dim * h + mlp
    params = a.get("params") or per_layer * layers + c["vocab_size"] * h
    positions = c.get("max_position_embeddings", 512)
    if a["family"].startswith("xlm-roberta"):  # RoBERTa positions start after the pad id
        positions -= c.get("pad_token_id", 1) + 1
    return {"params": params, "layer_weights": per_layer * layers, "layers": layers, "q_dim": q_dim,
            "task": a["task"], "max_tokens": positions, "hidden": h, "intermediate": inter,
            "heads": c["num_attention_heads"]}


def activation_bytes(s: dict, seq_len: int, batch: int) -> float:
    """One layer's live activations at a time (inference frees them layer by layer), 16-bit: the hidden states
    in and out, the MLP's intermediate and, for eager attention, the score matrix of every head. An estimate."""
    per_token = 2 * s["hidden"] + s["intermediate"] + s["heads"] * seq_len
    return 2.0 * batch * seq_len * per_token


def flops_per_sequence(s: dict, seq_len: int) -> float:
    return seq_len * (2.0 * s["layer_weights"] + 4.0 * seq_len * s["q_dim"] * s["layers"])


@dataclass(frozen=True)
class PassCost:
    """A forward pass's time and memory at one seq_len, for any number of sequences: linear in them above
    the weight read (so `plan` prices 64 merged passes per profile without 64 predictions)."""
    compute_s: float     # per sequence
    reads_s: float       # the weights, once per pass
    call_s: float
    fixed_bytes: float   # weights and the runtime reserve
    seq_bytes: float     # one sequence's activations
    usable_bytes: float

    def latency(self, sequences: int) -> float:
        return max(sequences * self.compute_s, self.reads_s) + self.call_s

    def fits(self, sequences: int) -> bool:
        return self.fixed_bytes + sequences * self.seq_bytes <= self.usable_bytes


def _setup(model: str, hw: HardwareProfile, precision: str, seq_len: int, calibration: dict | None):
    """The model's shape, the efficiencies (priors or a calibrated fit), their interval and note, and a pass's cost."""
    from ...planner.media_model import _check, _labels

    peak = _check(hw, precision)
    if not hw.memory_bandwidth_tbs:  # the weights' read time was taken as 0
        raise UserError(f"{hw.id} lacks a memory bandwidth in its profile; add memory_bandwidth_tbs with --profiles DIR")
    s = shape(model)
    if seq_len > s["max_tokens"]:
        raise UserError(f"{model} takes at most {s['max_tokens']} tokens per sequence; use --input-len "
                        f"{s['max_tokens']} or less")
    eff = dict(PRIORS)
    if calibration:
        eff |= {"mfu": calibration["mfu"], "t_call_s": PRIORS["t_call_s"] * calibration["overhead_scale"]}
    interval, labels = _labels(calibration, "efficiencies are assumed priors (no published embedding calibration "
                                            "point): interval +-50%; calibrate with your own runs")
    note = "; ".join(labels)
    weights = s["params"] * BYTES_PER_PARAM[precision]
    cost = PassCost(flops_per_sequence(s, seq_len) / (peak * eff["mfu"]),
                    weights / (hw.memory_bandwidth_tbs * 1e12 * eff["mbu"]),
                    eff["t_call_s"], weights + eff["runtime_reserve_gb"] * 1e9, activation_bytes(s, seq_len, 1),
                    hw.memory_bytes * eff["usable_memory_fraction"])
    return s, eff, interval, note, cost


def predict(model: str, hw: HardwareProfile, precision: str = "fp16", seq_len: int = 512, batch: int = 1,
            calibration: dict | None = None) -> MediaPrediction:
    """Latency of one request of `batch` sequences, and sequences/s per device at that batch."""
    s, eff, interval, note, c = _setup(model, hw, precision, seq_len, calibration)
    notes = [note, *[n for n in [borrowed_peak(hw, precision)] if n]]
    acts = batch * c.seq_bytes
    memory = {"weights_gb": s["params"] * BYTES_PER_PARAM[precision] / 1e9,
              "runtime_reserve_gb": eff["runtime_reserve_gb"], "activations_gb": acts / 1e9,
              "total_gb": (c.fixed_bytes + acts) / 1e9, "usable_gb": c.usable_bytes / 1e9}
    base = dict(kind="embedding", model=model, hardware=hw.id, precision=precision, memory=memory,
                flops_per_unit=flops_per_sequence(s, seq_len), efficiency=eff, interval=interval,
                calibrated=calibration is not None, notes=notes, rtf=None)
    if not c.fits(batch):
        notes.append(f"does not fit: {memory['total_gb']:.1f} GB needed, {memory['usable_gb']:.1f} GB usable")
        return MediaPrediction(fits=False, latency_s=None, units_per_s_per_device=None, bound=None, **base)
    compute = batch * c.compute_s
    latency = c.latency(batch)
    bound = "compute" if compute >= max(c.reads_s, c.call_s) else (
        "memory" if c.reads_s >= c.call_s else "fixed_overhead")
    notes.append(f"one request: {batch} sequence(s) of {seq_len} tokens ({s['task']})")
    return MediaPrediction(fits=True, latency_s=latency, units_per_s_per_device=batch / latency, bound=bound, **base)


def predict_hook(model: str, hw: HardwareProfile, o: dict, data: dict | None, source: str | None):
    """`infra-bench predict` for an embedding model: --input-len tokens per sequence, --batch sequences."""
    from ...planner import calibration as cal

    precision = o["precision"] or "fp16"
    fitted = cal.for_media(data, "embedding", hw.id, None, precision) if data else None
    p = predict(model, hw, precision, o["input_len"], o["concurrency"], fitted)
    if data and fitted is None:
        p.notes.append(f"{source} has no embedding fit for {hw.id} at {precision}; using priors")
    return p, text(p, hw)


def text(p: MediaPrediction, hw: HardwareProfile) -> str:
    from ...report.predictions import media_text

    def result(p) -> str:
        lo, hi = p.latency_s * (1 - p.interval), p.latency_s * (1 + p.interval)
        return (f"request latency {p.latency_s * 1e3:.1f} ms ({lo * 1e3:.1f}-{hi * 1e3:.1f}), sequences/s per device "
                f"{p.units_per_s_per_device:.1f}; {p.flops_per_unit / 1e9:.1f} GFLOP per sequence; bound by "
                f"{p.bound.replace('_', ' ')}")
    return media_text(p, hw, result)


def calibration_point(m: dict, cell: dict) -> tuple[float, float, float] | str:
    """A run record as (FLOPs of one batch, its mean latency, the prior call overhead)."""
    if not m.get("flops_per_sequence"):
        return "no FLOP count in the record"
    return m["flops_per_sequence"] * cell["batch_size"], m["latency_s"]["mean"], PRIORS["t_call_s"]


# --- the demand service ------------------------------------------------------------------------

class EmbeddingTraffic(Strict):
    requests_per_s: float | None = Field(default=None, gt=0)
    sequences_per_s: float | None = Field(default=None, gt=0)
    seq_len: int = Field(default=512, ge=1, description="tokens per sequence (a passage, or query + passage)")
    batch: int = Field(default=1, ge=1, description="sequences per request")

    @model_validator(mode="after")
    def _one_rate(self):
        return self._exactly_one("requests_per_s", "sequences_per_s")

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests_per_s or self.sequences_per_s / self.batch


class EmbeddingSlo(Strict):
    latency_p95_s: float = Field(gt=0)


class EmbeddingService(Service):
    """Embedding or reranking requests: `batch` sequences of `seq_len` tokens, under a latency SLO."""
    kind: Literal["embedding"] = "embedding"
    precision: list[str] = ["fp16"]
    traffic: EmbeddingTraffic
    slo: EmbeddingSlo

    _known = field_validator("precision", mode="before")(classmethod(lambda cls, v: precisions(v, MEDIA_PRECISIONS)))

    cost_unit: ClassVar[tuple[str, float]] = ("1M sequences", 1e6)

    @model_validator(mode="after")
    def _within_the_model(self):
        """Here, not at sizing: predict's error there named its --input-len, which plan does not take."""
        most = shape(self.model)["max_tokens"]
        if self.traffic.seq_len > most:
            raise ValueError(f"{self.model} takes at most {most} tokens per sequence; set traffic.seq_len to {most} "
                             f"or less")
        return self

    @property
    def load(self) -> float:
        return self.traffic.rate

    def units_per_hour(self) -> float:
        return self.traffic.rate * self.traffic.batch * 3600

    def options(self, label, hw, headroom, redundancy, calibration, node, replicas) -> list:
        return [option(self, label, hw, p, headroom, redundancy, calibration) for p in self.precision]

    def simulate(self, hw: HardwareProfile, precision: str, calibration: dict | None):
        """A replica's capacity under the p95 latency SLO by the discrete-event simulation the other kinds are
        confirmed with (planner/queueing.py), where `option` approximates it: a request that arrives while a
        pass runs waits for it, then every waiting request (up to MAX_MERGED, as memory allows) runs in the
        next pass, of the merged batch's predicted time. None where even a lone request misses the SLO."""
        from ...planner import calibration as cal
        from ...planner.queueing import capacity_under_slo

        t = self.traffic
        fitted = cal.for_media(calibration, "embedding", hw.id, None, precision) if calibration else None
        passes = pass_times(self.model, hw, precision, t.seq_len, t.batch, fitted)
        # one request = no prefill and one decode step, the pass its merged batch runs in
        return capacity_under_slo(0.0, 2, lambda k: passes[k - 1], len(passes), self.slo.latency_p95_s, math.inf,
                                  n=1500, whole_request=True)


def pass_times(model: str, hw: HardwareProfile, precision: str, seq_len: int, batch: int,
               fitted: dict | None) -> list[float]:
    """A pass's time with 1, 2 ... requests merged (predict's latency at batch x k sequences), up to MAX_MERGED
    or the most that fit in memory."""
    c = _setup(model, hw, precision, seq_len, fitted)[-1]
    return [c.latency(batch * k) for k in range(1, MAX_MERGED + 1) if c.fits(batch * k)]


def option(svc: EmbeddingService, label: str, hw: HardwareProfile, precision: str, headroom: float, redundancy: int,
           calibration: dict | None):
    """One replica per device, merging waiting requests into passes: the capacity under the p95 latency SLO
    by the merge queue's analytic approximation (planner/merge_queue.py), which the simulation confirms."""
    from ...planner import calibration as cal
    from ...planner.merge_queue import MergeQueue, binds
    from ...planner.sizing import Option, _gaps, _lacks, _replicas, _set_range

    t, slo = svc.traffic, svc.slo.latency_p95_s
    o = Option(label, "embedding", precision, 1, False, unit="req/s")
    o.gaps = _gaps(hw, precision)
    if o.gaps:
        o.reason = _lacks(o.gaps)
        return o
    fitted = cal.for_media(calibration, "embedding", hw.id, None, precision) if calibration else None
    alone = predict(svc.model, hw, precision, t.seq_len, t.batch, fitted)
    o.calibrated, o.stage = alone.calibrated, 1
    o.fit = cal.label(fitted) if fitted else "priors"
    if not alone.fits:
        o.reason = alone.notes[-1]
        return o
    o.stage = 2
    o.alone = {"request_s": alone.latency_s, "latency_slo_s": slo}
    queue = MergeQueue(tuple(pass_times(svc.model, hw, precision, t.seq_len, t.batch, fitted)))
    rate = queue.capacity(slo)
    if rate is None:
        o.reason = f"latency p95 {slo:g} s missed: one request alone takes {alone.latency_s * 1e3:.0f} ms"
        return o
    est = queue.estimate(rate)
    o.stage, o.feasible, o.method, o.capacity = 3, True, "approximation", est.rate
    o.batch = est.merged
    o.latency = {"request_s": alone.latency_s, "latency_p95_s": est.latency_p95_s}
    o.load, o.saturation = t.rate, est.saturation
    o.binds = binds(est.rate, est.saturation)
    o.replicas = _replicas(t.rate, o.capacity, headroom, redundancy)
    o.devices = o.replicas
    # the +-interval on a pass's time carried to the capacity (0 where even one request then misses the SLO);
    # k times slower passes serve at most 1/k of the rate, k times faster at least 1/k of it
    slow, fast = 1 + alone.interval, max(1 - alone.interval, 1e-3)
    ends = [queue.scaled(slow).capacity(slo, hi=est.rate / slow), queue.scaled(fast).capacity(slo, lo=est.rate / fast)]
    o.spread = tuple(e / est.rate if e else 0.0 for e in ends)
    o.range_label = f"+-{alone.interval:.0%} {'calibrated' if alone.calibrated else 'prior'}"
    _set_range(o, t.rate, headroom, redundancy)
    return o

