"""CosyVoice2, shape-equivalent: its three stages composed from library modules of the published sizes.

No transformers or diffusers class holds CosyVoice2 (FunAudioLLM/CosyVoice), so the model is built
here from parts that have its shapes (workloads/architectures/tts.yaml, family cosyvoice2):

- the speech-token LM: a Qwen2 decoder (transformers' Qwen2Model) over [sos, text, task] embeddings,
  then one speech token per step from its own embedding table and output head;
- the flow-matching decoder: speech-token embeddings through a transformer encoder (torch's) at the
  mel rate, projected to the mel condition `mu`; then `steps` Euler steps of a 1-D U-Net estimator
  (ResNet blocks with a time embedding, each followed by diffusers' BasicTransformerBlocks) run on the
  conditional and unconditional inputs together (classifier-free guidance, rate 0.7);
- HiFT: transformers' HiFi-GAN convolution stack whose last convolution gives the magnitude and phase
  of an inverse STFT (n_fft 16, hop 4), as HiFT's head does. Its harmonic source branch (an F0
  predictor and sine source) is left out.

Parameter counts are the composition's, not the checkpoint's. The planner counts FLOPs on this same
build (on the meta device), so `run` and `predict` price the same network.
"""
from __future__ import annotations

import torch
from torch import nn

CFG_RATE = 0.7          # CosyVoice2's inference_cfg_rate
SPEECH_VOCAB = 6561     # real speech tokens; the LM's head has 3 more (end of speech and two fillers)


class ResNet1d(nn.Module):
    """The estimator's 1-D ResNet block: two 3-wide convolutions with group norm and Mish, the time
    embedding added between them, a 1x1 skip."""

    def __init__(self, cin: int, cout: int, time_dim: int):
        super().__init__()
        self.a = nn.Sequential(nn.Conv1d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.Mish())
        self.b = nn.Sequential(nn.Conv1d(cout, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.Mish())
        self.time = nn.Sequential(nn.Mish(), nn.Linear(time_dim, cout))
        self.skip = nn.Conv1d(cin, cout, 1)

    def forward(self, h: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(h) + self.time(t)[:, :, None]) + self.skip(h)


class Estimator(nn.Module):
    """The flow decoder's U-Net: a down block, `mid_blocks` middle blocks and an up block that takes the
    down block's output as a skip; each is a ResNet block then transformer blocks."""

    def __init__(self, fl: dict):
        super().__init__()
        from diffusers.models.attention import BasicTransformerBlock
        from diffusers.models.embeddings import TimestepEmbedding, Timesteps

        ch, time_dim, n = fl["channels"], 4 * fl["channels"], fl["transformers_per_block"]
        self.time = nn.Sequential(Timesteps(fl["in_channels"], True, 0), TimestepEmbedding(fl["in_channels"], time_dim))
        ins = [fl["in_channels"]] + [ch] * fl["mid_blocks"] + [2 * ch]
        self.resnets = nn.ModuleList(ResNet1d(c, ch, time_dim) for c in ins)
        self.attn = nn.ModuleList(nn.ModuleList(BasicTransformerBlock(ch, fl["heads"], fl["head_dim"]) for _ in range(n))
                                  for _ in ins)
        self.final = nn.Conv1d(ch, fl["mel_bins"], 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x: [B, in_channels, frames] (noisy mel, mu, speaker and prompt condition stacked); t: [B]."""
        temb, skip = self.time(t), None
        h = x
        for i, (res, blocks) in enumerate(zip(self.resnets, self.attn)):
            if i == len(self.resnets) - 1:
                h = torch.cat([h, skip], dim=1)
            h = res(h, temb).transpose(1, 2)
            for b in blocks:
                h = b(h)
            h = h.transpose(1, 2)
            if i == 0:
                skip = h
        return self.final(h)


class Flow(nn.Module):
    """Speech tokens -> mel frames: the encoder at the mel rate gives `mu`; Euler steps of the estimator
    from noise, conditional and unconditional halves in one batch."""

    def __init__(self, fl: dict):
        super().__init__()
        self.fl = fl
        self.embed = nn.Embedding(SPEECH_VOCAB, fl["encoder_dim"])
        layer = nn.TransformerEncoderLayer(fl["encoder_dim"], fl["encoder_heads"], fl["encoder_ffn"], batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, fl["encoder_blocks"], enable_nested_tensor=False)
        self.proj = nn.Linear(fl["encoder_dim"], fl["mel_bins"])
        self.estimator = Estimator(fl)

    def forward(self, tokens: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """tokens [B, n] -> mel [B, mel_bins, n * mel_per_token]; `noise` is the start, of that shape."""
        fl = self.fl
        h = self.embed(tokens.clamp(0, SPEECH_VOCAB - 1)).repeat_interleave(fl["mel_per_token"], dim=1)
        mu = self.proj(self.encoder(h)).transpose(1, 2)
        b, bins, frames = mu.shape
        spk = torch.zeros(b, bins, frames, device=mu.device, dtype=mu.dtype)  # speaker embedding, broadcast
        cond = torch.zeros_like(mu)                                          # the prompt's mel (none here)
        zero = torch.zeros_like(mu)
        x, dt = noise, 1.0 / fl["steps"]
        for k in range(fl["steps"]):  # in_channels = 4 x mel_bins: the four stacked inputs
            both = torch.cat([torch.cat([x, mu, spk, cond], 1), torch.cat([x, zero, zero, zero], 1)], 0)
            t = torch.full((2 * b,), k * dt, device=x.device, dtype=x.dtype)
            v_cond, v_free = self.estimator(both, t).chunk(2)
            x = x + dt * ((1 + CFG_RATE) * v_cond - CFG_RATE * v_free)
        return x


class Hift(nn.Module):
    """Mel -> waveform: HiFi-GAN's upsampling convolutions, then an inverse STFT of the magnitude and
    phase its last convolution gives."""

    def __init__(self, fl: dict, hf: dict, sampling_rate: int):
        super().__init__()
        import transformers as tf

        self.n_fft, self.hop = hf["istft_n_fft"], hf["istft_hop"]
        gan = {k: v for k, v in hf.items() if not k.startswith("istft")}
        self.gan = tf.SpeechT5HifiGan(tf.SpeechT5HifiGanConfig(model_in_dim=fl["mel_bins"], sampling_rate=sampling_rate,
                                                               **gan))
        last = self.gan.conv_post.in_channels
        self.gan.conv_post = nn.Conv1d(last, self.n_fft + 2, 7, padding=3)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel [B, bins, frames] -> [B, samples]."""
        spec = self.gan(mel.transpose(1, 2))  # [B, n_fft + 2, frames x upsampling]
        half = self.n_fft // 2 + 1
        mag, phase = torch.exp(spec[:, :half]).float(), torch.sin(spec[:, half:]).float()
        z = torch.polar(mag.clamp(max=1e2), phase)
        return torch.istft(z, self.n_fft, self.hop, self.n_fft, window=self.window.float(),
                           length=spec.shape[-1] * self.hop).to(mel.dtype)


class CosyVoice2(nn.Module):
    """The three stages; `lm_step` and `prefill` drive the LM, `token2wav` the flow and vocoder."""

    def __init__(self, cfg: dict, sampling_rate: int):
        super().__init__()
        import transformers as tf

        lm, self.fl = cfg["lm"], cfg["flow"]
        self.lm = tf.Qwen2Model(tf.Qwen2Config(**{k: v for k, v in lm.items() if k != "speech_tokens"}))
        self.special = nn.Embedding(2, lm["hidden_size"])  # sos/eos and task id
        self.speech_embed = nn.Embedding(lm["speech_tokens"], lm["hidden_size"])
        self.head = nn.Linear(lm["hidden_size"], lm["speech_tokens"])
        self.flow = Flow(self.fl)
        self.hift = Hift(self.fl, cfg["hift"], sampling_rate)

    def prefill(self, text_ids: torch.Tensor):
        """[sos, text, task] through the LM: (first speech token [B], KV cache)."""
        b = text_ids.shape[0]
        sos = self.special.weight[0].expand(b, 1, -1)
        task = self.special.weight[1].expand(b, 1, -1)
        embeds = torch.cat([sos, self.lm.embed_tokens(text_ids), task], dim=1)
        out = self.lm(inputs_embeds=embeds, use_cache=True)
        return self.head(out.last_hidden_state[:, -1]).argmax(-1), out.cache

    def lm_step(self, token: torch.Tensor, cache):
        """One decode step: the last speech token in, the next out (greedy)."""
        out = self.lm(inputs_embeds=self.speech_embed(token)[:, None], cache=cache, use_cache=True)
        return self.head(out.last_hidden_state[:, -1]).argmax(-1), out.cache

    def token2wav(self, tokens: torch.Tensor, first: int, last: int, seed: int = 0) -> torch.Tensor:
        """Audio of tokens [first, last), the flow run on every token so far (the lookahead included), as
        CosyVoice2's streaming token2wav does, keeping the new tokens' mel."""
        ratio = self.fl["mel_per_token"]
        g = torch.Generator().manual_seed(seed)
        noise = torch.randn(tokens.shape[0], self.fl["mel_bins"], tokens.shape[1] * ratio, generator=g)
        mel = self.flow(tokens, noise.to(tokens.device, self.flow.proj.weight.dtype))
        return self.hift(mel[:, :, first * ratio:last * ratio])


def build(cfg: dict, sampling_rate: int, device="meta") -> CosyVoice2:
    """The composition on `device` (meta: no memory) with random weights from the global torch seed."""
    from .diffusion import require_diffusers

    require_diffusers()
    with torch.device(device):
        return CosyVoice2(cfg, sampling_rate).eval()
