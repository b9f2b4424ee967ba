"""TTS models as torch modules on any probed device."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ...devices.base import DeviceProbe
from ...devices.torch_probe import DTYPES
from ...workloads import tts as tw
from ..base import Built

if TYPE_CHECKING:
    from ...spec.tts import TtsSpec


class TorchTtsExecutor:
    """Non-streaming: the whole waveform arrives at once, so first_audio_s = synth_s."""

    streams = False
    streaming = "none: the whole waveform, then sent in chunks"

    def __init__(self, model: tw.TtsModel, device: torch.device, resolved: tw.ResolvedTts):
        self.model, self.device, self.resolved = model, device, resolved
        self.sampling_rate = self.sample_rate = resolved.sampling_rate

    def prepare(self, spec: TtsSpec, resolved: tw.ResolvedTts, cell: dict) -> torch.Tensor:
        return tw.token_ids(resolved, spec, cell).to(self.device)

    def synthesize(self, ids: torch.Tensor, now) -> tw.TtsTiming:
        start = now()
        wave = self.model(ids)
        end = now()
        return tw.TtsTiming(start, end, end, wave.shape[-1], self.sampling_rate, ids.shape[0])

    @torch.inference_mode()
    def speak(self, text: str, emit) -> None:
        emit(tw.pcm16(self.model(tw.text_ids(self.resolved, text).to(self.device))))

    def describe(self) -> dict:
        return {"name": "torch", "version": torch.__version__, "streaming": False,
                "first_audio": "non-streaming: equals synth_s", "threads": torch.get_num_threads()}


def build_tts(spec: TtsSpec, resolved: tw.ResolvedTts, probe: DeviceProbe,
              trust_remote_code: bool = False) -> Built:
    if resolved.family == "cosyvoice2":
        from . import cosyvoice2
        model = cosyvoice2.build(resolved, spec, probe.torch_device, DTYPES[spec.dtype])
        cex = cosyvoice2.CosyVoice2Executor(model, probe.torch_device, resolved, spec.frames_per_token)
        return Built(cex, cex.describe(), sum(p.numel() for p in model.parameters()), tw.vocab_size(resolved),
                     count_flops=lambda inputs, audio_s: tw.count_flops(lambda: cex.synthesize(inputs, lambda: 0),
                                                                        audio_s))
    if resolved.family in tw.SPEECH_LMS:
        from .tts_lm import LmTtsExecutor, build
        lm, codec = build(resolved, spec, probe.torch_device, DTYPES[spec.dtype])
        ex = LmTtsExecutor(lm, codec, probe.torch_device, resolved, spec.frames_per_token)
        params = sum(p.numel() for m in (lm, codec) if m is not None for p in m.parameters())
        return Built(ex, ex.describe(), params, tw.vocab_size(resolved),
                     count_flops=lambda inputs, audio_s: tw.count_flops(lambda: ex.synthesize(inputs, lambda: 0), audio_s))
    model = tw.build_model(resolved, spec, probe.torch_device, DTYPES[spec.dtype])
    ex = TorchTtsExecutor(model, probe.torch_device, resolved)
    params = sum(p.numel() for p in model.parameters())
    return Built(ex, ex.describe(), params, tw.vocab_size(resolved),
                 count_flops=lambda ids, audio_s: tw.count_flops(lambda: model(ids), audio_s))
