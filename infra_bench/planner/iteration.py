"""The cost of one serving iteration, as a sum of op classes.

An iteration of a continuous-batching engine runs `n_dec` decoding sequences (one token each, at
context `ctx_dec`) and `n_pf` prefill tokens (from `prompts` prompts, attending `ctx_pf` earlier
tokens on average). On the devices of one replica its time is

    dense GEMMs  max(2 x dense params x tokens / (TP x peak x mfu(tokens)),  dense weight bytes / (TP x BW x mbu))
    MoE experts  max(2 x routed params x tokens / (G x peak x moe_mfu(tokens per expert)),  bytes of the experts touched / (G x BW x mbu))
    attention    max(decode FLOPs / (peak x attn), KV bytes read / (BW x mbu))  +  prefill FLOPs / (peak x attn),
                 attn capped by what measured kernels reach (PREFILL_ATTENTION by prompt length, DECODE_ATTENTION),
                 moe_mfu likewise (EXPERT_GEMM)
    TP           2 x layers all-reduces of tokens x hidden x 2 bytes (ring over the scale-up link, plus latency;
                 over the scale-out NIC where TP x DP spans more than one scale-up domain)
    EP           2 x MoE layers all-to-alls of the routed tokens between attention-DP ranks (under TP attention
                 every rank holds every token, and the TP all-reduce combines the experts' partial sums); the
                 experts serve every DP rank's tokens, as many as this rank's or `others` each
    fixed        the engine's per-iteration overhead (scheduling, sampling), a cost per layer (kernel launches
                 and gaps) and per MoE layer a cost that grows with the experts each token picks (k / 8)

with mfu(tokens) = mfu x tokens / (tokens + n_half): GEMMs on few tokens use the tensor cores
poorly even where they are not memory-bound. G = TP x attention-DP devices share the experts;
the experts touched by T tokens that each pick k of E: E (1 - (1 - k/E)^T). Everything is
numpy-vectorised, so one call prices thousands of scenarios (the fit) or one (a prediction).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..errors import UserError, closest
from .profiles import HardwareProfile
from .shapes import LlmShape

ACT_BYTES = 2.0   # activations and messages stay 16-bit
SCALE_OUT_GBS = 50.0  # per device, one direction: a 400 Gb/s InfiniBand or RoCE NIC per accelerator (HGX, Atlas 800)
EMBED_BYTES = 2.0  # input embedding and lm_head are kept in 16-bit by every engine we model
# Prefill attention reaches at most E x s / (s + s_half) of the 16-bit peak on a sequence of s tokens, by the KV
# cache's width: FlashAttention-class context kernels as AIConfigurator measured them (H100, H200, A100, B200 under
# vLLM, SGLang and TensorRT-LLM; workloads/reference/attention_kernels.csv, benchmarks/attention_kernel_fit.py).
# GPU kernels: a CPU's attention keeps the fitted efficiency alone.
PREFILL_ATTENTION = {"16-bit": (0.63, 1370.0), "8-bit": (0.71, 1740.0)}
# Decode attention's compute reaches at most this share of the 16-bit peak, by the KV cache's width: MLA's absorbed
# decode kernel at 128 heads per device, where it is compute-bound, as AIConfigurator measured it (the newest tables of
# H100, H200, A100, B200, B300 and GB200 under vLLM, SGLang and TensorRT-LLM; workloads/reference/mla_decode_kernels.csv,
# benchmarks/attention_kernel_fit.py). Grouped-query decode is bound by its KV reads long before this.
DECODE_ATTENTION = {"16-bit": 0.51, "8-bit": 0.64}
# Expert GEMMs reach at most this share of the peak at the weights' compute type at many tokens per expert, by the
# precision: the median over fused-MoE kernels with whole experts on one device at 1,024 tokens per expert or more, as
# AIConfigurator measured them (H100, H200, B200, B300, GB200 and GB300 under vLLM, SGLang and TensorRT-LLM;
# workloads/reference/moe_kernels.csv, benchmarks/moe_kernel_fit.py). w4a16 (int4) kernels were not cut, so they keep
# the fitted efficiency; so does a CPU (the ceiling is GPU kernels').
EXPERT_GEMM = {"bf16": 0.30, "fp16": 0.30, "fp8": 0.33, "int8": 0.33, "fp4": 0.32}


@dataclass(frozen=True)
class Precision:
    name: str
    weight_bytes: float   # per parameter, block scales included
    compute: str          # the peak_tflops key the GEMMs run at
    kv_bytes: float       # per KV element (the engine default for this precision)
    note: str
    moe_dense: str = ""   # MoE models: the precision of the layers outside the experts, where it differs

    @property
    def dense_of_moe(self) -> Precision:
        return PRECISIONS[self.moe_dense] if self.moe_dense else self


PRECISIONS = {p.name: p for p in (
    Precision("fp32", 4.0, "fp32", 4.0, "32-bit weights and activations (CPU runs)"),
    Precision("bf16", 2.0, "bf16", 2.0, "16-bit weights and activations"),
    Precision("fp16", 2.0, "fp16", 2.0, "16-bit weights and activations"),
    Precision("fp8", 1.0, "fp8", 1.0, "fp8 weights and activations, fp8 KV cache"),
    Precision("int8", 1.0, "int8", 2.0, "w8a8: int8 weights and activations, 16-bit KV cache"),
    # 4-bit MoE checkpoints quantise the routed experts and keep attention and the shared layers
    # wider: gpt-oss (MXFP4 experts, bf16 attention; OpenAI model card), Kimi K2 Thinking (INT4 QAT of the
    # MoE components; Moonshot model card), NVIDIA's DeepSeek-R1-FP4 (its v2 card: "additionally quantizes
    # the wo module in attention layers", so v1 left attention at the base checkpoint's fp8)
    Precision("int4", 0.5 + 2 / 128, "bf16", 2.0, "w4a16: 4-bit weights (group 128) dequantised into 16-bit GEMMs",
              moe_dense="bf16"),
    Precision("fp4", 0.5 + 1 / 16, "fp4", 1.0, "nvfp4/mxfp4: 4-bit weights and activations (scales per 16), "
                                               "fp8 KV cache", moe_dense="fp8"),
)}
KV_DTYPES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0}


def get_precision(name: str) -> Precision:
    if name not in PRECISIONS:
        raise UserError(f"unknown precision '{name}'{closest(name, PRECISIONS)}; use {', '.join(PRECISIONS)}")
    return PRECISIONS[name]


def peak_tflops(hw: HardwareProfile, compute: str) -> float | None:
    """The dense peak for a compute type; fp32 at half the 16-bit rate where unpublished."""
    peak = hw.peak_tflops.get(compute) or (hw.dense_tflops if compute in ("bf16", "fp16") else None)
    if compute == "fp32" and not peak:
        peak = (hw.dense_tflops or 0) / 2 or None
    return peak


def borrowed_peak(hw: HardwareProfile, compute: str) -> str | None:
    """What a prediction says where `peak_tflops` took the peak from another precision, so the number is not
    read as the part's published rate; None where the profile publishes it (or nothing stands in)."""
    if compute in hw.peak_tflops or not (peak := peak_tflops(hw, compute)):
        return None
    if compute == "fp32":
        return (f"{hw.id} publishes no fp32 peak: taken as half its 16-bit peak ({peak:g} TFLOPS), the TF32 "
                f"tensor-core rate on NVIDIA parts; plain fp32 GEMMs can run far slower (an H100's 67 against 989 "
                f"TFLOPS), so read this as optimistic, or give fp32 in peak_tflops with --profiles DIR")
    other = "fp16" if compute == "bf16" else "bf16"
    return f"{hw.id} publishes no {compute} peak: its {other} peak ({peak:g} TFLOPS) is used"


def peak_notes(hw: HardwareProfile, precision: Precision, moe: bool = False, attention: bool = True) -> list[str]:
    """Every peak a prediction at `precision` takes from another precision, said, so no stand-in is read as the
    part's published rate: the GEMMs' (borrowed_peak), and where `terms` falls back to the GEMMs' own peak, a MoE
    model's layers outside the experts and attention (run in 16-bit)."""
    notes = [borrowed_peak(hw, precision.compute)]
    if not (peak := peak_tflops(hw, precision.compute)):
        return [n for n in notes if n]
    dense = precision.dense_of_moe.compute
    if moe and not peak_tflops(hw, dense):
        notes.append(f"{hw.id} publishes no {dense} peak: the layers outside the experts are priced at its "
                     f"{precision.compute} peak ({peak:g} TFLOPS), so read them as optimistic")
    if attention and precision.compute != "fp32" and not peak_tflops(hw, "bf16"):
        notes.append(f"{hw.id} publishes no 16-bit peak: attention, which runs in 16-bit, is priced at its "
                     f"{precision.compute} peak ({peak:g} TFLOPS), so read it as optimistic")
    return [n for n in notes if n]


@dataclass(frozen=True)
class Layout:
    """How one replica spreads over devices: tensor parallel (attention and dense layers), pipeline
    stages, attention data-parallel ranks (each with its own batch) and expert parallel ranks."""
    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1

    @property
    def devices(self) -> int:
        return self.tp * self.pp * self.dp

    def check(self, shape: LlmShape) -> str | None:
        """Why this layout cannot hold the model, or None."""
        if min(self.tp, self.pp, self.dp, self.ep) < 1:
            return "TP, PP, DP and EP must be at least 1"
        if shape.heads % self.tp:
            return f"{shape.heads} attention heads do not split over TP {self.tp}"
        if self.pp > shape.layers:
            return f"{shape.layers} layers do not fill {self.pp} pipeline stages"
        if self.ep > 1 and (not shape.moe or shape.experts % self.ep or (self.tp * self.dp) % self.ep):
            if not shape.moe:
                return "EP applies to MoE models only"
            ok = [e for e in range(1, self.tp * self.dp + 1) if not shape.experts % e and not (self.tp * self.dp) % e]
            return (f"EP {self.ep} needs to divide both the model's {shape.experts} experts and TP x DP = "
                    f"{self.tp * self.dp} devices; use --ep {' or '.join(map(str, ok))}")
        return None


@dataclass(frozen=True)
class Efficiency:
    """Achieved fractions of the spec sheet and fixed costs; arrays in a fit, numbers in a prediction."""
    mbu: object = 0.7          # memory bandwidth (weights, experts, KV)
    mfu: object = 0.6          # GEMM compute at many tokens per iteration
    n_half: object = 64.0      # tokens per iteration at which GEMMs reach half of mfu
    attn: object = 0.4         # attention compute
    t_iter: object = 2e-3      # per iteration, seconds
    t_layer: object = 2e-5     # per layer per iteration (kernel launches and the gaps between small kernels)
    t_moe_layer: object = 1e-4  # per MoE layer per iteration at 8 experts a token (routing, permutation, grouped
    #                             GEMMs); scaled by k / 8
    moe_mfu: object = 0.3      # expert GEMMs at many tokens per expert
    moe_n_half: object = 256.0  # tokens per expert at which expert GEMMs reach half of moe_mfu
    link: object = 0.7         # scale-up link
    ar_latency: object = 1e-5  # per all-reduce or all-to-all, seconds
    cluster: object = 0.5      # TTFT: running requests whose prompts queue together: min(n, scale x n ** cluster)
    cluster_scale: object = 2.0
    t_request: object = 0.0    # TTFT: per request (API server, tokenising, first-token send), seconds
    bench_requests: object = 0.0  # TTFT: requests in a measured run whose first C arrive together (0: a service's
    #                               steady state, no such burst)

    def to_dict(self) -> dict:
        return {f.name: float(np.asarray(getattr(self, f.name)).mean()) for f in fields(self)}


@dataclass(frozen=True)
class Terms:
    """The constants of the cost model for one or many (model, device, precision, layout) cases:
    plain numbers, or numpy arrays of equal length."""
    layers: object
    moe_layers: object
    hidden: object
    dense_bytes: object        # dense weights read per iteration per dp rank (all TP ranks together)
    dense_flops_tok: object    # 2 x dense params, lm_head excluded
    head_flops_tok: object     # 2 x lm_head params (only the last token of a prompt, and decode tokens)
    experts: object            # E (0 for dense models)
    top_k: object
    expert_bytes: object       # all routed experts, bytes
    routed_flops_tok: object   # 2 x routed params a token uses
    kv_tok: object             # KV bytes per token of context (full layers), at the KV precision
    kv_window: object          # KV bytes per token for sliding-window layers
    window: object
    state_seq: object          # linear-attention state per sequence, bytes
    kv_split: object           # devices a sequence's KV is split over within a dp rank
    pf_attn_top: object        # prefill attention's ceiling E and s_half (PREFILL_ATTENTION; none on a CPU)
    pf_attn_half: object
    dec_attn_top: object       # decode attention's compute ceiling (DECODE_ATTENTION; none on a CPU)
    moe_top: object            # the expert GEMMs' ceiling at many tokens per expert (EXPERT_GEMM; none on a CPU)
    attn_pf: object            # prefill attention FLOPs per query per context token (full layers)
    attn_dec: object           # decode attention FLOPs per query per context token
    slide_frac: object         # sliding layers / full layers
    tp: object
    pp: object
    dp: object
    ep: object
    peak: object               # FLOP/s per device at the precision's compute type (the routed experts)
    peak_dense: object         # ... at the compute type of the other GEMMs (a 4-bit MoE keeps them wider)
    peak_attn: object          # ... of attention, which runs in 16-bit (32-bit in fp32 runs)
    bw: object                 # bytes/s per device
    link: object               # bytes/s per device, one direction, for TP all-reduces and EP all-to-alls
    pp_link: object            # bytes/s per device between pipeline stages
    memory: object             # bytes per device
    weights_device: object     # bytes of weights per device

    def kv_seq(self, context):
        """KV bytes of one sequence of `context` tokens on one device."""
        attended = np.minimum(context, self.window) * self.kv_window + context * self.kv_tok
        return (attended + self.state_seq) / self.kv_split / self.pp


def terms(shape: LlmShape, hw: HardwareProfile, precision: Precision, layout: Layout,
          kv_bytes: float | None = None) -> Terms:
    """The cost model's constants for one case; UserError where the profile lacks a figure it needs."""
    peak = peak_tflops(hw, precision.compute)
    if not peak:
        raise UserError(f"{hw.id} has no published {precision.compute} peak, so {precision.name} cannot be "
                        f"predicted on it (see infra-bench profiles show {hw.id})")
    if missing := [k for k in ("memory_gb", "memory_bandwidth_tbs") if not getattr(hw, k)]:
        raise UserError(f"{hw.id} lacks {' and '.join(missing)} in its profile; add published figures with --profiles DIR")
    why = layout.check(shape)
    if why:
        raise UserError(why)
    kv = precision.kv_bytes if kv_bytes is None else kv_bytes
    dense_precision = precision.dense_of_moe if shape.moe else precision
    peak_dense = peak_tflops(hw, dense_precision.compute) or peak
    wb = dense_precision.weight_bytes
    head = 0 if shape.tied_embeddings else shape.vocab * shape.hidden
    dense_matmul = shape.dense_params - head
    g = layout.tp * layout.dp
    embed = shape.vocab * shape.hidden * (1 if shape.tied_embeddings else 2)
    weights_device = ((dense_matmul * wb + embed * EMBED_BYTES) / layout.tp
                      + shape.expert_params * precision.weight_bytes / g) / layout.pp
    kv_split = 1 if shape.mla else min(layout.tp, shape.kv_heads)
    width = "8-bit" if kv <= 1 else "16-bit"
    ceiling = (np.inf, 0.0) if hw.kind == "cpu" else PREFILL_ATTENTION[width]
    decode_top = np.inf if hw.kind == "cpu" else DECODE_ATTENTION[width]
    expert_top = np.inf if hw.kind == "cpu" else EXPERT_GEMM.get(precision.name, np.inf)
    per_layer = shape.kv_per_layer_bytes_bf16 * kv / 2.0
    link, pp_link = links(hw, layout)
    return Terms(
        layers=shape.layers, moe_layers=shape.layers - shape.first_dense_layers if shape.moe else 0,
        hidden=shape.hidden, dense_bytes=dense_matmul * wb + head * EMBED_BYTES, dense_flops_tok=2.0 * dense_matmul,
        head_flops_tok=2.0 * head, experts=shape.experts or 0, top_k=shape.experts_per_token or 0,
        expert_bytes=shape.expert_params * precision.weight_bytes, routed_flops_tok=2.0 * shape.routed_active_params,
        kv_tok=shape.kv_bytes_per_token_bf16 * kv / 2.0, kv_window=shape.sliding_layers * per_layer,
        window=shape.sliding_window or 0, state_seq=shape.linear_state_bytes_bf16, kv_split=kv_split,
        pf_attn_top=ceiling[0], pf_attn_half=ceiling[1], dec_attn_top=decode_top,
        moe_top=expert_top,
        attn_pf=shape.attn_flops_per_ctx, attn_dec=shape.decode_attn_flops_per_ctx,
        slide_frac=shape.sliding_layers / max(shape.full_layers, 1),
        tp=layout.tp, pp=layout.pp, dp=layout.dp, ep=layout.ep, peak=peak * 1e12,
        peak_dense=peak_dense * 1e12, peak_attn=(peak_tflops(hw, "fp32" if precision.compute == "fp32" else "bf16")
                                                 or peak) * 1e12,
        bw=hw.memory_bandwidth_tbs * 1e12, link=link, pp_link=pp_link, memory=hw.memory_bytes,
        weights_device=weights_device)


def node_size(hw: HardwareProfile) -> int:
    """Devices in one scale-up domain (an 8-GPU HGX board, an NVL72 rack)."""
    return hw.typical_node_size or 8


UNKNOWN_LINK_GBS = 64.0  # a part whose profile gives no scale-up bandwidth: a PCIe 5.0 x16 link, both ways


def scale_up_gbs(hw: HardwareProfile) -> float | None:
    """The profile's scale-up bandwidth (GB/s, both ways), or None where it is not published."""
    return hw.scale_up.bandwidth_gbs if hw.scale_up and hw.scale_up.bandwidth_gbs else None


def links(hw: HardwareProfile, layout: Layout) -> tuple[float, float]:
    """Bytes/s per device, one direction, of (TP and EP collectives, pipeline sends). A collective
    among more devices than one scale-up domain holds is paced by the scale-out NIC (each device
    sends its share over its own NIC); pipeline stages share a domain while they fit in it."""
    up = (scale_up_gbs(hw) or UNKNOWN_LINK_GBS) * 1e9 / 2
    out = min(up, SCALE_OUT_GBS * 1e9)
    collectives, stages = crosses_nodes(hw, layout)
    return (out if collectives else up), (out if stages else up)


def crosses_nodes(hw: HardwareProfile, layout: Layout) -> tuple[bool, bool]:
    """Whether (the TP and EP collectives, the pipeline sends) leave one scale-up domain."""
    node, group = node_size(hw), layout.tp * layout.dp
    return group > node, group * layout.pp > node


def stack(cases: list[Terms]) -> Terms:
    """Many cases as one Terms of arrays."""
    return Terms(**{f.name: np.array([getattr(c, f.name) for c in cases], dtype=float) for f in fields(Terms)})


def _gemm(flops, nbytes, tokens, peak, bw, mbu, mfu, n_half, top=np.inf):
    """The slower of the FLOPs at min(mfu, top) x n / (n + n_half) of the peak and the bytes at mbu of the bandwidth."""
    eta = np.minimum(mfu, top) * tokens / (tokens + n_half)
    return np.maximum(flops / (peak * np.maximum(eta, 1e-9)), nbytes / (bw * mbu))


def prefill_attention(t: Terms, e: Efficiency, ctx_pf):
    """Prefill attention's efficiency: the fitted one, capped on an accelerator by what the kernels reach at the
    prompt's length (a chunk at mean context c belongs to a sequence of about 2c). The serving sample cannot tell this
    efficiency apart, and alone the fit had put it at 0.88 of the peak, above every kernel measured (docs/planner.md)."""
    seq = 2.0 * np.maximum(ctx_pf, 1.0)
    return np.minimum(e.attn, t.pf_attn_top * seq / (seq + t.pf_attn_half))


def iteration(t: Terms, e: Efficiency, n_dec, ctx_dec, n_pf, ctx_pf, prompts, others=None) -> dict:
    """Seconds per op class of one iteration on one dp rank (numbers or arrays). `others`: the tokens each other
    attention-DP rank carries in it (None: as many as this one), which the experts serve as well."""
    n_dec, n_pf = np.asarray(n_dec, dtype=float), np.asarray(n_pf, dtype=float)
    tokens = n_dec + n_pf
    last = n_dec + prompts  # tokens whose logits are computed
    dense_flops = (t.dense_flops_tok * tokens + t.head_flops_tok * last) / t.tp
    dense = np.where(tokens > 0, _gemm(dense_flops, t.dense_bytes / t.tp, tokens, t.peak_dense, t.bw, e.mbu, e.mfu,
                                       e.n_half), 0.0)

    g = t.tp * t.dp
    routed = tokens + (t.dp - 1) * (tokens if others is None else others)  # the experts see every DP rank's tokens
    moe = np.asarray(t.experts, dtype=float) > 0
    safe_e = np.where(moe, t.experts, 1.0)
    touched = np.where(moe, 1 - (1 - t.top_k / safe_e) ** routed, 0.0)
    per_expert = routed * t.top_k / np.maximum(safe_e * touched, 1e-9)  # tokens each touched expert sees
    experts = np.where(moe & (tokens > 0),
                       _gemm(t.routed_flops_tok * routed / g, t.expert_bytes * touched / g, per_expert,
                             t.peak, t.bw, e.mbu, e.moe_mfu, e.moe_n_half, t.moe_top), 0.0)

    ctx_att = ctx_dec + np.minimum(ctx_dec, t.window) * t.slide_frac
    dec_flops = n_dec * ctx_att * t.attn_dec / t.tp
    kv_read = n_dec * t.kv_seq(ctx_dec) * t.pp
    pf_ctx = ctx_pf + np.minimum(ctx_pf, t.window) * t.slide_frac
    attention = np.maximum(dec_flops / (t.peak_attn * np.minimum(e.attn, t.dec_attn_top)), kv_read / (t.bw * e.mbu)) \
        + n_pf * pf_ctx * t.attn_pf / t.tp / (t.peak_attn * prefill_attention(t, e, ctx_pf))

    message = tokens * t.hidden * ACT_BYTES
    tp_comm = np.where(np.asarray(t.tp) > 1,
                       2 * t.layers * (2 * (t.tp - 1) / t.tp * message / (t.link * e.link) + e.ar_latency), 0.0)
    a2a = tokens * t.top_k * t.hidden * ACT_BYTES / t.tp * (t.ep - 1) / np.maximum(t.ep, 1)  # this rank's sends
    # with attention under TP every rank holds every token already, and the experts' partial sums are combined by the
    # layer's TP all-reduce: only attention-DP ranks dispatch and combine tokens over an all-to-all
    ep_comm = np.where((np.asarray(t.ep) > 1) & (np.asarray(t.dp) > 1),
                       2 * t.moe_layers * (a2a / (t.link * e.link) + e.ar_latency), 0.0)
    pp_comm = (t.pp - 1) * (message / (t.pp_link * e.link) + e.ar_latency)
    return {"dense_gemm": dense, "moe_experts": experts, "attention": attention, "tp_allreduce": tp_comm,
            "ep_alltoall": ep_comm, "pp_send": pp_comm,
            "fixed": e.t_iter + e.t_layer * t.layers + e.t_moe_layer * t.moe_layers * t.top_k / 8 + 0 * tokens}


def iteration_s(t: Terms, e: Efficiency, n_dec, ctx_dec, n_pf, ctx_pf, prompts, others=None):
    return sum(iteration(t, e, n_dec, ctx_dec, n_pf, ctx_pf, prompts, others).values())


def work(t: Terms, n_dec, ctx_dec, n_pf, ctx_pf, prompts) -> tuple[object, object]:
    """(seconds the iteration's FLOPs take at the spec-sheet peaks, bytes moved from memory) on one
    device, for the power model: each op class at the peak it runs at (experts at the precision's,
    the other GEMMs at theirs, attention at the 16-bit one)."""
    tokens = n_dec + n_pf
    g = t.tp * t.dp
    routed = tokens * t.dp
    moe = np.asarray(t.experts, dtype=float) > 0
    touched = np.where(moe, 1 - (1 - t.top_k / np.where(moe, t.experts, 1.0)) ** routed, 0.0)
    ctx_att = ctx_dec + np.minimum(ctx_dec, t.window) * t.slide_frac
    pf_ctx = ctx_pf + np.minimum(ctx_pf, t.window) * t.slide_frac
    compute_s = ((t.dense_flops_tok * tokens + t.head_flops_tok * (n_dec + prompts)) / t.tp / t.peak_dense
                 + np.where(moe, t.routed_flops_tok * routed / g, 0.0) / t.peak
                 + (n_dec * ctx_att * t.attn_dec + n_pf * pf_ctx * t.attn_pf) / t.tp / t.peak_attn) / t.pp
    nbytes = t.dense_bytes / t.tp / t.pp + np.where(moe, t.expert_bytes * touched / g, 0.0) / t.pp \
        + n_dec * t.kv_seq(ctx_dec)
    return compute_s, nbytes
