"""Predictions for text-to-video pipelines: seconds per video from the FLOPs counted on the meta-device
build, the part's peak and an MFU, plus a fixed time per step; calibrated from your own runs like diffusion.

The MFU prior depends on the part: public single-GPU runs show big parts using less of their peak
(attention-heavy steps at 30-120k tokens, the rest of the step not on tensor cores). It is
`MFU = A · (peak / 165.2 TFLOP/s)^-B`, fitted to Wan2.1's four official single-GPU timings and checked on
HunyuanVideo's five public timings, which it never saw (`held_out()`; docs/planner.md has the table).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from ...errors import UserError
from ...planner import media_model as mm
from ...planner.demand import DiffusionSlo, UnitRate, _DiffusionPrecisions
from ...planner.profiles import HardwareProfile

FLOP_TABLE = "video_flops.json"
REFERENCE_PEAK = mm.REFERENCE_PEAK  # TFLOP/s, bf16 dense: the RTX 4090 of the smallest Wan run


@dataclass(frozen=True)
class Measured:
    model: str
    hardware: str
    size: str
    frames: int
    steps: int
    seconds: float
    source: str


WAN = "Wan2.1 README, Computational Efficiency table (assets/comp_effic.png @9737cba), bf16, single GPU, --offload_model True"
XDIT = "xDiT docs/performance/hunyuanvideo.md @0058bb0, single GPU, bf16"
# The fit: Wan2.1's official single-GPU timings (50 steps, guidance 5: two passes per step).
FIT = (Measured("wan2.1-t2v-1.3b", "nv_rtx4090", "832x480", 81, 50, 261.4, WAN + " --t5_cpu"),
       Measured("wan2.1-t2v-14b", "nv_h800_sxm", "1280x720", 81, 50, 1837.9, WAN),
       Measured("wan2.1-t2v-14b", "nv_a800_80g_sxm", "1280x720", 81, 50, 3342.6, WAN),
       Measured("wan2.1-t2v-14b", "nv_h20", "1280x720", 81, 50, 6935.5, WAN))
# Held out: HunyuanVideo's public single-GPU timings (embedded guidance: one pass per step).
HELD_OUT = (Measured("hunyuanvideo", "nv_h100_sxm", "1280x720", 129, 50, 1904.08, XDIT + " (official repo)"),
            Measured("hunyuanvideo", "nv_h100_sxm", "960x960", 129, 50, 1735.01, XDIT + " (official repo)"),
            Measured("hunyuanvideo", "nv_h20", "1280x720", 129, 50, 6639.17, XDIT + " (official repo)"),
            Measured("hunyuanvideo", "nv_l20", "1280x720", 129, 50, 6043.88, XDIT + " (diffusers, flash-attn 2.7.2)"),
            Measured("hunyuanvideo", "nv_l20", "1280x720", 129, 30, 3675.71,
                     "huggingface.co/docs/diffusers/optimization/para_attn (diffusers baseline, no optimisation)"))
GUIDANCE = {"wan2.1-t2v-1.3b": 5.0, "wan2.1-t2v-14b": 5.0, "hunyuanvideo": 6.0}
A, B = 0.6654, mm.PEAK_EXPONENT  # fit_prior() on FIT; a test recomputes them


def base(model: str, width: int, height: int, frames: int) -> dict:
    """FLOPs of one video's phases with one pass per step, and the parameters: from the shipped table for
    the catalog's full shapes, else counted on the meta device once and cached."""
    from ...paths import data_dir
    from . import workload as vw

    table = json.loads((data_dir("workloads") / "reference" / FLOP_TABLE).read_text())
    key = f"{width}x{height}x{frames}"
    if key in table.get(model, {}):
        return table[model][key]
    return mm._cached({"kind": "video-base", "model": model, "w": width, "h": height, "f": frames},
                      vw.catalog()[model], lambda: vw.count(model, width, height, frames))


def write_flop_table() -> None:
    """Count every full-size catalog model at its default shape and every shape of the public points
    into the package data (minutes on a CPU)."""
    from ...paths import data_dir
    from . import workload as vw
    from .spec import size

    shapes: dict[str, set] = {}
    for m, e in vw.catalog().items():
        if all(c["params"] for c in e["components"].values()):
            d = e["default"]
            shapes.setdefault(m, set()).add((*size(d["resolution"]), d["frames"]))
    for p in FIT + HELD_OUT:
        shapes.setdefault(p.model, set()).add((*size(p.size), p.frames))
    table = {"note": "FLOPs of one video with one transformer pass per step, counted by torch.utils.flop_counter on "
                     "the meta-device pipeline; written by infra_bench.kinds.video.planner.write_flop_table()"}
    for m, keys in sorted(shapes.items()):
        table[m] = {f"{w}x{h}x{f}": vw.count(m, w, h, f) for w, h, f in sorted(keys)}
    (data_dir("workloads") / "reference" / FLOP_TABLE).write_text(json.dumps(table, indent=1))


def flops_per_video(model: str, width: int, height: int, frames: int, steps: int, guidance_scale: float) -> dict:
    b = base(model, width, height, frames)
    passes = 2 if guidance_scale > 1 and b["cfg"] else 1
    return {"flops_per_video": passes * b["text"] + steps * passes * b["unet_per_step"] + b["vae"],
            "params": b["params"], "passes": passes}


def mfu_prior(peak_tflops: float) -> float:
    return mm.mfu_by_peak(peak_tflops, A, B)


def _point(p: Measured) -> tuple[float, float]:
    """(peak TFLOP/s, the MFU the measurement implies) of a public point."""
    from ...planner.profiles import load_hardware
    from .spec import size

    peak = mm.peak_tflops(load_hardware()[p.hardware], "bf16")
    f = flops_per_video(p.model, *size(p.size), p.frames, p.steps, GUIDANCE[p.model])["flops_per_video"]
    return peak, f / (p.seconds * peak * 1e12)


def fit_prior() -> tuple[float, float]:
    """(A, B) of the MFU curve: least squares on log MFU against log peak over FIT."""
    import numpy as np

    x, y = zip(*(_point(p) for p in FIT))
    slope, intercept = np.polyfit(np.log(np.array(x) / REFERENCE_PEAK), np.log(y), 1)
    return round(float(np.exp(intercept)), 4), round(float(-slope), 4)


@lru_cache(maxsize=1)
def held_out() -> list[dict]:
    """Each held-out point: measured and predicted seconds (the shipped prior, no overhead) and the error."""
    out = []
    for p in HELD_OUT:
        peak, implied = _point(p)
        predicted = p.seconds * implied / mfu_prior(peak)
        out.append({"point": p, "implied_mfu": implied, "prior_mfu": mfu_prior(peak), "predicted_s": predicted,
                    "error": predicted / p.seconds - 1})
    return out


def _basis() -> str:
    errs = [abs(h["error"]) for h in held_out()]
    return (f"MFU prior {A} x (peak / {REFERENCE_PEAK} TFLOP/s)^-{B}, fitted to Wan2.1's 4 official single-GPU timings; "
            f"on HunyuanVideo's 5 public timings it never saw the error is {min(errs):.0%}-{max(errs):.0%} "
            f"(docs/planner.md); interval +-50%; calibrate with your own runs")


def predict(model: str, hw: HardwareProfile, precision: str, width: int, height: int, frames: int, steps: int,
            guidance_scale: float, calibration: dict | None = None) -> mm.MediaPrediction:
    """Seconds per video; fp8 and int8 (W8A8) from the bf16 prediction (media_model.quantized)."""
    from ...planner import quant_prior

    if precision in quant_prior.PRECISIONS:
        bf16 = predict(model, hw, "bf16", width, height, frames, steps, guidance_scale, calibration)
        return mm.quantized(model, hw, precision, width, height, frames, steps * bf16.efficiency["t_step_s"], bf16)
    peak = mm._check(hw, precision)
    u = flops_per_video(model, width, height, frames, steps, guidance_scale)
    priors = {**mm.DIT_PRIORS, "mfu": mfu_prior(peak / 1e12)}
    return mm._predict("video", model, hw, precision, peak, u["params"], u["flops_per_video"], u["flops_per_video"],
                       steps * priors["t_step_s"], priors, "t_step_s", calibration, None if calibration else _basis())


def settings(model: str, text: str | None, frames: int | None, steps: int | None, guidance: float | None,
             where: str = "--") -> tuple[int, int, int, int, float]:
    """(width, height, frames, steps, guidance) of a request, the model's defaults where not given;
    a size or frame count the model cannot take is a one-line error (`where` prefixes the field)."""
    from . import workload as vw
    from .spec import SIZE, size

    d = vw.catalog()[model]["default"]
    text = text or d["resolution"]
    if not SIZE.fullmatch(text):
        raise UserError(f"{where}size {text}: expected WIDTHxHEIGHT in pixels, e.g. 832x480")
    (w, h), frames = size(text), frames or d["frames"]
    r = vw.ResolvedVideo(model, vw.catalog()[model], {})
    if (frames - 1) % r.temporal:
        raise UserError(f"{where}frames {frames}: {model} takes {r.temporal}k+1 frames; use e.g. "
                        f"{frames - (frames - 1) % r.temporal}")
    if w % (2 * r.spatial) or h % (2 * r.spatial):
        raise UserError(f"{where}size {text}: each side must be a multiple of {2 * r.spatial} for {model}")
    return w, h, frames, steps or d["steps"], d["guidance_scale"] if guidance is None else guidance


def predict_hook(model: str, hw: HardwareProfile, o: dict, data: dict | None, source: str | None):
    """`infra-bench predict` for a video model: --size WIDTHxHEIGHT, --frames, --steps, --guidance-scale
    (each the model's default when not given)."""
    from ...planner import calibration as cal

    w, h, frames, steps, guidance = settings(model, o.get("size"), o.get("frames"), o.get("steps"),
                                             o.get("guidance_scale"))
    precision = o["precision"] or "bf16"
    fitted = cal.for_media(data, "video", hw.id, None, precision) if data else None
    p = predict(model, hw, precision, w, h, frames, steps, guidance, fitted)
    if data and fitted is None:
        p.notes.append(f"{source} has no video fit for {hw.id} at {precision}; using priors")
    if o.get("concurrency", 1) > 1 or o.get("max_throughput"):
        p = mm.at_batch(p, model, w, h, steps, None if o.get("max_throughput") else o["concurrency"], video=True)
    p.notes.insert(0, f"{w}x{h}, {frames} frames, {steps} steps, guidance {guidance}")
    return p, _text(p, hw, frames)


def _text(p: mm.MediaPrediction, hw: HardwareProfile, frames: int) -> str:
    from ...report.predictions import media_text

    def result(p) -> str:
        lo, hi = p.latency_s * (1 - p.interval), p.latency_s * (1 + p.interval)
        b = p.efficiency.get("batch", 1)
        per = f"s per batch of {b} {p.latency_s:.1f} ({lo:.1f}-{hi:.1f}), videos/s {p.units_per_s_per_device:.4f}" \
            if b > 1 else f"s/video {p.latency_s:.1f} ({lo:.1f}-{hi:.1f})"
        return (f"{per}, s/frame {p.latency_s / (frames * b):.3f}; "
                f"{p.flops_per_unit / 1e15:.2f} PFLOP per video; bound by {p.bound.replace('_', ' ')}")
    return media_text(p, hw, result)


def calibration_point(m: dict, cell: dict) -> tuple[float, float, float] | str:
    """A video record as (FLOPs, seconds, prior fixed seconds) for calibration, or why it cannot be."""
    if cell.get("batch_size") != 1:
        return "only batch-1 video cells calibrate"
    return m["flops_per_video"], m["video_s"]["mean"], m["denoise_steps_run"] * mm.DIT_PRIORS["t_step_s"]


# --- the demand service ------------------------------------------------------------------------

class VideoTraffic(UnitRate):
    RATES: ClassVar[tuple[str, str]] = ("videos_per_hour", "videos_per_s")
    videos_per_hour: float | None = Field(default=None, gt=0)
    videos_per_s: float | None = Field(default=None, gt=0)


class VideoService(_DiffusionPrecisions):
    """Text-to-video requests at one size, length and step count, under a latency SLO; each video runs
    on one device at a time (sequence parallelism across devices is not modelled)."""
    kind: Literal["video"] = "video"
    precision: list[str] = Field(default_factory=lambda: ["bf16"])
    size: str | None = Field(default=None, description="WIDTHxHEIGHT in pixels (default: the model's)")
    frames: int | None = Field(default=None, ge=1)
    steps: int | None = Field(default=None, ge=1)
    guidance_scale: float | None = Field(default=None, ge=0)
    traffic: VideoTraffic
    slo: DiffusionSlo  # p95 seconds from request to finished video, queueing included

    cost_unit: ClassVar[tuple[str, float]] = ("video", 1.0)

    @model_validator(mode="after")
    def _takes_this_request(self):
        from . import workload as vw

        if self.model in vw.catalog():  # an unknown model is refused by plan, with the catalog
            try:
                settings(self.model, self.size, self.frames, self.steps, self.guidance_scale, "")
            except UserError as e:
                raise ValueError(str(e)) from None
        return self

    def options(self, label, hw, headroom, redundancy, calibration, node, replicas) -> list:
        return [option(self, label, hw, p, headroom, redundancy, calibration) for p in self.precision]


def option(svc: VideoService, label: str, hw: HardwareProfile, precision: str, headroom: float, redundancy: int,
           calibration: dict | None):
    """One video at a time per device, as images are (sizing.one_at_a_time)."""
    from ...planner import calibration as cal
    from ...planner.sizing import Option, _gaps, _lacks, one_at_a_time

    o = Option(label, "video", precision, 1, False, unit="videos/s")
    o.gaps = _gaps(hw, precision, bandwidth=False)
    if o.gaps:
        o.reason = _lacks(o.gaps)
        return o
    w, h, frames, steps, guidance = settings(svc.model, svc.size, svc.frames, svc.steps, svc.guidance_scale, "")
    fitted = cal.for_media(calibration, "video", hw.id, None, precision) if calibration else None
    p = predict(svc.model, hw, precision, w, h, frames, steps, guidance, fitted)
    o.fit = cal.label(fitted) if p.calibrated else "priors (MFU by peak, docs/planner.md)"
    return one_at_a_time(o, p, svc, "video", f" of {frames} frames at {w}x{h}", headroom, redundancy)
