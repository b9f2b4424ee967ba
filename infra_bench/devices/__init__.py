"""Device probes: one per family (cpu, cuda, npu, mlu, musa)."""
from .base import DTYPES, DeviceProbe
from .registry import FAMILIES, check_dtype, parse_device, resolve_device_name, select_device

__all__ = ["DTYPES", "DeviceProbe", "FAMILIES", "check_dtype", "parse_device",
           "resolve_device_name", "select_device"]
