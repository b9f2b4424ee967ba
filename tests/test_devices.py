import pytest
import torch

from infra_bench.devices import check_dtype, parse_device, resolve_device_name, select_device
from infra_bench.devices.cuda import dtypes_for_capability
from infra_bench.devices.plugin import NpuProbe
from infra_bench.errors import UserError


def test_parse_device_names():
    assert parse_device("cpu") == ("cpu", None)
    assert parse_device("cuda:1") == ("cuda", 1)
    assert parse_device(" NPU:0 ") == ("npu", 0)
    with pytest.raises(UserError, match="unknown device 'cdua' \\(did you mean 'cuda'\\?\\)"):
        parse_device("cdua")
    with pytest.raises(UserError, match="the cpu has no index"):
        parse_device("cpu:3")
    # what a GPU is called: spelling alone pointed 'gpu' at 'npu' (Ascend)
    for name, family in (("gpu", "cuda"), ("gpu:1", "cuda"), ("ascend", "npu")):
        with pytest.raises(UserError, match=f"unknown device '{name}' \\(did you mean '{family}'\\?\\)"):
            parse_device(name)


def test_cpu_probe_times_and_describes():
    probe = select_device("cpu")
    a, b = probe.now_ns(), probe.now_ns()
    assert b >= a and probe.timer == "perf_counter_ns"
    d = probe.describe()
    assert d["name"] == "cpu" and d["model"]
    assert probe.peak_memory()["device_peak_allocated_bytes"] is None
    check_dtype(probe, "bf16")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_absent_cuda_is_a_clear_error_and_auto_falls_back_to_cpu():
    with pytest.raises(UserError, match="device 'cuda' is not present: torch.cuda.is_available\\(\\) is False"):
        resolve_device_name("cuda")
    assert resolve_device_name("auto") == "cpu"


def test_plugin_device_absent_when_package_missing():
    count, reason = NpuProbe.presence()
    if count:
        pytest.skip("torch_npu with a device is present")
    assert "torch_npu" in reason
    with pytest.raises(UserError, match="device 'npu:0' is not present: .*torch_npu"):
        resolve_device_name("npu:0")


def test_bf16_needs_ampere_or_newer():
    assert "bf16" not in dtypes_for_capability(7, 5)
    assert "bf16" in dtypes_for_capability(8, 0) and "bf16" in dtypes_for_capability(9, 0)


def test_unsupported_dtype_message():
    class Volta(type(select_device("cpu"))):
        def supported_dtypes(self):
            return dtypes_for_capability(7, 0)
    with pytest.raises(UserError, match="dtype bf16 is not supported on cpu \\(supported: fp32, fp16\\)"):
        check_dtype(Volta(), "bf16")
