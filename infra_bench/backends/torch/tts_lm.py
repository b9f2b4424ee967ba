"""LLM-based speech (CSM, Dia) on torch: the model's own generate loop, streamed.

A streamer receives each step's codes as the model produces them. Every `CHUNK_FRAMES` complete
codec frames it decodes the new frames with the codec (CSM: Mimi; Dia: DAC), so the first chunk a
client could play is real audio and its time is the streaming first-audio latency; `serve` sends
each chunk as it is decoded. Dia writes its codebooks with per-codebook delays (up to 15 steps), so
a frame is complete only that many steps after its first code. With random weights the frame count
is forced (min = max new tokens) and decoding is greedy, so every request makes the same audio.
"""
from __future__ import annotations

import torch

from ...workloads import tts as tw

CHUNK_FRAMES = 4  # CSM: 320 ms of audio at 12.5 frames/s; Dia: 46 ms at 86 frames/s


class _Chunks:
    """A generate() streamer: collects each step's [B, codebooks] codes, decodes each run of
    CHUNK_FRAMES newly complete frames, and hands the waveform to `on_chunk`."""

    def __init__(self, ex: LmTtsExecutor, batch: int, on_chunk):
        self.ex, self.batch, self.on_chunk, self.steps, self.done = ex, batch, on_chunk, [], 0
        self.started = False

    def put(self, tokens: torch.Tensor) -> None:
        if not self.started:  # both loops send the prompt (CSM) or the decoder start (Dia) first
            self.started = True
            return
        self.steps.append(tokens.reshape(self.batch, self.ex.codebooks))
        if self.complete() - self.done >= CHUNK_FRAMES:
            self.flush()

    def complete(self) -> int:
        """Frames whose every codebook is out."""
        return max(len(self.steps) - self.ex.max_delay, 0)

    def flush(self) -> None:
        n = self.complete()
        if n > self.done:
            steps = torch.stack(self.steps, dim=1)  # [B, steps, codebooks]
            self.on_chunk(self.ex.decode(self.ex.undelay(steps, self.done, n)))
            self.done = n

    def end(self) -> None:
        self.flush()


class LmTtsExecutor:
    streams = True
    streaming = f"chunks of {CHUNK_FRAMES} codec frames, each decoded as soon as it is complete"

    def __init__(self, model, codec, device: torch.device, resolved: tw.ResolvedTts, frames_per_token: int):
        self.model, self.codec, self.device, self.resolved = model, codec, device, resolved
        self.family = resolved.family
        if self.family == "csm":
            self.codebooks, self.delays = model.config.num_codebooks, [0] * model.config.num_codebooks
            self.codebook_size = model.config.codec_config.codebook_size
        else:
            self.delays = list(model.config.delay_pattern)
            self.codebooks, self.codebook_size = len(self.delays), codec.config.codebook_size
        self.max_delay = max(self.delays)
        self.guidance = 3.0 if self.family == "dia" else None  # Dia's published default: an unconditional copy of the batch
        self.frames_per_token = frames_per_token
        self.sampling_rate = self.sample_rate = resolved.sampling_rate

    def prepare(self, spec, resolved: tw.ResolvedTts, cell: dict) -> dict:
        ids = tw.token_ids(resolved, spec, cell).to(self.device)
        return self._inputs(ids, cell["text_len"])

    def _inputs(self, ids: torch.Tensor, text_len: int) -> dict:
        n = text_len * self.frames_per_token  # audio frames
        if self.family == "csm":
            return {"input_ids": ids, "max_new_tokens": n, "min_new_tokens": n}
        b, k = ids.shape[0], self.codebooks  # Dia: bytes of text; the decoder starts from bos and its delay rows
        dec = self.model.config.decoder_config
        start = torch.full((b, self.max_delay + 1, k), dec.pad_token_id, device=self.device)
        start[:, 0] = dec.bos_token_id
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "decoder_input_ids": start,
                "decoder_attention_mask": torch.ones(b, self.max_delay + 1, dtype=torch.long, device=self.device),
                "max_new_tokens": n + self.max_delay, "min_new_tokens": n + self.max_delay}

    def undelay(self, steps: torch.Tensor, first: int, last: int) -> torch.Tensor:
        """Frames [first, last) of [B, steps, codebooks] codes written with per-codebook delays."""
        return torch.stack([steps[:, first + d:last + d, c] for c, d in enumerate(self.delays)], dim=2)

    def decode(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, n, codebooks] codes -> [B, samples] waveform. Random weights can emit the audio vocabulary's
        special ids, beyond the codec's codebook: they are clamped into it."""
        codes = frames.clamp(min=0, max=self.codebook_size - 1).transpose(1, 2).to(self.device)
        if self.family == "csm":
            return self.model.codec_model.decode(codes).audio_values.reshape(frames.shape[0], -1)
        return self.codec.decode(audio_codes=codes).audio_values.reshape(frames.shape[0], -1)

    def _generate(self, inputs: dict, streamer) -> None:
        kw = dict(do_sample=False, streamer=streamer)
        if self.family == "csm":
            kw["depth_decoder_do_sample"] = False
        else:
            kw["guidance_scale"] = self.guidance
        self.model.generate(**inputs, **kw)

    def synthesize(self, inputs: dict, now) -> tw.TtsTiming:
        b = inputs["input_ids"].shape[0]
        first: list[int] = []
        chunks = _Chunks(self, b, lambda wave: first.append(now()))
        start = now()
        self._generate(inputs, chunks)
        lm_end = now()
        steps = torch.stack(chunks.steps, dim=1)
        frames = steps.shape[1] - self.max_delay
        wave = self.decode(self.undelay(steps, 0, frames))  # the whole utterance, as a non-streaming client gets it
        end = now()
        return tw.TtsTiming(start, first[0], end, wave.shape[-1], self.sampling_rate, b, lm_frames=frames,
                            lm_end_ns=lm_end)

    @torch.inference_mode()
    def speak(self, text: str, emit) -> None:
        ids = tw.text_ids(self.resolved, text).to(self.device)
        self._generate(self._inputs(ids, ids.shape[1]), _Chunks(self, 1, lambda w: emit(tw.pcm16(w))))

    def describe(self) -> dict:
        return {"name": "torch", "version": torch.__version__, "streaming": True, "threads": torch.get_num_threads(),
                "first_audio": f"the first {CHUNK_FRAMES} complete codec frames generated and decoded (streaming)",
                "decoding": "greedy; frame count forced to text_len x frames_per_token"
                            + (f"; guidance {self.guidance} runs an unconditional copy of the batch (Dia's default)"
                               if self.guidance else "")}


def build(resolved: tw.ResolvedTts, spec, device: torch.device, dtype: torch.dtype):
    """(speech LM, separate codec or None) with random weights (seeded), eval mode, on `device`."""
    import transformers as tf

    torch.manual_seed(spec.seed)
    cfg = resolved.arch.config
    with device:
        if resolved.family == "csm":
            model, codec = tf.CsmForConditionalGeneration(tf.CsmConfig(**cfg)), None
        else:
            model, codec = tf.DiaForConditionalGeneration(tf.DiaConfig(**cfg["model"])), tf.DacModel(tf.DacConfig(**cfg["codec"]))
    model = model.to(device=device, dtype=dtype).eval()
    return model, codec.to(device=device, dtype=dtype).eval() if codec is not None else None
