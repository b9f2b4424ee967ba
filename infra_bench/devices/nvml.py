"""NVML access that never raises: each helper returns None (or a reason) when NVML is absent."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..errors import install_hint


@lru_cache(maxsize=1)
def nvml() -> tuple[Any | None, str | None]:
    """(initialised pynvml module, None) or (None, why it is unavailable)."""
    try:
        import pynvml
    except ImportError:
        return None, f"nvidia-ml-py is not installed ({install_hint('nvidia')})"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        return None, f"NVML could not start: {e}"
    return pynvml, None


def _get(fn, *args):
    try:
        return fn(*args)
    except Exception:  # an unsupported query on this GPU or driver
        return None


def _text(v):
    return v.decode() if isinstance(v, bytes) else v


def handle_for_uuid(uuid: str | None):
    lib, _ = nvml()
    if lib is None or not uuid:
        return None
    uuid = uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"
    return _get(lib.nvmlDeviceGetHandleByUUID, uuid)


def describe(handle) -> dict:
    """Name, memory, power limit and clocks of one GPU, each None where not readable."""
    lib, _ = nvml()
    mem = _get(lib.nvmlDeviceGetMemoryInfo, handle)
    limit_mw = _get(lib.nvmlDeviceGetPowerManagementLimit, handle)
    return {
        "name": _text(_get(lib.nvmlDeviceGetName, handle)),
        "uuid": _text(_get(lib.nvmlDeviceGetUUID, handle)),
        "memory_total_bytes": mem.total if mem else None,
        "power_limit_w": limit_mw / 1000 if limit_mw else None,
        "sm_clock_max_mhz": _get(lib.nvmlDeviceGetMaxClockInfo, handle, lib.NVML_CLOCK_SM),
        "mem_clock_max_mhz": _get(lib.nvmlDeviceGetMaxClockInfo, handle, lib.NVML_CLOCK_MEM),
        "sm_clock_mhz": _get(lib.nvmlDeviceGetClockInfo, handle, lib.NVML_CLOCK_SM),
    }


def inventory() -> dict:
    """Driver version and every GPU NVML sees, or the reason it sees none."""
    lib, reason = nvml()
    if lib is None:
        return {"available": False, "reason": reason, "gpus": []}
    count = _get(lib.nvmlDeviceGetCount) or 0
    gpus = [describe(h) for h in (_get(lib.nvmlDeviceGetHandleByIndex, i) for i in range(count)) if h]
    return {"available": True, "driver_version": _text(_get(lib.nvmlSystemGetDriverVersion)),
            "cuda_driver_version": _get(lib.nvmlSystemGetCudaDriverVersion), "gpus": gpus}


def energy_joules(handle) -> float | None:
    lib, _ = nvml()
    mj = _get(lib.nvmlDeviceGetTotalEnergyConsumption, handle)
    return mj / 1000.0 if mj is not None else None


def power_watts(handle) -> float | None:
    lib, _ = nvml()
    mw = _get(lib.nvmlDeviceGetPowerUsage, handle)
    return mw / 1000.0 if mw is not None else None


def used_bytes(handle) -> int | None:
    lib, _ = nvml()
    mem = _get(lib.nvmlDeviceGetMemoryInfo, handle)
    return mem.used if mem else None
