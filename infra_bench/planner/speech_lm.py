"""LLM-based speech (CSM, Dia, CosyVoice2) for predict and plan: a language model writes codec frames
one decode step at a time, so its time follows the LLM serving model, not a FLOP count.

Each model is a few decoder stages run per audio frame (CSM: the 1B backbone once and the depth
decoder 31 times; Dia: its decoder once, on a doubled batch for classifier-free guidance;
CosyVoice2: the Qwen2.5-0.5B LM once per speech token), then a decoder from frames to audio (Mimi,
DAC, or CosyVoice2's flow matching and HiFT). A decode step of a stage at B streams is priced by
iteration.py's op classes (weights and KV cache read at the memory bandwidth, GEMMs at the compute
peak) plus a fixed overhead per layer per step, the launch and Python cost that dominates these
implementations at small batch:

    RTF(B)        = frame rate x sum over stages (steps per frame x step_s(stage, B)) + B x audio decoder s
    first audio   = prompt prefill + (chunk + codebook delay) frames x frame_s(B) + the chunk's decode
    capacity      = the most streams B whose RTF(B) and first audio meet the SLO (the LM batches
                    streams; it does not share the device one stream at a time)

The per-layer overhead is fitted per mode (`eager`: the reference PyTorch/transformers code;
`compiled`: torch.compile, CUDA graphs or TensorRT-LLM) on public batch-1 measurements
(workloads/reference/speech_lm_measurements.csv), and its held-out error, leave one model out, is
stated in docs/planner.md. Batched rows are not fitted: they check the batching model.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np

from ..errors import UserError
from ..paths import data_dir, reference_rows
from .iteration import Efficiency, Layout, get_precision, iteration_s, peak_notes, peak_tflops, terms
from .profiles import HardwareProfile
from .shapes import LlmShape

FAMILIES = ("csm", "dia", "cosyvoice2")
MODES = ("eager", "compiled")
TABLE = "speech_lm.json"
MEASUREMENTS = "speech_lm_measurements.csv"
# Streaming chunks: our streamer decodes every 4 complete codec frames (backends/torch/tts_lm.py);
# CosyVoice2 streams 25 speech tokens plus its 3-token lookahead (cosyvoice/cli/model.py token_hop_len).
CHUNK = {"csm": 4, "dia": 4, "cosyvoice2": 28}
# The iteration model's efficiencies at their priors (these implementations are not the engines the
# LLM fit covers), and the audio decoder's achieved fraction of peak (small convolutions).
EFFICIENCY = Efficiency(mbu=0.7, mfu=0.5, n_half=64.0, attn=0.4, t_iter=0.0, t_layer=0.0)
DECODER_MFU = 0.05
RUNTIME_RESERVE_GB = 2.0
USABLE_FRACTION = 0.9
PRECISIONS = ("bf16", "fp16", "fp32")
# Audio per text token of an utterance: 0.4 s, the speaking rate of run's forced lengths for CSM (5 frames
# at 12.5 Hz), used for every family so one --text-len means the same utterance.
SECONDS_PER_TOKEN = 0.4


@dataclass(frozen=True)
class Stage:
    """One decoder run per audio frame: its shape and how often it steps."""
    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    matmul_params: int          # weights one step multiplies through (lookup embeddings excluded)
    kv_bytes_per_token: int     # self-attention KV cache, bf16, all layers
    cross_kv_bytes_per_text: int = 0  # Dia: cross-attention KV over the encoded text, read every step
    steps_per_frame: int = 1
    cfg: int = 1                # guidance runs an unconditional copy of the batch
    context: int | None = None  # a fixed context (CSM's depth decoder: the frame's codebooks); None: the utterance

    def shape(self) -> LlmShape:
        return LlmShape(
            id=self.name, layers=self.layers, hidden=self.hidden, heads=self.heads, kv_heads=self.kv_heads,
            head_dim=self.head_dim, vocab=0, tied_embeddings=True, total_params=self.matmul_params,
            active_params=self.matmul_params, kv_bytes_per_token_bf16=self.kv_bytes_per_token, experts=None,
            experts_per_token=None, first_dense_layers=0, attention="GQA", full_layers=self.layers, sliding_layers=0,
            sliding_window=None, linear_layers=0, linear_state_bytes_bf16=0, mla_kv_lora_rank=None,
            mla_rope_dim=None, attn_flops_per_ctx=4.0 * self.layers * self.heads * self.head_dim,
            max_positions=None, source="")


@dataclass(frozen=True)
class SpeechLm:
    id: str
    family: str
    frame_rate: float           # LM steps of the first stage per audio second
    max_delay: int              # Dia: frames a codebook lags; a frame is complete that many steps later
    stages: tuple[Stage, ...]
    prompt_params: int          # weights the text prompt runs through once (Dia: the encoder; else stage 0)
    decoder_flops_per_audio_s: float
    params: int
    max_context: int | None = None  # positions of the first stage, whose context grows with the utterance
    max_text: int | None = None     # Dia: its text encoder's positions (the text is outside the decoder's context)

    def check_length(self, text_len: int, field: str, name: str | None = None) -> None:
        """An utterance must fit the model's positions (the LM's context: the text prompt and every frame; Dia: the
        frames with their codebook delay, the text in its encoder's), where generation stops; refused in one line
        naming `field` (it was priced as if the context allowed it: Dia-1.6B's 3,072 positions hold 35 s of audio)."""
        def needs(t: int) -> int:
            frames = math.ceil(t * SECONDS_PER_TOKEN * self.frame_rate) + self.max_delay
            return frames if self.max_text else t + frames
        fix = "split longer text into several utterances"
        name = name or self.id
        if self.max_context and needs(text_len) > self.max_context:
            lo, hi = 0, text_len  # the longest that fits: needs() grows with the length
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if needs(mid) <= self.max_context else (lo, mid)
            raise UserError(f"{name}'s context is {self.max_context:,} positions and an utterance of {text_len:,} text "
                            f"tokens ({text_len * SECONDS_PER_TOKEN:g} s of audio) needs {needs(text_len):,}: lower "
                            f"{field} to at most {lo:,} ({fix})")
        if self.max_text and text_len > self.max_text:
            raise UserError(f"{name}'s text encoder takes {self.max_text:,} tokens and {field} is {text_len:,}: lower "
                            f"it to at most {self.max_text:,} ({fix})")


def _linear(module) -> int:
    import torch

    return sum(m.weight.numel() for m in module.modules() if isinstance(m, torch.nn.Linear))


def _kv(layers: int, kv_heads: int, head_dim: int) -> int:
    return 2 * layers * kv_heads * head_dim * 2


def _count_csm(cfg: dict) -> dict:
    import torch
    import transformers as tf

    from ..measure.flops import counted

    with torch.device("meta"):
        m = tf.CsmForConditionalGeneration(tf.CsmConfig(**cfg))
    c, d = m.config, m.config.depth_decoder_config
    head_slice = m.depth_decoder.codebooks_head.weight[0].numel()  # one codebook's head per depth step
    stages = [
        Stage("backbone", c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_key_value_heads,
              c.head_dim, _linear(m.backbone_model.layers) + _linear(m.lm_head),
              _kv(c.num_hidden_layers, c.num_key_value_heads, c.head_dim)),
        Stage("depth decoder", d.num_hidden_layers, d.hidden_size, d.num_attention_heads, d.num_key_value_heads,
              d.head_dim, _linear(m.depth_decoder.model.layers) + _linear(m.depth_decoder.model.inputs_embeds_projector)
              + head_slice, _kv(d.num_hidden_layers, d.num_key_value_heads, d.head_dim),
              steps_per_frame=c.num_codebooks - 1, context=c.num_codebooks // 2)]
    rate = c.codec_config.frame_rate
    codec = tf.MimiModel(c.codec_config).eval()  # on the CPU: Mimi's attention mask reads values, which meta tensors lack
    codes = torch.zeros(1, c.num_codebooks, math.ceil(rate), dtype=torch.long)
    flops = counted(lambda: codec.decode(codes)) / (math.ceil(rate) / rate)
    return {"frame_rate": rate, "max_delay": 0, "stages": [asdict(s) for s in stages],
            "prompt_params": stages[0].matmul_params, "decoder_flops_per_audio_s": flops,
            "params": sum(p.numel() for p in m.parameters()), "max_context": c.max_position_embeddings}


def _count_dia(cfg: dict, sampling_rate: int, hop: int) -> dict:
    import torch
    import transformers as tf

    from ..measure.flops import counted

    with torch.device("meta"):
        m = tf.DiaForConditionalGeneration(tf.DiaConfig(**cfg["model"]))
        codec = tf.DacModel(tf.DacConfig(**cfg["codec"]))
    d = m.config.decoder_config
    cross_kv = sum(layer.cross_attention.k_proj.weight.numel() + layer.cross_attention.v_proj.weight.numel()
                   for layer in m.model.decoder.layers)  # run once over the text, cached for every step
    stages = [Stage("decoder", d.num_hidden_layers, d.hidden_size, d.num_attention_heads, d.num_key_value_heads,
                    d.head_dim, _linear(m.model.decoder.layers) - cross_kv + _linear(m.logits_dense),
                    _kv(d.num_hidden_layers, d.num_key_value_heads, d.head_dim),
                    cross_kv_bytes_per_text=_kv(d.num_hidden_layers, d.cross_num_key_value_heads, d.cross_head_dim),
                    cfg=2)]
    rate = sampling_rate / hop
    codes = torch.zeros(1, len(m.config.delay_pattern), math.ceil(rate), dtype=torch.long, device="meta")
    flops = counted(lambda: codec.decode(audio_codes=codes)) / (math.ceil(rate) / rate)
    return {"frame_rate": rate, "max_delay": max(m.config.delay_pattern), "stages": [asdict(s) for s in stages],
            "prompt_params": _linear(m.model.encoder), "decoder_flops_per_audio_s": flops,
            "params": sum(p.numel() for p in m.parameters()) + sum(p.numel() for p in codec.parameters()),
            "max_context": d.max_position_embeddings, "max_text": m.config.encoder_config.max_position_embeddings}


def _count_cosyvoice2(cfg: dict, sampling_rate: int, hop: int) -> dict:
    """The shape-equivalent composition `run` builds (workloads/cosyvoice2.py), on the meta device: the
    LM stage, and the flow and vocoder FLOPs of one second of audio (the flow run once over it)."""
    import torch

    from ..measure.flops import counted
    from ..workloads import cosyvoice2 as cv

    m = cv.build(cfg, sampling_rate, "meta")
    lm, fl = cfg["lm"], cfg["flow"]
    rate = sampling_rate / hop
    tokens = torch.zeros(1, math.ceil(rate), dtype=torch.long, device="meta")
    noise = torch.zeros(1, fl["mel_bins"], tokens.shape[1] * fl["mel_per_token"], device="meta")
    flow = counted(lambda: m.flow(tokens, noise))
    vocoder = counted(lambda: m.hift.gan(noise.transpose(1, 2)))  # the inverse STFT after it: no meta kernel, few FLOPs
    per_s = (flow + vocoder) / (tokens.shape[1] / rate)
    head_dim = lm["hidden_size"] // lm["num_attention_heads"]
    stage = Stage("lm", lm["num_hidden_layers"], lm["hidden_size"], lm["num_attention_heads"], lm["num_key_value_heads"],
                  head_dim, sum(_linear(lay) for lay in m.lm.layers) + m.head.weight.numel(),
                  _kv(lm["num_hidden_layers"], lm["num_key_value_heads"], head_dim))
    return {"frame_rate": rate, "max_delay": 0, "stages": [asdict(stage)], "prompt_params": stage.matmul_params,
            "decoder_flops_per_audio_s": per_s, "params": sum(p.numel() for p in m.parameters()),
            "max_context": m.lm.config.max_position_embeddings}


def count(model: str) -> dict:
    """A catalog speech LM's stages, audio-decoder FLOPs per audio second and parameters, counted on
    the meta device (the Mimi codec on the CPU, once: seconds)."""
    from ..workloads import tts as tw

    a = tw.catalog()[model]
    if a.family == "csm":
        return _count_csm(a.config)
    if a.family == "dia":
        return _count_dia(a.config, a.sampling_rate, a.hop)
    return _count_cosyvoice2(a.config, a.sampling_rate, a.hop)


def catalog_ids() -> list[str]:
    from ..catalog import architectures

    return [k for k, v in architectures("tts").items() if v.get("family") in FAMILIES]


def is_speech_lm(model: str) -> bool:
    return model in catalog_ids()


@lru_cache(maxsize=16)
def get(model: str) -> SpeechLm:
    """From the table shipped for the catalog (no torch import), else counted and cached on disk."""
    from ..catalog import architectures
    from .media_model import _cached

    table = json.loads((data_dir("workloads") / "reference" / TABLE).read_text())
    entry = architectures("tts")[model]
    raw = table.get(model) or _cached({"kind": "speech-lm", "model": model, "v": 2}, entry, lambda: count(model))
    return SpeechLm(id=model, family=entry["family"], frame_rate=raw["frame_rate"], max_delay=raw["max_delay"],
                    stages=tuple(Stage(**s) for s in raw["stages"]), prompt_params=raw["prompt_params"],
                    decoder_flops_per_audio_s=raw["decoder_flops_per_audio_s"], params=raw["params"],
                    max_context=raw.get("max_context"), max_text=raw.get("max_text"))


def write_table() -> None:
    """Count the published speech LMs of the catalog into the package data."""
    from ..catalog import architectures

    table = {"note": "LLM-based speech models: per-stage decode shapes and audio-decoder FLOPs per audio second, "
                     "counted on the meta device; written by infra_bench.planner.speech_lm.write_table()"}
    for model in catalog_ids():
        entry = architectures("tts")[model]
        if "test shape" not in entry["source"]:
            table[model] = count(model)
    (data_dir("workloads") / "reference" / TABLE).write_text(json.dumps(table, indent=1))


# --- the time model ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Measurement:
    model: str
    hardware: str
    precision: str
    mode: str
    batch: int
    scope: str      # total (LM and audio decoder) or lm (the LM stage alone)
    rtf: float      # wall seconds per second of audio, all streams of the batch together
    source: str


def measurements() -> list[Measurement]:
    return [Measurement(r["model"], r["hardware"], r["precision"], r["mode"], int(r["batch"]), r["scope"],
                        float(r["rtf"]), r["source"]) for r in reference_rows(MEASUREMENTS)]


def _peak(hw: HardwareProfile, precision: str) -> float:
    compute = get_precision(precision).compute
    peak = peak_tflops(hw, compute)
    missing = [name for name, v in ((f"a {compute} peak", peak), ("memory_gb", hw.memory_gb),
                                    ("memory_bandwidth_tbs", hw.memory_bandwidth_tbs)) if not v]
    if missing:
        raise UserError(f"{hw.id} lacks {' and '.join(missing)} in its profile; add published figures with --profiles DIR")
    return peak * 1e12


@dataclass(frozen=True)
class Costs:
    """One model on one part: seconds per frame at a batch, split into the part the layer overhead
    scales and the rest, so a fit is linear in the overhead."""
    lm: SpeechLm
    hw: HardwareProfile
    precision: str
    text_len: int
    audio_s: float

    def _steps(self, batch):
        """(roofline seconds per frame, layer-steps per frame) at `batch` streams (arrays welcome)."""
        b = np.asarray(batch, dtype=float)
        frames = self.audio_s * self.lm.frame_rate
        roof, layer_steps = 0.0, 0
        prec = get_precision(self.precision)
        for s in self.lm.stages:
            t = terms(s.shape(), self.hw, prec, Layout(1, 1, 1, 1))
            ctx = s.context if s.context is not None else self.text_len + frames / 2
            ctx = ctx + self.text_len * s.cross_kv_bytes_per_text / s.kv_bytes_per_token
            roof = roof + s.steps_per_frame * iteration_s(t, EFFICIENCY, b * s.cfg, ctx, 0.0, 0.0, 0.0)
            layer_steps += s.steps_per_frame * s.layers
        return roof, layer_steps

    def lm_rtf(self, batch, overhead: float, exponent: float | None = None):
        """Seconds of LM work per second of each stream's audio at `batch` streams; the per-step overhead
        grows as batch ** exponent (per-stream sampling and bookkeeping)."""
        roof, layer_steps = self._steps(batch)
        growth = np.asarray(batch, dtype=float) ** (batch_exponent() if exponent is None else exponent)
        return self.lm.frame_rate * (roof + overhead * growth * layer_steps)

    def decoder_s(self) -> float:
        """Audio-decoder seconds per audio second of one stream."""
        return self.lm.decoder_flops_per_audio_s / (_peak(self.hw, self.precision) * DECODER_MFU)

    def rtf(self, batch, overhead: float):
        return self.lm_rtf(batch, overhead) + np.asarray(batch, dtype=float) * self.decoder_s()

    def prefill_s(self) -> float:
        flops = 2.0 * self.lm.prompt_params * self.text_len
        return flops / (_peak(self.hw, self.precision) * EFFICIENCY.mfu)

    def first_audio_s(self, batch, overhead: float):
        chunk = CHUNK[self.lm.family]
        frame = self.lm_rtf(batch, overhead) / self.lm.frame_rate
        return self.prefill_s() + (chunk + self.lm.max_delay) * frame + chunk / self.lm.frame_rate * self.decoder_s()


@lru_cache(maxsize=1)
def _shipped_hardware() -> dict[str, HardwareProfile]:
    """The shipped profiles the measurements name, read once (the fit prices every point many times)."""
    from .profiles import load_hardware

    return load_hardware([])


def _costs(m: Measurement, audio_s: float = 10.0) -> Costs:
    from .profiles import get as get_profile

    return Costs(get(m.model), get_profile(_shipped_hardware(), m.hardware), m.precision, 60, audio_s)


def _measured_lm(m: Measurement, c: Costs) -> float:
    """The measurement as LM seconds per second of each stream's audio."""
    per_stream = m.rtf * m.batch
    return per_stream if m.scope == "lm" else per_stream - m.batch * c.decoder_s()


def implied_overhead(m: Measurement, c: Costs | None = None) -> float:
    """The per-layer-step overhead at which the model meets the measurement at its batch, taken as constant
    (0 where the roofline alone is slower). `c`: the costs of the measured utterance (default: a
    60-token utterance on the shipped profile the measurement names)."""
    c = c or _costs(m)
    roof, layer_steps = c._steps(m.batch)
    return max(_measured_lm(m, c) / c.lm.frame_rate - float(roof), 0.0) / layer_steps


def record_overhead(r: dict, hw: HardwareProfile) -> dict | str:
    """A speech-LM `run` record as a calibration point: the per-layer-step overhead at batch 1 (the one its
    batch implies, taken back along the fitted batch growth) that makes the model meet the measured
    synthesis (LM and audio decoder), or why it cannot be used."""
    m, cell, precision = r["metrics"], r["cell"], r["spec"]["dtype"]
    if precision not in PRECISIONS:
        return f"speech LMs calibrate at {', '.join(PRECISIONS)}"
    model, batch = r["model"]["arch"], int(cell["batch_size"])
    meas = Measurement(model, hw.id, precision, "eager", batch, "total", m["rtf"]["mean"] / batch,
                       f"record {r['run_id']}/{r['cell_id']}")
    c = Costs(get(model), hw, precision, int(cell["text_len"]), m["audio_s"]["mean"])
    overhead = implied_overhead(meas, c) / batch ** batch_exponent()
    return {"model": model, "hardware": hw.id, "precision": precision, "mode": "eager", "batch": batch,
            "rtf": m["rtf"]["mean"], "overhead_s": overhead, "source": meas.source}


def fit_batch_exponent(points: list[Measurement], mode: str = "eager") -> float:
    """How the per-step overhead grows with the batch: the log-log slope, through batch 1, of the overheads
    a model's batched points of one mode imply relative to its batch-1 point (least squares)."""
    x, y = [], []
    for m in points:
        if m.mode != mode or m.batch == 1:
            continue
        base = [p for p in points if (p.model, p.hardware, p.precision, p.mode, p.batch) ==
                (m.model, m.hardware, m.precision, m.mode, 1)]
        if base:
            x.append(math.log(m.batch))
            y.append(math.log(implied_overhead(m) / implied_overhead(base[0])))
    return float(np.dot(x, y) / np.dot(x, x)) if x else 0.0


def fit_overheads(points: list[Measurement]) -> dict[str, float]:
    """Per mode, the geometric mean of the overheads the batch-1 points imply, each model weighted once."""
    out = {}
    for mode in MODES:
        by_model: dict[str, list[float]] = {}
        for m in points:
            if m.mode == mode and m.batch == 1:
                by_model.setdefault(m.model, []).append(max(implied_overhead(m), 1e-6))
        if by_model:
            out[mode] = float(np.exp(np.mean([np.mean(np.log(v)) for v in by_model.values()])))
    return out


def held_out() -> list[dict]:
    """Leave one model out: each batch-1 point predicted by the overhead fitted on the other models.
    Batched points are predicted by the full fit: the eager ones fitted the batch exponent (in sample),
    the compiled ones never were (held out)."""
    points = measurements()
    full, exponent = fit_overheads(points), fit_batch_exponent(points)
    rows = []
    for m in points:
        fit = fit_overheads([p for p in points if p.model != m.model]) if m.batch == 1 else full
        if m.mode not in fit:
            continue
        c = _costs(m)
        lm = float(c.lm_rtf(m.batch, fit[m.mode], exponent))
        pred = (lm if m.scope == "lm" else lm + m.batch * c.decoder_s()) / m.batch
        rows.append({"model": m.model, "hardware": m.hardware, "precision": m.precision, "mode": m.mode,
                     "batch": m.batch, "scope": m.scope, "measured": m.rtf, "predicted": pred,
                     "error": pred / m.rtf - 1,
                     "split": "leave one model out" if m.batch == 1 else
                     "batch growth, in sample" if m.mode == "eager" else "batch growth, held out"})
    return rows


@lru_cache(maxsize=1)
def overheads() -> dict[str, float]:
    return fit_overheads(measurements())


@lru_cache(maxsize=1)
def batch_exponent() -> float:
    return fit_batch_exponent(measurements())


# --- predictions -------------------------------------------------------------------------------

@dataclass
class SpeechLmPrediction:
    kind: str
    model: str
    hardware: str
    precision: str
    mode: str
    fits: bool
    memory: dict
    streams: int                  # streams the LM batches together (the --concurrency asked)
    rtf: float | None             # each stream's RTF at that batch
    rtf_alone: float | None
    first_audio_s: float | None   # streaming: the first chunk a client could play
    audio_s_per_s: float | None   # all streams together, per device
    lm_tokens_per_s: float | None  # LM steps of the first stage per second, all streams
    max_streams_realtime: int | None  # the most streams with RTF <= 1 that fit in memory
    overhead_per_layer_step_s: float
    interval: float
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=1)
def interval() -> float:
    """The stated 80% interval: the 80th percentile of the absolute leave-one-model-out errors, rounded up to 10%."""
    errs = [abs(r["error"]) for r in held_out() if r["split"] == "leave one model out"]
    return math.ceil(float(np.quantile(errs, 0.8)) * 10) / 10 if errs else 0.5


def memory(lm: SpeechLm, hw: HardwareProfile, precision: str, streams: int, text_len: int, audio_s: float) -> dict:
    bytes_per = get_precision(precision).weight_bytes
    frames = audio_s * lm.frame_rate
    kv = 0.0
    for s in lm.stages:
        ctx = s.context * 2 if s.context is not None else text_len + frames
        kv += streams * s.cfg * (ctx * s.kv_bytes_per_token + text_len * s.cross_kv_bytes_per_text)
    kv *= get_precision(precision).kv_bytes / 2
    weights = lm.params * bytes_per
    return {"weights_gb": weights / 1e9, "kv_cache_gb": kv / 1e9, "runtime_reserve_gb": RUNTIME_RESERVE_GB,
            "total_gb": (weights + kv) / 1e9 + RUNTIME_RESERVE_GB, "usable_gb": hw.memory_bytes / 1e9 * USABLE_FRACTION}


def max_streams(lm: SpeechLm, hw: HardwareProfile, precision: str, text_len: int, audio_s: float,
                limit: int = 1024) -> int:
    """Streams whose weights, KV cache and reserve fit, up to `limit`."""
    per = memory(lm, hw, precision, 1, text_len, audio_s)
    fixed = per["weights_gb"] + RUNTIME_RESERVE_GB
    return int(max(0, min(limit, (per["usable_gb"] - fixed) // max(per["kv_cache_gb"], 1e-9))))


def _setup(model: str, hw: HardwareProfile, precision: str, text_len: int, mode: str,
           calibration: dict | None = None) -> tuple[SpeechLm, Costs, float, int]:
    """The model, its costs for an utterance of `text_len` tokens, the overhead (calibrated, else the mode's
    fit) and the streams that fit."""
    lm = get(model)
    audio_s = text_len * SECONDS_PER_TOKEN
    overhead = calibration["overhead_s"] if calibration else overheads()[mode]
    return lm, Costs(lm, hw, precision, text_len, audio_s), overhead, max_streams(lm, hw, precision, text_len, audio_s)


def default_precision(hw: HardwareProfile) -> str:
    """The precision `predict` and `plan` price a speech LM in when none is given: bf16, the precision of most
    public speech-LM measurements (speech_lm_measurements.csv), except on a part that publishes an fp16 peak
    and no bf16 one (the 310P, Kunlun R200), which runs it in fp16 rather than be priced in a precision it lacks."""
    return "fp16" if "fp16" in hw.peak_tflops and "bf16" not in hw.peak_tflops else "bf16"


def predict(model: str, hw: HardwareProfile, precision: str | None = None, mode: str = "eager", text_len: int = 60,
            streams: int = 1, calibration: dict | None = None) -> SpeechLmPrediction:
    """`precision`: default_precision(hw) when None. `calibration`: a fit of your own runs on this part
    (calibration.for_speech_lm), replacing the public overhead fit."""
    precision = precision or default_precision(hw)
    if precision not in PRECISIONS:
        raise UserError(f"precision '{precision}' is not offered for speech LMs; use {', '.join(PRECISIONS)}")
    if mode not in MODES:
        raise UserError(f"engine '{mode}' is not modelled for speech LMs; use --engine eager (PyTorch/transformers, "
                        f"the default) or compiled (torch.compile, CUDA graphs or TensorRT-LLM)")
    _peak(hw, precision)
    get(model).check_length(text_len, "--text-len")
    lm, c, overhead, fitting = _setup(model, hw, precision, text_len, mode, calibration)
    audio_s = c.audio_s
    mem = memory(lm, hw, precision, streams, text_len, audio_s)
    basis = (f"calibrated on {calibration['n']} run(s) of your own ({calibration['key']})" if calibration else
             f"{mode}; fitted on public batch-1 measurements, leave-one-model-out errors in docs/planner.md")
    notes = [f"{lm.family} speech LM: {len(lm.stages)} decoder stage(s) at {lm.frame_rate:g} frames per audio second, "
             f"priced by the LLM iteration model plus {overhead * 1e3:.3f} ms per layer-step ({basis})",
             f"utterance of {text_len} text tokens = {audio_s:.1f} s of audio",
             *peak_notes(hw, get_precision(precision))]
    if model.startswith("cosyvoice2"):
        notes.append("shape-equivalent model: flow-matching decoder and HiFT composed from library modules of the "
                     "published sizes (parameters are the composition's)")
    spread = calibration["interval"] if calibration else interval()
    base = dict(kind="tts", model=model, hardware=hw.id, precision=precision, mode=mode, memory=mem, streams=streams,
                overhead_per_layer_step_s=overhead, interval=spread, notes=notes)
    if mem["total_gb"] > mem["usable_gb"]:
        notes.append(f"does not fit: {mem['total_gb']:.1f} GB needed at {streams} stream(s), {mem['usable_gb']:.1f} GB "
                     f"usable; at most {fitting} stream(s) fit")
        return SpeechLmPrediction(fits=False, rtf=None, rtf_alone=None, first_audio_s=None, audio_s_per_s=None,
                                  lm_tokens_per_s=None, max_streams_realtime=None, **base)
    rtf = float(c.rtf(streams, overhead))
    b = np.arange(1, max(fitting, 1) + 1)
    realtime = b[c.rtf(b, overhead) <= 1.0]
    notes.append(f"interval +-{spread:.0%}: " + ("the calibration's spread between your runs (at least 5%, 25% from "
                                                 "one run)" if calibration else
                                                 "the 80th percentile of the overhead fit's leave-one-model-out errors"))
    return SpeechLmPrediction(
        fits=True, rtf=rtf, rtf_alone=float(c.rtf(1, overhead)), first_audio_s=float(c.first_audio_s(streams, overhead)),
        audio_s_per_s=streams / rtf, lm_tokens_per_s=streams * lm.frame_rate / rtf,
        max_streams_realtime=int(realtime.max()) if realtime.size else 0, **base)


def capacity(model: str, hw: HardwareProfile, precision: str, text_len: int, rtf_slo: float,
             first_audio_slo: float | None, mode: str = "eager", calibration: dict | None = None) -> tuple[int, dict]:
    """The most streams one device batches within the SLO (0 if not even one), the figures at it, and what
    stops one stream more (`binds`: memory, rtf or first_audio)."""
    _, c, overhead, fitting = _setup(model, hw, precision, text_len, mode, calibration)
    if fitting < 1:
        return 0, {"reason": "weights and one stream's KV cache do not fit"}
    b = np.arange(1, fitting + 1)
    rtf_ok = c.rtf(b, overhead) <= rtf_slo
    ok = rtf_ok & (c.first_audio_s(b, overhead) <= first_audio_slo) if first_audio_slo else rtf_ok
    n = int(b[ok].max()) if ok.any() else 0
    at = max(n, 1)
    binds = "memory" if n == fitting else "rtf" if not rtf_ok[n] else "first_audio"  # b[n] is stream n + 1
    return n, {"rtf_alone": float(c.rtf(1, overhead)), "rtf_at_capacity": float(c.rtf(at, overhead)),
               "first_audio_at_capacity_s": float(c.first_audio_s(at, overhead)),
               "first_audio_alone_s": float(c.first_audio_s(1, overhead)), "binds": binds}

