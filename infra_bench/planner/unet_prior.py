"""The MFU prior and per-step time of UNet diffusion pipelines (SD-1.5, SDXL), from public batch-1 timings
of eager diffusers runs.

    s/image = FLOPs per image / (peak x MFU) + UNet calls x t_step,   MFU = A x (peak / 165.2 TFLOP/s)^-B

B is the video fit's exponent (kinds/video/planner.py: big parts use less of their peak); A and the
per-call time t_step (launch and scheduler overhead, which dominates SD-1.5 at 512 px on big parts) are
fitted on the rows of two current benchmark harnesses (diffusers 0.22-0.29, torch 2.1-2.3, SDPA) and
checked on rows they never saw: older stacks (torch 1.12-2.0, xformers or no fused attention) and
stable-fast's vanilla denoising-loop rates. Never fitted or tuned to: MLPerf, the diffusers speed-up
posts (the acceptance check, benchmarks/acceptance_check.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

A, T_STEP = 0.626, 0.0196  # fit_prior() on FIT; a test recomputes them
HELD_OUT_ERROR = 0.23       # median absolute error of held_out(); a test recomputes it


@dataclass(frozen=True)
class Timing:
    """A public batch-1 timing: a whole image (`seconds`, text encoding and VAE decode included) or one
    denoising step (`step_s`, from it/s); `guidance` where the run's own is known (above 1: classifier-free
    guidance, two passes a step; FLUX.1 is distilled: one). The UNet and DiT priors are fitted on these."""
    model: str
    hardware: str
    resolution: int
    steps: int
    seconds: float | None
    source: str
    step_s: float | None = None
    guidance: float | None = None


FAL = "fal-ai/stable-diffusion-benchmarks README@c0fa82c (diffusers 0.22, torch 2.1, SDPA, fp16)"
ONEDIFF = "siliconflow/onediff examples README@98898c4, diffusers baseline (torch 2.3, fp16, 2024-07-31)"
FIT = (Timing("sdxl-base-1.0", "nv_a100_80g_sxm", 1024, 50, 5.932, FAL),
       Timing("sd-1.5", "nv_a100_80g_sxm", 512, 50, 1.604, FAL),
       Timing("sdxl-base-1.0", "nv_rtx4090", 1024, 20, 2.76, ONEDIFF),
       Timing("sdxl-base-1.0", "nv_a800_80g_sxm", 1024, 20, 2.28, ONEDIFF),
       Timing("sd-1.5", "nv_rtx4090", 512, 20, 0.61, ONEDIFF),
       Timing("sd-1.5", "nv_a800_80g_sxm", 512, 20, 0.64, ONEDIFF))
HELD_OUT = (
    Timing("sd-1.5", "nv_a100_40g_sxm", 512, 50, 1.96, "alexeigor/sd-benchmarks README (torch 2.0, fp16)"),
    Timing("sd-1.5", "nv_h100_pcie", 512, 50, 1.44, "alexeigor/sd-benchmarks README (torch 2.0, fp16)"),
    Timing("sd-1.5", "nv_a100_40g_sxm", 512, 30, 1.18, "LambdaLabsML/lambda-diffusers benchmark.csv (SD v1.4, "
           "torch 1.13, xformers)"),
    Timing("sd-1.5", "nv_a10", 512, 30, 2.01, "LambdaLabsML/lambda-diffusers benchmark.csv (SD v1.4, torch 1.13, "
           "xformers)"),
    Timing("sd-1.5", "nv_h100_pcie", 512, 30, 1.06, "LambdaLabsML/lambda-diffusers benchmark_no_xformers.csv "
           "(SD v1.4, torch 1.13, no fused attention)"),
    Timing("sd-1.5", "nv_a100_40g_sxm", 512, 50, 3.058, "facebookincubator/AITemplate v0.1 README (torch 1.12 eager)"),
    Timing("sdxl-base-1.0", "nv_a100_80g_sxm", 1024, 30, None, "chengzeyi/stable-fast README, vanilla torch 2.1: "
           "8.7 it/s (A100, memory size not stated)", step_s=1 / 8.7),
    Timing("sd-1.5", "nv_a100_80g_sxm", 512, 30, None, "chengzeyi/stable-fast README, vanilla torch 2.1: 35.6 it/s "
           "(A100, memory size not stated)", step_s=1 / 35.6))


def mfu_prior(peak_tflops: float, a: float = A) -> float:
    from .media_model import mfu_by_peak

    return mfu_by_peak(peak_tflops, a)


def _peaks() -> dict[str, float]:
    """fp16 peaks (TFLOP/s) of the shipped profiles the timings ran on."""
    from .media_model import shipped_peaks

    return shipped_peaks(tuple(sorted({t.hardware for t in FIT + HELD_OUT})), "fp16")


def predicted(t: Timing, a: float = A, t_step: float = T_STEP) -> float:
    """Seconds of the timing's unit (an image, or one step) under the prior."""
    from . import media_model as mm

    peak = _peaks()[t.hardware]
    guidance = t.guidance if t.guidance is not None else 5.0 if t.model.startswith("sdxl") else 7.5
    whole = mm.diffusion_unit(t.model, t.resolution, t.steps, guidance)["flops_per_image"]
    if t.step_s is not None:  # one denoising step: the UNet work of a step
        work = whole - mm.diffusion_unit(t.model, t.resolution, t.steps - 1, guidance)["flops_per_image"]
        return work / (peak * 1e12 * mfu_prior(peak, a)) + t_step
    return whole / (peak * 1e12 * mfu_prior(peak, a)) + t.steps * t_step  # one UNet call per step (guidance batched)


def fit_prior() -> tuple[float, float]:
    """(A, t_step): least squares on log time over FIT."""
    import numpy as np
    from scipy.optimize import least_squares

    res = least_squares(lambda x: [np.log(predicted(t, x[0], x[1]) / t.seconds) for t in FIT], [0.5, 0.01],
                        bounds=([0.01, 0.0], [1.0, 0.1]))
    return round(float(res.x[0]), 4), round(float(res.x[1]), 4)


@lru_cache(maxsize=1)
def held_out() -> list[dict]:
    """Each held-out timing: measured and predicted seconds and the error."""
    out = []
    for t in HELD_OUT:
        measured = t.seconds if t.step_s is None else t.step_s
        p = predicted(t)
        out.append({"timing": t, "measured_s": measured, "predicted_s": p, "error": p / measured - 1})
    return out


def basis() -> str:
    from .media_model import PEAK_EXPONENT, REFERENCE_PEAK

    return (f"MFU prior {A} x (peak / {REFERENCE_PEAK} TFLOP/s)^-{PEAK_EXPONENT} (the video fit's exponent; peak "
            f"held within the fitted parts' range) and {T_STEP * 1e3:.1f} ms "
            f"per UNet call, fitted to {len(FIT)} public eager-diffusers timings; on {len(HELD_OUT)} it never saw the "
            f"median error is {HELD_OUT_ERROR:.0%} (docs/planner.md); interval +-50%; calibrate with your own runs")
