"""Microbenchmarks of a torch-driven device: the measured roofline (matmul peak per dtype, memory
bandwidth, host-to-device copy bandwidth), to set against the spec sheet (`infra-bench probe`)."""
from __future__ import annotations

import time
from collections.abc import Callable

import torch

from ..measure.stats import summarize
from .torch_probe import DTYPES, TorchProbe

PROBE_DTYPES = ("fp32", "bf16", "fp16", "int8")


def _repeat(probe: TorchProbe, fn: Callable[[], object], min_time_s: float, min_reps: int = 5) -> list[float]:
    """Seconds per call, after two warm-up calls, until both minimums are met."""
    fn(), fn()
    times: list[float] = []
    t_end = time.perf_counter() + min_time_s
    while len(times) < min_reps or time.perf_counter() < t_end:
        t0 = probe.now_ns()
        fn()
        times.append((probe.now_ns() - t0) / 1e9)
    return times


def matmul(probe: TorchProbe, dtype: str, n: int, min_time_s: float = 0.5) -> dict:
    """TFLOPS (TOPS for int8) of an n x n x n matrix product: 2 n^3 operations per call. Where one call
    takes more than a fifth of the time budget (a dtype the device emulates, e.g. bf16 on a CPU without
    bf16 instructions: a 1024^3 product took 3 s on an AMD EPYC VM), n is halved until five calls fit,
    so the probe's time stays bounded; the record says which n was measured."""
    dev = probe.torch_device
    while True:
        if dtype == "int8":
            a = torch.randint(-128, 127, (n, n), dtype=torch.int8, device=dev)
            fn = lambda: torch._int_mm(a, a)  # noqa: E731
        else:
            a = torch.randn(n, n, device=dev).to(DTYPES[dtype])
            fn = lambda: a @ a  # noqa: E731
        t0 = probe.now_ns()
        fn()
        if (probe.now_ns() - t0) / 1e9 <= min_time_s / 5 or n <= 128:
            break
        n //= 2
    times = _repeat(probe, fn, min_time_s)
    rates = [2 * n**3 / t / 1e12 for t in times]
    return {"value": float(sorted(rates)[len(rates) // 2]), "unit": "TOPS" if dtype == "int8" else "TFLOPS",
            "rate": summarize(rates), "size": n}


def copy_bandwidth(probe: TorchProbe, mib: int, min_time_s: float = 0.5) -> dict:
    """Device memory bandwidth of dst.copy_(src): bytes read plus bytes written, per second."""
    n = mib * 2**20 // 4
    src = torch.ones(n, device=probe.torch_device)
    dst = torch.empty_like(src)
    times = _repeat(probe, lambda: dst.copy_(src), min_time_s)
    rates = [2 * n * 4 / t / 1e9 for t in times]
    return {"value": float(sorted(rates)[len(rates) // 2]), "unit": "GB/s", "rate": summarize(rates), "size": mib}


def host_to_device(probe: TorchProbe, mib: int, min_time_s: float = 0.5) -> dict:
    """Pinned host memory to the device, bytes per second."""
    n = mib * 2**20 // 4
    src = torch.ones(n).pin_memory()
    times = _repeat(probe, lambda: src.to(probe.torch_device, non_blocking=True), min_time_s)
    rates = [n * 4 / t / 1e9 for t in times]
    return {"value": float(sorted(rates)[len(rates) // 2]), "unit": "GB/s", "rate": summarize(rates), "size": mib}


def cells(probe: TorchProbe) -> list[dict]:
    """The tests the probe runs on this device, in order: a matmul per dtype it supports (int8 is tried
    everywhere, its kernel may be missing), memory copy, and host-to-device copy on an accelerator."""
    out = [{"test": "matmul", "dtype": d} for d in PROBE_DTYPES if d == "int8" or d in probe.supported_dtypes()]
    out.append({"test": "memory_copy", "dtype": "fp32"})
    if probe.type != "cpu":
        out.append({"test": "host_to_device", "dtype": "fp32"})
    return out


def measure(probe: TorchProbe, cell: dict, quick: bool = False) -> tuple[dict | None, str | None]:
    """One test of `cells`: (result, None), or (None, error) where the device lacks the kernel."""
    cpu = probe.type == "cpu"
    n, mib, t = (1024 if cpu else 8192), (256 if cpu else 2048), (0.2 if quick else 0.5)
    if cell["test"] == "matmul":
        try:
            return matmul(probe, cell["dtype"], n, t), None
        except RuntimeError as e:  # e.g. no int8 matmul kernel on this device
            return None, f"RuntimeError: {str(e).splitlines()[0]}"
    if cell["test"] == "memory_copy":
        return copy_bandwidth(probe, mib, t), None
    return host_to_device(probe, mib, t), None


def spec_value(profile, cell: dict) -> float | None:
    """The spec-sheet figure to compare a test with: dense peak per dtype, or memory bandwidth."""
    if profile is None:
        return None
    if cell["test"] == "matmul":
        return profile.peak_tflops.get(cell["dtype"])
    if cell["test"] == "memory_copy" and profile.memory_bandwidth_tbs:
        return profile.memory_bandwidth_tbs * 1000
    return None
