"""Diffusion-transformer text-to-image (FLUX.1, SD3.5, Qwen-Image, HunyuanDiT and their tiny shapes):
building the pipeline with random weights or from a local diffusers folder, one timed request, FLOPs.

Each request runs diffusers' own pipeline (FluxPipeline, StableDiffusion3Pipeline, QwenImagePipeline,
HunyuanDiTPipeline) so the denoising loop, latent packing, timestep shifting and guidance are the
library's. There is no tokenizer and no
network: the text encoders this module builds encode fixed, seeded token ids, and the pipeline gets
their embeddings. Phases are timed around that call: text encoding, each step (the pipeline's
step-end callback reads the clock), the VAE decode after it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError
from ..planner import dit
from ..spec.diffusion import SCHEDULERS, DiffusionSpec
from .diffusion import DiffusionTiming, component_weights, scheduler_config
from .files import config_fields, hash_files

FLOW_SCHEDULER = "flow_euler"
PIPELINES = {"flux": "FluxPipeline", "sd3": "StableDiffusion3Pipeline", "qwen-image": "QwenImagePipeline",
             "hunyuandit": "HunyuanDiTPipeline"}
FAMILY_OF = {cls: family for family, cls in PIPELINES.items()}  # model_index.json's _class_name -> family
OWN_SCHEDULER = {"hunyuandit": "ddpm"}  # a v-prediction DDPM model; the other families are flow-matching models
PROMPT_FIELDS = ("vocab_size", "bos_token_id", "eos_token_id", "max_position_embeddings")


@dataclass
class ResolvedDit:
    """A DiT pipeline: a catalog entry (random weights), or a local diffusers folder read into an entry
    of the catalog's shape (`folder`: its weights are loaded)."""
    arch: str                  # the catalog id, or the folder's name
    entry: dict
    info: dict
    folder: Path | None = None

    @property
    def family(self) -> str:
        return self.entry["family"]

    @property
    def vae_scale_factor(self) -> int:
        return dit.vae_factor(self.entry)

    @property
    def pixel_multiple(self) -> int:
        """FLUX packs 2x2 latents into one token; SD3 patches 2x2 in the transformer: either way a side
        must be a whole number of 2-latent patches."""
        return 2 * self.vae_scale_factor

    @property
    def vocab_size(self) -> int:
        return int(self.entry["components"]["text_encoder"]["config"]["vocab_size"])


def _scheduler(spec: DiffusionSpec, family: str, model: str) -> str:
    """The family's own scheduler class; a spec asking for another is refused."""
    name = OWN_SCHEDULER.get(family, FLOW_SCHEDULER)
    cls = SCHEDULERS[name]
    if spec.scheduler not in (None, name):
        what = "a flow-matching pipeline" if name == FLOW_SCHEDULER else "a v-prediction DDPM pipeline"
        raise UserError(f"spec '{spec.label}': {model} is {what}; its scheduler is "
                        f"{name} ({cls}): remove `scheduler` or set it to {name}")
    return cls


def resolve(spec: DiffusionSpec) -> ResolvedDit:
    entry = dit.catalog()[spec.arch]
    return ResolvedDit(spec.arch, entry, {
        "arch": spec.arch, "family": entry["family"], "weights": "random", "source": entry["source"],
        "pipeline": f"diffusers.{PIPELINES[entry['family']]}", "scheduler": _scheduler(spec, entry["family"], spec.arch),
        "guidance": entry["guidance"],
        "params_reference": {n: c["params"] for n, c in entry["components"].items()}})


def resolve_folder(spec: DiffusionSpec, folder: Path, index: dict) -> ResolvedDit:
    """A local diffusers DiT folder (model_index.json and component folders, as save_pretrained writes them)
    as an entry of the catalog's shape: the folder's configs, scheduler settings and weights; the guidance
    and prompt lengths of its family's first catalog entry (the full-size model), the lengths cut to what
    the folder's encoders take (HunyuanDiT: the lengths its transformer is built for)."""
    pipeline = index.get("_class_name")
    family = FAMILY_OF.get(pipeline)
    if family is None:
        runs = ", ".join(PIPELINES.values())
        raise UserError(f"{folder}: model_index.json names {pipeline}, a diffusion-transformer pipeline "
                        f"infra-bench does not run; local DiT folders run as {runs}")
    scheduler = _scheduler(spec, family, folder.name)
    ref = next(e for e in dit.catalog().values() if e["family"] == family)
    missing = [n for n in ref["components"] if not (folder / n / "config.json").is_file()]
    if missing:
        raise UserError(f"{folder}: missing component(s) {', '.join(missing)}; a {pipeline} folder needs "
                        f"{', '.join(ref['components'])}")
    components, weights = {}, []
    for name in ref["components"]:
        components[name] = _folder_component(folder, name, index.get(name))
        weights += component_weights(folder, name)
    prefix = ref.get("text_prefix", 0)
    tokens = {n: min(k, limit - prefix) if (limit := components[n]["config"].get("max_position_embeddings")) else k
              for n, k in ref["text_tokens"].items()}
    if family == "hunyuandit":  # padded to max_length: the transformer takes exactly these
        t = components["transformer"]["config"]
        tokens = {"text_encoder": t["text_len"], "text_encoder_2": t["text_len_t5"]}
    sched = scheduler_config(folder) or ref["scheduler"]
    entry = {"family": family, "guidance": ref["guidance"], "text_tokens": tokens, "components": components,
             "scheduler": {k: v for k, v in sched.items() if not k.startswith("_")},
             **({"text_prefix": prefix} if prefix else {})}
    return ResolvedDit(folder.name, entry, {
        "path": str(folder.resolve()), "family": family, "weights": "checkpoint",
        "pipeline": f"diffusers.{pipeline}", "scheduler": scheduler, "guidance": ref["guidance"],
        "text_tokens": tokens, "weights_hash": hash_files(weights)}, folder)


def _folder_component(folder: Path, name: str, spec: list | None) -> dict:
    """One component of a folder as a catalog component: the class model_index.json names (a diffusers or
    transformers model), its folder, and its config.json; a text encoder's config gets the prompt fields
    (vocabulary, bos/eos ids, positions) of its text config at the top, where the prompts read them."""
    library, cls = spec if isinstance(spec, list) and len(spec) == 2 else (None, None)
    if library not in ("diffusers", "transformers") or not isinstance(cls, str) \
            or not hasattr(importlib.import_module(library), cls):
        raise UserError(f"{folder}: model_index.json gives {name} as {spec}, not a diffusers or transformers "
                        f"model class; re-save the pipeline with save_pretrained")
    config = {k: v for k, v in config_fields(folder / name).items() if not k.startswith("_")}
    if library == "transformers":  # a text encoder
        text = getattr(importlib.import_module(library), cls).config_class.from_pretrained(folder / name)
        text = text.get_text_config()
        config.update({k: v for k in PROMPT_FIELDS if (v := getattr(text, k, None)) is not None})
    return {"class": cls, "library": library, "params": None, "path": str(folder / name), "config": config}


def check_cells(spec: DiffusionSpec, resolved: ResolvedDit) -> None:
    if spec.backend == "onnxruntime":
        from ..backends.onnxruntime.dit import check
        check(spec, resolved)
    check_host_memory(spec, resolved)
    m = resolved.pixel_multiple
    bad = [r for r in spec.resolution if r % m]
    if bad:
        raise UserError(f"spec '{spec.label}': resolution {bad[0]} is not a multiple of {m} ({resolved.arch}: "
                        f"{resolved.vae_scale_factor} px per latent, 2x2 latents per token); use e.g. {bad[0] - bad[0] % m or m}")


def check_host_memory(spec: DiffusionSpec, resolved: ResolvedDit, free: int | None = None) -> None:
    """Refuse a pipeline that cannot be made in this host's free memory (`free`, default what this host has)
    before building it: each component is made in fp32, then cast, in the catalog's order."""
    from .host_memory import catalog_counts, check_components, on_host

    checkpoint = resolved.folder is not None
    if on_host(spec, checkpoint):
        check_components(spec, catalog_counts(resolved.entry["components"]), "each", checkpoint, free)


class DitExecutor:
    """The pipeline and its text encoders on one device, in one dtype."""

    def __init__(self, resolved: ResolvedDit, device: torch.device, dtype: torch.dtype, seed: int):
        import diffusers

        self.resolved, self.device, self.dtype = resolved, device, dtype
        torch.manual_seed(seed)
        names = resolved.entry["components"]
        built = {n: _component(resolved, n, device, dtype) for n in names}
        self.encoders = {n: m for n, m in built.items() if n.startswith("text_encoder")}
        self.transformer, self.vae = built["transformer"], built["vae"]
        sched = getattr(diffusers, resolved.info["scheduler"]).from_config(resolved.entry["scheduler"])
        none = {n: None for n in names if n.startswith("text_encoder")}
        extra = {n.replace("text_encoder", "tokenizer"): None for n in none}
        if resolved.family == "hunyuandit":  # no safety checker: it would judge random pixels
            extra.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        self.pipe = getattr(diffusers, PIPELINES[resolved.family])(
            scheduler=sched, vae=self.vae, transformer=self.transformer, **none, **extra)
        self.pipe.set_progress_bar_config(disable=True)

    def params(self) -> int:
        return sum(p.numel() for m in (*self.encoders.values(), self.transformer, self.vae) for p in m.parameters())

    def describe(self) -> dict:
        return {"name": "torch", "version": torch.__version__, "threads": torch.get_num_threads(),
                "loop": f"diffusers {PIPELINES[self.resolved.family]} on precomputed embeddings, one clock read per phase"}

    def text(self, ids: dict[str, torch.Tensor]) -> dict:
        """Token ids per encoder -> the pipeline's embedding arguments (one prompt's worth per row)."""
        e, family = self.encoders, self.resolved.family
        if family == "flux":
            return {"pooled_prompt_embeds": e["text_encoder"](ids["text_encoder"]).pooler_output,
                    "prompt_embeds": e["text_encoder_2"](ids["text_encoder_2"]).last_hidden_state}
        if family == "qwen-image":  # the last hidden states after the system template's leading tokens
            states = e["text_encoder"](input_ids=ids["text_encoder"], output_hidden_states=True).hidden_states[-1]
            states = states[:, self.resolved.entry["text_prefix"]:]
            return {"prompt_embeds": states, "prompt_embeds_mask": torch.ones(states.shape[:2], dtype=torch.long,
                                                                              device=states.device)}
        if family == "hunyuandit":  # BERT and mT5 last states, every token attended (padding="max_length")
            out = {}
            for n, suffix in (("text_encoder", ""), ("text_encoder_2", "_2")):
                mask = torch.ones_like(ids[n])
                out[f"prompt_embeds{suffix}"] = e[n](ids[n], attention_mask=mask)[0]
                out[f"prompt_attention_mask{suffix}"] = mask
            return out
        # SD3: CLIP-L and CLIP-G penultimate states side by side, zero-padded to T5's width, then T5's states
        outs = [e[n](ids[n], output_hidden_states=True) for n in ("text_encoder", "text_encoder_2")]
        clip = torch.cat([o.hidden_states[-2] for o in outs], dim=-1)
        t5 = e["text_encoder_3"](ids["text_encoder_3"]).last_hidden_state
        clip = torch.nn.functional.pad(clip, (0, t5.shape[-1] - clip.shape[-1]))
        return {"prompt_embeds": torch.cat([clip, t5], dim=-2),
                "pooled_prompt_embeds": torch.cat([o.text_embeds for o in outs], dim=-1)}

    def denoise(self, embeds: dict, negative: dict | None, req: DitRequest, on_step) -> torch.Tensor:
        kw = dict(embeds)
        if negative is not None:
            kw.update({f"negative_{k}": v for k, v in negative.items()})
        family = self.resolved.family
        if family == "qwen-image":  # "true CFG": the scale is true_cfg_scale; the transformer is not guidance-distilled
            kw["true_cfg_scale"] = req.guidance
        else:
            kw["guidance_scale"] = req.guidance
        if family == "hunyuandit":  # keep the asked size (binning would snap it to a trained aspect ratio)
            kw["use_resolution_binning"] = False

        def step_end(pipe, i, t, tensors):
            on_step()
            return tensors
        out = self.pipe(height=req.resolution, width=req.resolution, num_inference_steps=req.steps,
                        latents=req.noise, output_type="latent", callback_on_step_end=step_end, **kw)
        return out.images

    def decode(self, latents: torch.Tensor, side: int) -> torch.Tensor:
        """The pipeline's latents -> images in [0, 1]: unpack (FLUX, Qwen-Image), undo the VAE scaling
        and shift (or Qwen-Image's per-channel normalisation), decode."""
        family, c = self.resolved.family, self.vae.config
        if family in ("flux", "qwen-image"):
            latents = self.pipe._unpack_latents(latents, side, side, self.pipe.vae_scale_factor)
        if family == "qwen-image":  # a one-frame video for the 3D VAE
            shape = (1, c.z_dim, 1, 1, 1)
            mean = torch.tensor(c.latents_mean, device=latents.device, dtype=latents.dtype).view(shape)
            std = torch.tensor(c.latents_std, device=latents.device, dtype=latents.dtype).view(shape)
            image = self.vae.decode(latents * std + mean).sample[:, :, 0]
        else:
            image = self.vae.decode(latents / c.scaling_factor + (c.shift_factor or 0.0)).sample
        return (image / 2 + 0.5).clamp(0, 1)


def _component(resolved: ResolvedDit, name: str, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """A component with random weights from its config, or loaded from the folder (safetensors only)."""
    if resolved.folder is None:
        return dit.build(resolved.entry, name, device).to(dtype=dtype)
    c = resolved.entry["components"][name]
    model = getattr(importlib.import_module(c["library"]), c["class"])
    kw = {"dtype": dtype} if c["library"] == "transformers" else {"torch_dtype": dtype}
    return model.from_pretrained(c["path"], local_files_only=True, use_safetensors=True, **kw).to(device).eval()


@dataclass
class DitRequest:
    """Fixed inputs of one cell, made once outside the timed region."""
    ids: dict[str, torch.Tensor]             # encoder -> [B, tokens]
    negative_ids: dict[str, torch.Tensor] | None
    noise: torch.Tensor                      # the pipeline's initial latents (packed for FLUX)
    resolution: int
    steps: int
    guidance: float


def seeded_prompts(entry: dict, batch: int, g: torch.Generator) -> tuple[dict, dict]:
    """Seeded token ids per text encoder of a catalog entry (image or video pipeline), and those of the
    empty negative prompt: CLIP-style encoders (bos and eos ids in their config) get [bos, tokens ..., eos] and
    bos then eos padding; T5- and Llama-style ones tokens then eos (1), and eos then padding (0). A prompt
    template's leading tokens (`text_prefix`, Qwen-Image) are part of what the encoder runs on."""
    ids, negative = {}, {}
    for name, n in entry["text_tokens"].items():
        c = entry["components"][name]["config"]
        n += entry.get("text_prefix", 0)
        if c.get("bos_token_id") is not None and c.get("eos_token_id") is not None:
            ids[name] = torch.randint(3, c["vocab_size"], (batch, n), generator=g)
            ids[name][:, 0], ids[name][:, -1] = c["bos_token_id"], c["eos_token_id"]
            negative[name] = torch.full((batch, n), c["eos_token_id"])
            negative[name][:, 0] = c["bos_token_id"]
        else:
            ids[name] = torch.randint(2, c["vocab_size"], (batch, n), generator=g)
            ids[name][:, -1] = 1
            negative[name] = torch.zeros((batch, n), dtype=torch.long)
            negative[name][:, 0] = 1
    return ids, negative


def make_request(spec: DiffusionSpec, resolved: ResolvedDit, cell: dict, ex: DitExecutor) -> DitRequest:
    b, res = cell["batch_size"], cell["resolution"]
    g = torch.Generator().manual_seed(spec.seed)
    ids, negative = seeded_prompts(resolved.entry, b, g)
    cfg = resolved.entry["guidance"] == "cfg" and spec.guidance_scale > 1.0
    lat = res // resolved.vae_scale_factor
    vae = resolved.entry["components"]["vae"]["config"]
    ch = vae.get("latent_channels") or vae["z_dim"]
    noise = torch.randn((b, ch, lat, lat), generator=g)
    if resolved.family in ("flux", "qwen-image"):  # 2x2 latents per token (Qwen-Image: a one-frame video's)
        noise = ex.pipe._pack_latents(noise, b, ch, lat, lat)
    return DitRequest({k: v.to(ex.device) for k, v in ids.items()},
                      {k: v.to(ex.device) for k, v in negative.items()} if cfg else None,
                      noise.to(ex.device, ex.dtype), res, cell["steps"], spec.guidance_scale)


def run_request(ex: DitExecutor, req: DitRequest, now) -> DiffusionTiming:
    start = now()
    embeds = ex.text(req.ids)
    negative = ex.text(req.negative_ids) if req.negative_ids is not None else None
    text_done = now()
    stamps: list[int] = []
    latents = ex.denoise(embeds, negative, req, lambda: stamps.append(now()))
    ex.decode(latents, req.resolution)
    end = now()
    return DiffusionTiming(start, text_done, text_done, tuple(stamps), end, req.noise.shape[0])


def count_flops(resolved: ResolvedDit, cell: dict, cfg: bool, steps_run: int, params: int) -> dict:
    """FLOPs of one request's phases as run (the batch's), from the meta-device count of one image."""
    one = dit.count(resolved.entry, cell["resolution"])
    b, passes = cell["batch_size"], 2 if one["cfg"] and cfg else 1
    text, step, vae = passes * one["text"] * b, passes * one["unet_per_step"] * b, one["vae"] * b
    return {"text_encode_flops": text, "unet_flops_per_step": step, "unet_evals_per_step": passes,
            "vae_decode_flops": vae, "flops_per_image": (text + steps_run * step + vae) / b, "pipeline_params": params,
            "flops_note": "torch.utils.flop_counter on the meta-device build: matmul, convolution and attention FLOPs; "
                          "unet_* is the transformer"}
