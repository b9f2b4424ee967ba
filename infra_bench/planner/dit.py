"""Diffusion-transformer text-to-image pipelines (FLUX.1, SD3.5): the catalog
(workloads/architectures/dit.yaml), builds of their components from its configs (on the meta device
for the planner, with random weights on a real device for `run`), and the FLOPs of one image counted
on those builds (text encoders at their prompt lengths, one transformer pass at the image's latent
tokens, the VAE decode), in the form media_model's FLOP table keeps. Each function takes a catalog id
or an entry of the catalog's shape (a local pipeline folder's, read by workloads/dit.py)."""
from __future__ import annotations

from ..catalog import architectures, build_component
from ..measure.flops import counted as _flops

Model = str | dict  # a catalog id, or an entry of the catalog's shape


def catalog() -> dict[str, dict]:
    return architectures("dit")


def entry_of(model: Model) -> dict:
    return model if isinstance(model, dict) else catalog()[model]


def build(model: Model, component: str, device="meta"):
    """The component its entry names, built on `device` (the meta device: no memory) with random
    weights from the global torch seed."""
    return build_component(entry_of(model)["components"][component], device)


def vae_factor(model: Model) -> int:
    """Pixels per latent along a side: 2 per VAE down block after the first."""
    c = entry_of(model)["components"]["vae"]["config"]
    return 2 ** (len(c.get("block_out_channels") or c["dim_mult"]) - 1)


def latent_side(model: Model, resolution: int) -> int:
    return resolution // vae_factor(model)


def transformer_inputs(model: Model, m, batch: int, resolution: int, device="meta") -> dict:
    """Zero inputs of one transformer pass on `batch` latents, shaped as the pipeline feeds them."""
    import torch

    entry = entry_of(model)
    cfg = m.config
    lat = latent_side(model, resolution)
    tokens = entry["text_tokens"]
    z = torch.zeros
    with torch.device(device):
        if entry["family"] == "flux":  # 2x2-packed latents: (lat/2)^2 tokens of 4 x latent channels
            n, text = (lat // 2) ** 2, tokens["text_encoder_2"]
            return dict(hidden_states=z(batch, n, cfg.in_channels), encoder_hidden_states=z(batch, text, cfg.joint_attention_dim),
                        pooled_projections=z(batch, cfg.pooled_projection_dim), timestep=z(batch), img_ids=z(n, 3),
                        txt_ids=z(text, 3), guidance=z(batch) if cfg.guidance_embeds else None)
        if entry["family"] == "qwen-image":  # 2x2-packed latents, the text encoder's states with their mask
            n, text = (lat // 2) ** 2, tokens["text_encoder"]
            return dict(hidden_states=z(batch, n, cfg.in_channels), encoder_hidden_states=z(batch, text, cfg.joint_attention_dim),
                        encoder_hidden_states_mask=torch.ones(batch, text), timestep=z(batch),
                        img_shapes=[[(1, lat // 2, lat // 2)]] * batch)
        if entry["family"] == "hunyuandit":  # CLIP and mT5 states with masks, 2D rotary embeddings per patch
            n, head = (lat // 2) ** 2, cfg.attention_head_dim
            t1, t2 = tokens["text_encoder"], tokens["text_encoder_2"]
            return dict(hidden_states=z(batch, cfg.in_channels, lat, lat), timestep=z(batch),
                        encoder_hidden_states=z(batch, t1, cfg.cross_attention_dim), text_embedding_mask=torch.ones(batch, t1),
                        encoder_hidden_states_t5=z(batch, t2, cfg.cross_attention_dim_t5),
                        text_embedding_mask_t5=torch.ones(batch, t2), image_rotary_emb=(z(n, head), z(n, head)))
        # sd3: the CLIP tokens, then the T5 tokens; pooled CLIP-L + CLIP-G
        text = tokens["text_encoder"] + tokens["text_encoder_3"]
        return dict(hidden_states=z(batch, cfg.in_channels, lat, lat), encoder_hidden_states=z(batch, text, cfg.joint_attention_dim),
                    pooled_projections=z(batch, cfg.pooled_projection_dim), timestep=z(batch))


def _transformer_flops(model: Model, resolution: int) -> int:
    m = build(model, "transformer")
    return _flops(lambda: m(**transformer_inputs(model, m, 1, resolution)))


def _text_flops(model: Model) -> int:
    import torch

    total, entry = 0, entry_of(model)
    for name, tokens in entry["text_tokens"].items():
        m = build(model, name)
        with torch.device("meta"):  # plus a prompt template's tokens that are encoded, then dropped (Qwen-Image)
            ids = torch.zeros(1, tokens + entry.get("text_prefix", 0), dtype=torch.long)
        total += _flops(lambda: m(input_ids=ids))
    return total


def _vae_flops(model: Model, resolution: int) -> int:
    import torch

    m = build(model, "vae")
    side = latent_side(model, resolution)
    with torch.device("meta"):
        if "z_dim" in m.config:  # a video-style (3D) VAE decoding one frame
            latents = torch.zeros(1, m.config.z_dim, 1, side, side)
        else:
            latents = torch.zeros(1, m.config.latent_channels, side, side)
    return _flops(lambda: m.decode(latents))


def _params(model: Model, component: str) -> int:
    return sum(p.numel() for p in build(model, component).parameters())


def count(model: Model, resolution: int) -> dict:
    """One image without guidance, as media_model's FLOP table keeps it (`unet_per_step` is the
    denoiser's pass, here the transformer's), plus `cfg`: whether guidance doubles that pass."""
    entry = entry_of(model)
    return {"text": _text_flops(model), "unet_per_step": _transformer_flops(model, resolution),
            "vae": _vae_flops(model, resolution),
            "params": sum(c["params"] if c["params"] is not None else _params(model, n)
                          for n, c in entry["components"].items()),
            "cfg": entry["guidance"] == "cfg"}
