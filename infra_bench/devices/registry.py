"""Choosing a device from a name such as `cpu`, `cuda`, `cuda:1`, `npu:0` or `auto`."""
from __future__ import annotations

import re

from ..errors import UserError, closest
from .base import DeviceProbe
from .cpu import CpuProbe
from .cuda import CudaProbe
from .plugin import MluProbe, MusaProbe, NpuProbe

FAMILIES: dict[str, type[DeviceProbe]] = {
    "cpu": CpuProbe, "cuda": CudaProbe, "npu": NpuProbe, "mlu": MluProbe, "musa": MusaProbe,
}
AUTO_ORDER = ("cuda", "npu", "mlu", "musa")
# what people call a device family, where spelling alone suggests another ('gpu' is closest to 'npu')
ALIASES = {"gpu": "cuda", "nvidia": "cuda", "rocm": "cuda", "hip": "cuda", "ascend": "npu", "cambricon": "mlu"}


def parse_device(text: str) -> tuple[str, int | None]:
    """'cuda:1' -> ('cuda', 1); 'cpu' -> ('cpu', None). Raises UserError on a bad name."""
    m = re.fullmatch(r"([a-z]+)(?::(\d+))?", text.strip().lower())
    if not m or m.group(1) not in FAMILIES:
        family = m.group(1) if m else text
        hint = f" (did you mean '{ALIASES[family]}'?)" if family in ALIASES else closest(family, FAMILIES)
        raise UserError(f"unknown device '{text}'{hint}; "
                        f"use one of {', '.join(FAMILIES)}, with an optional :INDEX, or auto")
    if m.group(1) == "cpu" and m.group(2) not in (None, "0"):
        raise UserError(f"device '{text}': the cpu has no index; use device cpu")
    return m.group(1), int(m.group(2)) if m.group(2) is not None else None


def resolve_device_name(text: str) -> str:
    """Turn `auto` into the first accelerator present (else cpu); check any other name."""
    if text.strip().lower() == "auto":
        for family in AUTO_ORDER:
            if FAMILIES[family].presence()[0] > 0:
                return f"{family}:0"
        return "cpu"
    family, index = parse_device(text)
    if family == "cpu":
        return "cpu"
    count, reason = FAMILIES[family].presence()
    if count == 0:
        raise UserError(f"device '{text}' is not present: {reason}; run `infra-bench sysinfo` "
                        f"to see what this machine has, or use device cpu")
    index = 0 if index is None else index
    if index >= count:
        raise UserError(f"device '{text}' is not present: {family} has {count} device(s), "
                        f"indices 0..{count - 1}")
    return f"{family}:{index}"


def select_device(text: str) -> DeviceProbe:
    """A probe for a device name, after resolve_device_name's checks."""
    family, index = parse_device(resolve_device_name(text))
    return FAMILIES[family](index)


def check_dtype(probe: DeviceProbe, dtype: str) -> None:
    supported = probe.supported_dtypes()
    if dtype not in supported:
        raise UserError(f"dtype {dtype} is not supported on {probe.name} (supported: "
                        f"{', '.join(supported)}); set dtype in the spec to one of those")
