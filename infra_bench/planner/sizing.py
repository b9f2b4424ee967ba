"""Sizing a cluster for a demand: for every candidate accelerator, each service's best feasible
configuration (precision, TP), its per-replica capacity under the SLO, replicas, devices,
servers and peak power; candidates ranked, infeasible ones with the reason.

Capacity: LLM and diffusion replicas use the mean-value approximation of queueing.approx_capacity
for all configurations (fast enough to rank every profile), embeddings merge_queue's; then the top
candidates are confirmed by the discrete-event simulation (queueing.capacity_under_slo, with the demand's
length distributions; an embedding server's merged passes) and their replicas recomputed from it. TTS streams share a device as a processor
shares time: n streams each see RTF x n and wait up to n utterances for first audio.

    replicas = ceil(load / (capacity x (1 - headroom))) + redundancy
    servers  = ceil(devices / server slots)   (TP groups divide the server, so they pack exactly)
    peak kW  = servers x host W + the accelerators in them x TDP; host W = the server's maximum power less its
               slots' TDP, else 0.8 x TDP per slot (DGX H100: 10.2 kW for 8 x 700 W)
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ..errors import UserError, article
from . import calibration as cal
from . import llm_model, media_model, speech_lm
from .engines import default_engine, get_engine
from .fit import SAME_PEAKS_SPREAD, Fit
from . import power
from .iteration import PRECISIONS, Efficiency, iteration, iteration_s, peak_notes, peak_tflops, work
from .calibration import fit_from
from .cost import Assumptions, cost_of, peak_kw, utilization
from .buckets import Bucket, Lengths, whole
from .demand import Demand, DiffusionService, LlmService, TtsService
from .profiles import HardwareProfile, ServerProfile, SiteProfile, load_servers, markets, server_for
from ..kinds import KINDS
from .merge_queue import binds as embedding_binds
from .queueing import Estimate, Tails, approx_capacity, approx_load, capacity_under_slo, saturation
from .shapes import get_shape

TP_OPTIONS = (1, 2, 4, 8)
DEFAULT_NODE = 8
MIXED_HINT = ("no single part serves every service, but each service has parts that serve it (listed above): "
              "`--mixed --site SITE` combines them in one fleet")  # plan --mixed drops it: it was asked
RANK_BY = ("tco", "capex", "carbon", "power", "devices", "servers")
SIM_TPOTS = 3000         # requests with a TPOT a simulated run reads its p99 over (sim_requests)
SIM_MAX = 12_000         # requests one simulated run sends at most (a capacity search: 0.1-0.25 s)
MAX_CONFIRM = 40         # candidates confirmed at most per plan (each simulates its LLM, image, video and embedding services)
REACH = 1.3              # an approximated candidate within this of the top N's last is simulated too: the
                         # approximation's capacity is 0.92-1.14 of the simulated one (p10-p90; extremes 0.75-1.29,
                         # the low one a TTFT p99 knife edge; benchmarks/llm_capacity.py), so its figure may be
                         # about 1 / 0.77 too low


@dataclass
class Option:
    """One service on one accelerator in one configuration."""
    service: str
    kind: str
    precision: str
    tp: int
    feasible: bool
    reason: str | None = None
    stage: int = 0                 # how far it got: 0 unsupported, 1 does not fit, 2 misses SLO alone, 3 ok
    capacity: float | None = None  # per replica: requests/s (llm), images/s (diffusion), streams (tts)
    unit: str = ""
    replicas: int | None = None
    devices: int | None = None
    batch: float | None = None     # mean running requests at capacity (llm)
    latency: dict = field(default_factory=dict)
    method: str = ""
    calibrated: bool = False
    gaps: list[str] = field(default_factory=list)  # spec figures missing from the profile
    engine: str = ""               # llm: the serving engine and its maturity
    fit: str = ""                  # llm: fitted, or measured on another engine / hardware (the interval tier)
    fit_busy: bool = False         # llm: the category's calibrated factors rest on a busy machine's records only
    energy: dict | None = None     # llm: J per output token at capacity, with its basis
    alone: dict = field(default_factory=dict)  # a lone request's latency against the SLO
    saturation: float | None = None  # per replica: the load that keeps it busy all the time (no SLO)
    binds: str = ""                # what caps the capacity: memory, engine limit, an SLO, queueing
    load: float | None = None      # the service's load (same unit as capacity)
    utilization: float | None = None  # load over the replicas' SLO capacity
    busy: float | None = None      # load over the replicas' saturation (shown as load/saturation)
    spread: tuple[float, float] | None = None  # the capacity's range as factors of it (llm: capacity_spread)
    range_label: str = ""          # what the range is: "80%" (llm, held-out residuals) or the media prior's +-
    capacity_range: tuple[float, float] | None = None  # per replica, that range
    replicas_range: tuple[int, int | None] | None = None  # replicas the range's high and low ends need (None: SLO missed)
    same_peaks: list[str] = field(default_factory=list)  # llm: parts of the same peaks whose fitted efficiencies differ (Fit.same_peaks)


@dataclass
class Candidate:
    hardware: str
    name: str
    feasible: bool
    reason: str | None
    options: list[Option]
    devices: int | None = None
    servers: int | None = None
    node_size: int = DEFAULT_NODE
    peak_kw: float | None = None
    cost: dict | None = None       # cost.Costing as a dict: capex, per year, per unit, carbon
    notes: list[str] = field(default_factory=list)
    server: str | None = None      # the server platform it is bought in (servers.yaml)
    blocker: str | None = None     # why infeasible, as a category (BLOCKERS)
    serves: list[str] = field(default_factory=list)  # the services it can serve (all, when feasible)
    devices_range: tuple[int, int | None] | None = None  # the devices the options' capacity ranges would need


BLOCKERS = {  # Option.stage of the furthest option -> why a part cannot serve a service
    0: "lacks published figures or support", 1: "does not fit in memory", 2: "misses an SLO"}


@dataclass
class Plan:
    demand: str
    site: str | None
    market: str | None
    rank_by: str
    candidates: list[Candidate]
    notes: list[str]
    coverage: dict[str, list[str]] = field(default_factory=dict)  # service -> the parts that can serve it

    def to_dict(self) -> dict:
        return asdict(self)


def node_size(hw: HardwareProfile) -> int:
    return hw.typical_node_size or DEFAULT_NODE


def _replicas(load: float, capacity: float, headroom: float, redundancy: int) -> int:
    return math.ceil(load / (capacity * (1 - headroom)) - 1e-9) + redundancy


def _set_range(o: Option, load: float, headroom: float, redundancy: int) -> None:
    """The option's capacity range from its spread, and the replicas each end of it would need."""
    if o.spread is None or not o.capacity:
        return
    lo, hi = (o.capacity * k for k in o.spread)
    o.capacity_range = (lo, hi)
    o.replicas_range = (_replicas(load, hi, headroom, redundancy), _replicas(load, lo, headroom, redundancy) if lo else None)


# --- per-service options ---------------------------------------------------------------------

def _gaps(hw: HardwareProfile, precision: str, bandwidth: bool = True) -> list[str]:
    """The spec figures the model needs that the profile does not publish."""
    compute = PRECISIONS[precision].compute if precision in PRECISIONS else precision
    gaps = [] if peak_tflops(hw, compute) else [f"{compute} peak"]
    needed = (("memory size", hw.memory_gb), ("memory bandwidth", hw.memory_bandwidth_tbs if bandwidth else 1))
    return gaps + [name for name, v in needed if not v]


def _lacks(gaps: list[str]) -> str:
    why = "unpublished, or the part has no units for that precision" if any(g.endswith("peak") for g in gaps) \
        else "unpublished"
    return f"profile lacks {', '.join(gaps)} ({why}); add published figures with --profiles DIR"


@dataclass
class ServiceModel:
    """One LLM replica under a service's mean lengths (and, where they vary, its drawn requests), as the
    queueing layer sees it: the device time a prompt takes and the decode step at a batch, both priced by the
    iteration model with the fit's efficiencies. Mixed engines charge a prompt its increment to an iteration of the full replica (the
    max batch decoding), where the decode batch already reads the weights and the prompt's tokens cost
    their compute; prefill-first engines its share of a prefill iteration that holds as many whole prompts as
    the token budget takes (under load they batch prompts, and a prompt alone would pay the weight read and
    the iteration's fixed cost by itself). Priced against a one-sequence
    iteration instead, a short prompt's compute hid under that sequence's weight read (222 tokens of
    Llama-2-70B on a B200: 0.04 ms), and the SLO capacity came out above the closed loop's offline
    maximum for the same replica."""
    replica: llm_model.Replica
    eff: Efficiency
    input_len: float
    output_len: float
    lengths: Lengths | None = field(default=None, repr=False)  # drawn requests where the lengths vary
    _steps: dict = field(default_factory=dict, repr=False)  # the decode-step table and max batch, computed once

    @property
    def request_s(self) -> float:
        """The engine's per-request TTFT cost (API server, tokenising, first-token send): a latency every
        request pays that occupies no device, as in the closed loop (steady.py)."""
        return float(self.eff.t_request)

    def alone_ttft_s(self) -> float:
        """TTFT of a request with the replica to itself: its prompt's iteration and the per-request cost."""
        i, t = self.input_len, self.replica.terms
        return float(iteration_s(t, self.eff, 0.0, i + self.output_len / 2, i, i / 2, 1.0)) + self.request_s

    def prefill_s(self, input_len: float | np.ndarray | None = None) -> float | np.ndarray:
        """Seconds of device time a prompt takes in a busy replica (one length, or an array of lengths
        priced in one call)."""
        i = self.input_len if input_len is None else input_len
        t, ctx = self.replica.terms, i + self.output_len / 2
        if self.replica.engine.mixed:
            busy = float(max(self.max_batch, 1))
            cost = iteration_s(t, self.eff, busy, ctx, i, i / 2, 1.0) - iteration_s(t, self.eff, busy, ctx, 0.0, i / 2, 0.0)
        else:  # its share of a prefill iteration holding as many whole prompts as the token budget takes
            k = np.maximum(np.floor(self.replica.engine.token_budget / np.asarray(i, dtype=float)), 1.0)
            cost = iteration_s(t, self.eff, 0.0, ctx, k * i, i / 2, k) / k
        if isinstance(input_len, np.ndarray):
            return np.asarray(cost, dtype=float)
        return float(cost)

    @property
    def tails(self) -> Tails | None:
        """The service's drawn requests priced on this replica (their prompts' device time, each distinct length
        priced once), for the approximation's percentiles; None with fixed lengths."""
        if self.lengths is None:
            return None
        if "tails" not in self._steps:
            d = self.lengths
            secs, k = self.prefill_s(d.prompts)[d.where], len(d.own)
            self._steps["tails"] = Tails(secs[:k], d.outputs, d.waits, d.epochs, secs[k:].reshape(d.others.shape),
                                        d.slots)
        return self._steps["tails"]

    def mean_prefill_s(self) -> float:
        """A prompt's mean device time: over the drawn lengths where they vary, else at the mean length."""
        return self.tails.prefill_s if self.tails else self.prefill_s()

    def step_s(self, batch: int) -> float:
        """Seconds of a decode iteration at `batch`, from a table priced in one vectorised call."""
        table = self._steps.get("table")
        if table is None or batch > len(table):
            b = np.arange(1, max(batch, self.max_batch, 1) + 1, dtype=float)
            table = self._steps["table"] = iteration_s(self.replica.terms, self.eff, b,
                                                       self.input_len + self.output_len / 2, 0.0,
                                                       self.input_len / 2, 0.0).tolist()  # floats: fast to index
        return table[max(batch, 1) - 1]

    @property
    def max_batch(self) -> int:
        if "max_batch" not in self._steps:
            mem = self.replica.memory(1, int(self.input_len), int(self.output_len))
            self._steps["max_batch"] = int(min(self.replica.engine.max_seqs, mem["max_sequences"]))
        return self._steps["max_batch"]

    def energy(self, rate: float, batch: float, measured: dict | None = None) -> dict | None:
        """J per output token of a replica serving `rate` requests/s with `batch` running, from the power
        model at that iteration's utilisation (or the device's measured busy power)."""
        t, e, b = self.replica.terms, self.eff, max(batch, 1.0)
        ctx, isl = self.input_len + self.output_len / 2, self.input_len
        pf = rate * isl * self.step_s(max(1, round(b)))  # prompt tokens per iteration at this rate
        parts = iteration(t, e, b, ctx, pf, isl / 2, pf / isl)
        total = sum(float(v) for v in parts.values())
        compute_s, nbytes = work(t, b, ctx, pf, isl / 2, pf / isl)
        u_net = float(parts["tp_allreduce"] + parts["ep_alltoall"] + parts["pp_send"]) / total
        measured = measured or {}
        out = power.per_token(self.replica.hw.tdp_w, self.replica.devices, rate * self.output_len,
                              float(compute_s) / total, float(nbytes) / (total * t.bw), u_net,
                              measured.get("busy_w"), measured.get("source", ""), measured=measured.get("measured", True))
        return out.to_dict() if out else None


def capacity_spread(m: ServiceModel, latency: dict[str, tuple[float, float]], rate: float, ttft_slo: float,
                    tpot_slo: float, q: float) -> tuple[float, float]:
    """The SLO capacity's 80% range as factors of `rate`, the capacity found (`latency`: 'ttft' and 'tpot' ->
    (fast, slow) factors, the fit's held-out quantiles for the option's tier). The capacity is found again with
    a prompt's device time at each end of its 80% interval, the decode step as predicted, then the step at each
    end, the prompt as predicted: the latency intervals carry through the SLO sizing, where a capacity held by
    a tight SLO moves more than the latencies do. The two shifts of log capacity at each end add in quadrature:
    held out, the TTFT and TPOT errors of a row are uncorrelated (Pearson 0.01 leaving one model out,
    docs/planner.md), so both at their slow ends at once is a rarer event than 80%. A slow end that meets
    the SLO at no load gives 0."""
    def shift(prompt: float, step: float) -> float:
        t = m.tails and replace(m.tails, own=m.tails.own * prompt, others=m.tails.others * prompt)
        est = approx_capacity(m.mean_prefill_s() * prompt, m.output_len, lambda b: m.step_s(b) * step, m.max_batch,
                              ttft_slo, tpot_slo, q, m.request_s, t)
        return float(np.log(est.rate / rate)) if est and est.rate > 0 else -np.inf

    slow = np.minimum([shift(latency["ttft"][1], 1.0), shift(1.0, latency["tpot"][1])], 0.0)
    fast = np.maximum([shift(latency["ttft"][0], 1.0), shift(1.0, latency["tpot"][0])], 0.0)
    return (float(np.exp(-np.hypot(*slow))) if np.isfinite(slow).all() else 0.0), float(np.exp(np.hypot(*fast)))


def llm_range(o: Option, svc: LlmService, m: ServiceModel, fit: Fit, headroom: float, redundancy: int) -> None:
    """Give a feasible LLM option its capacity range (capacity_spread, from the fit's intervals for the
    option's tier and engine) and the replicas the range's ends would need. Only the option a candidate picks
    gets one: two more capacity searches each, not worth spending on the configurations not chosen."""
    latency = {k: fit.interval(o.fit, k, 1.0, m.replica.engine.name) for k in ("ttft", "tpot")}
    if not all(latency.values()):
        return
    q, ttft_slo = svc.slo.ttft
    o.spread, o.range_label = capacity_spread(m, latency, o.capacity, ttft_slo, svc.slo.tpot_p99_s, q), "80%"
    _set_range(o, svc.traffic.rate, headroom, redundancy)


def llm_fit(calibration: dict | None) -> Fit:
    """The LLM fit of a calibration file's data, else the one shipped."""
    return fit_from(calibration)


def llm_option(svc: LlmService, label: str, hw: HardwareProfile, precision: str, tp: int, headroom: float,
               redundancy: int, calibration: dict | None, bucket: Bucket | None = None) -> tuple[Option, ServiceModel | None]:
    """The service's configuration at `precision` and `tp` on `hw`, its approximate SLO capacity and replicas;
    `bucket`: the requests it serves, when they are one bucket of the service (default: all of them)."""
    o = Option(label, "llm", precision, tp, False, unit="req/s")
    o.gaps = _gaps(hw, precision)
    if o.gaps:
        o.reason = _lacks(o.gaps)
        return o, None
    engine = svc.engine.name if svc.engine.name != "auto" else default_engine(hw.vendor)
    try:
        why = get_engine(engine).refusal(hw.id, hw.vendor)
        if why:  # named by the demand, which `predict --engine` (replica's fix) does not reach
            o.reason = f"{why}; set engine: {{name: auto}} in the demand to plan each part under its vendor's engine"
            return o, None
        rep = llm_model.replica(svc.model, hw, precision, tp=tp, engine=engine, max_seqs=svc.engine.max_seqs,
                                token_budget=svc.engine.token_budget, memory_fraction=svc.engine.memory_fraction)
    except UserError as e:
        o.reason = str(e)
        return o, None
    fit = llm_fit(calibration)
    eff, missing = fit.efficiency([rep.case])
    t = svc.traffic
    bucket = bucket or whole(svc)
    if bucket.variable:  # the means of the lengths as drawn (rounded, at least 1, capped), as the simulation sees them
        m = ServiceModel(rep, eff, bucket.input.mean, bucket.output.mean, bucket.lengths())
    else:
        m = ServiceModel(rep, eff, t.input_len.mean, t.output_len.mean)
    o.calibrated, o.stage = not missing[0], 1
    o.engine = f"{rep.engine.name} ({rep.engine.maturity})"
    o.fit = fit.tier(rep.case)
    o.fit_busy = bool(calibration and cal.busy_llm(calibration, hw.id, rep.engine.name, precision, rep.shape))
    max_batch = m.max_batch
    at = f" at TP {tp} {precision}" if tp > 1 else f" at {precision}"  # the reasons name the configuration they priced
    if max_batch < 1:
        mem = rep.memory(1, int(m.input_len), int(m.output_len))
        room = mem["kv_room_gb_per_device"]
        o.reason = "does not fit: " + (
            f"one sequence of {mem['context_tokens']:,.0f} tokens needs {mem['kv_cache_gb_per_device']:,.0f} GB of KV "
            f"cache per device, more than the {room:.0f} GB left beside the weights" if room > 0 else
            f"{mem['weights_gb_per_device']:.0f} GB of weights per device + reserve leave no KV room in "
            f"{hw.memory_gb:.0f} GB") + f" under {rep.engine.name}{at}"
        return o, m
    o.stage = 2
    q, ttft_slo = svc.slo.ttft
    prefill, step1, alone = m.mean_prefill_s(), m.step_s(1), m.alone_ttft_s()
    o.alone = {"ttft_s": alone, "ttft_slo_s": ttft_slo, "tpot_s": step1, "tpot_slo_s": svc.slo.tpot_p99_s,
               "percentile": q}
    o.load = t.rate
    o.saturation = saturation(prefill, m.output_len, m.step_s, max_batch)
    if alone > ttft_slo:
        o.reason = f"TTFT p{q:g} {ttft_slo:g} s missed even alone (prefill {alone:.2f} s{at})"
        return o, m
    if step1 > svc.slo.tpot_p99_s:
        o.reason = f"TPOT p99 {svc.slo.tpot_p99_s * 1e3:g} ms missed even alone ({step1 * 1e3:.1f} ms per token{at})"
        return o, m
    est = approx_capacity(prefill, m.output_len, m.step_s, max_batch, ttft_slo, svc.slo.tpot_p99_s, q, m.request_s,
                          m.tails)
    if est is None:
        o.reason = _no_load_miss(_idle(m, q), svc) or "SLOs met by a lone request but at no sustained load"
        return o, m
    o.stage, o.feasible, o.method = 3, True, "approximation"
    o.capacity, o.batch = est.rate, est.batch
    o.latency = {f"ttft_p{q:g}_s": est.ttft_s, "tpot_p99_s": est.tpot_p99_s}
    # the idle percentiles only where the TTFT is near its SLO (the one case _binds reads them): they cost a search
    o.binds = _binds(svc, est.ttft_s, est.tpot_p99_s, _alone_ttft(o, m if est.ttft_s >= 0.9 * ttft_slo else None),
                     _full(est, m))
    o.replicas = _replicas(t.rate, est.rate, headroom, redundancy)
    o.devices = o.replicas * tp
    o.energy = m.energy(est.rate, est.batch, cal.device_power(calibration).get(hw.id) if calibration else None)
    o.same_peaks = [d["hardware"] for d in fit.same_peaks(rep.case)]
    return o, m


def device_draw(hw_id: str, assumptions: Assumptions, calibration: dict | None) -> dict | None:
    """The busy power a row's J/token uses instead of the power model: an assumptions file's device_power, else
    a calibration's measured one, else None."""
    if given := assumptions.device_power.get(hw_id):
        return given.model_dump()
    return cal.device_power(calibration).get(hw_id) if calibration else None


def _idle(m: ServiceModel, q: float) -> Estimate | None:
    """The approximation's percentiles with the replica nearly idle, where the lengths vary (else None): the long
    prompts' own prefill, or a short output behind one, set them even with no queue."""
    if m.tails is None:
        return None
    return approx_load(1e-6 / m.alone_ttft_s(), m.mean_prefill_s(), m.output_len, m.step_s, m.max_batch, q,
                       m.request_s, m.tails)


def _no_load_miss(idle: Estimate | None, svc: LlmService) -> str | None:
    """What misses with the replica nearly idle (`idle`: _idle's estimate), where the lengths vary: a percentile
    that the mean request meets."""
    q, ttft_slo = svc.slo.ttft
    if idle is None:
        return None
    misses = [f"TTFT p{q:g} {idle.ttft_s:.2f} s against {ttft_slo:g} s" if idle.ttft_s > ttft_slo else "",
              f"TPOT p99 {idle.tpot_p99_s * 1e3:.0f} ms against {svc.slo.tpot_p99_s * 1e3:g} ms"
              if idle.tpot_p99_s and idle.tpot_p99_s > svc.slo.tpot_p99_s else ""]
    if not any(misses):
        return None
    return f"{' and '.join(x for x in misses if x)} with the replica idle: the length distribution's long requests miss it"


def _full(est, m: ServiceModel) -> str | None:
    """The batch limit an approximated replica runs at, if it does: its KV memory or the engine's."""
    if est.batch < 0.95 * m.max_batch:
        return None
    mem = m.replica.memory(1, int(m.input_len), int(m.output_len))["max_sequences"]
    return (f"memory: KV cache holds {m.max_batch} sequences" if mem <= m.replica.engine.max_seqs
            else f"engine limit of {m.max_batch} running sequences")


def _alone_ttft(o: Option, m: ServiceModel | None = None) -> float:
    """The TTFT a replica gives with no queue, against which queueing is told apart: the percentile over the
    lengths where they vary (found with `m`, and kept in the option's `alone` for the why table), else the lone
    mean request's (with its first decode step)."""
    if m is not None and "ttft_idle_s" not in o.alone and (idle := _idle(m, o.alone["percentile"])):
        o.alone |= {"ttft_idle_s": idle.ttft_s, "tpot_idle_s": idle.tpot_p99_s}
    return o.alone.get("ttft_idle_s") or o.alone["ttft_s"] + o.alone["tpot_s"]


def _binds(svc: LlmService, ttft: float, tpot: float | None, alone_ttft: float, full: str | None = None) -> str:
    """What stops a replica taking more load at its capacity: a batch limit it runs at, else the SLO
    within 10% of its target there (a heuristic threshold), else the queue that stops draining."""
    if full:
        return full
    q, ttft_slo = svc.slo.ttft
    if ttft >= 0.9 * ttft_slo:
        return f"TTFT p{q:g} SLO" + (" (queueing for a prefill slot)" if ttft > 2 * alone_ttft else " (prefill time)")
    if tpot is not None and tpot >= 0.9 * svc.slo.tpot_p99_s:
        return "TPOT p99 SLO (decode step and interleaved prefills)"
    return "saturation: beyond this load the queue stops draining"


def diffusion_option(svc: DiffusionService, label: str, hw: HardwareProfile, precision: str, headroom: float,
                     redundancy: int, calibration: dict | None) -> Option:
    o = Option(label, "diffusion", precision, 1, False, unit="images/s")
    o.gaps = _gaps(hw, precision, bandwidth=False)
    if o.gaps:
        o.reason = _lacks(o.gaps)
        return o
    group = media_model.fit_group("diffusion", svc.model)
    fitted = cal.for_media(calibration, group, hw.id, None, precision) if calibration else None
    p = media_model.predict_diffusion(svc.model, hw, precision, svc.resolution, svc.steps, svc.guidance_scale, fitted)
    o.fit = cal.label(fitted) if p.calibrated else "priors"
    return one_at_a_time(o, p, svc, "image", "", headroom, redundancy)


def one_at_a_time(o: Option, p, svc, what: str, detail: str, headroom: float, redundancy: int) -> Option:
    """An image or video service from its prediction `p`: one at a time per device, so the capacity is
    the highest arrival rate whose p95 latency (the unit plus its wait in the queue) meets the SLO."""
    key, slo, rate = f"{what}_s", svc.slo.latency_p95_s, svc.traffic.rate
    o.calibrated, o.stage = p.calibrated, 1
    if not p.fits:
        o.reason = p.notes[-1]
        return o
    o.stage = 2
    o.alone = {key: p.latency_s, "latency_slo_s": slo}
    o.load, o.saturation = rate, 1.0 / p.latency_s
    if p.latency_s > slo:
        o.reason = f"{what} latency p95 {slo:g} s missed even alone ({p.latency_s:.2f} s per {what}{detail})"
        return o
    est = approx_capacity(p.latency_s, 1, lambda b: 0.0, 1, slo, None)
    o.stage, o.feasible, o.method, o.capacity = 3, True, "approximation", est.rate
    o.latency = {key: p.latency_s, "latency_p95_s": est.ttft_s}
    o.binds = f"latency p95 SLO: one {what} at a time, so waiting in the queue limits the load"
    o.replicas = _replicas(rate, est.rate, headroom, redundancy)
    o.devices = o.replicas
    # the prediction's interval (+-, on the unit's time) carried through the same queue: slow end, fast end
    ends = [approx_capacity(p.latency_s * k, 1, lambda b: 0.0, 1, slo, None)
            for k in (1 + p.interval, 1 - min(p.interval, 0.9))]  # a calibrated interval may pass 100%
    o.spread = tuple(e.rate / est.rate if e else 0.0 for e in ends)
    o.range_label = f"+-{p.interval:.0%} {'calibrated' if p.calibrated else 'prior'}"
    _set_range(o, rate, headroom, redundancy)
    return o


def tts_option(svc: TtsService, label: str, hw: HardwareProfile, precision: str, headroom: float, redundancy: int,
               calibration: dict | None) -> Option:
    o = Option(label, "tts", precision, 1, False, unit="streams", method="processor sharing")
    o.gaps = _gaps(hw, precision, bandwidth=speech_lm.is_speech_lm(svc.model))  # an LM's steps read its weights
    if o.gaps:
        o.reason = _lacks(o.gaps)
        return o
    if speech_lm.is_speech_lm(svc.model):
        fitted = cal.for_speech_lm(calibration, hw.id, svc.engine, precision) if calibration else None
        return _speech_lm_option(o, svc, hw, precision, headroom, redundancy, fitted)
    fitted = cal.for_media(calibration, "tts", hw.id, None, precision) if calibration else None
    p = media_model.predict_tts(svc.model, hw, precision, svc.text_len, calibration=fitted)
    o.calibrated, o.stage = p.calibrated, 1
    o.fit = cal.label(fitted) if p.calibrated else "priors"
    if not p.fits:
        o.reason = p.notes[-1]
        return o
    o.stage = 2
    o.alone = {"rtf": p.rtf, "rtf_slo": svc.slo.rtf, "first_audio_s": p.latency_s,
               "first_audio_slo_s": svc.slo.first_audio_p95_s}
    o.load, o.saturation = svc.traffic.streams, 1.0 / p.rtf
    streams = by_rtf = svc.slo.rtf / p.rtf
    if svc.slo.first_audio_p95_s:
        streams = min(streams, svc.slo.first_audio_p95_s / p.latency_s)
    o.binds = "RTF SLO (streams share the device)" if streams == by_rtf else "first-audio SLO (streams share the device)"
    streams = math.floor(streams)
    if streams < 1:
        o.reason = f"{svc.slo.words()} missed even alone (RTF {p.rtf:.3f}, first audio {p.latency_s:.2f} s)"
        return o
    o.stage, o.feasible, o.capacity = 3, True, float(streams)
    o.latency = {"rtf_alone": p.rtf, "rtf_at_capacity": p.rtf * streams, "first_audio_at_capacity_s": p.latency_s * streams}
    o.replicas = _replicas(svc.traffic.streams, streams, headroom, redundancy)
    o.devices = o.replicas
    return o


def _speech_lm_option(o: Option, svc: TtsService, hw: HardwareProfile, precision: str, headroom: float,
                      redundancy: int, fitted: dict | None) -> Option:
    """A speech LM batches streams: capacity is the most streams whose RTF and first audio at that batch
    meet the SLO (speech_lm.capacity), not one stream's speed shared out. `fitted`: the step overhead
    calibrated on your runs on this part."""
    o.method, o.stage = "LM batching", 2
    o.calibrated = fitted is not None
    o.fit = cal.label(fitted) if fitted else "step overhead fitted on public timings"
    streams, at = speech_lm.capacity(svc.model, hw, precision, svc.text_len, svc.slo.rtf, svc.slo.first_audio_p95_s,
                                     svc.engine, fitted)
    o.load = svc.traffic.streams
    if "rtf_alone" in at:
        o.alone = {"rtf": at["rtf_alone"], "rtf_slo": svc.slo.rtf, "first_audio_s": at["first_audio_alone_s"],
                   "first_audio_slo_s": svc.slo.first_audio_p95_s}
        o.binds = {"rtf": "RTF SLO at the batch", "first_audio": "first-audio SLO at the batch",
                   "memory": "memory: the streams' KV cache"}[at["binds"]]  # what stops one stream more
    if streams < 1:
        o.reason = at.get("reason") or (
            f"{svc.slo.words()} missed even alone (RTF {at['rtf_alone']:.3f}, first audio "
            f"{at['first_audio_alone_s']:.2f} s)")
        return o
    o.stage, o.feasible, o.capacity, o.batch = 3, True, float(streams), float(streams)
    o.latency = {k: v for k, v in at.items() if k not in ("reason", "binds")}
    o.replicas = _replicas(svc.traffic.streams, streams, headroom, redundancy)
    o.devices = o.replicas
    return o


def closeness(o: Option) -> tuple:
    """How near an infeasible option came, larger nearer: the furthest stage, then the smallest miss of the SLOs
    (a lone request's largest latency / SLO ratio), then the largest TP (the first TP 1 said a model needs its
    2,053 GB on one device)."""
    a = o.alone
    pairs = (("ttft_s", "ttft_slo_s"), ("tpot_s", "tpot_slo_s"), ("image_s", "latency_slo_s"),
             ("video_s", "latency_slo_s"), ("request_s", "latency_slo_s"), ("rtf", "rtf_slo"),
             ("first_audio_s", "first_audio_slo_s"))
    miss = max((a[v] / a[s] for v, s in pairs if a.get(v) is not None and a.get(s)), default=0.0)
    return o.stage, -miss, o.tp


def _pick(options: list[Option]) -> Option:
    """Fewest devices among feasible options (then smaller TP, then the first precision listed);
    else the infeasible option that came closest (`closeness`), whose reason explains the miss."""
    ok = [o for o in options if o.feasible]
    if ok:
        return min(ok, key=lambda o: (o.devices, o.tp))
    return max(options, key=closeness)


# --- candidates ------------------------------------------------------------------------------

def _candidate(ctx: Context, hw: HardwareProfile, market: str | None, calibration: dict | None,
               replicas: dict) -> Candidate:
    server = server_for(hw, ctx.servers)
    node, sid = (server.slots, server.id) if server else (node_size(hw), None)
    name = f"{hw.vendor} {hw.model}"
    notes = []
    if not server and not hw.typical_node_size:
        notes.append(f"node size unknown; {DEFAULT_NODE} per server assumed")
    if market:
        status = hw.availability.get(market)
        if status and status.available is False:
            return Candidate(hw.id, name, False, f"not available in {market} ({status.status}, as of {status.as_of})",
                             [], node_size=node, notes=notes, blocker=f"not available in {market}", server=sid)
        if (status is None and ctx.market_has_data) or (status and status.available is None):
            notes.append(f"availability in {market} unclear" + (f": {status.status}" if status else " (no data)"))
    chosen, demand = [], ctx.demand
    for i, svc in enumerate(demand.services):
        label, head, red = demand.label(i), demand.headroom_of(svc), demand.redundancy_of(svc)
        o = _pick(svc.options(label, hw, head, red, calibration, node, replicas))
        if o.feasible and isinstance(svc, LlmService):
            m = replicas[(hw.id, label, o.precision, o.tp)]
            llm_range(o, svc, m, llm_fit(calibration), head, red)
            _alone_ttft(o, m)  # the picked option shows its idle percentiles in the why table
            if hw.id in ctx.assumptions.device_power:  # the draw the yearly kWh uses, for J/token too
                o.energy = m.energy(o.capacity, o.batch, device_draw(hw.id, ctx.assumptions, calibration))
        chosen.append(o)
        if isinstance(svc, LlmService) and not svc.precision and o.precision != "bf16":
            notes.append(f"{label}: priced in {o.precision}, as {svc.model} is published; `precision:` prices another")
        if o.feasible and o.precision in PRECISIONS:  # the peaks it was priced at, where one stands in for another
            moe = isinstance(svc, LlmService) and get_shape(svc.model).moe
            notes += [n for n in peak_notes(hw, PRECISIONS[o.precision], moe, o.kind == "llm") if n not in notes]
    bad = [o for o in chosen if not o.feasible]
    serves = [o.service for o in chosen if o.feasible]
    if bad:
        if all(o.gaps for o in bad):  # one line for a profile short of figures
            reason = _lacks(list(dict.fromkeys(g for o in bad for g in o.gaps)))
        else:
            reason = "; ".join(f"{o.service}: {o.reason}" for o in bad)
        return Candidate(hw.id, name, False, reason, chosen, node_size=node, notes=notes,
                         blocker=BLOCKERS[min(o.stage for o in bad)], serves=serves, server=sid)
    c = Candidate(hw.id, name, True, None, chosen, node_size=node, notes=notes, serves=serves, server=sid)
    _totals(c, hw, ctx)
    return c


@dataclass(frozen=True)
class Context:
    """What costing a candidate needs besides the candidate."""
    demand: Demand
    site: SiteProfile | None
    assumptions: Assumptions
    market_has_data: bool = True
    servers: dict = field(default_factory=dict)  # server platforms (servers.yaml) by id


def _totals(c: Candidate, hw: HardwareProfile, ctx: Context) -> None:
    for o, svc in zip(c.options, ctx.demand.services):
        if o.load is not None and o.replicas:
            o.utilization = utilization(o, svc)
            o.busy = o.load / (o.replicas * o.saturation) if o.saturation else None
    server = ctx.servers.get(c.server) if c.server else None
    c.devices = sum(o.devices for o in c.options)
    if any(o.replicas_range for o in c.options):
        ends = [[o.devices] * 2 if o.replicas_range is None else
                [None if r is None else r * o.tp for r in o.replicas_range] for o in c.options]
        c.devices_range = (sum(e[0] for e in ends),
                           None if any(e[1] is None for e in ends) else sum(e[1] for e in ends))
    c.servers = math.ceil(c.devices / c.node_size)
    c.peak_kw = peak_kw(c.devices, c.servers, hw, server)
    c.cost = cost_of(c, hw, ctx.demand.services, ctx.site, ctx.assumptions, server).to_dict()
    moving = (" bought for the ", " devices = 1 card: ")  # re-costed after confirmation: the count may move
    c.notes = [n for n in c.notes if not any(m in n for m in moving)]
    c.notes += [n for n in c.cost["notes"] if (n.startswith(("host cost estimated", "power at ")) or
                                               any(m in n for m in moving)) and n not in c.notes]


def rank_value(c: Candidate, rank_by: str) -> float | None:
    cost = c.cost or {}
    if rank_by == "tco":
        return (cost.get("per_year") or {}).get("total")
    if rank_by == "capex":
        return (cost.get("capex") or {}).get("total")
    if rank_by == "carbon":
        return (cost.get("carbon") or {}).get("total_kg_per_year")
    return {"power": c.peak_kw, "devices": c.devices, "servers": c.servers}[rank_by]


def _rank_key(c: Candidate, rank_by: str):
    value = rank_value(c, rank_by)
    return (not c.feasible, value is None, value or 0, c.devices or 0)


# --- confirmation by simulation ----------------------------------------------------------------

@dataclass
class Sampler:
    """Per request (prefill seconds, output tokens), from drawn (input, output) lengths; `many` draws
    n at once and prices their distinct prompt lengths in one vectorised call."""
    m: ServiceModel
    draw: Callable[[random.Random], tuple[int, int]]

    def __call__(self, rng: random.Random) -> tuple[float, int]:
        i, o = self.draw(rng)
        return self.m.prefill_s(i), o

    def many(self, rng: random.Random, n: int) -> list[tuple[float, int]]:
        lengths = [self.draw(rng) for _ in range(n)]
        distinct = sorted({i for i, _ in lengths})
        prefill = dict(zip(distinct, self.m.prefill_s(np.array(distinct, dtype=float)).tolist()))
        return [(prefill[i], o) for i, o in lengths]


def sampler(m: ServiceModel, draw: Callable[[random.Random], tuple[int, int]]) -> Sampler:
    return Sampler(m, draw)


def simulate_diffusion(image_s: float, svc):
    """A one-image (or one-video)-at-a-time replica's simulated capacity under the p95 latency SLO."""
    return capacity_under_slo(image_s, 1, lambda b: 0.0, 1, svc.slo.latency_p95_s, 1.0, n=1500)


def sim_requests(m: ServiceModel, svc: LlmService) -> int:
    """Requests one simulated run sends, at most SIM_MAX: enough that SIM_TPOTS of them, past the warm-up tenth, have
    a TPOT for its p99, and more the nearer the approximated capacity is to saturation (load u), by (0.5 / (1 - u))^2
    beyond half of it: a queue relaxes over about 1 / (1 - u)^2 arrivals, and a short run near saturation trips the
    drift check by chance. With 1,500 a run the simulated capacity read 1-8% above the long run's (a short run drains
    before a slowly growing queue shows), and for outputs of mean 1, whose p99 rested on 3 requests, it moved by
    -10%..+90% with the seed; a prompt-only service at 0.77-0.93 of saturation moved by -42%..+71% at 3,334 requests
    (benchmarks/llm_capacity.py)."""
    many = float(np.mean(m.lengths.outputs > 1)) if m.lengths is not None else float(m.output_len > 1)
    n = SIM_TPOTS / 0.9 / (many or 1.0)
    q, ttft = svc.slo.ttft
    est = approx_capacity(m.mean_prefill_s(), m.output_len, m.step_s, m.max_batch, ttft, svc.slo.tpot_p99_s, q,
                          m.request_s, m.tails)
    if est is not None:
        u = est.rate / saturation(m.mean_prefill_s(), m.output_len, m.step_s, m.max_batch)
        n *= max(1.0, (0.5 / max(1.0 - u, 1e-3)) ** 2)
    return min(SIM_MAX, math.ceil(n))


def simulate_llm(m: ServiceModel, svc: LlmService, draw=None, n: int | None = None, seed: int = 0):
    """The replica's simulated capacity under the service's SLOs; `draw` gives per-request lengths
    (default: the service's fixed mean lengths); `n` requests a run (default sim_requests) with `seed`."""
    q, ttft = svc.slo.ttft
    return capacity_under_slo(m.prefill_s(), m.output_len, m.step_s, m.max_batch, ttft,
                              svc.slo.tpot_p99_s, n=n or sim_requests(m, svc), seed=seed, ttft_q=q,
                              sample=sampler(m, draw) if draw else None, overhead_s=m.request_s)


def confirm(c: Candidate, ctx: Context, hw: HardwareProfile, replicas: dict, calibration: dict | None = None) -> None:
    """Re-derive the candidate's LLM, diffusion, video and embedding capacities with the discrete-event simulation
    (an LLM row's J/token and running batch with them, at the simulated capacity)."""
    demand = ctx.demand
    for o, svc in zip(c.options, demand.services):
        head, red = demand.headroom_of(svc), demand.redundancy_of(svc)
        if isinstance(svc, LlmService):
            r, t, q = replicas[(hw.id, o.service, o.precision, o.tp)], svc.traffic, svc.slo.ttft[0]
            bucket = whole(svc)
            res = simulate_llm(r, svc, bucket.sampler() if bucket.variable else None)
            load = t.rate
            if res is not None:
                o.latency = {f"ttft_p{q:g}_s": res.ttft_p95_s if q == 95 else res.ttft_p99_s,
                             "tpot_p99_s": res.tpot_p99_s}
                o.binds = _binds(svc, o.latency[f"ttft_p{q:g}_s"], res.tpot_p99_s, _alone_ttft(o, r))
                at = approx_load(res.rate, r.mean_prefill_s(), r.output_len, r.step_s, r.max_batch, q, r.request_s,
                                 r.tails)
                o.batch = at.batch if at else float(r.max_batch)
                o.energy = r.energy(res.rate, o.batch, device_draw(hw.id, ctx.assumptions, calibration))
        elif o.kind in ("diffusion", "video"):  # one image or video at a time, under a p95 latency SLO
            key = KINDS[o.kind].plan_latency[0]
            unit_s = o.latency[key]
            res = simulate_diffusion(unit_s, svc)
            load = svc.traffic.rate
            if res is not None:
                o.latency = {key: unit_s, "latency_p95_s": res.ttft_p95_s}
        elif o.kind == "embedding":  # requests merged into passes while one runs, under a p95 latency SLO
            res, load = svc.simulate(hw, o.precision, calibration), svc.traffic.rate
            if res is not None:
                o.latency = {"request_s": o.latency["request_s"], "latency_p95_s": res.e2e_p95_s}
                o.batch = None  # the approximation's merged count; the simulation's varies pass by pass
                o.binds = embedding_binds(res.rate, o.saturation)
        else:
            continue
        if res is None:  # length tails make even a lone request miss: the simulation overrules
            o.feasible, o.reason = False, "the simulated length distribution misses the SLO even at low load"
            c.feasible, c.reason, c.blocker = False, f"{o.service}: {o.reason}", BLOCKERS[2]
            c.serves = [x for x in c.serves if x != o.service]
            return
        o.capacity, o.method = res.rate, "simulation"
        o.replicas = _replicas(load, res.rate, head, red)
        o.devices = o.replicas * o.tp
        _set_range(o, load, head, red)  # the approximation's spread, around the simulated capacity
    _totals(c, hw, ctx)


def _check_context(label: str, svc: LlmService) -> str | None:
    """The service's longest request (prompt and output at their caps) against its model's context
    (llm_model.check_context): refused naming the service, or a note where the context is not known."""
    t = svc.traffic
    implied = [n for n, x in (("input_len", t.input_len), ("output_len", t.output_len))
               if x.distribution == "exponential" and x.max is None]
    asked = (f"prompts up to {t.input_len.cap:,} + outputs up to {t.output_len.cap:,} tokens"
             + (f" ({' and '.join(implied)} exponential without a max: drawn up to 4 x the mean)" if implied else ""))
    return llm_model.check_context(get_shape(svc.model), f"{label}: {svc.model}", t.input_len.cap + t.output_len.cap,
                                   asked, "give input_len and output_len a max that sums to at most {most}")


def plan(demand: Demand, profiles: dict[str, HardwareProfile], hardware: list[str] | None = None,
         site: SiteProfile | None = None, market: str | None = None, calibration: dict | None = None,
         rank_by: str = "power", confirm_top: int = 3, assumptions: Assumptions | None = None,
         servers: dict[str, ServerProfile] | None = None) -> Plan:
    """Rank the candidates (all accelerator profiles, or `hardware`) for the demand."""
    if rank_by not in RANK_BY:
        raise UserError(f"unknown ranking '{rank_by}'; use {', '.join(RANK_BY)}")
    for i, svc in enumerate(demand.services):  # unknown models fail once, before the search
        kind = media_model.kind_of(svc.model)
        if kind != svc.kind:
            raise UserError(f"service model '{svc.model}' is {article(kind)} {kind} model; set kind: {kind} for it")
        if kind == "llm":  # a local config that cannot be planned, or requests longer than the context: once
            _check_context(demand.label(i), svc)
        elif kind == "tts" and speech_lm.is_speech_lm(svc.model):  # utterances longer than the context: once
            speech_lm.get(svc.model).check_length(svc.text_len, "text_len", f"{demand.label(i)}: {svc.model}")
    market = (market or (site.market if site else None) or "").upper() or None  # codes: CN, US ...
    ids = hardware or [p.id for p in profiles.values() if p.kind == "accelerator"]
    replicas: dict = {}
    has_data = not market or market in markets(profiles)
    ctx = Context(demand, site, assumptions or Assumptions(), has_data, load_servers() if servers is None else servers)
    cands = [_candidate(ctx, profiles[i], market, calibration, replicas) for i in ids]
    cands.sort(key=lambda c: _rank_key(c, rank_by))
    confirmed: set[str] = set()
    while len(confirmed) < MAX_CONFIRM:  # until the top N are all simulated (confirming may reorder)
        top = [c for c in cands if c.feasible][:confirm_top]
        last = rank_value(top[-1], rank_by) if top else None
        todo = [c for c in cands if c.feasible and c.hardware not in confirmed
                and (c in top or any(_twins(profiles[c.hardware], profiles[t.hardware]) for t in top)
                     or _within_reach(c, last, rank_by))]
        if not todo:
            break
        for c in todo:
            confirm(c, ctx, profiles[c.hardware], replicas, calibration)
            confirmed.add(c.hardware)
        cands.sort(key=lambda c: _rank_key(c, rank_by))
    notes = [("capacities: mean-value queueing approximation, none confirmed by simulation (--confirm 0)"
              if confirm_top == 0 else
              "capacities: mean-value queueing approximation; the top "
              f"{confirm_top} confirmed by discrete-event simulation (method per service"
              + (f"; {len(confirmed)} candidates simulated: those within {REACH:g}x of the top {confirm_top}'s last, "
                 f"whose approximated figure may be that much too high, and any that confirming moved up)"
                 if len(confirmed) > confirm_top else ")")),
             ("peak kW = the servers' hosts (servers.yaml's maximum power less the slots' TDP, else 0.8 x TDP per "
              "slot: the DGX H100 ratio) + the accelerators in them at TDP: for power provisioning"),
             ("costs: parts are bought in servers (servers.yaml) at public prices with sources and confidence grades; "
              "network, energy and carbon follow docs/cost.md")]
    converted = {x for c in cands if c.feasible and c.cost for x in c.cost["converted_from"]}
    if converted:
        cur = next(c.cost["currency"] for c in cands if c.cost)
        notes.append(f"currency: {ctx.assumptions.fx_basis(cur, converted)}")
    measured = sorted(h for h, d in ctx.assumptions.device_power.items() if d.measured and h in ids)
    given = sorted(h for h, d in ctx.assumptions.device_power.items() if not d.measured and h in ids)
    notes.append(f"energy: device busy power measured for {', '.join(measured)} (energy_source: measured_device); "
                 "others estimated" if measured else
                 "energy: estimated (energy_source: estimated): LLM services' devices at the power model's draw at "
                 "capacity, other services' at TDP; `calibrate` runs with measured energy to use their device power")
    if given:
        notes.append(f"energy: busy power as your assumptions file gives it for {', '.join(given)} (still labelled "
                     f"estimated), in place of the power model's")
    if not has_data:
        notes.append(f"no profile records availability in market {market}: every part is assumed purchasable")
    fit = llm_fit(calibration)
    notes.append(f"LLM: {fit.meta.get('source', 'the shipped fit')}; per service [engine, fit]: fitted where the "
                 "part ran that engine in the data (few points: the vendor's only measurements), else carried over "
                 "from the nearest fitted parts (docs/planner.md gives the held-out errors of each)")
    if busy := cal.busy_lines(calibration):
        notes.append(f"calibration: fits marked '{cal.BUSY_LABEL}' rest on records measured while other processes "
                     f"took the machine's CPU, so read slower than the part: " + "; ".join(busy))
    if any(o.capacity_range for c in cands for o in c.options):
        notes.append("capacity ranges (low-high, replicas): the capacity again with LLM prompt and decode times at "
                     "the ends of their held-out 80% intervals, an image's or video's time at the ends of its stated "
                     "+- interval; where the low end needs twice the replicas or more, measure the part (`run`, "
                     "then `calibrate`) before buying on it")
    for i, svc in enumerate(demand.services):
        if isinstance(svc, LlmService):
            for name, length in (("input_len", svc.traffic.input_len), ("output_len", svc.traffic.output_len)):
                if abs(length.drawn_mean / length.mean - 1) > 0.05:
                    notes.append(f"{demand.label(i)}: {name} exponential of mean {length.mean:,} capped at "
                                 f"{length.cap:,} (rounded, at least 1) averages {length.drawn_mean:,.1f} tokens; "
                                 f"sized, counted and costed on that mean (raise max for the stated mean)")
        if isinstance(svc, LlmService) and get_shape(svc.model).config_path:
            notes.append(f"{demand.label(i)}: {llm_model.local_note(get_shape(svc.model))}")
        if isinstance(svc, LlmService) and (unchecked := _check_context(demand.label(i), svc)):
            notes.append(unchecked)
    feasible = {c.hardware for c in cands if c.feasible}
    pairs = sorted({tuple(sorted((c.hardware, h))) for c in cands if c.feasible for o in c.options
                    for h in o.same_peaks if h in feasible})
    if pairs:
        notes.append(f"{'; '.join(' and '.join(p) for p in pairs)} have the same spec peaks at the precision a "
                     f"service here runs, but their fitted efficiencies for it differ by more than "
                     f"{SAME_PEAKS_SPREAD - 1:.0%}: they were measured in different campaigns (engine builds, "
                     "harnesses), or one was not measured under that engine and takes the nearest parts' factors, "
                     "and how they rank against each other rests on that (`predict` gives the figures); run both "
                     "before choosing between them")
    crowded = [(c.hardware, o) for c in cands if c.feasible for o in c.options
               if o.kind == "llm" and o.feasible and (o.batch or 0) > llm_model.FEW_POINTS_ABOVE]
    if crowded:
        notes.append(f"{', '.join(f'{h} ({o.service}: {o.batch:,.0f} running)' for h, o in crowded)} run more sequences "
                     f"per replica at capacity than the fit measured much of: "
                     f"{llm_model.beyond_words(fit, [o.fit for _, o in crowded])}")
    models = {demand.label(i): svc.model for i, svc in enumerate(demand.services) if isinstance(svc, LlmService)}
    carried: dict[str, dict[str, list[str]]] = {}  # one note per generation and class: its parts' services
    for c in cands:
        for o in c.options:
            if o.kind == "llm" and o.feasible and (words := llm_model.class_words(fit, c.hardware,
                                                                                  get_shape(models[o.service]))):
                carried.setdefault(words, {}).setdefault(c.hardware, []).append(o.service)
    notes += [f"{', '.join(parts)} ({', '.join(dict.fromkeys(x for v in parts.values() for x in v))}): {words}"
              for words, parts in carried.items()]
    priors = sorted({o.kind for c in cands for o in c.options
                     if o.kind != "llm" and not o.calibrated and o.method != "LM batching"})
    if any(o.method == "LM batching" for c in cands for o in c.options):
        notes.append(f"speech LMs: capacity is the streams one device batches within the SLO; the step overhead is "
                     f"fitted on public measurements (80% interval +-{speech_lm.interval():.0%}, docs/planner.md)")
    if priors:
        notes.append(f"{', '.join(priors)}: efficiencies are priors (+-50%) unless `calibrate` fitted your own runs")
        above = sorted({c.hardware for c in cands if c.feasible and any(
            o.kind in ("diffusion", "video") and not o.calibrated for o in c.options)
            and media_model.above_fitted_peaks(peak_tflops(profiles[c.hardware], "bf16") or 0)})
        if above:
            notes.append(f"{', '.join(above)}: peaks above the H100's, where the image and video priors stop; their "
                         "image and video capacities are upper bounds (docs/planner.md, the ML.ENERGY check)")
    if any(o.kind == "embedding" and o.method == "approximation" for c in cands if c.feasible for o in c.options):
        notes.append("embedding: a ~ capacity is the merging queue's analytic approximation (planner/merge_queue.py), "
                     "0.86-1.00 of the simulated one (10th-90th percentile over 1,226 configurations, 0.75-1.01 at "
                     "the extremes: docs/planner.md); `--confirm N` simulates more")
    coverage = {demand.label(i): [c.hardware for c in cands if demand.label(i) in c.serves]
                for i in range(len(demand.services))}
    if len(demand.services) > 1 and not any(c.feasible for c in cands) and all(coverage.values()):
        notes.append(MIXED_HINT)
    return Plan(demand.name, site.id if site else None, market, rank_by, cands, notes, coverage)


def _within_reach(c: Candidate, last: float | None, rank_by: str) -> bool:
    """An approximated candidate whose figure, lowered by the approximation's error, could join the top N."""
    value = rank_value(c, rank_by)
    return last is not None and value is not None and value <= REACH * last


def _twins(a: HardwareProfile, b: HardwareProfile) -> bool:
    """Parts whose published figures the model uses agree within 5%: an approximation must not rank
    one above the other while the other is simulated (910B1 and 910B2 have the same figures)."""
    def near(x, y) -> bool:
        return x == y or (bool(x) and bool(y) and abs(x - y) <= 0.05 * max(x, y))
    keys = set(a.peak_tflops) | set(b.peak_tflops)
    return a.id != b.id and all(near(a.peak_tflops.get(k), b.peak_tflops.get(k)) for k in keys) and \
        near(a.memory_gb, b.memory_gb) and near(a.memory_bandwidth_tbs, b.memory_bandwidth_tbs)
