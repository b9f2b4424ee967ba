"""F5-TTS: a flow-matching diffusion transformer over mel frames, then the Vocos vocoder, composed
from diffusers modules and plain torch (workloads/architectures/tts.yaml, family f5tts).

The `f5-tts` package does not import on this stack (its torchaudio needs a CUDA torch) and would
downgrade shared dependencies, so the DiT is built here from the classes it is made of: diffusers'
AdaLayerNormZero, Attention (with rotary embeddings on all heads, or only the first as F5TTS_Base
does), FeedForward, AdaLayerNormContinuous, Timesteps/TimestepEmbedding and the ConvNeXt-V2 block
(GELU, as F5 uses), plus torch modules for the text embedding and the convolutional position
embedding. Built this way it loads the real F5 DiT's weights with renamed keys only and gives its
outputs to 3e-6 (checked against f5-tts 1.1.22 in a separate venv, research notes 2026-12-03), so the
shapes and FLOPs are the model's. Vocos (ConvNeXt backbone, inverse-STFT head) is plain torch.

One utterance: N = reference frames + generated frames of mel (the generated count forced to
text_len x frames_per_token with random weights); `nfe` Euler steps from noise, each one DiT call on
the conditional and text-dropped inputs together (guidance strength `cfg_strength`), on F5's sway-
sampled time grid; then Vocos on the generated frames. F5 streams nothing finer than a whole
utterance chunk, so first audio is the end of synthesis.
"""
from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn


class _RopeAttention:
    """Attention processor: rotary embeddings on all heads (`heads` None) or the first `heads`, SDPA."""

    def __init__(self, heads: int | None):
        self.heads = heads

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rope=None, **kw):
        from diffusers.models.embeddings import apply_rotary_emb

        b, head_dim = hidden_states.shape[0], attn.inner_dim // attn.heads
        q, k, v = (f(hidden_states).view(b, -1, attn.heads, head_dim).transpose(1, 2)
                   for f in (attn.to_q, attn.to_k, attn.to_v))
        n = self.heads or attn.heads
        q = torch.cat([apply_rotary_emb(q[:, :n], rope), q[:, n:]], 1)
        k = torch.cat([apply_rotary_emb(k[:, :n], rope), k[:, n:]], 1)
        x = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, -1, attn.inner_dim)
        return attn.to_out[1](attn.to_out[0](x))


class _Block(nn.Module):
    """An AdaLN-zero DiT block: self-attention and a GELU-tanh feed-forward, each gated."""

    def __init__(self, c: dict):
        super().__init__()
        from diffusers.models.attention import FeedForward
        from diffusers.models.attention_processor import Attention
        from diffusers.models.normalization import AdaLayerNormZero

        d = c["dim"]
        self.attn_norm = AdaLayerNormZero(d)
        self.attn = Attention(query_dim=d, heads=c["heads"], dim_head=c["dim_head"], bias=True, out_bias=True,
                              processor=_RopeAttention(c.get("pe_attn_head")))
        self.ff_norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.ff = FeedForward(d, mult=c["ff_mult"], activation_fn="gelu-approximate")

    def forward(self, x, t, rope):
        h, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.attn_norm(x, emb=t)
        x = x + gate_msa[:, None] * self.attn(h, rope=rope)
        return x + gate_mlp[:, None] * self.ff(self.ff_norm(x) * (1 + scale_mlp[:, None]) + shift_mlp[:, None])


class F5Dit(nn.Module):
    """The DiT: mel x_t, the reference mel and the text (padded to the mel length) in, velocity out."""

    def __init__(self, c: dict):
        super().__init__()
        from diffusers.models.embeddings import TimestepEmbedding, Timesteps
        from diffusers.models.normalization import AdaLayerNormContinuous
        from diffusers.models.transformers.transformer_longcat_audio_dit import (
            AudioDiTConvNeXtV2Block,
        )

        self.c = c
        d, td = c["dim"], c["text_dim"]
        self.time_proj = Timesteps(256, flip_sin_to_cos=False, downscale_freq_shift=1, scale=1000)
        self.time_embed = TimestepEmbedding(256, d)
        self.text_embed = nn.Embedding(c["vocab"] + 1, td)  # id 0: the filler after the text
        self.text_blocks = nn.ModuleList(AudioDiTConvNeXtV2Block(td, 2 * td) for _ in range(c["conv_layers"]))
        for b in self.text_blocks:
            b.act = nn.GELU()
        self.in_proj = nn.Linear(2 * c["mel_dim"] + td, d)
        self.conv_pos = nn.Sequential(nn.Conv1d(d, d, 31, groups=16, padding=15), nn.Mish(),
                                      nn.Conv1d(d, d, 31, groups=16, padding=15), nn.Mish())
        self.blocks = nn.ModuleList(_Block(c) for _ in range(c["depth"]))
        self.norm_out = AdaLayerNormContinuous(d, d, elementwise_affine=False, eps=1e-6)
        self.proj_out = nn.Linear(d, c["mel_dim"])

    def text_states(self, text: torch.Tensor, n: int, drop: bool) -> torch.Tensor:
        """Text ids [B, T] -> [B, n, text_dim]: shifted past the filler, padded or cut to n frames, a
        sinusoidal position added, the ConvNeXt blocks (padding masked in v1)."""
        ids = F.pad((text + 1)[:, :n], (0, max(0, n - text.shape[1])), value=0)
        pad = (ids == 0)[..., None]
        if drop:
            ids = torch.zeros_like(ids)
        td = self.c["text_dim"]
        pos = torch.arange(n, device=ids.device, dtype=torch.float32)[:, None]
        freq = 10000 ** (torch.arange(0, td, 2, device=ids.device, dtype=torch.float32) / td)
        h = self.text_embed(ids) + torch.cat([(pos / freq).cos(), (pos / freq).sin()], -1).to(self.text_embed.weight.dtype)
        for b in self.text_blocks:
            h = h.masked_fill(pad, 0.0) if self.c["text_mask_padding"] else h
            h = b(h)
        return h.masked_fill(pad, 0.0) if self.c["text_mask_padding"] else h

    def forward(self, x: torch.Tensor, cond: torch.Tensor, text: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The conditional and text-dropped velocities, stacked on the batch axis ([2B, n, mel])."""
        from diffusers.models.embeddings import get_1d_rotary_pos_embed

        n = x.shape[1]
        temb = self.time_embed(self.time_proj(t.expand(x.shape[0])).to(x.dtype))

        def inputs(drop: bool) -> torch.Tensor:
            h = self.in_proj(torch.cat([x, torch.zeros_like(cond) if drop else cond, self.text_states(text, n, drop)], -1))
            return self.conv_pos(h.transpose(1, 2)).transpose(1, 2) + h
        h, temb = torch.cat([inputs(False), inputs(True)]), torch.cat([temb, temb])
        rope = get_1d_rotary_pos_embed(self.c["dim_head"], n, theta=10000.0, use_real=True, repeat_interleave_real=True)
        rope = tuple(r.to(x.device, x.dtype) for r in rope)
        for block in self.blocks:
            h = block(h, temb, rope)
        return self.proj_out(self.norm_out(h, temb))


class Vocos(nn.Module):
    """Mel [B, mel, frames] -> waveform: a ConvNeXt backbone, then the magnitude and phase of an
    inverse STFT (charactr/vocos-mel-24khz shapes)."""

    def __init__(self, mel: int, v: dict):
        super().__init__()
        d = v["dim"]
        self.n_fft, self.hop = v["n_fft"], v["hop"]
        self.embed, self.norm = nn.Conv1d(mel, d, 7, padding=3), nn.LayerNorm(d, eps=1e-6)
        self.blocks = nn.ModuleList(nn.ModuleDict({
            "dwconv": nn.Conv1d(d, d, 7, padding=3, groups=d), "norm": nn.LayerNorm(d, eps=1e-6),
            "pw1": nn.Linear(d, v["intermediate"]), "pw2": nn.Linear(v["intermediate"], d)}) for _ in range(v["layers"]))
        self.scales = nn.Parameter(torch.full((v["layers"], d), 1.0 / v["layers"]))
        self.final = nn.LayerNorm(d, eps=1e-6)
        self.head = nn.Linear(d, self.n_fft + 2)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.embed(mel).transpose(1, 2))
        for scale, b in zip(self.scales, self.blocks):
            y = b["norm"](b["dwconv"](h.transpose(1, 2)).transpose(1, 2))
            h = h + scale * b["pw2"](F.gelu(b["pw1"](y)))
        spec = self.head(self.final(h)).transpose(1, 2).float()
        samples = mel.shape[-1] * self.hop
        if spec.is_meta:  # FLOP counting: the inverse FFT has no meta kernel and few FLOPs
            return torch.empty(mel.shape[0], samples, device="meta", dtype=mel.dtype)
        mag, phase = spec.chunk(2, dim=1)
        z = torch.polar(torch.exp(mag).clamp(max=1e2), phase)
        return torch.istft(z, self.n_fft, self.hop, self.n_fft, window=self.window, length=samples).to(mel.dtype)


class F5Tts(nn.Module):
    """(ids [B, T], generated mel frames) -> waveform [B, frames x hop]."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        self.dit = F5Dit(cfg["dit"])
        self.vocos = Vocos(cfg["dit"]["mel_dim"], cfg["vocos"])

    def times(self, device) -> torch.Tensor:
        """F5's time grid: `nfe` uniform steps, then sway sampling t + s (cos(pi t / 2) - 1 + t)."""
        t = torch.linspace(0, 1, self.cfg["nfe"] + 1, device=device, dtype=torch.float32)
        return t + self.cfg["sway"] * (torch.cos(math.pi / 2 * t) - 1 + t)

    def forward(self, ids: torch.Tensor, frames: int) -> torch.Tensor:
        ref, mel = self.cfg["reference_frames"], self.cfg["dit"]["mel_dim"]
        b, n = ids.shape[0], ref + frames
        dtype = self.dit.proj_out.weight.dtype
        g = torch.Generator().manual_seed(0)
        cond = torch.zeros(b, n, mel, dtype=dtype)
        cond[:, :ref] = torch.randn(b, ref, mel, generator=g)  # the reference audio's mel, then nothing
        x = torch.randn(b, n, mel, generator=g).to(ids.device, dtype)
        cond = cond.to(ids.device)
        grid = self.times(ids.device)
        for t0, t1 in itertools.pairwise(grid):
            v, free = self.dit(x, cond, ids, t0).chunk(2)
            x = x + (t1 - t0).to(dtype) * (v + (v - free) * self.cfg["cfg_strength"])
        return self.vocos(x[:, ref:].transpose(1, 2))


def flops(model: F5Tts, ids: torch.Tensor, frames: int) -> int:
    """The FLOPs of model(ids, frames): every step is the same DiT call, so one is counted and multiplied,
    then the vocoder (32x quicker to count than the whole sample)."""
    from ..measure.flops import counted

    mel, n = model.cfg["dit"]["mel_dim"], model.cfg["reference_frames"] + frames
    x = torch.zeros(ids.shape[0], n, mel, device=ids.device)
    t = torch.zeros((), device=ids.device)
    step = counted(lambda: model.dit(x, x, ids, t))
    return model.cfg["nfe"] * step + counted(lambda: model.vocos(torch.zeros(ids.shape[0], mel, frames, device=ids.device)))


def build(cfg: dict, device="meta") -> F5Tts:
    """The model on `device` (meta: no memory) with random weights from the global torch seed."""
    from .diffusion import require_diffusers

    require_diffusers()
    with torch.device(device):
        return F5Tts(cfg).eval()
