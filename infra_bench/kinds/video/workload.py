"""Text-to-video workloads: Wan-style diffusion-transformer pipelines built with random weights from
workloads/architectures/video.yaml, one timed request, FLOPs, and the VAE decode's peak memory.

A request runs diffusers' own pipeline (WanPipeline, HunyuanVideoPipeline) on the embeddings of seeded
token ids from the text encoders built here (no tokenizer, no network), so the loop, scheduler and guidance are the
library's. Phases are timed around that call: text encoding, each denoising step (the pipeline's
step-end callback reads the clock), then the 3D VAE decode of the latent video. After the timed
requests one more decode is watched for its peak memory, the figure that decides whether a long
video fits a device.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...catalog import architectures, build_component
from ...errors import UserError, closest
from ...measure.flops import counted as _flops
from ...workloads.diffusion import DiffusionTiming
from ...workloads.dit import seeded_prompts
from .spec import VideoSpec, size

PIPELINES = {"wan": "WanPipeline", "hunyuanvideo": "HunyuanVideoPipeline"}


def catalog() -> dict[str, dict]:
    return architectures("video")


@dataclass
class ResolvedVideo:
    arch: str
    entry: dict
    info: dict

    @property
    def family(self) -> str:
        return self.entry["family"]

    @property
    def spatial(self) -> int:
        return int(self.entry["vae_factors"]["spatial"])

    @property
    def temporal(self) -> int:
        return int(self.entry["vae_factors"]["temporal"])

    @property
    def vocab_size(self) -> int:
        return int(self.entry["components"]["text_encoder"]["config"]["vocab_size"])

    def latent_shape(self, width: int, height: int, frames: int) -> tuple[int, int, int, int]:
        """(channels, latent frames, latent height, latent width) of one video."""
        ch = int(self.entry["latent_channels"])
        return ch, (frames - 1) // self.temporal + 1, height // self.spatial, width // self.spatial


def resolve(spec: VideoSpec, trust_remote_code: bool = False) -> ResolvedVideo:
    from ...workloads.diffusion import require_diffusers

    require_diffusers()
    archs = catalog()
    if spec.arch is None:
        raise UserError(f"spec '{spec.label}': video workloads build a built-in pipeline; set arch: one of {', '.join(archs)}")
    if spec.arch not in archs:
        raise UserError(f"unknown video architecture '{spec.arch}'{closest(spec.arch, archs)}; built-in: {', '.join(archs)}")
    e = archs[spec.arch]
    return ResolvedVideo(spec.arch, e, {
        "arch": spec.arch, "family": e["family"], "weights": "random", "source": e["source"],
        "pipeline": f"diffusers.{PIPELINES[e['family']]}", "scheduler": e["scheduler"]["class"],
        "params_reference": {n: c["params"] for n, c in e["components"].items()}})


def check_cells(spec: VideoSpec, resolved: ResolvedVideo) -> None:
    if spec.backend != "torch":
        raise UserError(f"spec '{spec.label}': video runs on the torch backend only (diffusers' pipeline drives it); "
                        f"set backend: torch")
    check_host_memory(spec, resolved)
    t, m = resolved.temporal, 2 * resolved.spatial
    for f in spec.frames:
        if (f - 1) % t:
            raise UserError(f"spec '{spec.label}': frames {f} is not {t}k+1 ({resolved.arch}'s VAE compresses {t} "
                            f"frames into one after the first); use {f - (f - 1) % t} or {f - (f - 1) % t + t}")
    for r in spec.resolution:
        w, h = size(r)
        if w % m or h % m:
            raise UserError(f"spec '{spec.label}': resolution {r} is not a multiple of {m} on each side "
                            f"({resolved.spatial} px per latent, 2x2 latents per patch); use e.g. "
                            f"{w - w % m or m}x{h - h % m or m}")


def check_host_memory(spec: VideoSpec, resolved: ResolvedVideo, free: int | None = None) -> None:
    """Refuse a pipeline that cannot be made in this host's free memory (`free`, default what this host has)
    before building it: each component is made in fp32, then cast, in the catalog's order."""
    from ...workloads.host_memory import catalog_counts, check_components, on_host

    if on_host(spec):
        check_components(spec, catalog_counts(resolved.entry["components"]), "each", free=free)


@dataclass(frozen=True)
class VideoTiming(DiffusionTiming):
    """Clock readings (ns) of one batched video request: the phases of an image request (the loop
    starts when text encoding ends), and the frames of each video."""
    frames: int = 1

    @property
    def video_s(self) -> float:
        return self.image_s


@dataclass
class VideoRequest:
    """Fixed inputs of one cell, made once outside the timed region."""
    ids: dict[str, torch.Tensor]     # encoder -> [B, text tokens]
    negative_ids: dict[str, torch.Tensor] | None
    noise: torch.Tensor              # [B, C, latent frames, latent h, latent w]
    width: int
    height: int
    frames: int
    steps: int
    guidance: float


def make_request(spec: VideoSpec, resolved: ResolvedVideo, cell: dict, ex) -> VideoRequest:
    b = cell["batch_size"]
    w, h = size(cell["resolution"])
    g = torch.Generator().manual_seed(spec.seed)
    ids, negative = seeded_prompts(resolved.entry, b, g)
    noise = torch.randn((b, *resolved.latent_shape(w, h, cell["frames"])), generator=g)
    cfg = spec.cfg and resolved.entry.get("guidance") != "distilled"
    on = {k: v.to(ex.device) for k, v in ids.items()}
    off = {k: v.to(ex.device) for k, v in negative.items()} if cfg else None
    return VideoRequest(on, off, noise.to(ex.device, ex.dtype),
                        w, h, cell["frames"], cell["steps"], spec.guidance_scale)


def run_request(ex, req: VideoRequest, now) -> VideoTiming:
    start = now()
    embeds = ex.text(req.ids)
    negative = ex.text(req.negative_ids) if req.negative_ids is not None else None
    text_done = now()
    stamps: list[int] = []
    latents = ex.denoise(embeds, negative, req, lambda: stamps.append(now()))
    ex.decode(latents)
    end = now()
    return VideoTiming(start, text_done, text_done, tuple(stamps), end, req.noise.shape[0], req.frames)


def build(arch: str, component: str, device="meta"):
    return build_component(catalog()[arch]["components"][component], device)


def _transformer_inputs(e: dict, tr, latents) -> dict:
    z = torch.zeros
    if e["family"] == "hunyuanvideo":  # LLM states with their mask, CLIP's pooled vector, embedded guidance
        n = e["transformer_text_tokens"]
        return dict(hidden_states=latents, timestep=z(1), encoder_hidden_states=z(1, n, tr.config.text_embed_dim),
                    encoder_attention_mask=torch.ones(1, n), pooled_projections=z(1, tr.config.pooled_projection_dim),
                    guidance=z(1))
    n = e["text_tokens"]["text_encoder"]
    return dict(hidden_states=latents, timestep=z(1), encoder_hidden_states=z(1, n, tr.config.text_dim))


def count(arch: str, width: int, height: int, frames: int) -> dict:
    """FLOPs of one video with one transformer pass per step, counted on the meta-device build: the text
    encoders at their token lengths, one transformer pass on the latent video, the VAE decode; and the
    parameters. `cfg`: whether guidance doubles the pass."""
    e = catalog()[arch]
    shape = ResolvedVideo(arch, e, {}).latent_shape(width, height, frames)
    tr, vae = build(arch, "transformer"), build(arch, "vae")
    text, params = 0, sum(p.numel() for m in (tr, vae) for p in m.parameters())
    for name, tokens in e["text_tokens"].items():
        enc = build(arch, name)
        params += sum(p.numel() for p in enc.parameters())
        with torch.device("meta"):
            ids = torch.zeros(1, tokens, dtype=torch.long)
        text += _flops(lambda: enc(input_ids=ids))
    with torch.device("meta"):
        latents = torch.zeros(1, *shape)
        kw = _transformer_inputs(e, tr, latents)
        step = _flops(lambda: tr(**kw))
        dec = _flops(lambda: vae.decode(latents))
    return {"text": text, "unet_per_step": step, "vae": dec, "params": params, "cfg": e.get("guidance") != "distilled"}


def count_flops(resolved: ResolvedVideo, cell: dict, cfg: bool, steps_run: int) -> dict:
    """FLOPs of one request's phases as run (the batch's)."""
    w, h = size(cell["resolution"])
    one = count(resolved.arch, w, h, cell["frames"])
    b, n = cell["batch_size"], 2 if cfg and one["cfg"] else 1
    text, step, vae = n * one["text"] * b, n * one["unet_per_step"] * b, one["vae"] * b
    return {"text_encode_flops": text, "transformer_flops_per_step": step, "transformer_evals_per_step": n,
            "vae_decode_flops": vae, "flops_per_video": (text + steps_run * step + vae) / b,
            "flops_note": "torch.utils.flop_counter on the meta-device build: matmul, convolution and attention FLOPs"}


def decode_peak(ex, req: VideoRequest, probe) -> dict:
    """One more (untimed) decode of the request's latent shape, watched for the device allocator's peak.
    A CPU keeps no such peak, and its RSS says little (the allocator reuses what the timed decodes
    freed), so there the figure is null and says why."""
    probe.reset_peak_memory()
    with torch.inference_mode():
        ex.decode(req.noise)
    probe.synchronize()
    peak = probe.peak_memory().get("device_peak_allocated_bytes")
    if peak is None:
        return {"vae_decode_peak_bytes": None,
                "vae_decode_peak_source": "not measured: this device keeps no allocator peak (CPU); the host allocator "
                                          "reuses freed memory, so RSS growth would not show the decode's need"}
    return {"vae_decode_peak_bytes": peak, "vae_decode_peak_source": "device allocator peak over one decode "
                                                                     "(weights included)"}


def metrics(result, flops: dict, peak: dict) -> dict:
    from ...measure.stats import summarize
    from ...scenarios.offline import window_metrics

    t: list[VideoTiming] = result.timings
    videos = sum(x.batch_size for x in t)
    frames = t[0].frames
    return {
        "iterations": len(t),
        "videos": videos,
        "window_s": result.window.wall_s,
        "step_s": summarize([s for x in t for s in x.step_s]),
        "text_encode_s": summarize([x.text_encode_s for x in t]),
        "vae_decode_s": summarize([x.vae_decode_s for x in t]),
        "video_s": summarize([x.video_s for x in t]),
        "s_per_frame": summarize([x.video_s / (frames * x.batch_size) for x in t]),
        "videos_per_s": videos / result.window.wall_s,
        "frames_per_s": videos * frames / result.window.wall_s,
        "denoise_steps_run": len(t[0].step_s),
        **flops,
        **peak,
        **window_metrics(result.window, videos, "video"),
    }


def samples(result) -> list[dict]:
    return [{"text_encode_s": x.text_encode_s, "step_s": x.step_s, "vae_decode_s": x.vae_decode_s,
             "video_s": x.video_s} for x in result.timings]


def measure(spec: VideoSpec, resolved: ResolvedVideo, built, cell: dict, window, rule) -> dict:
    """Run one cell; return the fields of its ok record (FLOPs and the decode's peak memory included)."""
    from ...scenarios.offline import run_offline

    ex = built.runner
    req = make_request(spec, resolved, cell, ex)
    with torch.inference_mode():
        result = run_offline(lambda: run_request(ex, req, window.probe.now_ns), rule, window)
    peak = decode_peak(ex, req, window.probe)
    flops = count_flops(resolved, cell, spec.cfg, len(result.timings[0].step_s))
    return {"metrics": metrics(result, flops, peak), "stop_reason": result.stop_reason, "samples": samples(result)}
