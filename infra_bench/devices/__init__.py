"""Device probes: one per family (cpu, cuda, npu, mlu, musa), plus ONNX Runtime's EP devices.

The public names load lazily (PEP 562), so importing a torch-free module of this package
(base, host, nvml, onnxruntime) does not import torch; DTYPES and the registry do.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import DeviceProbe
    from .registry import (
        FAMILIES,
        check_dtype,
        parse_device,
        resolve_device_name,
        select_device,
    )
    from .torch_probe import DTYPES

_HOME = {"DTYPES": ".torch_probe", "DeviceProbe": ".base", "FAMILIES": ".registry", "check_dtype": ".registry",
         "parse_device": ".registry", "resolve_device_name": ".registry", "select_device": ".registry"}

__all__ = ["DTYPES", "DeviceProbe", "FAMILIES", "check_dtype", "parse_device",
           "resolve_device_name", "select_device"]


def __getattr__(name: str):
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})
