"""LLM-based speech (CSM) on torch: the model's own generate loop, streamed.

A streamer receives each codec frame as the backbone and depth decoder produce it. Every
`CHUNK_FRAMES` frames it decodes the new frames with the codec (Mimi), so the first chunk a client
could play is real audio and its time is the streaming first-audio latency; `serve` sends each
chunk as it is decoded. With random weights the frame count is forced (min = max new frames)
and decoding is greedy, so every request makes the same number of frames.
"""
from __future__ import annotations

import torch

from ...workloads import tts as tw

CHUNK_FRAMES = 4  # 320 ms of CSM audio at 12.5 frames/s: the chunk a streaming client gets first


class _Chunks:
    """A generate() streamer: collects [B, codebooks] frames, decodes each full chunk, calls `on_chunk`."""

    def __init__(self, ex: LmTtsExecutor, on_chunk):
        self.ex, self.on_chunk, self.frames, self.done = ex, on_chunk, [], 0

    def put(self, tokens: torch.Tensor) -> None:
        if tokens.ndim != 2 or tokens.shape[-1] != self.ex.codebooks:  # the prompt, if the loop sends it
            return
        self.frames.append(tokens)
        if len(self.frames) - self.done >= CHUNK_FRAMES:
            self.flush()

    def flush(self) -> None:
        if len(self.frames) > self.done:
            self.on_chunk(self.ex.decode(torch.stack(self.frames[self.done:], dim=1)))
            self.done = len(self.frames)

    def end(self) -> None:
        self.flush()


class LmTtsExecutor:
    streams = True
    streaming = f"chunks of {CHUNK_FRAMES} codec frames, each decoded as soon as it is generated"

    def __init__(self, model, device: torch.device, resolved: tw.ResolvedTts, frames_per_token: int):
        self.model, self.device, self.resolved = model, device, resolved
        self.codebooks = model.config.num_codebooks
        self.codebook_size = model.config.codec_config.codebook_size
        self.frames_per_token = frames_per_token
        self.sampling_rate = self.sample_rate = resolved.sampling_rate

    def prepare(self, spec, resolved: tw.ResolvedTts, cell: dict) -> torch.Tensor:
        return tw.token_ids(resolved, spec, cell).to(self.device)

    def decode(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, n, codebooks] codes -> [B, samples] waveform. Random weights can emit the audio vocabulary's
        special ids, beyond the codec's codebook: they are clamped into it."""
        codes = frames.clamp(max=self.codebook_size - 1).transpose(1, 2).to(self.device)
        return self.model.codec_model.decode(codes).audio_values.reshape(frames.shape[0], -1)

    def _generate(self, ids: torch.Tensor, streamer) -> torch.Tensor:
        n = ids.shape[1] * self.frames_per_token
        return self.model.generate(input_ids=ids, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                   depth_decoder_do_sample=False, streamer=streamer)

    def synthesize(self, ids: torch.Tensor, now) -> tw.TtsTiming:
        first: list[int] = []
        chunks = _Chunks(self, lambda wave: first.append(now()))
        start = now()
        frames = self._generate(ids, chunks)
        lm_end = now()
        wave = self.decode(frames)  # the whole utterance, as a non-streaming client receives it
        end = now()
        return tw.TtsTiming(start, first[0], end, wave.shape[-1], self.sampling_rate, ids.shape[0],
                            lm_frames=frames.shape[1], lm_end_ns=lm_end)

    @torch.inference_mode()
    def speak(self, text: str, emit) -> None:
        self._generate(tw.text_ids(self.resolved, text).to(self.device), _Chunks(self, lambda w: emit(tw.pcm16(w))))

    def describe(self) -> dict:
        return {"name": "torch", "version": torch.__version__, "streaming": True, "threads": torch.get_num_threads(),
                "first_audio": f"the first {CHUNK_FRAMES} codec frames generated and decoded (streaming)",
                "decoding": "greedy; frame count forced to text_len x frames_per_token"}


def build_model(resolved: tw.ResolvedTts, spec, device: torch.device, dtype: torch.dtype):
    import transformers as tf

    torch.manual_seed(spec.seed)
    with device:
        m = tf.CsmForConditionalGeneration(tf.CsmConfig(**resolved.arch.config))
    return m.to(device=device, dtype=dtype).eval()
