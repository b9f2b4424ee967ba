"""Text-to-image workloads: the pipeline catalog, component wrappers, the denoising loop and FLOPs.

The loop is StableDiffusionPipeline's (tests check it gives the same image), written out so one
loop drives either torch modules or ONNX Runtime sessions and every phase is timed: text
encoding, each denoising step, VAE decoding. No tokenizer and no network: the prompt is a
fixed sequence of token ids.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import torch

from ..catalog import architectures
from ..errors import MissingDependency, UserError, closest, install_hint
from ..spec.diffusion import SCHEDULERS, DiffusionSpec
from .files import config_fields, hash_files, json_file, safetensors_problem

TEXT_LEN = 77
COMPONENTS = ("text_encoder", "text_encoder_2", "unet", "vae")


@dataclass(frozen=True)
class PipelineArch:
    id: str
    family: str
    description: str
    source: str
    default_resolution: int
    scheduler: dict
    components: dict = field(default_factory=dict)


@lru_cache(maxsize=1)
def catalog() -> dict[str, PipelineArch]:
    raw = architectures("diffusion")
    return {k: PipelineArch(id=k, **v) for k, v in raw.items()}


def arch_names() -> list[str]:
    """Every built-in pipeline `run` and `serve` build: the UNet pipelines, then the DiT pipelines."""
    return [*catalog(), *architectures("dit")]


@dataclass
class ResolvedPipeline:
    family: str                  # sd | sdxl
    configs: dict[str, dict]     # component -> config fields
    scheduler_config: dict
    info: dict
    folder: Path | None = None   # a local diffusers folder, else random weights

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.configs["vae"].get("block_out_channels", [64])) - 1)

    @property
    def scaling_factor(self) -> float:
        return float(self.configs["vae"].get("scaling_factor", 0.18215))

    @property
    def latent_channels(self) -> int:
        return int(self.configs["unet"].get("in_channels", 4))

    @property
    def vocab_size(self) -> int:
        return int(self.configs["text_encoder"].get("vocab_size", 49408))


def _family(configs: dict) -> str:
    return "sdxl" if "text_encoder_2" in configs or configs["unet"].get("addition_embed_type") == "text_time" else "sd"


def require_diffusers() -> None:
    """Fails early, without the seconds that importing diffusers takes, when it is not installed."""
    import importlib.util

    if importlib.util.find_spec("diffusers") is None:
        raise MissingDependency(f"diffusion workloads need diffusers: {install_hint('diffusion')}")


def component_weights(folder: Path, name: str) -> list[Path]:
    """A pipeline folder's component weights: its *.safetensors files, each whole (pickled weights are refused)."""
    files = sorted((folder / name).glob("*.safetensors"))
    if not files:
        raise UserError(f"{folder / name}: no *.safetensors weights; pickled weights are not loaded for "
                        f"safety; re-save with safe_serialization=True")
    for w in files:
        if why := safetensors_problem(w):
            raise UserError(f"{w}: {why}; copy the file again (or re-save the pipeline with save_pretrained)")
    return files


def _model_index(folder: Path) -> dict:
    if not folder.exists():
        raise UserError(f"model path not found: {folder}; give a local diffusers pipeline folder (model_index.json "
                        f"and a folder per component, as save_pretrained writes it)")
    index = folder / "model_index.json"
    if not index.is_file():
        raise UserError(f"{folder}: not a diffusers pipeline folder (no model_index.json); "
                        f"give a folder saved with save_pretrained")
    data = json_file(index)
    if not isinstance(data, dict):
        raise UserError(f"{index}: holds a JSON {type(data).__name__}, not the mapping of components "
                        f"save_pretrained writes; re-save the pipeline with save_pretrained")
    return data


def resolve(spec: DiffusionSpec, trust_remote_code: bool = False):
    """A UNet pipeline (ResolvedPipeline) or a diffusion-transformer one (workloads.dit.ResolvedDit), from
    the catalog or a local diffusers folder (one with a transformer and no UNet is a DiT pipeline)."""
    require_diffusers()
    if spec.arch is not None and spec.arch in architectures("dit"):
        from . import dit
        return dit.resolve(spec)
    if spec.model is not None:
        folder = Path(spec.model)
        index = _model_index(folder)
        if "unet" not in index and ("transformer" in index or (folder / "transformer").is_dir()):
            from . import dit
            return dit.resolve_folder(spec, folder, index)
    if spec.scheduler == "flow_euler":
        raise UserError(f"spec '{spec.label}': flow_euler is for flow-matching (DiT) pipelines; a UNet pipeline "
                        f"predicts noise: use one of euler, euler_a, ddim, dpmpp_2m, pndm")
    if spec.arch is not None:
        archs = catalog()
        if spec.arch not in archs:
            known = [*archs, *architectures("dit")]
            raise UserError(f"unknown diffusion architecture '{spec.arch}'{closest(spec.arch, known)}; "
                            f"built-in: {', '.join(known)}; or give model: PATH (a diffusers folder)")
        a = archs[spec.arch]
        configs = {name: c["config"] for name, c in a.components.items()}
        return ResolvedPipeline(a.family, configs, dict(a.scheduler),
                                {"arch": a.id, "family": a.family, "weights": "random", "source": a.source,
                                 "scheduler": SCHEDULERS[spec.scheduler or "euler"],
                                 "params_reference": {n: c["params"] for n, c in a.components.items()}})
    configs, weights = {}, []
    for name in COMPONENTS:
        cfg = folder / name / "config.json"
        if not cfg.is_file():
            continue
        configs[name] = config_fields(folder / name)
        weights += component_weights(folder, name)
    missing = [n for n in ("text_encoder", "unet", "vae") if n not in configs]
    if missing:
        raise UserError(f"{folder}: missing component(s) {', '.join(missing)}; a text encoder, UNet and VAE are needed")
    _check_prompt_ids(folder, configs["text_encoder"])
    sched = scheduler_config(folder) or dict(catalog()["sd-tiny"].scheduler)
    sched = {k: v for k, v in sched.items() if not k.startswith("_")}
    return ResolvedPipeline(_family(configs), configs, sched,
                            {"path": str(folder.resolve()), "family": _family(configs), "weights": "checkpoint",
                             "scheduler": SCHEDULERS[spec.scheduler or "euler"],  # not the folder's own class
                             "weights_hash": hash_files(weights)}, folder)


def scheduler_config(folder: Path) -> dict | None:
    """A pipeline folder's scheduler/scheduler_config.json, or None where it has none."""
    path = folder / "scheduler" / "scheduler_config.json"
    if not path.is_file():
        return None
    data = json_file(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: holds a JSON {type(data).__name__}, not the scheduler's fields; re-save the "
                        f"pipeline with save_pretrained")
    return data


def _check_prompt_ids(folder: Path, text: dict) -> None:
    """The prompt is made of the text encoder's bos and eos ids around random ids below them: ids its
    vocabulary lacks (a config left at CLIP's 49406/49407 over 1000 words) failed every cell at its first
    embedding lookup ('index out of range in self')."""
    from transformers import CLIPTextConfig

    cfg = CLIPTextConfig(**text)  # CLIP's defaults where the file gives none, as the prompt takes them
    bad = {k: v for k in ("bos_token_id", "eos_token_id") if (v := getattr(cfg, k)) is None or v >= cfg.vocab_size}
    if bad:
        said = ", ".join(f"{k} {v}" for k, v in bad.items())
        raise UserError(f"{folder / 'text_encoder' / 'config.json'}: {said} outside its vocab_size "
                        f"{cfg.vocab_size}; set the ids its tokenizer uses (below {cfg.vocab_size})")


def check_cells(spec: DiffusionSpec, resolved) -> None:
    if not isinstance(resolved, ResolvedPipeline):
        from . import dit
        return dit.check_cells(spec, resolved)
    check_host_memory(spec, resolved)
    f = resolved.vae_scale_factor
    bad = [r for r in spec.resolution if r % f]
    if bad:
        raise UserError(f"spec '{spec.label}': resolution {bad[0]} is not divisible by the VAE factor {f}; "
                        f"use a multiple of {f} (e.g. {bad[0] - bad[0] % f or f})")


def check_host_memory(spec: DiffusionSpec, resolved, free: int | None = None) -> None:
    """Refuse a pipeline that cannot be made in this host's free memory (`free`, default what this host has)
    before building it: every component is made in fp32, then cast (workloads/host_memory.py). Counts are
    the catalog's, or the configs' counted on the meta device."""
    from .host_memory import check_components, on_host

    if not isinstance(resolved, ResolvedPipeline):
        from . import dit
        return dit.check_host_memory(spec, resolved, free)
    checkpoint = resolved.folder is not None
    if not on_host(spec, checkpoint):
        return
    shipped = resolved.info.get("params_reference") or {}
    if shipped and all(shipped.values()):
        counts = list(shipped.values())
    else:
        meta = ResolvedPipeline(resolved.family, resolved.configs, resolved.scheduler_config, resolved.info)
        mods = build_modules(meta, torch.device("meta"), torch.float32, 0)
        counts = [sum(p.numel() for p in m.parameters()) for m in (mods.text, mods.unet, mods.vae)]
    check_components(spec, counts, "all", checkpoint, free)


# --- the components, as modules shared by the torch and ONNX Runtime backends -----------------

class TextEncode(torch.nn.Module):
    """ids [B, 77] -> hidden [B, 77, D] (sd), or (hidden, pooled [B, P]) (sdxl)."""

    def __init__(self, text_encoder, text_encoder_2=None):
        super().__init__()
        self.te, self.te2 = text_encoder, text_encoder_2

    def forward(self, ids):
        if self.te2 is None:
            return self.te(ids).last_hidden_state
        h1 = self.te(ids, output_hidden_states=True).hidden_states[-2]
        o2 = self.te2(ids, output_hidden_states=True)
        return torch.cat([h1, o2.hidden_states[-2]], dim=-1), o2.text_embeds


class UNetStep(torch.nn.Module):
    """One noise prediction: (sample, timestep [B], hidden[, pooled, time_ids]) -> noise."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, hidden, *added):
        cond = {"text_embeds": added[0], "time_ids": added[1]} if added else None
        return self.unet(sample, timestep, encoder_hidden_states=hidden, added_cond_kwargs=cond).sample


class VaeDecode(torch.nn.Module):
    """latents -> image in [0, 1], as the pipeline's decode and post-processing."""

    def __init__(self, vae, scaling_factor: float):
        super().__init__()
        self.vae, self.scaling = vae, scaling_factor

    def forward(self, latents):
        image = self.vae.decode(latents / self.scaling).sample
        return (image / 2 + 0.5).clamp(0, 1)


@dataclass
class Modules:
    text: TextEncode
    unet: UNetStep
    vae: VaeDecode

    def params(self) -> int:
        return sum(p.numel() for m in (self.text, self.unet, self.vae) for p in m.parameters())


def build_modules(resolved: ResolvedPipeline, device: torch.device, dtype: torch.dtype, seed: int) -> Modules:
    """The components in eval mode: random weights (seeded) from configs, or the folder's weights."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    c = resolved.configs
    if resolved.folder is None:
        torch.manual_seed(seed)
        with device:
            unet = UNet2DConditionModel.from_config(c["unet"])
            vae = AutoencoderKL.from_config(c["vae"])
            te = CLIPTextModel(CLIPTextConfig(**c["text_encoder"]))
            te2 = CLIPTextModelWithProjection(CLIPTextConfig(**c["text_encoder_2"])) if "text_encoder_2" in c else None
    else:
        kw = {"local_files_only": True, "use_safetensors": True}
        unet = UNet2DConditionModel.from_pretrained(resolved.folder, subfolder="unet", **kw)
        vae = AutoencoderKL.from_pretrained(resolved.folder, subfolder="vae", **kw)
        te = CLIPTextModel.from_pretrained(resolved.folder, subfolder="text_encoder", **kw)
        te2 = (CLIPTextModelWithProjection.from_pretrained(resolved.folder, subfolder="text_encoder_2", **kw)
               if "text_encoder_2" in c else None)
    mods = Modules(TextEncode(te, te2), UNetStep(unet), VaeDecode(vae, resolved.scaling_factor))
    for m in (mods.text, mods.unet, mods.vae):
        m.to(device=device, dtype=dtype).eval()
    return mods


# --- one request -------------------------------------------------------------------------------

class Executor(Protocol):
    """Runs the three components; the loop's tensors live on `device`, in `dtype`."""
    device: torch.device
    dtype: torch.dtype

    def text(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]: ...

    def unet(self, sample: torch.Tensor, timestep: torch.Tensor, hidden: torch.Tensor,
             added: tuple) -> torch.Tensor: ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class DiffusionTiming:
    """Clock readings (ns) of one batched image request."""
    start_ns: int
    text_done_ns: int
    loop_start_ns: int
    step_ns: tuple[int, ...]
    end_ns: int
    batch_size: int

    @property
    def text_encode_s(self) -> float:
        return (self.text_done_ns - self.start_ns) / 1e9

    @property
    def step_s(self) -> list[float]:
        t = (self.loop_start_ns, *self.step_ns)
        return [(b - a) / 1e9 for a, b in zip(t, t[1:])]

    @property
    def vae_decode_s(self) -> float:
        return (self.end_ns - self.step_ns[-1]) / 1e9

    @property
    def image_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


def make_scheduler(name: str, config: dict):
    import diffusers
    return getattr(diffusers, SCHEDULERS[name]).from_config(config)


def scheduled_steps(name: str, config: dict, steps: int) -> int:
    """The denoising steps scheduler `name` runs when `steps` are asked (PNDM: one more, its PLMS warm-up)."""
    sched = make_scheduler(name, config)
    sched.set_timesteps(steps)
    return len(sched.timesteps)


@dataclass
class Request:
    """Fixed inputs of one cell, made once outside the timed region."""
    ids: torch.Tensor        # [2B or B, 77]: negative prompts first when guidance is on
    noise: torch.Tensor      # [B, C, h, w]
    time_ids: torch.Tensor | None
    steps: int
    guidance: float
    scheduler: str
    scheduler_config: dict
    seed: int


def make_request(spec: DiffusionSpec, resolved: ResolvedPipeline, cell: dict, ex: Executor) -> Request:
    from transformers import CLIPTextConfig

    b, res = cell["batch_size"], cell["resolution"]
    g = torch.Generator().manual_seed(spec.seed)
    text_cfg = CLIPTextConfig(**resolved.configs["text_encoder"])  # bos/eos with CLIP's defaults
    bos, eos = text_cfg.bos_token_id, text_cfg.eos_token_id
    prompt = torch.randint(3, min(resolved.vocab_size, eos if eos > 3 else resolved.vocab_size), (b, TEXT_LEN),
                           generator=g)
    prompt[:, 0], prompt[:, -1] = bos, eos  # [bos, tokens ..., eos], as a full-length prompt
    negative = torch.full((b, TEXT_LEN), eos)  # the empty prompt: bos, then eos padding
    negative[:, 0] = bos
    ids = torch.cat([negative, prompt]) if spec.cfg else prompt
    lat = res // resolved.vae_scale_factor
    noise = torch.randn((b, resolved.latent_channels, lat, lat), generator=g).to(ex.device, ex.dtype)
    time_ids = None
    if resolved.family == "sdxl":  # original size, crop top-left, target size
        time_ids = torch.tensor([[res, res, 0, 0, res, res]] * ids.shape[0], dtype=ex.dtype, device=ex.device)
    return Request(ids.to(ex.device), noise, time_ids, cell["steps"], spec.guidance_scale, spec.scheduler or "euler",
                   resolved.scheduler_config, spec.seed)


def run_request(ex: Executor, req: Request, now) -> DiffusionTiming:
    """Encode text, denoise `steps` times, decode: the pipeline's math, one clock read per phase."""
    cfg = req.guidance > 1.0
    start = now()
    hidden, pooled = ex.text(req.ids)
    text_done = now()
    sched = make_scheduler(req.scheduler, req.scheduler_config)
    sched.set_timesteps(req.steps, device=ex.device)
    latents = req.noise * sched.init_noise_sigma
    added = (pooled, req.time_ids) if pooled is not None else ()
    step_kw = {"generator": torch.Generator(ex.device).manual_seed(req.seed)} \
        if "generator" in inspect.signature(sched.step).parameters else {}
    stamps = []
    loop_start = now()
    for t in sched.timesteps:
        x = sched.scale_model_input(torch.cat([latents] * 2) if cfg else latents, t)
        noise = ex.unet(x, t, hidden, added)
        if cfg:
            uncond, cond = noise.chunk(2)
            noise = uncond + req.guidance * (cond - uncond)
        latents = sched.step(noise, t, latents, **step_kw).prev_sample
        stamps.append(now())
    ex.decode(latents)
    end = now()
    return DiffusionTiming(start, text_done, loop_start, tuple(stamps), end, req.noise.shape[0])


# --- FLOPs, counted on the meta device (no memory, no compute) ---------------------------------

def count_flops(resolved: ResolvedPipeline, cell: dict, cfg: bool, steps_run: int | None = None) -> dict:
    """FLOPs of one request's phases, from torch's FLOP counter (matmuls, convolutions and
    attention; elementwise work is not counted). `steps_run` is how many denoising steps the
    scheduler actually ran (PNDM runs one more than asked), default the cell's steps."""
    from ..measure.flops import counted as flops

    meta = ResolvedPipeline(resolved.family, resolved.configs, resolved.scheduler_config, resolved.info)
    mods = build_modules(meta, torch.device("meta"), torch.float32, 0)
    b, res = cell["batch_size"], cell["resolution"]
    n = 2 * b if cfg else b
    lat = res // resolved.vae_scale_factor
    with torch.device("meta"):
        ids = torch.zeros((n, TEXT_LEN), dtype=torch.long)
        out = mods.text(ids)
        hidden, pooled = (out, None) if isinstance(out, torch.Tensor) else out
        added = (pooled, torch.zeros((n, 6))) if pooled is not None else ()
        text = flops(lambda: mods.text(ids))
        unet = flops(lambda: mods.unet(torch.zeros((n, resolved.latent_channels, lat, lat)), torch.zeros(n),
                                       hidden, *added))
        vae = flops(lambda: mods.vae(torch.zeros((b, resolved.latent_channels, lat, lat))))
    total = text + (steps_run or cell["steps"]) * unet + vae
    return {"text_encode_flops": text, "unet_flops_per_step": unet, "unet_evals_per_step": 2 if cfg else 1,
            "vae_decode_flops": vae, "flops_per_image": total / b, "pipeline_params": mods.params(),
            "flops_note": "torch.utils.flop_counter: matmul, convolution and attention FLOPs; batch as run"}


# --- metrics -----------------------------------------------------------------------------------

def metrics(result, flops: dict) -> dict:
    from ..measure.stats import summarize
    from ..scenarios.offline import window_metrics

    t: list[DiffusionTiming] = result.timings
    images = sum(x.batch_size for x in t)
    return {
        "iterations": len(t),
        "images": images,
        "window_s": result.window.wall_s,
        "step_s": summarize([s for x in t for s in x.step_s]),
        "text_encode_s": summarize([x.text_encode_s for x in t]),
        "vae_decode_s": summarize([x.vae_decode_s for x in t]),
        "image_s": summarize([x.image_s for x in t]),
        "images_per_s": images / result.window.wall_s,
        "denoise_steps_run": len(t[0].step_s),
        **flops,
        **window_metrics(result.window, images, "image"),
    }


def samples(result) -> list[dict]:
    return [{"text_encode_s": x.text_encode_s, "step_s": x.step_s, "vae_decode_s": x.vae_decode_s,
             "image_s": x.image_s} for x in result.timings]


def requests(resolved) -> tuple:
    """(make_request, run_request) of the pipeline's loop: the UNet loop here, or diffusers' DiT pipelines."""
    if isinstance(resolved, ResolvedPipeline):
        return make_request, run_request
    from . import dit
    return dit.make_request, dit.run_request


def measure(spec: DiffusionSpec, resolved, built, cell: dict, window, rule) -> dict:
    """Run one cell; return the fields of its ok record (FLOPs included)."""
    from ..scenarios.offline import run_offline

    ex = built.runner
    make, run = requests(resolved)
    req = make(spec, resolved, cell, ex)
    with torch.inference_mode():
        result = run_offline(lambda: run(ex, req, window.probe.now_ns), rule, window)
    steps_run = len(result.timings[0].step_s)  # the scheduler's timesteps, what the loop iterated
    if isinstance(resolved, ResolvedPipeline):
        flops = count_flops(resolved, cell, spec.cfg, steps_run)
    else:
        from . import dit
        flops = dit.count_flops(resolved, cell, spec.cfg, steps_run, built.params)
    return {"metrics": metrics(result, flops), "stop_reason": result.stop_reason,
            "samples": samples(result), "extra_notes": steps_notes(resolved.info["scheduler"], cell["steps"], steps_run)}


def steps_notes(scheduler: str, asked: int, run: int) -> list[str]:
    """A note when the scheduler ran another number of denoising steps than asked (PNDM: its PLMS
    warm-up repeats one), so no per-step figure is read against the asked count."""
    if run == asked:
        return []
    return [(f"steps: {scheduler} ran {run} denoising steps for the {asked} asked; step times, FLOPs and the "
             f"steps column count the {run} run")]
