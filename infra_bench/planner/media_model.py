"""Diffusion and TTS predictions: FLOPs per unit counted on the real model, divided by an
achieved rate (peak x MFU), plus an explicit fixed overhead per step (diffusion) or per call (TTS).

    s/image = FLOPs per image / (peak x MFU) + steps x t_step
    RTF     = FLOPs per audio second / (peak x MFU) + t_call / utterance seconds

FLOPs come from torch's FLOP counter on the built architecture (diffusion on the meta device, no
memory; TTS by one CPU call of the random-weight model) and are cached per shape on disk. The
diffusion priors come from public timings (UNet: unet_prior.py; DiT: the FLUX median below; video:
kinds/video/planner.py); the TTS priors are assumptions. All carry a +-50% interval until
`infra-bench calibrate` fits an MFU from records of your own runs.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from functools import lru_cache

from ..errors import MissingDependency, UserError, closest, install_hint
from ..paths import cached_json
from .iteration import borrowed_peak, peak_tflops
from .profiles import HardwareProfile

PRECISIONS = ("fp32", "bf16", "fp16")
BYTES_PER_PARAM = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0}
DIFFUSION_PRIORS = {"mfu": 0.2, "t_step_s": 2e-3, "runtime_reserve_gb": 3.0, "usable_memory_fraction": 0.9}
# UNet pipelines (SD-1.5, SDXL) at 16 bits on accelerators take their MFU (by the part's peak) and per-step
# time from unet_prior.py, fitted on public eager-diffusers GPU timings; fp32 and CPUs, which those timings
# do not cover, keep the assumed 0.2 and 2 ms above.
REFERENCE_PEAK = 165.2     # TFLOP/s, bf16 dense of an RTX 4090: where the MFU-by-peak curves are anchored
PEAK_EXPONENT = 0.3143     # fitted by kinds/video/planner.fit_prior on Wan2.1's timings (a test recomputes it)
PEAK_RANGE = (119.5, 989.5)  # TFLOP/s: the parts the video curve was fitted and checked on (L20 to H100/H800)


def prior_covers(hw, precision: str) -> bool:
    """Whether the public-timing priors describe a case: 16-bit weights on an accelerator, as in the timings."""
    return hw.kind == "accelerator" and precision in ("fp16", "bf16")


@lru_cache(maxsize=8)
def shipped_peaks(ids: tuple[str, ...], precision: str) -> dict[str, float]:
    """The `precision` peaks (TFLOP/s) of the shipped profiles `ids`, read once: the parts a prior's public
    timings ran on (your own profiles never change them)."""
    from .profiles import shipped_hardware

    return {i: peak_tflops(shipped_hardware()[i], precision) for i in ids}


def above_fitted_peaks(peak_tflops: float) -> bool:
    """Whether a part's peak is above the parts the media priors were fitted on (the H100), where their MFU
    curves stop: its image and video figures are upper bounds."""
    return peak_tflops > PEAK_RANGE[1] * 1.05


def mfu_by_peak(peak_tflops: float, a: float, b: float = PEAK_EXPONENT) -> float:
    """MFU = a x (peak / REFERENCE_PEAK)^-b with the peak held within PEAK_RANGE: big parts use less of their
    peak, and outside the measured parts the curve is not extrapolated."""
    clamped = min(max(peak_tflops, PEAK_RANGE[0]), PEAK_RANGE[1])
    return min(a * (clamped / REFERENCE_PEAK) ** -b, 0.9)
# DiT pipelines on accelerators in 16 bits take their MFU from dit_prior.py (by the part's peak and the
# transformer's size, fitted on public eager timings). Outside those timings (fp32, CPUs), and for F5-TTS, the
# MFU is 0.37: the median that four public batch-1 bf16 runs of FLUX.1-dev at 1024 px, 28 steps imply against
# this FLOP count (2,098 TFLOP per image): H100 6.71 s (0.316, xDiT docs/performance/flux.md@175e0bf) and 7.11 s
# (0.298), A100 15.65 s (0.430, varadrane1707/BenchmarkFlux README@35368df), L20 26.36 s (0.666,
# chengzeyi/ParaAttention doc/fastest_flux.md@4de137c).
DIT_PRIORS = {**DIFFUSION_PRIORS, "mfu": 0.37}
DIT_BASIS = ("fp32 and CPUs are outside the public DiT timings: assumed MFU 0.37 (the median that four public "
             "FLUX.1-dev GPU runs imply; sources in planner/media_model.py), interval +-50%; calibrate with your own runs")
TTS_PRIORS = {"mfu": 0.05, "t_call_s": 0.02, "runtime_reserve_gb": 1.0, "usable_memory_fraction": 0.9}
PRIOR_INTERVAL = 0.5


def _cached(key: dict, config, compute) -> dict:
    """A small JSON cache of FLOP counts, keyed by the shape, a hash of the model's configuration (an
    edited catalog entry is counted again) and the library versions."""
    import hashlib
    import importlib.metadata as md

    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]
    key = {**key, "config": digest, "torch": md.version("torch")}
    return cached_json("flops", "-".join(str(v) for v in key.values()).replace("/", "_") + ".json", compute)


def _dit_ids() -> list[str]:
    return catalog_ids("dit")


def is_dit(model: str, family: str | None = None) -> bool:
    """A DiT pipeline: a catalog id, or a record's pipeline family (a local DiT folder's, `flux` ...)."""
    from ..catalog import architectures

    return model in _dit_ids() or family in {e["family"] for e in architectures("dit").values()}


def fit_group(kind: str, model: str, family: str | None = None) -> str:
    """The calibration key's first part: media fits are kept per architecture family, so a DiT
    pipeline's MFU is fitted apart from the UNet pipelines' (`dit`), other models by kind."""
    return "dit" if kind == "diffusion" and is_dit(model, family) else kind


def diffusion_ids(kind: str = "diffusion") -> list[str]:
    """The diffusion models predict and plan know: the runnable pipelines and the DiT pipelines."""
    return catalog_ids("diffusion") + _dit_ids()


def catalog_ids(kind: str) -> list[str]:
    """The model ids of a kind's built-in architecture catalog (workloads/architectures/<kind>.yaml)."""
    from ..catalog import architectures

    return list(architectures(kind))


def _catalogs() -> dict[str, list[str]]:
    """Kind -> the model ids of its planner catalog."""
    from ..kinds import KINDS
    from ..kinds.base import load_ref

    return {name: list(load_ref(k.planner_models)(name)) for name, k in KINDS.items() if k.planner_models}


def catalog_kind(model: str) -> str | None:
    """The kind whose planner catalog holds the model id, or None."""
    return next((name for name, ids in _catalogs().items() if model in ids), None)


def kind_of(model: str) -> str:
    """The kind whose planner catalog holds the model id, or whose planner reads the local model it names
    (an LLM's folder with config.json)."""
    from ..kinds import KINDS
    from ..kinds.base import load_ref

    if kind := catalog_kind(model):
        return kind
    for name, k in KINDS.items():
        if k.planner_paths and load_ref(k.planner_paths)(model):
            return name
    known = _catalogs()
    catalog = "; ".join(f"{name}: {', '.join(ids)}" for name, ids in known.items())
    paths = [name for name, k in KINDS.items() if k.planner_paths]
    raise UserError(f"unknown model '{model}'{closest(model, [i for ids in known.values() for i in ids])}; "
                    f"the planner catalog holds {catalog}"
                    + (f"; or give the path of a local {' or '.join(paths)} model folder with config.json"
                       if paths else ""))


FLOP_TABLE = "diffusion_flops.json"
TABLE_RESOLUTIONS = (256, 512, 768, 1024)


def _base_count(model: str, resolution: int) -> dict:
    """One batch-1 image without guidance: FLOPs of the text encoder(s), of one UNet step and of the VAE
    decode, and the pipeline's parameters; from the table shipped for the built-in pipelines (counted
    once by write_flop_table), else counted on the meta-device model and cached on disk."""
    import json

    from ..paths import data_dir

    table = json.loads((data_dir("workloads") / "reference" / FLOP_TABLE).read_text())
    if str(resolution) in table.get(model, {}):
        return table[model][str(resolution)]  # no torch import: plan stays fast
    if model in _dit_ids():
        from . import dit

        return _cached({"kind": "dit-base", "model": model, "res": resolution}, dit.catalog()[model],
                       lambda: dit.count(model, resolution))
    from ..workloads import diffusion as dw

    archs = dw.catalog()
    if model not in archs:
        raise UserError(f"unknown diffusion model '{model}'{closest(model, archs)}; known: {', '.join(archs)}")
    try:
        from ..spec.diffusion import DiffusionSpec
        spec = DiffusionSpec(arch=model, resolution=resolution, steps=1, guidance_scale=1.0)
        resolved = dw.resolve(spec)
    except MissingDependency:
        raise MissingDependency(f"{model} at {resolution} px is not in the shipped FLOP table, and counting it needs "
                                f"diffusers: {install_hint('diffusion')}") from None

    def count() -> dict:
        c = dw.count_flops(resolved, {"batch_size": 1, "resolution": resolution, "steps": 1}, False)
        return {"text": c["text_encode_flops"], "unet_per_step": c["unet_flops_per_step"],
                "vae": c["vae_decode_flops"], "params": c["pipeline_params"]}
    return _cached({"kind": "diffusion-base", "model": model, "res": resolution}, resolved.configs, count)


def write_flop_table(models: list[str] | None = None) -> None:
    """Count the built-in published pipelines and the DiT pipelines at the table's resolutions into the
    package data (minutes: the SDXL UNet at 1024 px takes the longest); `models` recounts only those,
    keeping the other entries."""
    import json

    from ..paths import data_dir
    from ..workloads import diffusion as dw

    path = data_dir("workloads") / "reference" / FLOP_TABLE
    table = {"note": "FLOPs of one batch-1 image without guidance, counted by torch.utils.flop_counter on the "
                     "meta-device pipeline (matmul, convolution, attention); written by "
                     "infra_bench.planner.media_model.write_flop_table()"}
    if models is not None:
        table = {**json.loads(path.read_text()), **table}
    path.write_text(json.dumps(table))
    published = [m for m, a in dw.catalog().items() if any((c or {}).get("params") for c in a.components.values())]
    from . import dit
    published += [m for m, e in dit.catalog().items() if any(c["params"] for c in e["components"].values())]
    for model in models if models is not None else published:
        table[model] = {str(r): _base_count(model, r) for r in TABLE_RESOLUTIONS}
    path.write_text(json.dumps(table, indent=1))


@lru_cache(maxsize=64)
def diffusion_unit(model: str, resolution: int, steps: int, guidance_scale: float) -> dict:
    """FLOPs per image and parameter count of a built-in pipeline at batch 1; guidance above 1 runs the
    text encoder and the UNet on two batches (negative and positive prompts)."""
    base = _base_count(model, resolution)
    evals = 2 if guidance_scale > 1 and base.get("cfg", True) else 1  # guidance-distilled DiTs: one pass
    text, unet, vae = base["text"] * evals, base["unet_per_step"] * evals, base["vae"]
    return {"text_encode_flops": text, "unet_flops_per_step": unet, "unet_evals_per_step": evals,
            "vae_decode_flops": vae, "flops_per_image": text + steps * unet + vae, "pipeline_params": base["params"],
            "flops_note": "torch.utils.flop_counter: matmul, convolution and attention FLOPs"}


# Families whose FLOPs per utterance are a quadratic in its tokens (attention over the text, linear layers,
# convolutions and the vocoder over frames a fixed number per token, no decoding loop): an utterance longer
# than the largest of these counts comes from the quadratic through the three, which is exact (VITS and
# FastSpeech2-Conformer at 256 and 400 tokens, 2026-12-06, and a test), where counting 2,000 tokens on the CPU
# took minutes.
QUADRATIC_TTS = ("vits", "fastspeech2")
QUADRATIC_COUNTS = (16, 32, 64)


@lru_cache(maxsize=64)
def tts_unit(model: str, text_len: int, frames_per_token: int) -> dict:
    """FLOPs per audio second, audio seconds per utterance and parameters of a built-in TTS model;
    counted once on a built model (torch; F5-TTS on the meta device) and cached on disk, so later
    plans import no torch."""
    def count() -> dict:
        import numpy as np
        import torch

        from ..spec.tts import TtsSpec
        from ..workloads import tts as tw

        archs = tw.catalog()
        if model not in archs:
            raise UserError(f"unknown tts model '{model}'{closest(model, archs)}; known: {', '.join(archs)}")
        spec = TtsSpec(arch=model, text_len=text_len, frames_per_token=frames_per_token)
        resolved = tw.resolve(spec)
        if resolved.family == "speecht5":  # its text positions are a table: a longer utterance failed in the count
            import transformers as tf

            most = tf.SpeechT5Config(**resolved.arch.config).max_text_positions
            if text_len > most:
                raise UserError(f"{model} takes at most {most:,} text tokens (its max_text_positions) and an utterance "
                                f"of {text_len:,} was asked: lower --text-len (text_len in a demand) to {most:,} or "
                                f"less, splitting longer text into several utterances")
        # F5-TTS on the meta device (no memory, no time: its 32 DiT steps would take minutes on a CPU)
        device = torch.device("meta" if resolved.family == "f5tts" else "cpu")
        m = tw.build_model(resolved, spec, device, torch.float32)
        audio_s = tw.expected_samples(resolved, spec, text_len) / resolved.sampling_rate

        def flops(n: int) -> float:  # one utterance of n tokens
            ids = tw.token_ids(resolved, spec, {"batch_size": 1, "text_len": n}).to(device)
            if resolved.family == "f5tts":
                from ..workloads import f5tts
                return f5tts.flops(m.model, ids, n * frames_per_token)
            return tw.count_flops(lambda: m(ids), 1.0)

        if resolved.family in QUADRATIC_TTS and text_len > max(QUADRATIC_COUNTS):
            per_s = float(np.polyval(np.polyfit(QUADRATIC_COUNTS, [flops(n) for n in QUADRATIC_COUNTS], 2),
                                     text_len)) / audio_s
        else:
            per_s = flops(text_len) / audio_s
        return {"flops_per_audio_s": per_s, "audio_s": audio_s, "params": sum(p.numel() for p in m.parameters())}
    from ..catalog import architectures

    return _cached({"kind": "tts", "model": model, "text_len": text_len, "fpt": frames_per_token},
                   architectures("tts").get(model), count)


@dataclass(frozen=True)
class MediaPrediction:
    kind: str                  # diffusion | tts
    model: str
    hardware: str
    precision: str
    fits: bool
    memory: dict
    latency_s: float | None    # diffusion: s/image; tts: s to synthesize one utterance
    rtf: float | None          # tts only
    units_per_s_per_device: float | None  # images/s or audio seconds/s, one request at a time
    flops_per_unit: float
    bound: str | None
    efficiency: dict
    interval: float
    calibrated: bool
    notes: list

    def to_dict(self) -> dict:
        return asdict(self)


def _check(hw: HardwareProfile, precision: str) -> float:
    if precision not in PRECISIONS:
        raise UserError(f"precision '{precision}' is not offered for diffusion or tts; use {', '.join(PRECISIONS)}")
    peak = peak_tflops(hw, precision)
    if not peak:  # suggest a precision it has a peak for: "try --precision bf16" was given for bf16 itself
        other = next((p for p in ("bf16", "fp16", "fp32") if p != precision and peak_tflops(hw, p)), None)
        fix = f"try --precision {other}" if other else \
            f"it publishes none of {', '.join(PRECISIONS)}; add one with --profiles DIR"
        raise UserError(f"{hw.id} has no published {precision} peak; {fix} (see infra-bench profiles show {hw.id})")
    if not hw.memory_gb:
        raise UserError(f"{hw.id} lacks a memory size in its profile; add it with --profiles DIR")
    return peak * 1e12


def _efficiency(priors: dict, overhead: str, calibration: dict | None) -> dict:
    """The priors, with a calibrated MFU and the fixed overhead it was fitted with (scale 0 or 1)."""
    if not calibration:
        return dict(priors)
    return {**priors, "mfu": calibration["mfu"], overhead: priors[overhead] * calibration["overhead_scale"]}


def _labels(calibration: dict | None, basis: str | None = None) -> tuple[float, list[str]]:
    if calibration:
        return calibration["interval"], [f"calibrated MFU {calibration['mfu']:.3f} from {calibration['n']} "
                                         f"measurement(s) ({calibration['key']}); interval +-{calibration['interval']:.0%}",
                                         *filter(None, [calibration.get("busy")])]
    return PRIOR_INTERVAL, [basis or "efficiencies are assumed priors (no published diffusion/TTS calibration "
                                     "point): interval +-50%; calibrate with your own runs"]


def _predict(kind: str, model: str, hw: HardwareProfile, precision: str, peak: float, params: int, work: float,
             flops_per_unit: float, fixed_s: float, priors: dict, overhead: str,
             calibration: dict | None, basis: str | None = None) -> MediaPrediction:
    """The shared part: efficiencies and labels, the memory gate, and time = work / (peak x MFU)
    plus the fixed overhead. `work` is the FLOPs of one request; `latency_s` is its time."""
    eff = _efficiency(priors, overhead, calibration)
    interval, notes = _labels(calibration, basis)
    notes += [n for n in [borrowed_peak(hw, precision)] if n]
    if calibration is None and kind != "tts" and above_fitted_peaks(peak / 1e12):
        notes.append(f"{hw.id}'s {precision} peak {peak / 1e12:,.0f} TFLOP/s is above the parts these priors were "
                     f"fitted on (at most {PEAK_RANGE[1]:g}, the H100); the MFU is not extrapolated, so treat this as "
                     f"an upper bound: ML.ENERGY's B200 image and video runs, an acceptance check never fitted, ran at "
                     f"0.5-0.7 times the rate such a prediction gives (docs/planner.md)")
    weights, reserve = params * BYTES_PER_PARAM[precision], eff["runtime_reserve_gb"] * 1e9
    memory = {"weights_gb": weights / 1e9, "runtime_reserve_gb": reserve / 1e9, "total_gb": (weights + reserve) / 1e9,
              "usable_gb": hw.memory_bytes / 1e9 * eff["usable_memory_fraction"]}
    base = dict(kind=kind, model=model, hardware=hw.id, precision=precision, memory=memory,
                flops_per_unit=flops_per_unit, efficiency=eff, interval=interval, calibrated=calibration is not None,
                notes=notes)
    if memory["total_gb"] > memory["usable_gb"]:
        notes.append(f"does not fit: {memory['total_gb']:.1f} GB needed, {memory['usable_gb']:.1f} GB usable")
        return MediaPrediction(fits=False, latency_s=None, rtf=None, units_per_s_per_device=None, bound=None, **base)
    compute = work / (peak * eff["mfu"])
    fixed = fixed_s * eff[overhead] / priors[overhead] if priors[overhead] else 0.0
    latency = compute + fixed
    return MediaPrediction(fits=True, latency_s=latency, rtf=None, units_per_s_per_device=1 / latency,
                           bound="compute" if compute >= fixed else "fixed_overhead", **base)


def diffusion_priors(model: str, hw: HardwareProfile, precision: str, peak: float) -> tuple[dict, str | None]:
    """A diffusion pipeline's priors and their basis: DiT pipelines the curve of dit_prior.py (MFU by the part's
    peak and the transformer's size), UNet pipelines that of unet_prior.py (MFU by the part's peak, per-step
    time), both from public timings."""
    from . import unet_prior

    if model in _dit_ids():
        from . import dit_prior

        if not prior_covers(hw, precision):
            return DIT_PRIORS, DIT_BASIS
        work = dit_prior.pass_work(model)
        return {**DIT_PRIORS, "mfu": dit_prior.mfu_prior(peak / 1e12, work)}, dit_prior.basis(work)
    if not prior_covers(hw, precision):
        basis = ("fp32 and CPUs are outside the public UNet timings: assumed MFU 0.2 and 2 ms per step, interval "
                 "+-50%; calibrate with your own runs")
        return DIFFUSION_PRIORS, basis
    return {**DIFFUSION_PRIORS, "mfu": unet_prior.mfu_prior(peak / 1e12), "t_step_s": unet_prior.T_STEP}, \
        unet_prior.basis()


def diffusion_point(m: dict, cell: dict) -> tuple[float, float, float] | str:
    """A diffusion record as (FLOPs, seconds, prior fixed seconds) for calibration, or why it cannot be."""
    from . import unet_prior

    if cell.get("batch_size") != 1:
        return "only batch-1 diffusion cells calibrate"
    model = cell.get("model")
    t_step = DIT_PRIORS["t_step_s"] if is_dit(model, cell.get("family")) else unet_prior.T_STEP if cell.get("accelerator") \
        and cell.get("dtype") in ("fp16", "bf16") else DIFFUSION_PRIORS["t_step_s"]
    return m["flops_per_image"], m["image_s"]["mean"], m["denoise_steps_run"] * t_step


def tts_point(m: dict, cell: dict) -> tuple[float, float, float] | str:
    """A TTS record as (FLOPs, seconds, prior fixed seconds) for calibration, or why it cannot be."""
    if cell.get("batch_size") != 1:
        return "only batch-1 tts cells calibrate"
    if not m.get("flops_per_audio_s"):
        return "no FLOP count in the record"
    audio = m["audio_s"]["mean"]
    return m["flops_per_audio_s"] * audio, m["rtf"]["mean"] * audio, tts_priors(cell.get("model"))[0]["t_call_s"]


def tts_priors(model: str | None) -> tuple[dict, str | None]:
    """A FLOP-priced TTS model's priors and their basis: the assumed TTS ones, or for F5-TTS (a diffusion
    transformer) the DiT pipelines' MFU and per-step time for each of its steps. Calibration takes the
    same fixed time off a record that predict adds."""
    from ..catalog import architectures

    entry = architectures("tts").get(model) or {}
    if entry.get("family") != "f5tts":
        return TTS_PRIORS, None
    nfe = entry["config"]["nfe"]
    basis = (f"F5-TTS is a diffusion transformer: it takes the flat DiT MFU {DIT_PRIORS['mfu']} "
             f"(the median of public FLUX.1-dev runs) and {DIT_PRIORS['t_step_s'] * 1e3:g} ms per each of its {nfe} steps, "
             f"assumptions with no public F5 timing behind them: interval +-50%; calibrate with your own runs")
    return {**TTS_PRIORS, "mfu": DIT_PRIORS["mfu"], "t_call_s": nfe * DIT_PRIORS["t_step_s"]}, basis


ACTIVATION_MAPS = 3     # full-resolution feature maps alive at once in the VAE decoder's last up block
VIDEO_DECODE_FRAMES = 4  # a video VAE decodes a few frames at a time (causal chunks), not the whole clip
MAX_BATCH = 64


def activation_gb(model: str, width: int, height: int, precision: str, video: bool = False) -> float:
    """An estimate of the activation memory one image (or video) adds to a batch: the VAE decoder's last
    up block, ACTIVATION_MAPS feature maps of its first channel count at full resolution (for a video,
    VIDEO_DECODE_FRAMES frames of them); the denoiser's own activations are smaller at these sizes."""
    from ..catalog import architectures

    for kind in ("dit", "video", "diffusion"):
        entry = architectures(kind).get(model)
        if entry:
            c = entry["components"]["vae"]["config"]
            break
    channels = (c.get("block_out_channels") or [c.get("base_dim", 128)])[0]
    frames = VIDEO_DECODE_FRAMES if video else 1
    return ACTIVATION_MAPS * channels * width * height * frames * BYTES_PER_PARAM.get(precision, 2.0) / 1e9


def batched(p: MediaPrediction, batch: int | None, fixed_s: float, act_gb: float) -> MediaPrediction:
    """Throughput mode: `batch` images (or videos) per call, each adding `act_gb` of activations; the compute
    scales with the batch, the fixed per-step time only in part (batch_prior.PHI, fitted on public batch
    sweeps). `batch` None: the largest that fits (at most MAX_BATCH). The latency is the batch's: every
    image of it arrives at its end."""
    from . import batch_prior

    if not p.fits:
        return p
    room = p.memory["usable_gb"] - p.memory["total_gb"]
    fitting = max(1, min(MAX_BATCH, int(room // act_gb))) if act_gb > 0 else MAX_BATCH
    b = fitting if batch is None else batch
    compute = p.latency_s - fixed_s
    memory = {**p.memory, "activations_gb": b * act_gb, "total_gb": p.memory["total_gb"] + b * act_gb}
    notes = [*p.notes, f"batch {b}: compute x {b}; of the {fixed_s:.2f} s of fixed per-step time "
                       f"{batch_prior.PHI:.0%} grows with the batch (fitted on public batch sweeps, leave-one-source-"
                       f"out error of the throughput gain 12% median, 26% worst); activations estimated at "
                       f"{act_gb:.2f} GB each (the VAE decoder's last full-resolution feature maps), so at most "
                       f"{fitting} fit" + (" (the largest that fits, up to 64)" if batch is None else "")]
    if memory["total_gb"] > memory["usable_gb"]:
        notes.append(f"does not fit: {memory['total_gb']:.1f} GB needed at batch {b}, {memory['usable_gb']:.1f} GB "
                     f"usable; at most {fitting} fit")
        return replace(p, fits=False, latency_s=None, units_per_s_per_device=None, memory=memory, notes=notes)
    latency = b * batch_prior.per_image(compute, fixed_s, b)
    bound = "compute" if b * compute >= latency - b * compute else "fixed_overhead"
    return replace(p, latency_s=latency, units_per_s_per_device=b / latency, memory=memory, notes=notes, bound=bound,
                   efficiency={**p.efficiency, "batch": b})


def at_batch(p: MediaPrediction, model: str, width: int, height: int, steps: int, batch: int | None,
             video: bool = False) -> MediaPrediction:
    """`p`, a batch-1 prediction of `steps` steps, at `batch` images or videos per call (None: the largest that
    fits), as `predict --batch B` and `--max-throughput` give it: batched() with the fixed per-step time and
    the activations of one more image or video."""
    return batched(p, batch, steps * p.efficiency["t_step_s"],
                   activation_gb(model, width, height, p.precision, video=video))


def quantized(model: str, hw: HardwareProfile, precision: str, width: int, height: int, frames: int,
              fixed_s: float, bf16: MediaPrediction) -> MediaPrediction:
    """The bf16 prediction of a diffusion transformer at fp8 or int8 (W8A8): its compute time divided by
    the quant_prior speed-up; the fixed per-step time and the memory (counted at 16 bits: text encoders
    and VAE stay there) unchanged."""
    from . import quant_prior

    if not bf16.fits:
        return replace(bf16, precision=precision)
    share = quant_prior.linear_share(model, width, height, frames)
    s, f, r = quant_prior.speedup(share, hw, precision)
    latency = (bf16.latency_s - fixed_s) / s + fixed_s
    why = (f"{precision} W8A8 on the transformer's linear layers: {s:.2f}x the bf16 compute (Amdahl: {f:.0%} of the "
           f"bf16 time in those layers, {share:.0%} of a pass's FLOPs, sped up {r:.2f}x; planner/quant_prior.py, fitted "
           f"on 7 public same-stack comparisons, leave-one-source-out error of the speed-up 5% median, 15% worst); "
           f"memory counted at 16 bits")
    notes = [*bf16.notes, why]
    return replace(bf16, precision=precision, latency_s=latency, units_per_s_per_device=1 / latency, notes=notes,
                   efficiency={**bf16.efficiency, "quant_speedup": s, "quantized_time_share": f,
                               "quantized_layer_speedup": r})


def predict_diffusion(model: str, hw: HardwareProfile, precision: str = "fp16", resolution: int = 512,
                      steps: int = 30, guidance_scale: float = 7.5, calibration: dict | None = None) -> MediaPrediction:
    """Seconds per image at batch 1 (batched() gives a batch's throughput); fp8 and int8 for diffusion
    transformers from their bf16 prediction (quantized())."""
    from . import quant_prior

    if precision in quant_prior.PRECISIONS:
        quant_prior.linear_share(model, resolution, resolution)  # a UNet pipeline: a one-line error first
        bf16 = predict_diffusion(model, hw, "bf16", resolution, steps, guidance_scale, calibration)
        return quantized(model, hw, precision, resolution, resolution, 1, steps * bf16.efficiency["t_step_s"], bf16)
    peak = _check(hw, precision)  # before the FLOP count, which may take seconds
    unit = diffusion_unit(model, resolution, steps, guidance_scale)
    priors, basis = diffusion_priors(model, hw, precision, peak)
    return _predict("diffusion", model, hw, precision, peak, unit["pipeline_params"], unit["flops_per_image"],
                    unit["flops_per_image"], steps * priors["t_step_s"], priors, "t_step_s", calibration, basis)


def predict_tts(model: str, hw: HardwareProfile, precision: str = "fp16", text_len: int = 60,
                frames_per_token: int = 5, calibration: dict | None = None) -> MediaPrediction:
    """RTF of one utterance of `text_len` tokens; non-streaming, so first audio = synthesis time."""
    from . import speech_lm

    if speech_lm.is_speech_lm(model):
        raise UserError(f"{model} is a speech LM, whose time is its frame-by-frame generation, not a FLOP count: "
                        f"use infra_bench.planner.speech_lm.predict")
    peak = _check(hw, precision)
    unit = tts_unit(model, text_len, frames_per_token)
    priors, basis = tts_priors(model)
    p = _predict("tts", model, hw, precision, peak, unit["params"], unit["flops_per_audio_s"] * unit["audio_s"],
                 unit["flops_per_audio_s"], priors["t_call_s"], priors, "t_call_s", calibration, basis)
    if not p.fits:
        return p
    p.notes.append(f"utterance of {text_len} tokens = {unit['audio_s']:.2f} s of audio")
    rtf = p.latency_s / unit["audio_s"]
    return replace(p, rtf=rtf, units_per_s_per_device=1 / rtf)
