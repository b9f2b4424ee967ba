"""Batching a diffusion pipeline: how much of its fixed per-step time a bigger batch amortizes.

A request of B images costs B x the compute of one (FLOPs / (peak x MFU)) plus the fixed per-step time
(launches, the scheduler, the host), of which a share PHI still grows with the batch (per-image
elementwise and memory-bound kernels the FLOP count leaves out):

    t(B) = B x compute + steps x t_step x ((1 - PHI) + PHI x B)

PHI is fitted, least squares in log throughput gain, on 27 public batch sweeps of SD-1.x at 512 px in
eager PyTorch (A100, A10, H100; workloads/reference/diffusion_batch.csv, each row with its source),
with the compute and t_step of the UNet prior (unet_prior.py) for that part. Without it (PHI = 0)
the model promised SD-1.5 on an H100 3.6x at batch 16 where 1.8x was measured. Leaving each
repository out in turn, the gain's median error is 12%, the worst 26% (`held_out()`, docs/planner.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

DATA = "diffusion_batch.csv"
PHI = 0.3030  # fit() on the shipped points; a test recomputes it


@dataclass(frozen=True)
class Point:
    model: str
    resolution: int
    steps: int
    hardware: str
    batch: int
    s_per_image: float
    s_batch1: float
    source: str

    @property
    def gain(self) -> float:
        return self.s_batch1 / self.s_per_image

    @property
    def origin(self) -> str:
        return self.source.split()[0]  # the repository: both Lambda files leave together


def points() -> list[Point]:
    from ..paths import reference_rows

    return [Point(r["model"], int(r["size"].split("x")[0]), int(r["steps"]), r["hardware"], int(r["batch"]),
                  float(r["s_per_image"]), float(r["s_batch1"]), r["source"]) for r in reference_rows(DATA)]


def per_image(compute_s: float, fixed_s: float, batch: int, phi: float = PHI) -> float:
    """Seconds per image at `batch`: its compute, and its share of the batch's fixed time."""
    return compute_s + fixed_s * ((1.0 - phi) / batch + phi)


@lru_cache(maxsize=1)
def _prepared() -> list[tuple[Point, float, float]]:
    """Each point with the prior's (compute, fixed) seconds of one image on its part."""
    from . import media_model as mm
    from .profiles import load_hardware

    hw = load_hardware([])
    out = []
    for p in points():
        one = mm.predict_diffusion(p.model, hw[p.hardware], "fp16", p.resolution, p.steps, 7.5)
        fixed = p.steps * one.efficiency["t_step_s"]
        out.append((p, one.latency_s - fixed, fixed))
    return out


def _errors(phi: float, rows) -> list[float]:
    return [math.log((c + f) / per_image(c, f, p.batch, phi) / p.gain) for p, c, f in rows]


def fit(rows=None) -> float:
    from scipy.optimize import least_squares

    got = least_squares(lambda x: _errors(x[0], rows or _prepared()), [0.3], bounds=([0.0], [1.0]))
    return float(got.x[0])


@lru_cache(maxsize=1)
def held_out() -> list[dict]:
    rows = _prepared()
    out = []
    for p, c, f in rows:
        phi = fit([r for r in rows if r[0].origin != p.origin])
        pred = (c + f) / per_image(c, f, p.batch, phi)
        out.append({"hardware": p.hardware, "steps": p.steps, "batch": p.batch, "measured": p.gain, "predicted": pred,
                    "error": pred / p.gain - 1, "source": p.source})
    return out
