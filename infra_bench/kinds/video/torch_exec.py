"""Text-to-video pipelines as torch modules on any probed device: diffusers' WanPipeline driven with
the embeddings of the text encoder built here."""
from __future__ import annotations

import torch

from ...backends.base import Built
from ...devices.base import DeviceProbe
from ...devices.torch_probe import DTYPES
from . import workload as vw
from .spec import VideoSpec


class VideoExecutor:
    def __init__(self, resolved: vw.ResolvedVideo, device: torch.device, dtype: torch.dtype, seed: int):
        import diffusers

        self.resolved, self.device, self.dtype = resolved, device, dtype
        torch.manual_seed(seed)
        built = {n: vw.build(resolved.arch, n, device).to(dtype=dtype) for n in resolved.entry["components"]}
        self.encoder, self.transformer, self.vae = built["text_encoder"], built["transformer"], built["vae"]
        s = resolved.entry["scheduler"]
        sched = getattr(diffusers, s["class"]).from_config(s["config"])
        self.pipe = getattr(diffusers, vw.RUNNABLE[resolved.family])(
            tokenizer=None, text_encoder=None, transformer=self.transformer, vae=self.vae, scheduler=sched)
        self.pipe.set_progress_bar_config(disable=True)

    def params(self) -> int:
        return sum(p.numel() for m in (self.encoder, self.transformer, self.vae) for p in m.parameters())

    def describe(self) -> dict:
        return {"name": "torch", "version": torch.__version__, "threads": torch.get_num_threads(),
                "loop": f"diffusers {vw.RUNNABLE[self.resolved.family]} on precomputed embeddings, one clock read per phase"}

    def text(self, ids: torch.Tensor) -> torch.Tensor:
        return self.encoder(ids).last_hidden_state

    def denoise(self, embeds, negative, req: vw.VideoRequest, on_step) -> torch.Tensor:
        def step_end(pipe, i, t, tensors):
            on_step()
            return tensors
        out = self.pipe(prompt_embeds=embeds, negative_prompt_embeds=negative, height=req.height, width=req.width,
                        num_frames=req.frames, num_inference_steps=req.steps, guidance_scale=req.guidance,
                        latents=req.noise, output_type="latent", callback_on_step_end=step_end)
        return out.frames

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> frames in [0, 1]: undo the VAE's per-channel normalisation, then the 3D decode."""
        c = self.vae.config
        shape = (1, c.z_dim, 1, 1, 1)
        mean = torch.tensor(c.latents_mean, device=latents.device, dtype=latents.dtype).view(shape)
        std = torch.tensor(c.latents_std, device=latents.device, dtype=latents.dtype).view(shape)
        video = self.vae.decode(latents * std + mean).sample
        return (video / 2 + 0.5).clamp(0, 1)


def build(spec: VideoSpec, resolved: vw.ResolvedVideo, probe: DeviceProbe, trust_remote_code: bool = False) -> Built:
    ex = VideoExecutor(resolved, probe.torch_device, DTYPES[spec.dtype], spec.seed)
    return Built(ex, ex.describe(), ex.params(), resolved.vocab_size)
