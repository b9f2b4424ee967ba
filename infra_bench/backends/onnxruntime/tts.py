"""TTS on ONNX Runtime: VITS exported through the cache (parity-checked), and real piper voices
driven through piper's own API (which runs them on ONNX Runtime and streams one chunk per sentence)."""
from __future__ import annotations

import importlib.metadata as md
from typing import TYPE_CHECKING

import numpy as np
import torch

from ...devices.base import DeviceProbe
from ...errors import UserError
from ...workloads import tts as tw
from ..base import Built
from ..parity import DEFINITION, differences, gate
from .export import cached_export, entry_info, exporter, versions
from .providers import import_ort, make_session, require, short_names

if TYPE_CHECKING:
    from ...spec.tts import TtsSpec

WRAPPER_VERSION = "tts-vits-v1"
TTS_TOLERANCE = {"fp32": 1e-3, "fp16": 5e-2}  # waveform max_rel_diff; VITS flows amplify rounding


class OrtTtsExecutor:
    """VITS as one ONNX Runtime session; non-streaming, like the torch model it was exported from."""

    streams = False
    streaming = "none: the whole waveform, then sent in chunks"

    def __init__(self, session, resolved: tw.ResolvedTts, info: dict):
        self.session, self.resolved, self.info = session, resolved, info
        self.sampling_rate = self.sample_rate = resolved.sampling_rate

    def prepare(self, spec: TtsSpec, resolved: tw.ResolvedTts, cell: dict) -> np.ndarray:
        return tw.token_ids(resolved, spec, cell).numpy()

    def synthesize(self, ids: np.ndarray, now) -> tw.TtsTiming:
        start = now()
        wave = self.session.run(None, {"input_ids": ids})[0]
        end = now()
        return tw.TtsTiming(start, end, end, wave.shape[-1], self.sampling_rate, ids.shape[0])

    def speak(self, text: str, emit) -> None:
        emit(tw.pcm16(self.session.run(None, {"input_ids": tw.text_ids(self.resolved, text).numpy()})[0]))

    def describe(self) -> dict:
        return {"name": "onnxruntime", "version": import_ort().__version__, "engine": "infra-bench ORT session",
                "providers": short_names(self.session.get_providers()), "streaming": False,
                "first_audio": "non-streaming: equals synth_s", **self.info}


class PiperExecutor:
    """A real voice through piper's API: text in, audio chunks (one per sentence) out."""

    streams = True
    streaming = "one chunk per sentence"

    def __init__(self, voice, syn_config, info: dict):
        self.voice, self.syn_config, self.info = voice, syn_config, info
        self.sample_rate = voice.config.sample_rate

    def prepare(self, spec: TtsSpec, resolved: tw.ResolvedTts, cell: dict) -> str:
        return tw.text_of(spec, cell["text_len"])

    def synthesize(self, text: str, now) -> tw.TtsTiming:
        start = now()
        first, samples, rate = None, 0, None
        for chunk in self.voice.synthesize(text, syn_config=self.syn_config):
            if first is None:
                first = now()
            samples += len(chunk.audio_int16_bytes) // chunk.sample_width
            rate = chunk.sample_rate
        end = now()
        return tw.TtsTiming(start, first or end, end, samples, rate, 1)

    def speak(self, text: str, emit) -> None:
        for chunk in self.voice.synthesize(text, syn_config=self.syn_config):
            if not emit(chunk.audio_int16_bytes):
                return

    def describe(self) -> dict:
        return {"name": "onnxruntime", "version": import_ort().__version__, "engine": "piper-tts API",
                "piper_tts": md.version("piper-tts"), "providers": short_names(self.voice.session.get_providers()),
                "streaming": True, "first_audio": "first chunk (one per sentence)", **self.info}


def _build_piper(spec: TtsSpec, resolved: tw.ResolvedTts) -> Built:
    from piper import PiperVoice, SynthesisConfig
    ep = require(spec.opts.ep or "cpu")
    if ep.short not in ("cpu", "cuda"):
        raise UserError(f"spec '{spec.label}': piper voices run on the cpu or cuda execution provider, not {ep.short}")
    model, config = resolved.voice_files
    voice = PiperVoice.load(str(model), config_path=str(config))
    # piper opens a cpu session with default options; the spec's (threads, graph optimization, provider options)
    # would be recorded but not applied, so the voice gets a session of ours on the same file (piper's CUDA default kept)
    opts = spec.opts if ep.short == "cpu" else spec.opts.model_copy(
        update={"ep_options": {"cudnn_conv_algo_search": "HEURISTIC", **spec.opts.ep_options}})
    voice.session, session_options = make_session(model, ep, opts)
    syn = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0, length_scale=1.0 / spec.speaking_rate)
    info = {"requested_ep": ep.short, "ep_options": dict(opts.ep_options), "session_options": session_options,
            "voice": spec.voice, "voice_package": resolved.info["package"],
            "synthesis": {"noise_scale": 0.0, "noise_w_scale": 0.0, "length_scale": 1.0 / spec.speaking_rate},
            "parity": {"checked": False, "reason": "a real voice has no torch reference"}}
    ex = PiperExecutor(voice, syn, info)
    return Built(ex, ex.describe(), None, None,
                 notes=["real voice: weights and text are real; the voice's own quality is not measured"])


def build_tts(spec: TtsSpec, resolved: tw.ResolvedTts, probe: DeviceProbe,
              trust_remote_code: bool = False) -> Built:
    if resolved.family == "piper":
        return _build_piper(spec, resolved)
    ep = require(spec.opts.ep or "cpu")
    export_dtype = torch.float16 if spec.dtype == "fp16" else torch.float32
    model = tw.build_model(resolved, spec, torch.device("cpu"), torch.float32)
    source = model if export_dtype == torch.float32 else tw.build_model(resolved, spec, torch.device("cpu"), export_dtype)
    how = exporter()
    key = {"what": "tts-vits", "wrapper": WRAPPER_VERSION, **how.key(), "arch": resolved.arch.config,
           "speaking_rate": spec.speaking_rate, "frames_per_token": spec.frames_per_token, "weights": f"random seed {spec.seed}",
           "dtype": str(export_dtype), **versions("torch", "transformers", "onnx")}

    def export(path):
        ids = torch.randint(1, tw.vocab_size(resolved), (2, 16))
        how.export(source, (ids,), path, ["input_ids"], ["waveform"],
                   {"input_ids": {0: "batch", 1: "tokens"}, "waveform": {0: "batch", 1: "samples"}})
    entry = cached_export(key, export)
    session, options = make_session(entry.path, ep, spec.opts)
    info = {"requested_ep": ep.short, "ep_options": dict(spec.opts.ep_options), "session_options": options,
            "export": {**entry_info(entry), **how.key()}}
    ex = OrtTtsExecutor(session, resolved, info)
    ids = tw.token_ids(resolved, spec, {"batch_size": 2, "text_len": min(spec.text_len)})
    with torch.inference_mode():
        ref = model(ids).float().numpy()
    got = session.run(None, {"input_ids": ids.numpy()})[0]
    tolerance = spec.opts.tolerance(TTS_TOLERANCE[spec.dtype])
    if got.shape != ref.shape:
        info["parity"] = {"checked": True, "shape_torch": list(ref.shape), "shape_ort": list(got.shape),
                          "tolerance": tolerance}
        error = f"parity gate failed: waveform shape {list(got.shape)} from ORT vs {list(ref.shape)} from torch"
    else:
        info["parity"] = {"checked": True, "component": "waveform", **differences(ref, got), "tolerance": tolerance,
                          "inputs": f"batch 2, {min(spec.text_len)} tokens", "reference": "torch fp32 on cpu",
                          "definition": DEFINITION}
        error = gate(info["parity"], subject="waveform ")
    ex.info = info
    return Built(None if error else ex, ex.describe(), sum(p.numel() for p in model.parameters()),
                 tw.vocab_size(resolved), error,
                 count_flops=lambda ids_np, audio_s: tw.count_flops(lambda: model(torch.from_numpy(ids_np)), audio_s))
