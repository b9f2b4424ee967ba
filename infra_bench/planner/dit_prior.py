"""The MFU prior of diffusion-transformer image pipelines (FLUX.1, SD3.5, Qwen-Image, HunyuanDiT), from public
batch-1 timings of eager runs (diffusers, or xDiT at parallel degree 1).

    s/image = FLOPs per image / (peak x MFU) + steps x t_step,
    MFU = A x (peak / 165.2 TFLOP/s)^-B x (work / 74.4 TFLOP)^C

B is the video fit's exponent (kinds/video/planner.py: big parts use less of their peak); `work` is one
transformer pass at 1024 px (FLUX.1-dev's is 74.4 TFLOP), held within the fitted models' range, so a small
transformer, whose matrices are smaller, uses less of the peak. A and C are fitted on FIT (least squares on
log time); HELD_OUT are rows of other harnesses the fit never saw. The per-step time stays the assumed 2 ms
(DIT_PRIORS): these timings cannot separate it. Until 2026-12-04 one MFU, 0.37, served every DiT on every
part (the median of four FLUX.1-dev runs, all in FIT). Never fitted or tuned to: MLPerf, the diffusers
speed-up posts and the ML.ENERGY leaderboard (the acceptance check, benchmarks/acceptance_check.py).
"""
from __future__ import annotations

from functools import lru_cache

from .unet_prior import Timing

A, C = 0.5492, 0.2246      # fit_prior() on FIT; a test recomputes them
HELD_OUT_ERROR = 0.22       # median absolute error of held_out(); a test recomputes it
REFERENCE_WORK = 74.4e12    # FLOPs of one FLUX.1-dev pass at 1024 px
WORK_RANGE = (14.37e12, 78.3e12)  # the fitted models' passes at 1024 px: HunyuanDiT v1.2 to Qwen-Image


XDIT = "xdit-project/xDiT@175e0bf docs/performance/flux.md (1 GPU row)"
XDIT_CHARTS = "xdit-project/xdit_assets@e051d26 performance/ (bar label of the 1-GPU run)"
PARA = "chengzeyi/ParaAttention@4de137c"
BENCHFLUX = "varadrane1707/BenchmarkFlux@35368df README (bf16 row)"
POLL = "pollinations/flux-optimizations@aa33d59 03_torchao_quantization (bf16 baseline)"
CACHE_DIT = "vipshop/cache-dit@f86744a"
FIT = (Timing("flux-1-dev", "nv_h100_sxm", 1024, 28, 6.71, guidance=3.5, source=XDIT),
       Timing("flux-1-dev", "nv_a100_80g_sxm", 1024, 28, 12.77, guidance=3.5,
              source=XDIT_CHARTS + " scalability/ FLUX 1024px"),
       Timing("flux-1-dev", "nv_a100_80g_sxm", 1024, 28, 13.843, guidance=3.5,
              source=PARA + " README (A100-SXM4-80GB baseline)"),
       Timing("flux-1-dev", "nv_l20", 1024, 28, 26.36, guidance=3.5,
              source=PARA + " doc/fastest_flux.md (L20 baseline)"),
       Timing("flux-1-dev", "nv_a100_80g_sxm", 1024, 28, 15.65, guidance=3.5, source=BENCHFLUX),
       Timing("flux-1-dev", "nv_h100_sxm", 1024, 28, 7.11, guidance=3.5, source=BENCHFLUX),
       Timing("flux-1-schnell", "nv_a100_80g_sxm", 1024, 4, 2.18, guidance=0.0,
              source=XDIT_CHARTS + " flux/ Flux-1K A100"),
       Timing("flux-1-schnell", "nv_l40", 1024, 4, 3.18, guidance=0.0, source=XDIT_CHARTS + " flux/ Flux-1k L40"),
       Timing("flux-1-schnell", "nv_h100_pcie", 1024, 4, 1.435, guidance=0.0, source=POLL),
       Timing("hunyuandit-v1.2", "nv_a100_80g_sxm", 1024, 50, 18.01, guidance=5.0,
              source=XDIT_CHARTS + " hunuyuandit/ A100"),
       Timing("hunyuandit-v1.2", "nv_l20", 1024, 50, 23.89, guidance=5.0, source=XDIT_CHARTS + " hunuyuandit/ L20"))
HELD_OUT = (
    Timing("flux-1-dev", "nv_l20", 1024, 28, 24.85, guidance=3.5,
           source=CACHE_DIT + " docs/user_guide/CACHE_API.md (baseline)"),
    Timing("flux-1-dev", "nv_l20", 1024, 28, 23.56, guidance=3.5,
           source=CACHE_DIT + " docs/user_guide/CONTEXT_PARALLEL.md (1 GPU)"),
    Timing("flux-1-dev", "nv_l20", 1024, 28, 23.4, guidance=3.5,
           source=CACHE_DIT + " docs/user_guide/OFFLOAD.md (no offload)"),
    Timing("flux-1-dev", "nv_l20", 1024, 50, 42.74, guidance=3.5,
           source=CACHE_DIT + " bench/cache/README.md (baseline)"),
    Timing("flux-1-dev", "nv_l20", 1024, 50, 44.61, guidance=3.5,
           source=CACHE_DIT + " bench/cache/README.md (baseline, 2nd table)"),
    Timing("flux-1-dev", "nv_h100_sxm", 1024, 50, 9.30, guidance=3.5,
           source=CACHE_DIT + " docs/benchmark/NVIDIA_GPU.md (H100 "
           "baseline; SXM assumed)"),
    Timing("flux-1-dev", "nv_l20", 1024, 28, 24.94, guidance=3.5,
           source="huggingface/flux-fast@5027798 README (L20 baseline)"),
    Timing("qwen-image", "nv_h100_sxm", 1024, 50, 18.49, guidance=4.0,
           source=CACHE_DIT + " docs/benchmark/NVIDIA_GPU.md (H100 "
           "baseline, true CFG 4.0; SXM assumed)"))


def mfu_prior(peak_tflops: float, work_flops: float, a: float = A, c: float = C) -> float:
    """The MFU of a transformer pass of `work_flops` (at 1024 px) on a part of `peak_tflops`."""
    from .media_model import mfu_by_peak

    work = min(max(work_flops, WORK_RANGE[0]), WORK_RANGE[1])
    return min(mfu_by_peak(peak_tflops, a) * (work / REFERENCE_WORK) ** c, 0.9)


@lru_cache(maxsize=16)
def pass_work(model: str) -> float:
    """One transformer pass of `model` at 1024 px, no guidance (FLOPs): the size the prior scales with."""
    from . import media_model as mm

    return mm.diffusion_unit(model, 1024, 1, 1.0)["unet_flops_per_step"]


def _peaks() -> dict[str, float]:
    """bf16 peaks (TFLOP/s) of the shipped profiles the timings ran on."""
    from .media_model import shipped_peaks

    return shipped_peaks(tuple(sorted({t.hardware for t in FIT + HELD_OUT})), "bf16")


def predicted(t: Timing, a: float = A, c: float = C) -> float:
    """Seconds per image of the timing under the prior."""
    from . import media_model as mm

    peak = _peaks()[t.hardware]
    work = mm.diffusion_unit(t.model, t.resolution, t.steps, t.guidance)["flops_per_image"]
    return work / (peak * 1e12 * mfu_prior(peak, pass_work(t.model), a, c)) + t.steps * mm.DIT_PRIORS["t_step_s"]


def fit_prior() -> tuple[float, float]:
    """(A, C): least squares on log time over FIT."""
    import numpy as np
    from scipy.optimize import least_squares

    res = least_squares(lambda x: [np.log(predicted(t, x[0], x[1]) / t.seconds) for t in FIT], [0.4, 0.0],
                        bounds=([0.01, -1.0], [1.0, 1.0]))
    return round(float(res.x[0]), 4), round(float(res.x[1]), 4)


@lru_cache(maxsize=1)
def held_out() -> list[dict]:
    """Each held-out timing: measured and predicted seconds and the error."""
    return [{"timing": t, "measured_s": t.seconds, "predicted_s": predicted(t), "error": predicted(t) / t.seconds - 1}
            for t in HELD_OUT]


def basis(work_flops: float) -> str:
    from .media_model import PEAK_EXPONENT, REFERENCE_PEAK

    return (f"MFU prior {A} x (peak / {REFERENCE_PEAK} TFLOP/s)^-{PEAK_EXPONENT} x (pass / 74.4 TFLOP)^{C} (this "
            f"pass {work_flops / 1e12:.1f} TFLOP at 1024 px; peak and pass held within the fitted range), fitted to "
            f"{len(FIT)} public eager timings of FLUX.1 and HunyuanDiT; on {len(HELD_OUT)} it never saw the median "
            f"error is {HELD_OUT_ERROR:.0%} (docs/planner.md); interval +-50%; calibrate with your own runs")
