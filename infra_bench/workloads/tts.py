"""Text-to-speech workloads: random-weight models with forced durations, and real voices.

Random-weight models (VITS, FastSpeech2 + HiFi-GAN, SpeechT5 + HiFi-GAN) get their durations
fixed, so every utterance has an exact, known number of samples. A real voice (piper, shipped
as a package with its weights) speaks real text offline. Per utterance: synth_s, audio_s,
rtf = synth_s / audio_s, first_audio_s; per cell: audio_s_per_s and J per audio second.
"""
from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ..catalog import architectures
from ..errors import MissingDependency, UserError, closest, install_hint
from ..spec.tts import VOICES, TtsSpec

SPEECH_LMS = ("csm", "dia", "cosyvoice2")  # families that generate codec frames or speech tokens with an LM

# A passage for real voices, cut or repeated to the requested number of characters.
PASSAGE = ("The quarterly report is ready for review. Our cluster served more requests this month than "
           "last, while power use stayed flat. Please check the latency figures before the meeting on "
           "Thursday. If anything looks wrong, send a note to the infrastructure team. ")


@dataclass(frozen=True)
class TtsArch:
    id: str
    family: str
    description: str
    source: str
    sampling_rate: int
    hop: int
    params: int | None
    config: dict = field(default_factory=dict)


@lru_cache(maxsize=1)
def catalog() -> dict[str, TtsArch]:
    raw = architectures("tts")
    return {k: TtsArch(id=k, **v) for k, v in raw.items()}


@dataclass
class ResolvedTts:
    family: str               # vits | fastspeech2 | speecht5 | piper
    arch: TtsArch | None
    info: dict
    voice_files: tuple[Path, Path] | None = None  # (model.onnx, config.json) of a real voice

    @property
    def sampling_rate(self) -> int | None:
        return self.arch.sampling_rate if self.arch else None


def resolve(spec: TtsSpec, trust_remote_code: bool = False) -> ResolvedTts:
    if spec.voice is not None:
        try:
            pkg = importlib.import_module(VOICES[spec.voice])
            importlib.import_module("piper")
        except ImportError:
            raise MissingDependency(f"the voice '{spec.voice}' needs piper-tts and its voice package: "
                                    f"{install_hint('voice')}") from None
        model, config = Path(pkg.model_path()), Path(pkg.config_path())
        return ResolvedTts("piper", None, {"voice": spec.voice, "package": VOICES[spec.voice], "weights": "real",
                                           "path": str(model)}, (model, config))
    if spec.model is not None:
        raise UserError("local TTS model folders are not supported yet; use a built-in arch or a voice")
    archs = catalog()
    if spec.arch not in archs:
        raise UserError(f"unknown tts architecture '{spec.arch}'{closest(spec.arch, archs)}; "
                        f"built-in: {', '.join(archs)}; or a real voice: voice: {', '.join(VOICES)}")
    a = archs[spec.arch]
    return ResolvedTts(a.family, a, {"arch": a.id, "family": a.family, "weights": "random", "source": a.source,
                                     "params_reference": a.params})


def check_cells(spec: TtsSpec, resolved: ResolvedTts) -> None:
    if resolved.family in ("speecht5", "piper") and max(spec.batch_size) > 1:
        raise UserError(f"spec '{spec.label}': {resolved.family} synthesizes one utterance at a time; use batch_size: 1")
    if resolved.family == "speecht5" and spec.speaking_rate != 1.0:
        raise UserError(f"spec '{spec.label}': speecht5 has no speaking-rate control; use speaking_rate: 1.0")
    if resolved.family in (*SPEECH_LMS, "f5tts") and spec.speaking_rate != 1.0:
        raise UserError(f"spec '{spec.label}': {resolved.family} takes its length from frames_per_token here, not a "
                        f"speaking rate; use speaking_rate: 1.0")
    if resolved.family != "piper" and resolved.family != "vits" and spec.backend == "onnxruntime":
        raise UserError(f"spec '{spec.label}': the onnxruntime backend runs vits models and real voices; "
                        f"use --backend torch for {resolved.family}")
    if resolved.family == "piper" and spec.backend != "onnxruntime":
        raise UserError(f"spec '{spec.label}': a piper voice is an ONNX model; use backend: onnxruntime")
    check_host_memory(spec, resolved)


def check_host_memory(spec: TtsSpec, resolved: ResolvedTts, free: int | None = None) -> None:
    """Refuse a model that cannot be made in this host's free memory (`free`, default what this host has)
    before building it: the whole model is made in fp32, then cast. The count is the catalog's, or the
    build's on the meta device."""
    from .host_memory import check_components, on_host

    if resolved.arch is None or not on_host(spec):
        return  # a real voice: a small ONNX file, read by piper
    check_components(spec, [resolved.arch.params or meta_params(resolved, spec)], "all", free=free)


def meta_params(resolved: ResolvedTts, spec: TtsSpec) -> int:
    """Parameters of the model `run` builds, counted on the meta device (nothing allocated)."""
    meta = torch.device("meta")
    if resolved.family == "cosyvoice2":
        from .cosyvoice2 import build
        models = [build(resolved.arch.config, resolved.sampling_rate, meta)]
    elif resolved.family in SPEECH_LMS:
        from ..backends.torch.tts_lm import build
        models = build(resolved, spec, meta, torch.float32)
    else:
        models = [build_model(resolved, spec, meta, torch.float32)]
    return sum(p.numel() for m in models if m is not None for p in m.parameters())


# --- random-weight models with forced durations ------------------------------------------------

def frames_per_token(resolved: ResolvedTts, spec: TtsSpec) -> int:
    """Output frames each input token becomes, by the model's own rounding rule."""
    d, rate = spec.frames_per_token, spec.speaking_rate
    if resolved.family == "vits":  # ceil(exp(log d) * length_scale), in float32 as the model computes it
        return int(torch.ceil(torch.exp(torch.tensor(math.log(d))) * (1.0 / rate)).item())
    if resolved.family == "fastspeech2":  # round(d * speaking_speed)
        return d if rate == 1.0 else int(torch.round(torch.tensor(float(d)) * (1.0 / rate)).item())
    return d  # speecht5: a fixed decoder length of text_len * d / reduction_factor steps


def expected_samples(resolved: ResolvedTts, spec: TtsSpec, text_len: int) -> int:
    hop = resolved.arch.hop
    if resolved.family == "speecht5":
        steps = int(text_len * spec.frames_per_token / 2)  # reduction factor 2
        return steps * 2 * hop
    return text_len * frames_per_token(resolved, spec) * hop


class TtsModel(torch.nn.Module):
    """ids [B, T] -> waveform [B, samples]: one forward for VITS and FastSpeech2; SpeechT5's
    autoregressive generate_speech for speecht5; F5-TTS's flow-matching sample of T x `ratio` mel
    frames, then its vocoder."""

    def __init__(self, family: str, model, vocoder=None, speaker=None, ratio: float = 0.0):
        super().__init__()
        self.family, self.model, self.vocoder, self.ratio = family, model, vocoder, ratio
        self.register_buffer("speaker", speaker if speaker is not None else torch.zeros(0), persistent=False)

    def forward(self, ids):
        if self.family == "vits":
            return self.model(input_ids=ids, attention_mask=torch.ones_like(ids)).waveform
        if self.family == "fastspeech2":
            return self.model(input_ids=ids, attention_mask=torch.ones_like(ids), return_dict=True).waveform
        if self.family == "f5tts":
            return self.model(ids, ids.shape[1] * int(self.ratio))
        wave = self.model.generate_speech(ids, self.speaker, vocoder=self.vocoder, threshold=2.0,
                                          minlenratio=self.ratio, maxlenratio=self.ratio)
        return wave.reshape(1, -1)


def build_model(resolved: ResolvedTts, spec: TtsSpec, device: torch.device, dtype: torch.dtype) -> TtsModel:
    """Random weights (seeded), durations forced, eval mode, on `device` in `dtype`."""
    import transformers as tf

    a, d = resolved.arch, spec.frames_per_token
    torch.manual_seed(spec.seed)
    with device:
        if a.family == "vits":
            m = tf.VitsModel(tf.VitsConfig(use_stochastic_duration_prediction=False, noise_scale=0.0,
                                           speaking_rate=spec.speaking_rate, **a.config))
            with torch.no_grad():
                m.duration_predictor.proj.weight.zero_()
                m.duration_predictor.proj.bias.fill_(math.log(d))
            wrapped = TtsModel("vits", m)
        elif a.family == "fastspeech2":
            mc = tf.FastSpeech2ConformerConfig(speaking_speed=1.0 / spec.speaking_rate, **a.config)
            m = tf.FastSpeech2ConformerWithHifiGan(tf.FastSpeech2ConformerWithHifiGanConfig(
                model_config=mc.to_dict(), vocoder_config=tf.FastSpeech2ConformerHifiGanConfig().to_dict()))
            with torch.no_grad():
                m.model.duration_predictor.linear.weight.zero_()
                m.model.duration_predictor.linear.bias.fill_(math.log(d + 1))  # round(exp(x) - 1) = d
            wrapped = TtsModel("fastspeech2", m)
        elif a.family == "f5tts":
            from . import f5tts
            wrapped = TtsModel("f5tts", f5tts.build(a.config, device), ratio=float(d))
        else:
            m = tf.SpeechT5ForTextToSpeech(tf.SpeechT5Config(**a.config))
            voc = tf.SpeechT5HifiGan(tf.SpeechT5HifiGanConfig())
            speaker = torch.randn(1, m.config.speaker_embedding_dim)
            wrapped = TtsModel("speecht5", m, voc, speaker, ratio=float(d))
    return wrapped.to(device=device, dtype=dtype).eval()


def vocab_size(resolved: ResolvedTts) -> int:
    if resolved.family == "csm":  # text ids below the special tokens of the tiny shapes, inside the text vocabulary
        return int(resolved.arch.config.get("text_vocab_size", 128256))
    if resolved.family == "dia":  # UTF-8 bytes
        return 256
    if resolved.family == "cosyvoice2":  # the Qwen2 LM's text vocabulary
        return int(resolved.arch.config["lm"]["vocab_size"])
    if resolved.family == "f5tts":  # its character/pinyin vocabulary
        return int(resolved.arch.config["dit"]["vocab"])
    return {"vits": 38, "fastspeech2": 78, "speecht5": 81}.get(resolved.family, 38)


def token_ids(resolved: ResolvedTts, spec: TtsSpec, cell: dict) -> torch.Tensor:
    g = torch.Generator().manual_seed(spec.seed)
    low = {"csm": 5, "dia": 32}.get(resolved.family, 1)  # past the special ids ([S1], [S2] and pad for Dia)
    return torch.randint(low, vocab_size(resolved), (cell["batch_size"], cell["text_len"]), generator=g)


def text_ids(resolved: ResolvedTts, text: str) -> torch.Tensor:
    """Token ids [1, len(text)] for served text: one per character (random weights read no text)."""
    vocab = vocab_size(resolved)
    return torch.tensor([[ord(c) % (vocab - 1) + 1 for c in text]], dtype=torch.long)


def pcm16(wave) -> bytes:
    """A float waveform (torch or numpy, any shape, values nominally in [-1, 1]) as little-endian int16 PCM."""
    x = wave.float().cpu().numpy() if hasattr(wave, "float") else np.asarray(wave, dtype=np.float32)
    return (np.clip(np.nan_to_num(x.reshape(-1)), -1, 1) * 32767).astype("<i2").tobytes()


class TtsExecutor(Protocol):
    """A TTS executor: `synthesize` is what `run` times; `speak` is what `serve` streams (int16 PCM
    chunks at `sample_rate`, one chunk per sentence where the model streams, `streams`)."""
    sample_rate: int
    streams: bool
    streaming: str  # how first audio relates to the whole utterance, in words

    def prepare(self, spec: TtsSpec, resolved: ResolvedTts, cell: dict): ...

    def synthesize(self, inputs, now) -> TtsTiming: ...

    def speak(self, text: str, emit: Callable[[bytes], bool]) -> None: ...

    def describe(self) -> dict: ...


def text_of(spec: TtsSpec, n: int) -> str:
    """`n` characters of the spec's text (or the passage), repeated as needed."""
    base = spec.text or PASSAGE
    return (base * (n // len(base) + 1))[:n]


# --- one request -------------------------------------------------------------------------------

@dataclass(frozen=True)
class TtsTiming:
    start_ns: int
    first_audio_ns: int
    end_ns: int
    samples: int          # per utterance
    sampling_rate: int
    batch_size: int
    lm_frames: int | None = None    # a speech LM: codec frames generated per utterance
    lm_end_ns: int | None = None    # and when its last frame was out

    @property
    def lm_frames_per_s(self) -> float | None:
        """Codec frames per second of the LM stage, per utterance (each frame is num_codebooks tokens)."""
        return self.lm_frames / ((self.lm_end_ns - self.start_ns) / 1e9) if self.lm_frames else None

    @property
    def synth_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    @property
    def first_audio_s(self) -> float:
        return (self.first_audio_ns - self.start_ns) / 1e9

    @property
    def audio_s(self) -> float:
        return self.samples / self.sampling_rate

    @property
    def rtf(self) -> float:
        return self.synth_s / self.audio_s


def metrics(result, flops_per_audio_s: float | None) -> dict:
    from ..measure.stats import summarize
    from ..scenarios.offline import window_metrics

    t: list[TtsTiming] = result.timings
    audio = sum(x.audio_s * x.batch_size for x in t)
    return {
        "iterations": len(t),
        "utterances": sum(x.batch_size for x in t),
        "window_s": result.window.wall_s,
        "synth_s": summarize([x.synth_s for x in t]),
        "first_audio_s": summarize([x.first_audio_s for x in t]),
        "audio_s": summarize([x.audio_s for x in t]),
        "rtf": summarize([x.rtf for x in t]),
        "audio_s_per_s": audio / result.window.wall_s,
        "audio_samples": t[0].samples,
        "sampling_rate_hz": t[0].sampling_rate,
        "flops_per_audio_s": flops_per_audio_s,
        "lm_frames_per_s": summarize([x.lm_frames_per_s for x in t]) if t[0].lm_frames else None,
        **window_metrics(result.window, audio, "audio_s"),
    }


def count_flops(fn, audio_s: float) -> float:
    """FLOPs of one synthesis call per second of audio it makes (`audio_s`: every utterance of the batch; torch's
    FLOP counter).
    no_grad, not inference_mode: weight-norm parametrizations fail under the counter in the latter."""
    from ..measure.flops import counted

    return counted(fn) / audio_s


def measure(spec: TtsSpec, resolved: ResolvedTts, built, cell: dict, window, rule) -> dict:
    """Run one cell; return the fields of its ok record."""
    from ..scenarios.offline import run_offline

    ex = built.runner
    inputs = ex.prepare(spec, resolved, cell)
    with torch.inference_mode():
        result = run_offline(lambda: ex.synthesize(inputs, window.probe.now_ns), rule, window)
    t = result.timings[0]
    flops = built.count_flops(inputs, t.audio_s * t.batch_size) if built.count_flops else None
    return {"metrics": metrics(result, flops), "stop_reason": result.stop_reason,
            "samples": [{"synth_s": x.synth_s, "first_audio_s": x.first_audio_s, "audio_s": x.audio_s}
                        for x in result.timings]}

