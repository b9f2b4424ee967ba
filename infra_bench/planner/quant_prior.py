"""fp8 and int8 (W8A8) diffusion transformers: how much faster than bf16, from public measurements.

Quantizing a DiT speeds up its linear layers only: attention, norms, the text encoders and the VAE stay
in 16 bits. So the speed-up is Amdahl's:

    S = 1 / ((1 - f) + f / r)
    f = min(1, K x m(peak)) x L      the share of the bf16 time in the quantized layers
    r = 1 + RHO x (q / b - 1)        the realized speed-up of those layers

L is the linear layers' share of one denoiser pass's FLOPs (counted on the meta-device model: FLUX at
1024 px 0.80, Wan2.1-14B at 720p 0.28, where attention dominates), m(peak) the shared MFU-by-peak
curve (media_model.mfu_by_peak: a part with a lower peak spends more of its time in matmuls), q / b
the part's fp8 (or int8) to bf16 peak ratio. K and RHO are fitted, least squares in logs, to seven
public same-stack comparisons (workloads/reference/diffusion_quant.csv, each with its source: L20,
H20, H100, H200 and B200; FLUX.1, SD3.5-large, Qwen-Image, Wan2.1-14B). Leaving each source out in
turn, the median error of S is 5%, the worst 15% (`held_out()`, docs/planner.md). Not used: the
diffusers blog posts and MLPerf, which are the acceptance check, and comparisons that change more
than the precision (TensorRT against PyTorch, or torch.compile added with the quantization).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from ..errors import UserError
from .profiles import HardwareProfile

PRECISIONS = ("fp8", "int8")
DATA = "diffusion_quant.csv"
K, RHO = 1.0374, 0.8018  # fit() on the shipped points; a test recomputes them


@dataclass(frozen=True)
class Point:
    model: str
    width: int
    height: int
    frames: int
    steps: int
    hardware: str
    precision: str
    bf16_s: float
    quant_s: float
    linear_share: float  # linear_share() of its shape, shipped (a test recounts one)
    source: str

    @property
    def speedup(self) -> float:
        return self.bf16_s / self.quant_s

    @property
    def origin(self) -> str:
        """The publication, for leaving one out: its repository or site."""
        return self.source.split()[0]


def points() -> list[Point]:
    from ..paths import reference_rows

    out = []
    for r in reference_rows(DATA):
        w, h = (int(v) for v in r["size"].split("x"))
        out.append(Point(r["model"], w, h, int(r["frames"]), int(r["steps"]), r["hardware"], r["precision"],
                         float(r["bf16_s"]), float(r["quant_s"]), float(r["linear_share"]), r["source"]))
    return out


@lru_cache(maxsize=64)
def linear_share(model: str, width: int, height: int, frames: int = 1) -> float:
    """The share of one denoiser pass's FLOPs outside attention (the layers W8A8 quantizes), counted on
    the meta device and cached on disk."""
    from ..catalog import architectures
    from .media_model import _cached

    video = model in architectures("video")
    entry = architectures("video" if video else "dit").get(model)
    if entry is None:
        raise UserError(f"fp8/int8 priors cover diffusion transformers (DiT images and videos); {model} is a UNet "
                        f"pipeline: use --precision fp16 or bf16")
    key = {"kind": "linear-share", "model": model, "w": width, "h": height, "f": frames}
    return _cached(key, entry, lambda: {"share": _count_share(model, width, height, frames, video)})["share"]


def _count_share(model: str, width: int, height: int, frames: int, video: bool) -> float:
    import torch

    from ..measure.flops import attention_share

    if video:
        from ..kinds.video import workload as vw

        e, tr = vw.catalog()[model], vw.build(model, "transformer")
        with torch.device("meta"):
            kw = vw._transformer_inputs(e, tr, torch.zeros(1, *vw.ResolvedVideo(model, e, {}).latent_shape(
                width, height, frames)))
        return 1.0 - attention_share(lambda: tr(**kw))
    from . import dit

    if width != height:
        raise UserError(f"{model}: image sizes are square here ({width}x{height} asked)")
    m = dit.build(model, "transformer")
    kw = dit.transformer_inputs(model, m, 1, width)
    return 1.0 - attention_share(lambda: m(**kw))


def _speedup(share: float, peak_bf16: float, peak_q: float, k: float, rho: float) -> tuple[float, float, float]:
    from .media_model import mfu_by_peak

    f = min(1.0, k * mfu_by_peak(peak_bf16, 1.0)) * share
    r = 1.0 + rho * (peak_q / peak_bf16 - 1.0)
    return 1.0 / ((1.0 - f) + f / r), f, r


def speedup(share: float, hw: HardwareProfile, precision: str) -> tuple[float, float, float]:
    """(S, f, r) on `hw` at `precision`; a part without a published peak for it is a one-line error."""
    from .iteration import peak_tflops

    b, q = peak_tflops(hw, "bf16"), peak_tflops(hw, precision)
    if not b or not q:
        raise UserError(f"{hw.id} has no published {'bf16' if not b else precision} peak, which the {precision} prior "
                        f"scales from; use --precision bf16 (see infra-bench profiles show {hw.id})")
    return _speedup(share, b, q, K, RHO)


def _log_errors(params, pts: list[tuple[Point, float, float, float]]) -> list[float]:
    k, rho = params
    return [math.log(_speedup(s, b, q, k, rho)[0] / p.speedup) for p, s, b, q in pts]


def _prepared(pts: list[Point]) -> list[tuple[Point, float, float, float]]:
    from .iteration import peak_tflops
    from .profiles import load_hardware

    hw = load_hardware([])
    return [(p, p.linear_share, peak_tflops(hw[p.hardware], "bf16"), peak_tflops(hw[p.hardware], p.precision))
            for p in pts]


def fit(pts: list[Point] | None = None) -> tuple[float, float]:
    """(K, RHO) by least squares in log S."""
    from scipy.optimize import least_squares

    got = least_squares(_log_errors, [1.0, 0.8], args=(_prepared(pts or points()),), bounds=([0.0, 0.0], [5.0, 1.0]))
    return float(got.x[0]), float(got.x[1])


@lru_cache(maxsize=1)
def held_out() -> list[dict]:
    """Each point's speed-up predicted by the fit without its publication."""
    pts = points()
    rows = []
    for p, share, b, q in _prepared(pts):
        k, rho = fit([x for x in pts if x.origin != p.origin])
        s = _speedup(share, b, q, k, rho)[0]
        rows.append({"model": p.model, "hardware": p.hardware, "size": f"{p.width}x{p.height}", "frames": p.frames,
                     "measured": p.speedup, "predicted": s, "error": s / p.speedup - 1, "source": p.source})
    return rows
