"""Diffusion-transformer text-to-image pipelines (FLUX.1, SD3.5) for the planner: the catalog
(workloads/architectures/dit.yaml), meta-device builds of their components, and the FLOPs of one
image counted on those builds (text encoders at their prompt lengths, one transformer pass at the
image's latent tokens, the VAE decode), in the form media_model's FLOP table keeps."""
from __future__ import annotations

from ..catalog import architectures

LATENT_FACTOR = 8  # the 16-channel VAE's downsampling


def catalog() -> dict[str, dict]:
    return architectures("dit")


def build(model: str, component: str):
    """The component with random weights on the meta device (no memory): the class its entry names."""
    import torch

    c = catalog()[model]["components"][component]
    cls = c["class"]
    with torch.device("meta"):
        if cls in ("CLIPTextModel", "CLIPTextModelWithProjection", "T5EncoderModel"):
            import transformers as tf
            config = (tf.T5Config if cls.startswith("T5") else tf.CLIPTextConfig)(**c["config"])
            return getattr(tf, cls)(config).eval()
        import diffusers
        return getattr(diffusers, cls)(**c["config"]).eval()


def _flops(fn) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return int(counter.get_total_flops())


def _transformer_flops(model: str, resolution: int) -> int:
    import torch

    entry = catalog()[model]
    m = build(model, "transformer")
    lat = resolution // LATENT_FACTOR
    text = max(entry["text_tokens"].values())
    z = torch.zeros
    with torch.device("meta"):
        if entry["family"] == "flux":  # 2x2-packed latents: (lat/2)^2 tokens of 64 channels
            tokens = (lat // 2) ** 2
            kw = dict(hidden_states=z(1, tokens, 64), encoder_hidden_states=z(1, text, 4096),
                      pooled_projections=z(1, 768), timestep=z(1), img_ids=z(tokens, 3), txt_ids=z(text, 3),
                      guidance=z(1) if m.config.guidance_embeds else None)
        else:  # sd3: 77 CLIP tokens + the T5 tokens, pooled CLIP-L + CLIP-G
            kw = dict(hidden_states=z(1, 16, lat, lat), encoder_hidden_states=z(1, 77 + text, 4096),
                      pooled_projections=z(1, 2048), timestep=z(1))
    return _flops(lambda: m(**kw))


def _text_flops(model: str) -> int:
    import torch

    total = 0
    for name, tokens in catalog()[model]["text_tokens"].items():
        m = build(model, name)
        with torch.device("meta"):
            ids = torch.zeros(1, tokens, dtype=torch.long)
        total += _flops(lambda: m(input_ids=ids))
    return total


def _vae_flops(model: str, resolution: int) -> int:
    import torch

    m = build(model, "vae")
    lat = resolution // LATENT_FACTOR
    with torch.device("meta"):
        latents = torch.zeros(1, 16, lat, lat)
    return _flops(lambda: m.decode(latents))


def count(model: str, resolution: int) -> dict:
    """One image without guidance, as media_model's FLOP table keeps it (`unet_per_step` is the
    denoiser's pass, here the transformer's), plus `cfg`: whether guidance doubles that pass."""
    entry = catalog()[model]
    return {"text": _text_flops(model), "unet_per_step": _transformer_flops(model, resolution),
            "vae": _vae_flops(model, resolution), "params": sum(c["params"] for c in entry["components"].values()),
            "cfg": entry["guidance"] == "cfg"}
