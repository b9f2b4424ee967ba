"""Planning checks and runner construction for the torch backend."""
from __future__ import annotations

from ...devices import check_dtype, select_device
from ...devices.base import DeviceProbe
from ...errors import UserError
from ...workloads import llm as llm_workload
from ..base import Built
from .llm import TorchLlmRunner


def check(spec) -> DeviceProbe:
    if spec.dtype == "int8":
        raise UserError(f"spec '{spec.label}': int8 is dynamic quantization in ONNX Runtime; "
                        f"use --backend onnxruntime, or dtype fp32/fp16/bf16 with torch")
    probe = select_device(spec.device)
    check_dtype(probe, spec.dtype)
    compiled = getattr(spec, "compile", "none") != "none"
    if compiled and probe.torch_device.type not in ("cpu", "cuda"):
        raise UserError(f"spec '{spec.label}': compile: {spec.compile} is supported on cpu and cuda here, not on "
                        f"{probe.torch_device.type}; use compile: none on this device")
    if compiled and spec.compile == "reduce-overhead" and probe.torch_device.type != "cuda":
        raise UserError(f"spec '{spec.label}': compile: reduce-overhead differs from default only by CUDA graphs, "
                        f"which {probe.torch_device.type} has not; use compile: default (--compile default)")
    return probe


def build_llm(spec, resolved, probe: DeviceProbe, trust_remote_code: bool) -> Built:
    model = llm_workload.build(spec, resolved, probe.torch_device, trust_remote_code)
    runner = TorchLlmRunner(model, probe, spec.compile, spec.dtype)
    return Built(runner, runner.describe(), llm_workload.param_count(model),
                 model.config.get_text_config().vocab_size)
