"""CosyVoice2 (shape-equivalent, workloads/cosyvoice2.py) on torch, streamed as CosyVoice2 streams.

The LM writes speech tokens one step at a time with its KV cache. Once 25 new tokens and the 3 after
them (the flow's lookahead) are out, the flow runs on every token so far and the vocoder turns the new
25 tokens' mel into audio: the first such chunk is the streaming first audio. The last chunk takes
whatever remains when the LM stops. With random weights decoding is greedy and the token count is
forced (text_len x frames_per_token), so every request makes the same audio.
"""
from __future__ import annotations

import torch

from ...workloads import cosyvoice2 as cv
from ...workloads import tts as tw

HOP, LOOKAHEAD = 25, 3  # cosyvoice/cli/model.py: token_hop_len and the flow's pre_lookahead_len


class CosyVoice2Executor:
    streams = True
    streaming = f"chunks of {HOP} speech tokens, each voiced once the {LOOKAHEAD} tokens after it are out"

    def __init__(self, model: cv.CosyVoice2, device: torch.device, resolved: tw.ResolvedTts, frames_per_token: int):
        self.model, self.device, self.resolved = model, device, resolved
        self.frames_per_token = frames_per_token
        self.sampling_rate = self.sample_rate = resolved.sampling_rate

    def prepare(self, spec, resolved: tw.ResolvedTts, cell: dict) -> dict:
        return {"ids": tw.token_ids(resolved, spec, cell).to(self.device),
                "tokens": cell["text_len"] * self.frames_per_token}

    def _stream(self, ids: torch.Tensor, n: int, on_chunk, on_lm_end=lambda: None) -> None:
        """Generate `n` speech tokens; hand each chunk's waveform [B, samples] to `on_chunk`; call
        `on_lm_end` when the last token is out."""
        m = self.model
        tok, cache = m.prefill(ids)
        toks, done = [tok], 0
        while len(toks) < n:
            tok, cache = m.lm_step(tok, cache)
            toks.append(tok)
            if len(toks) - done >= HOP + LOOKAHEAD and len(toks) < n:
                on_chunk(m.token2wav(torch.stack(toks, 1), done, done + HOP))
                done += HOP
        on_lm_end()
        on_chunk(m.token2wav(torch.stack(toks, 1), done, n))

    def synthesize(self, inputs: dict, now) -> tw.TtsTiming:
        ids, n = inputs["ids"], inputs["tokens"]
        stamps: list[int] = []
        samples: list[int] = []
        lm_end: list[int] = []

        def chunk(wave: torch.Tensor) -> None:
            stamps.append(now())
            samples.append(wave.shape[-1])
        start = now()
        self._stream(ids, n, chunk, lambda: lm_end.append(now()))
        end = now()
        return tw.TtsTiming(start, stamps[0], end, sum(samples), self.sampling_rate, ids.shape[0], lm_frames=n,
                            lm_end_ns=lm_end[0])

    @torch.inference_mode()
    def speak(self, text: str, emit) -> None:
        ids = tw.text_ids(self.resolved, text).to(self.device)
        self._stream(ids, ids.shape[1] * self.frames_per_token, lambda w: emit(tw.pcm16(w)))

    def describe(self) -> dict:
        return {"name": "torch", "version": torch.__version__, "streaming": True, "threads": torch.get_num_threads(),
                "first_audio": f"the first {HOP} speech tokens voiced, once {HOP + LOOKAHEAD} are generated (streaming)",
                "decoding": "greedy; speech-token count forced to text_len x frames_per_token; flow run on every token "
                            "so far at each chunk, as CosyVoice2's streaming token2wav does",
                "model": "shape-equivalent composition of library modules (workloads/cosyvoice2.py)"}


def build(resolved: tw.ResolvedTts, spec, device: torch.device, dtype: torch.dtype) -> cv.CosyVoice2:
    torch.manual_seed(spec.seed)
    return cv.build(resolved.arch.config, resolved.sampling_rate, device).to(dtype=dtype)
