"""LLM serving predictions: one replica of a model on a profiled accelerator, under an engine.

The replica is `layout` (TP x PP x attention-DP devices, experts over EP) in a precision; the engine
sets how iterations are formed and its limits (engines.py). The cost of an iteration is priced by
op class (iteration.py) with efficiencies from a fit (fit.py: the one shipped with infra-bench, or
`--calibration` from `infra-bench calibrate`); the steady state of C closed-loop clients gives TTFT,
TPOT and throughput (steady.py), and the offline maximum is the best of it over concurrency. Every
prediction carries an 80% interval from held-out residuals of its kind, the fit it used, and energy
per token from a power model (power.py).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UserError, closest
from . import power
from .bench_run import finite_run
from .engines import Engine, default_engine, get_engine
from .fit import Case, Fit, arch_class, case_computes
from .iteration import (
    KV_DTYPES,
    PRECISIONS,
    SCALE_OUT_GBS,
    UNKNOWN_LINK_GBS,
    Layout,
    crosses_nodes,
    get_precision,
    iteration,
    node_size,
    peak_notes,
    peak_tflops,
    scale_up_gbs,
    terms,
    work,
)
from .profiles import HardwareProfile, vendor_word
from .shapes import LlmShape, get_shape, released_precision
from .steady import RUNTIME_RESERVE, EngineTerms, closed_loop, kv_capacity

if TYPE_CHECKING:
    from ..endpoints.inputs import LengthDistribution


@dataclass
class Replica:
    """A model, a part, a precision, a layout and an engine: everything a prediction is about."""
    shape: LlmShape
    hw: HardwareProfile
    precision: str
    layout: Layout
    engine: Engine
    kv_cache: str | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        prec = get_precision(self.precision)
        if self.precision == "fp4" and not self.hw.peak_tflops.get("fp4"):
            raise UserError(f"{self.hw.id} has no fp4 tensor-core rate in its profile, so fp4 cannot be predicted on "
                            f"it; use --precision int4 (4-bit weights, 16-bit compute)"
                            + (" or fp8" if self.hw.peak_tflops.get("fp8") else ""))
        kv = None if self.kv_cache is None else KV_DTYPES.get(self.kv_cache)
        if self.kv_cache is not None and kv is None:
            raise UserError(f"unknown KV cache type '{self.kv_cache}'; use {', '.join(KV_DTYPES)}")
        if self.kv_cache == "fp8" and not self.hw.peak_tflops.get("fp8") and vendor_word(self.hw.vendor) != "nvidia":
            # vLLM converts an fp8 KV cache in its CUDA kernels even on Ampere; other stacks need fp8 units
            raise UserError(f"{self.hw.id} has no fp8 peak in its profile, so an fp8 KV cache cannot be predicted on it; "
                            f"use --kv-cache bf16")
        self.terms = terms(self.shape, self.hw, prec, self.layout, kv)
        self.notes += peak_notes(self.hw, prec, bool(self.shape.moe))
        collectives, stages = crosses_nodes(self.hw, self.layout)
        if collectives:
            node, group = node_size(self.hw), self.layout.tp * self.layout.dp
            self.notes.append(f"TP {self.layout.tp} x DP {self.layout.dp} spans {-(-group // node)} nodes of {node} "
                              f"{self.hw.id}: all-reduces and all-to-alls cross the scale-out network "
                              f"({SCALE_OUT_GBS:.0f} GB/s per device assumed: 400 Gb/s InfiniBand/RoCE)")
        elif stages:
            self.notes.append(f"pipeline stages talk over the scale-out network ({SCALE_OUT_GBS:.0f} GB/s per device "
                              f"assumed: 400 Gb/s InfiniBand/RoCE)")
        if self.layout.tp * self.layout.dp * self.layout.pp > 1 and scale_up_gbs(self.hw) is None:
            link = self.hw.scale_up.link if self.hw.scale_up and self.hw.scale_up.link else "its links"
            self.notes.append(f"{self.hw.id}'s profile gives no scale-up bandwidth for {link}: collectives priced at "
                              f"{UNKNOWN_LINK_GBS:.0f} GB/s (a PCIe 5.0 x16 link), so more devices may come out slower; "
                              f"give scale_up.bandwidth_gbs in a profile of your own (--profiles DIR)")
        self.engine_terms = EngineTerms.of(self.engine)
        self.case = Case(self.shape.id, self.hw.id, self.engine.name, self.precision)

    @property
    def devices(self) -> int:
        return self.layout.devices

    def memory(self, concurrency: float, isl: int, osl: int) -> dict:
        t, g = self.terms, self.engine_terms
        running = min(concurrency, self.engine.max_seqs)
        ctx = isl + osl if self.engine.reserve_whole_request else isl + osl / 2
        kv = running * float(t.kv_seq(ctx))
        device = self.hw.memory_bytes
        usable = (device - t.weights_device - RUNTIME_RESERVE) * g.memory_fraction \
            if g.of_free else device * g.memory_fraction - t.weights_device - RUNTIME_RESERVE
        return {"weights_gb_per_device": t.weights_device / 1e9, "runtime_reserve_gb": RUNTIME_RESERVE / 1e9,
                "kv_cache_gb_per_device": kv / 1e9, "kv_room_gb_per_device": max(usable, 0) / 1e9,
                "device_gb": device / 1e9, "engine_memory_fraction": self.engine.memory_fraction,
                "kv_bytes_per_token_per_device": float(t.kv_seq(1.0) - t.kv_seq(0.0)),
                "max_sequences": int(kv_capacity(t, g, isl, osl)), "context_tokens": ctx}


@dataclass(frozen=True)
class Prediction:
    model: str
    hardware: str
    engine: str
    precision: str
    layout: dict
    devices: int
    mode: str                 # "closed loop" | "max throughput" | "finite run"
    concurrency: float        # clients per replica
    input_len: int
    output_len: int
    fits: bool
    memory: dict
    ttft_s: float | None
    tpot_s: float | None
    output_tokens_per_s: float | None   # the replica
    output_tokens_per_s_per_device: float | None
    requests_per_s: float | None
    intervals: dict           # metric -> [low, high], 80%
    running: float | None
    waiting: float | None
    bound: dict
    energy: dict | None
    fit: dict                 # which fit, which levels were not measured, the interval tier
    efficiency: dict
    engine_limits: dict
    notes: list
    replicas: int = 1         # --count: replicas of this layout; `total` in the JSON is theirs together
    run: dict | None = None   # mode "finite run": the benchmark run's own figures (bench_run.FiniteRun)

    def to_dict(self) -> dict:
        out = asdict(self)
        tok, iv = self.output_tokens_per_s, self.intervals.get("output_tokens_per_s")
        out["total"] = {"devices": self.devices * self.replicas, "clients": self.concurrency * self.replicas,
                        "output_tokens_per_s": None if tok is None else tok * self.replicas,
                        "output_tokens_per_s_interval": [x * self.replicas for x in iv] if iv else None,
                        "requests_per_s": None if self.requests_per_s is None else self.requests_per_s * self.replicas}
        return out


BENCH_PROMPTS = 1000  # vllm bench serve --num-prompts default


def _state(rep: Replica, eff, concurrency: float, isl: int, osl: int):
    per_rank = concurrency / rep.layout.dp
    return closed_loop(rep.terms, eff, rep.engine_terms, per_rank, isl, osl)


def _energy(rep: Replica, eff, s, isl: int, osl: int, tokens_per_s: float, measured_w: float | None,
            measured_source: str, tokens_interval: tuple[float, float] | None = None):
    ctx = isl + osl / 2
    n_d = float(s.decoding)
    p = n_d * isl / max(osl - 1, 1)
    t_iter = float(s.tpot_s) if osl > 1 else float(s.ttft_s)
    compute_s, nbytes = work(rep.terms, n_d, ctx, p, isl / 2, p / isl)
    parts = iteration(rep.terms, eff, n_d, ctx, p, isl / 2, p / isl)
    total = sum(float(v) for v in parts.values())
    u_net = (float(parts["tp_allreduce"]) + float(parts["ep_alltoall"]) + float(parts["pp_send"])) / total
    t = rep.terms
    return power.per_token(rep.hw.tdp_w, rep.devices, tokens_per_s, float(compute_s) / t_iter,
                           float(nbytes) / (t_iter * t.bw), u_net, measured_w, measured_source, tokens_interval)


FEW_POINTS_ABOVE = 256  # clients per replica beyond which the fit's serving points are few and it runs optimistic
TIER_WORDS = {"fitted": "a model the fit never saw, on a part and engine it measured",
              "other_engine": "a part measured under other engines only", "other_hardware": "a part the fit never measured",
              "few_points": "a part measured on few points, judged as one never measured"}


def beyond_words(fit: Fit, tiers: list[str]) -> str:
    """Why a figure beyond FEW_POINTS_ABOVE running sequences is an upper bound, with the held-out throughput bias
    there that the fit stores for each tier (`Fit.beyond`; none for a fit without held-out residuals)."""
    seen = {t: b for t in dict.fromkeys(tiers) if (b := fit.beyond(t))}
    if not seen:
        return (f"the fit's serving points thin out beyond {FEW_POINTS_ABOVE} per replica, and there the planner ran "
                f"optimistic held out; read it as an upper bound (docs/planner.md)")
    first = next(iter(seen.values()))
    biases = "; ".join(f"{abs(b['bias']):.0%} {'above' if b['bias'] >= 0 else 'below'} the measurement for "
                       f"{TIER_WORDS[t]}" for t, b in seen.items())
    return (f"the fit's serving points thin out beyond {FEW_POINTS_ABOVE} per replica ({first['points']} of its "
            f"{first['of']:,}), and there held-out throughput came out a median {biases}; read it as an upper bound "
            f"(`benchmarks/planner_accuracy.py`, docs/planner.md)")


def class_words(fit: Fit, hw_id: str, shape: LlmShape) -> str | None:
    """Why a model of a class (dense or MoE) that no part of this part's generation ran in the fit is read as +-50%, or
    None: its class factor was learnt on other vendors' parts (Fit.other_class_only)."""
    cls = arch_class(shape)
    parts = fit.other_class_only(hw_id, cls)
    if not parts:
        return None
    other = "MoE" if cls == "dense" else "dense"
    return (f"the fit measured {' and '.join(parts)} with {other} models only, so a {cls} model's efficiencies on "
            f"parts of that generation come from the {cls} factor learnt on other vendors' parts, which those runs "
            f"cannot check (on AMD parts such figures moved by 40% between two fits: docs/planner.md, \"AMD parts from "
            f"InferenceX\"); read them as +-50% and calibrate the part with your own runs")


LOW_PRECISIONS = ("fp8", "int8", "fp4")  # tensor cores faster than 16-bit (int4 is 4-bit weights into 16-bit GEMMs)


def _slower_than_16bit(rep: Replica, fit: Fit, concurrency: float, isl: int, osl: int, ttft_s: float) -> str | None:
    """A low precision whose TTFT comes out longer than the same configuration's in bf16: the fitted GEMM efficiencies
    differ by precision category (their measuring campaigns), not by compute alone, so say so where a user comparing
    precisions would be misled (until FIT_VERSION 14 the per-request time did too, and Llama-3.1-8B in fp8 on a B200
    under vLLM came out slower than in bf16 at one client; your own runs through `calibrate` can do it again)."""
    if rep.precision not in LOW_PRECISIONS:
        return None
    try:
        twin = Replica(rep.shape, rep.hw, "bf16", rep.layout, rep.engine)
    except UserError:
        return None
    if twin.memory(concurrency / rep.layout.dp, isl, osl)["max_sequences"] < 1:
        return None
    eff, _ = fit.efficiency([twin.case])
    other = float(_state(twin, replace(eff, bench_requests=0.0), concurrency, isl, osl).ttft_s)
    if ttft_s <= 1.05 * other:
        return None
    return (f"the same configuration in bf16 comes out with a shorter TTFT ({other * 1e3:.1f} ms against "
            f"{ttft_s * 1e3:.1f}): the fit's GEMM efficiencies belong to each precision's measured category (its "
            f"campaigns), not to the compute alone, so compare precisions on your own runs (`infra-bench "
            f"calibrate`) before choosing one on TTFT")


def share_words(engine: Engine) -> str:
    """The engine's memory share as its setting reads it, and how to change it."""
    of = "the memory the weights leave" if engine.of_free_memory else "the device's memory"
    return f"{engine.memory_fraction:g} of {of}; --memory-fraction, or memory_fraction under a demand's engine, sets it"


def what_fits(shape: LlmShape, hw: HardwareProfile, precision: str, engine: Engine, isl: int, osl: int) -> str:
    """A suggestion for a configuration that does not fit: the smallest TP that holds one sequence, and where the
    model is published in a narrower precision than asked (released_precision), what fits in that one: a 16-bit
    gpt-oss-120b needs four H100s where its own MXFP4 checkpoint runs on one."""
    hint = _what_fits(shape, hw, precision, engine, isl, osl)
    released = _narrower_release(shape, hw, precision)
    if released is None:
        return hint
    tp = _smallest_tp(shape, hw, released[0], engine, isl, osl, (1, 2, 4, 8, 16, 32, 64, 72))
    if tp is None:
        return hint
    where = "on one device" if tp == 1 else f"at --tp {tp}"
    if f"--precision {released[0]} --tp {tp} " in f"{hint} ":
        return f"{hint} ({shape.id} is published as {released[1]})"
    return f"{hint}; --precision {released[0]} fits {where}: {shape.id} is published as {released[1]}"


def published_precision(shape: LlmShape, hw: HardwareProfile) -> tuple[str, str] | None:
    """(the precision a catalog model's published checkpoint runs at on `hw`, the catalog's words for its weights)
    where the checkpoint is narrower than 16 bits (shapes.released_precision) and the part has a peak for it; None
    otherwise. MXFP4 experts run on fp4 tensor cores where the part has them (as the sample labels gpt-oss on
    Blackwell), else dequantised into 16-bit GEMMs (int4). An engine loads a checkpoint as published unless told
    otherwise (vLLM's `--dtype auto`), so this is what predict and plan price by default."""
    released = released_precision(shape.id)
    if released is None:
        return None
    precision, words = released
    if precision == "int4" and words.lower().startswith("mxfp4") and peak_tflops(hw, "fp4"):
        precision = "fp4"
    return (precision, words) if peak_tflops(hw, PRECISIONS[precision].compute) else None


def default_precision(model: str, hw: HardwareProfile) -> str:
    """The precision predict and plan price when none is given: the published checkpoint's, else bf16."""
    published = published_precision(get_shape(model), hw)
    return published[0] if published else "bf16"


def _narrower_release(shape: LlmShape, hw: HardwareProfile, precision: str) -> tuple[str, str] | None:
    """The precision the model is published in on `hw` and its words, where its weights are narrower than
    `precision`'s."""
    released = published_precision(shape, hw)
    if released is None or precision not in PRECISIONS or \
            PRECISIONS[released[0]].weight_bytes >= PRECISIONS[precision].weight_bytes:
        return None
    return released


def _converted_note(rep: Replica, mem: dict) -> list[str]:
    """Said where the replica runs a wider precision than the model is published in: it prices a converted copy."""
    released = _narrower_release(rep.shape, rep.hw, rep.precision)
    if released is None:
        return []
    return [f"{rep.shape.id} is published as {released[1]}, which --precision {released[0]} prices; this prices a copy "
            f"converted to {rep.precision}, {mem['weights_gb_per_device']:.1f} GB of weights per device"]


def _smallest_tp(shape: LlmShape, hw: HardwareProfile, precision: str, engine: Engine, isl: int, osl: int,
                 sizes: tuple[int, ...]) -> int | None:
    """The smallest TP of `sizes` within one node whose devices hold one sequence, or None."""
    for tp in sizes:
        if tp > node_size(hw) or shape.heads % tp:
            continue
        try:
            rep = Replica(shape, hw, precision, Layout(tp=tp), engine)
        except UserError:
            continue
        if rep.memory(1, isl, osl)["max_sequences"] >= 1:
            return tp
    return None


def _what_fits(shape: LlmShape, hw: HardwareProfile, precision: str, engine: Engine, isl: int, osl: int) -> str:
    node = node_size(hw)
    tp = _smallest_tp(shape, hw, precision, engine, isl, osl, (2, 4, 8, 16, 32, 64, 72))
    if tp is not None:
        return f"--tp {tp} fits"
    # a narrower precision the part runs and in which some TP of one node holds a sequence
    order = ["bf16", "fp8", "int8", "int4", "fp4"]
    for lower in order[order.index(precision) + 1:] if precision in order else []:
        if lower == "fp4":
            continue  # not a fallback: the parts with fp4 also run fp8, tried first
        hint = _what_fits(shape, hw, lower, engine, isl, osl) if _runs(shape, hw, lower, engine) else None
        if hint and hint.startswith("--tp"):
            return f"no TP within one {node}-device node fits in {precision}; --precision {lower} {hint}"
    return f"no TP within one {node}-device node fits in {precision}; add pipeline stages across nodes (--pp)"


def _runs(shape: LlmShape, hw: HardwareProfile, precision: str, engine: Engine) -> bool:
    """Whether the part runs the precision at all (a published peak for its GEMMs)."""
    try:
        Replica(shape, hw, precision, Layout(), engine)
    except UserError:
        return False
    return True


def check_context(shape: LlmShape, name: str, tokens: int, asked: str, fix: str) -> str | None:
    """Requests of `tokens` (prompt + output, as `asked` states them) must fit the model's context: an engine
    refuses longer ones, so a service asked of them cannot run and is refused here, in one line with `fix`
    (it was a note, and the figures were priced as if the context allowed them); `fix` may name the context as
    {most}. A context the config does not give cannot be checked: the note returned says so."""
    most = shape.max_positions
    if most is None:
        return (f"{name}'s context is not known (its config gives no max_position_embeddings), so {tokens:,} "
                f"tokens per request are not checked against it")
    if tokens > most:
        raise UserError(f"{name}'s context is {most:,} tokens and {asked} = {tokens:,} exceed it: "
                        f"{fix.format(most=f'{most:,}')}, or choose a model with a longer context (a local folder "
                        f"whose config.json extends it, e.g. with YaRN rope scaling)")
    return None


def _expert_notes(rep: Replica) -> list[str]:
    """What a MoE model's answer leaves out of its experts, said alike by predict and predict_run."""
    notes = []
    if rep.shape.moe:
        notes.append("MoE: experts touched by uniform routing; real routing is skewed (random-weight runs cannot "
                     "show it)")
    if rep.layout.ep > 1 and rep.layout.dp == 1:
        notes.append(f"EP {rep.layout.ep} under TP attention is priced as experts split by TP: every rank holds every "
                     f"token, so there is no all-to-all, and the TP all-reduce combines the experts' outputs; EP's "
                     f"uneven load across ranks is not modelled")
    return notes


def _base(rep: Replica, fit: Fit, isl: int, osl: int) -> tuple[object, dict]:
    """(the fit's efficiencies for a service, with no benchmark burst; the fields every prediction of the replica
    shares)."""
    fitted, missing = fit.efficiency([rep.case])
    # a service runs in steady state: the burst a benchmark's first C requests make is the fit's business
    eff = replace(fitted, bench_requests=0.0)
    tier = fit.tier(rep.case)
    base = dict(model=rep.shape.id, hardware=rep.hw.id, engine=rep.engine.name, precision=rep.precision,
                layout=asdict(rep.layout), devices=rep.devices, input_len=isl, output_len=osl,
                efficiency=fitted.to_dict(), engine_limits={"max_seqs": rep.engine.max_seqs,
                                                          "memory_fraction": rep.engine.memory_fraction,
                                                          "token_budget": rep.engine.token_budget,
                                                          "mixed_iterations": rep.engine.mixed,
                                                          "chunked_prefill": rep.engine.chunked,
                                                          "source": rep.engine.source},
                fit={"source": fit.meta.get("source", "infra-bench shipped fit"), "not_measured": missing[0],
                     "tier": tier, "engine_maturity": rep.engine.maturity,
                     "interval_engine": rep.case.engine if fit.engine_quantiles(tier, rep.case.engine) else None,
                     "class": arch_class(rep.shape), "same_peaks": fit.same_peaks(rep.case),
                     "category_models": fit.other_models(rep.case)})
    return eff, base


def predict(rep: Replica, fit: Fit, concurrency: float | None = 1, isl: int = 1024, osl: int = 256,
            max_throughput: bool = False, measured_power: dict | None = None) -> Prediction:
    """TTFT, TPOT and throughput of the replica under `concurrency` closed-loop clients, or its offline
    maximum (`max_throughput`: the best concurrency under the engine's limits and memory)."""
    if isl < 1 or osl < 1:
        raise UserError("--input-len and --output-len must be at least 1")
    if not max_throughput and concurrency is not None and concurrency < rep.layout.dp:
        raise UserError(f"--concurrency {concurrency:g} is below --dp {rep.layout.dp}: each attention-DP rank runs its own "
                        f"batch, so every rank needs a client; use --concurrency {rep.layout.dp} or more, or a smaller --dp")
    unchecked = check_context(rep.shape, rep.shape.id, isl + osl, f"--input-len {isl} + --output-len {osl}",
                              "lower them to {most} tokens together")
    if unchecked:
        rep.notes.append(unchecked)
    eff, base = _base(rep, fit, isl, osl)
    tier, missing = base["fit"]["tier"], base["fit"]["not_measured"]
    mem = rep.memory(concurrency or 1, isl, osl)
    notes = list(rep.notes)
    if mem["max_sequences"] < 1:
        notes.append(f"does not fit: {mem['weights_gb_per_device']:.1f} GB of weights + "
                     f"{mem['runtime_reserve_gb']:.1f} GB reserve per device leave no room for one sequence's KV cache "
                     f"under {rep.engine.name}'s memory share ({share_words(rep.engine)}); "
                     f"{what_fits(rep.shape, rep.hw, rep.precision, rep.engine, isl, osl)}")
        return Prediction(mode="max throughput" if max_throughput else "closed loop", concurrency=concurrency or 0,
                          fits=False, memory=mem, ttft_s=None, tpot_s=None, output_tokens_per_s=None,
                          output_tokens_per_s_per_device=None, requests_per_s=None, intervals={}, running=None,
                          waiting=None, bound={}, energy=None, notes=notes, **base)
    notes += _converted_note(rep, mem)
    if max_throughput:
        limit = min(rep.engine.max_seqs, mem["max_sequences"]) * rep.layout.dp
        grid = sorted({max(1, int(round(x))) for x in np.geomspace(1, max(limit, 1), 40)} | {int(limit)})
        states = [(c, _state(rep, eff, c, isl, osl)) for c in grid]
        concurrency, s = max(states, key=lambda cs: float(cs[1].output_tokens_per_s))
        notes.append(f"offline maximum: the best of {len(grid)} concurrencies up to {limit} "
                     f"(engine limit {rep.engine.max_seqs} x {rep.layout.dp} DP ranks, memory {mem['max_sequences']} "
                     f"sequences per rank), prefill charged")
    else:
        s = _state(rep, eff, concurrency, isl, osl)
        bench = float(_state(rep, replace(eff, bench_requests=BENCH_PROMPTS), concurrency, isl, osl).ttft_s)
        if bench > 1.05 * float(s.ttft_s):
            notes.append(f"TTFT is the steady state; a benchmark of {BENCH_PROMPTS:,} requests whose first "
                         f"{concurrency:g} start together (vllm bench serve's default) averages {bench:.3g} s")
    if concurrency and concurrency > FEW_POINTS_ABOVE:
        notes.append(f"{concurrency:g} clients per replica: {beyond_words(fit, [base['fit']['tier']])}")
    if not max_throughput and (slower := _slower_than_16bit(rep, fit, concurrency, isl, osl, float(s.ttft_s))):
        notes.append(slower)
    if float(s.waiting) > 0:
        notes.append(f"{float(s.waiting) * rep.layout.dp:.0f} of {concurrency:g} clients wait for a slot "
                     f"(at most {float(s.running):.0f} sequences run per DP rank: engine limit or KV memory); "
                     f"their wait is in TTFT")
    if missing:
        notes.append("the levels not measured (the fit's `not_measured`) take their efficiencies from the nearest "
                     "fitted parts through roofline ratios")  # the list and the interval's tier are the fit's, once
    if other := base["fit"]["category_models"]:
        notes.append(f"the model was not measured on {rep.hw.id} under {rep.engine.name} at {rep.precision}: that "
                     f"category's own bandwidth and GEMM factors, fitted on {', '.join(other['models'])}, are taken at "
                     f"the power {other['power']:.2f}, as much as they carry to a model they never saw")
    if other_class := class_words(fit, rep.hw.id, rep.shape):
        notes.append(other_class)
    for d in base["fit"]["same_peaks"]:
        notes.append(f"{rep.hw.id} and {d['hardware']} have the same spec peaks at {'/'.join(case_computes(rep.case))}, "
                     f"yet under {rep.engine.name} at {rep.precision} the fit gives this part {d['gemm_ratio']:.2f}x the "
                     f"GEMM efficiency and {d['bandwidth_efficiency_ratio']:.2f}x the bandwidth efficiency of "
                     f"{d['hardware']}: per-part factors carry what their measuring campaigns differ by (engine builds, "
                     f"harnesses), or for a part not measured there the nearest parts', so a comparison between the two "
                     f"carries that gap; run both (`infra-bench calibrate`) before choosing")
    notes += _expert_notes(rep)
    ttft, tpot = float(s.ttft_s), float(s.tpot_s) if osl > 1 else None
    tok_s = float(s.output_tokens_per_s)
    engine = rep.case.engine
    intervals = {"ttft_s": fit.interval(tier, "ttft", ttft, engine), "tpot_s": fit.interval(tier, "tpot", tpot, engine),
                 "output_tokens_per_s": throughput_interval(fit, tier, tok_s, engine)}
    measured = (measured_power or {}).get(rep.hw.id) or {}
    energy = _energy(rep, eff, s, isl, osl, tok_s, measured.get("busy_w"), measured.get("source", ""),
                     intervals["output_tokens_per_s"])
    if energy:
        intervals["j_per_token"] = energy.interval
    else:  # said, not left out: an unknown TDP is no zero-watt part
        notes.append(f"energy unknown: {rep.hw.id} publishes no TDP; add tdp_w to its profile in a --profiles folder")
    parts = {k: float(v) for k, v in s.bound.items()}
    return Prediction(mode="max throughput" if max_throughput else "closed loop", concurrency=concurrency,
                      fits=True, memory=mem, ttft_s=ttft, tpot_s=tpot, output_tokens_per_s=tok_s,
                      output_tokens_per_s_per_device=tok_s / rep.devices, requests_per_s=float(s.requests_per_s),
                      intervals={k: list(v) if v else None for k, v in intervals.items()},
                      running=float(s.running) * rep.layout.dp, waiting=float(s.waiting) * rep.layout.dp,
                      bound={"decode_iteration_share": parts, "decode_bound_by": max(parts, key=parts.get)},
                      energy=energy.to_dict() if energy else None, notes=notes, **base)


def predict_run(rep: Replica, fit: Fit, num_prompts: int, concurrency: int | None = None, isl: int = 1024,
                osl: int = 256, lengths: str | LengthDistribution | None = None, seed: int = 0) -> Prediction:
    """A finite benchmark run of `num_prompts` requests, at most `concurrency` in flight (None: all sent at once), as
    `vllm bench serve --num-prompts N [--max-concurrency C]` measures it, stepped iteration by iteration
    (bench_run.py); fixed lengths, or drawn with `seed` from `lengths`: a built-in distribution's name, or a
    distribution itself (a benchmark's rescaled one)."""
    if num_prompts < 1:
        raise UserError(f"--num-prompts {num_prompts}: a run needs at least 1 prompt")
    clients = min(concurrency or num_prompts, num_prompts)
    if clients < rep.layout.dp:
        raise UserError(f"{clients} prompts in flight cannot feed --dp {rep.layout.dp} attention-DP ranks: each runs its "
                        f"own batch; use --num-prompts and --concurrency of {rep.layout.dp} or more, or a smaller --dp")
    dist = _distribution(lengths) if isinstance(lengths, str) else lengths
    name = dist.name if dist else None
    if dist:
        isl_n, osl_n = dist.sample(num_prompts, seed)
        longest = int(np.argmax(isl_n + osl_n))
        asked = f"the longest request drawn from --lengths {name} ({isl_n[longest]} + {osl_n[longest]})"
        fix = "choose another --lengths"
    else:
        if isl < 1 or osl < 1:
            raise UserError("--input-len and --output-len must be at least 1")
        isl_n, osl_n = np.full(num_prompts, isl), np.full(num_prompts, osl)
        asked, fix = f"--input-len {isl} + --output-len {osl}", "lower them to {most} tokens together"
    isl, osl = round(float(isl_n.mean())), round(float(osl_n.mean()))
    unchecked = check_context(rep.shape, rep.shape.id, (isl_n + osl_n).max().item(), asked, fix)
    eff, base = _base(rep, fit, isl, osl)
    mem = rep.memory(clients / rep.layout.dp, isl, osl)
    if mem["max_sequences"] < 1:
        return replace(predict(rep, fit, clients, isl, osl), mode="finite run")
    run = finite_run(rep.terms, eff, rep.engine, isl_n, osl_n, clients, rep.layout.dp)
    tier, engine = base["fit"]["tier"], rep.case.engine
    tok_iv = throughput_interval(fit, tier, run.output_tokens_per_s, engine)
    per_output = run.total_tokens_per_s / run.output_tokens_per_s
    steady = _state(rep, eff, clients, isl, osl)
    drawn_note = (f"lengths drawn from --lengths {name} (seed {seed}): mean {isl} in, {osl} out; "
                  f"--input-len and --output-len are not read") if name else None
    sent = ("all sent at once (vllm bench serve's default request rate)" if clients == num_prompts else
            f"at most {clients} in flight (vllm bench serve --max-concurrency {clients})")
    steady_text = f"{float(steady.output_tokens_per_s):,.0f} output tokens/s" + (
        f", TTFT {float(steady.ttft_s) * 1e3:.1f} ms, TPOT {float(steady.tpot_s) * 1e3:.2f} ms" if osl > 1 else "")
    notes = [n for n in [*rep.notes, unchecked, drawn_note] if n] + [
        (f"a model of one benchmark run, stepped iteration by iteration with the fit's efficiencies and the engine's "
         f"limits: {num_prompts:,} prompts, {sent}; it lasts {run.duration_s:.3g} s, {run.peak_running} sequences "
         f"running at most per rank"),
        (f"the 80% intervals are those of the steady state (held-out {tier.replace('_', ' ')} residuals of closed "
         f"loops), put around this run's figures: the stepping itself was not checked against the fit's sample"),
        f"the steady state of {clients} closed-loop clients (predict --concurrency {clients}) gives {steady_text}"]
    if run.peak_running * rep.layout.dp > FEW_POINTS_ABOVE:
        notes.append(f"{run.peak_running * rep.layout.dp} sequences running at most per replica: "
                     f"{beyond_words(fit, [tier])}")
    notes += _converted_note(rep, mem) + _expert_notes(rep)
    figures = {"num_prompts": num_prompts, "max_concurrency": None if clients == num_prompts else clients,
               "lengths": name or "fixed", "seed": seed if name else None, "duration_s": run.duration_s,
               "input_tokens": run.input_tokens, "output_tokens": run.output_tokens,
               "total_tokens_per_s": run.total_tokens_per_s,
               "total_tokens_per_s_interval": [x * per_output for x in tok_iv] if tok_iv else None,
               "output_tokens_per_s": run.output_tokens_per_s, "requests_per_s": run.requests_per_s,
               "mean_ttft_s": run.mean_ttft_s, "mean_tpot_s": run.mean_tpot_s, "iterations": run.iterations,
               "peak_running_per_rank": run.peak_running}
    intervals = {"ttft_s": fit.interval(tier, "ttft", run.mean_ttft_s, engine),
                 "tpot_s": fit.interval(tier, "tpot", run.mean_tpot_s, engine), "output_tokens_per_s": tok_iv}
    return Prediction(mode="finite run", concurrency=clients, fits=True, memory=mem, ttft_s=run.mean_ttft_s,
                      tpot_s=run.mean_tpot_s, output_tokens_per_s=run.output_tokens_per_s,
                      output_tokens_per_s_per_device=run.output_tokens_per_s / rep.devices,
                      requests_per_s=run.requests_per_s,
                      intervals={k: list(v) if v else None for k, v in intervals.items()},
                      running=float(run.peak_running * rep.layout.dp), waiting=None, bound={}, energy=None,
                      notes=notes, run=figures, **base)


def _distribution(name: str) -> LengthDistribution:
    """The built-in length distribution `name` (--lengths), or a one-line error naming the known ones."""
    from ..endpoints.inputs import distributions

    known = distributions()
    if name not in known:
        raise UserError(f"unknown --lengths '{name}'{closest(name, known)}; use {', '.join(known)}")
    return known[name]


def throughput_interval(fit: Fit, tier: str, tok_s: float, engine: str | None = None) -> tuple[float, float] | None:
    """Throughput ~ 1/TPOT at load: its interval mirrors TPOT's (a measured TPOT q below the
    prediction means throughput above it)."""
    q = fit.quantiles(tier, "tpot", engine)
    if q is None:
        return None
    return tok_s * math.exp(q[0]), tok_s * math.exp(q[1])


def replica(model: str, hw: HardwareProfile, precision: str = "bf16", tp: int = 1, pp: int = 1, dp: int = 1,
            ep: int = 1, engine: str | None = None, max_seqs: int | None = None, token_budget: int | None = None,
            kv_cache: str | None = None, memory_fraction: float | None = None) -> Replica:
    """A Replica from CLI-like arguments; every problem is a one-line UserError."""
    get_precision(precision)
    shape = get_shape(model)
    layout = Layout(tp, pp, dp, ep)
    why = layout.check(shape)
    if why:
        raise UserError(why)
    eng = get_engine(engine).on(hw.memory_bytes).with_limits(max_seqs, token_budget, memory_fraction)
    why = eng.refusal(hw.id, hw.vendor)
    if why:
        raise UserError(f"{why}; use --engine {default_engine(hw.vendor)} (or auto) for {hw.id}")
    rep = Replica(shape, hw, precision, layout, eng, kv_cache)
    if shape.config_path:
        rep.notes.insert(0, local_note(shape))
    return rep


def local_note(shape: LlmShape) -> str:
    """Where a model outside the catalog got its shape, and what the prediction borrows."""
    moe = f", {shape.active_params / 1e9:.2f}B active per token" if shape.moe else ""
    return (f"shape from {shape.config_path}, parameters counted on the meta device ({shape.total_params / 1e9:.2f}B"
            f"{moe}); not a catalog model: efficiencies are the fit's for {arch_class(shape)} models")

