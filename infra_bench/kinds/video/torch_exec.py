"""Text-to-video pipelines as torch modules on any probed device: diffusers' WanPipeline or
HunyuanVideoPipeline driven with the embeddings of the text encoders built here."""
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
        self.encoders = {n: m for n, m in built.items() if n.startswith("text_encoder")}
        self.transformer, self.vae = built["transformer"], built["vae"]
        s = resolved.entry["scheduler"]
        sched = getattr(diffusers, s["class"]).from_config(s["config"])
        none = {n: None for n in self.encoders}
        tokenizers = {n.replace("text_encoder", "tokenizer"): None for n in none}
        self.pipe = getattr(diffusers, vw.PIPELINES[resolved.family])(
            transformer=self.transformer, vae=self.vae, scheduler=sched, **none, **tokenizers)
        self.pipe.set_progress_bar_config(disable=True)

    def params(self) -> int:
        return sum(p.numel() for m in (*self.encoders.values(), self.transformer, self.vae) for p in m.parameters())

    def describe(self) -> dict:
        return {"name": "torch", "version": torch.__version__, "threads": torch.get_num_threads(),
                "loop": f"diffusers {vw.PIPELINES[self.resolved.family]} on precomputed embeddings, one clock read per phase"}

    def text(self, ids: dict[str, torch.Tensor]) -> dict:
        """Token ids per encoder -> the pipeline's embedding arguments."""
        e = self.encoders
        if self.resolved.family == "hunyuanvideo":
            # the Llama's third-to-last states after the prompt template's tokens (the pipeline's crop_start),
            # every token attended; CLIP's pooled vector
            crop = self.resolved.entry["text_tokens"]["text_encoder"] - self.resolved.entry["transformer_text_tokens"]
            states = e["text_encoder"](ids["text_encoder"], output_hidden_states=True).hidden_states[-3][:, crop:]
            return {"prompt_embeds": states, "prompt_attention_mask": torch.ones(states.shape[:2], device=states.device),
                    "pooled_prompt_embeds": e["text_encoder_2"](ids["text_encoder_2"]).pooler_output}
        return {"prompt_embeds": e["text_encoder"](ids["text_encoder"]).last_hidden_state}

    def denoise(self, embeds: dict, negative: dict | None, req: vw.VideoRequest, on_step) -> torch.Tensor:
        def step_end(pipe, i, t, tensors):
            on_step()
            return tensors
        kw = {**embeds, **{f"negative_{k}": v for k, v in (negative or {}).items()}}
        out = self.pipe(height=req.height, width=req.width, num_frames=req.frames, num_inference_steps=req.steps,
                        guidance_scale=req.guidance, latents=req.noise, output_type="latent",
                        callback_on_step_end=step_end, **kw)
        return out.frames

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> frames in [0, 1]: undo the VAE's normalisation (Wan: per channel; HunyuanVideo: one
        scaling factor), then the 3D decode. The latents come in the VAE's dtype, as the pipeline's own decode
        casts them: WanPipeline keeps its latents in fp32 whatever the transformer's dtype."""
        c = self.vae.config
        latents = latents.to(self.vae.dtype)
        if self.resolved.family == "hunyuanvideo":
            video = self.vae.decode(latents / c.scaling_factor).sample
        else:
            shape = (1, c.z_dim, 1, 1, 1)
            mean = torch.tensor(c.latents_mean, device=latents.device, dtype=latents.dtype).view(shape)
            std = torch.tensor(c.latents_std, device=latents.device, dtype=latents.dtype).view(shape)
            video = self.vae.decode(latents * std + mean).sample
        return (video / 2 + 0.5).clamp(0, 1)


def build(spec: VideoSpec, resolved: vw.ResolvedVideo, probe: DeviceProbe, trust_remote_code: bool = False) -> Built:
    ex = VideoExecutor(resolved, probe.torch_device, DTYPES[spec.dtype], spec.seed)
    return Built(ex, ex.describe(), ex.params(), resolved.vocab_size)
