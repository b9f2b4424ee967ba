"""Execution providers: short names, availability with the package that brings each, session options."""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from ...errors import MissingDependency, UserError, closest, install_hint


@dataclass(frozen=True)
class Ep:
    short: str
    provider: str
    package: str        # what to install when it is missing
    device_family: str  # which device probe measures it (memory, energy)


EPS = {e.short: e for e in [
    Ep("cpu", "CPUExecutionProvider", "onnxruntime", "cpu"),
    Ep("cuda", "CUDAExecutionProvider", "onnxruntime-gpu (in place of onnxruntime)", "cuda"),
    Ep("tensorrt", "TensorrtExecutionProvider", "onnxruntime-gpu plus the TensorRT libraries", "cuda"),
    Ep("openvino", "OpenVINOExecutionProvider", "onnxruntime-openvino (in place of onnxruntime)", "cpu"),
    Ep("cann", "CANNExecutionProvider", "onnxruntime-cann (in place of onnxruntime)", "npu"),
    Ep("migraphx", "MIGraphXExecutionProvider", "onnxruntime-migraphx (ROCm build)", "cuda"),
    Ep("rocm", "ROCMExecutionProvider", "onnxruntime-rocm (ROCm build)", "cuda"),
    Ep("dnnl", "DnnlExecutionProvider", "an onnxruntime build with oneDNN", "cpu"),
    Ep("xnnpack", "XnnpackExecutionProvider", "an onnxruntime build with XNNPACK", "cpu"),
    Ep("azure", "AzureExecutionProvider", "onnxruntime", "cpu"),
]}
GRAPH_OPT = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
             "all": "ORT_ENABLE_ALL"}


def import_ort() -> ModuleType:
    """onnxruntime, after checking that onnx (export, quantization, graph reading) is there too."""
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError as e:
        raise MissingDependency(f"the onnxruntime backend needs {e.name}: {install_hint('onnx')}") from None
    return onnxruntime


def lookup(name: str) -> Ep:
    """An EP by short name (`cuda`) or provider name (`CUDAExecutionProvider`)."""
    if name in EPS:
        return EPS[name]
    for ep in EPS.values():
        if ep.provider.lower() == name.lower():
            return ep
    raise UserError(f"unknown execution provider '{name}'{closest(name, EPS)}; known: {', '.join(EPS)}")


def short_names(providers: list[str]) -> list[str]:
    by_provider = {e.provider: e.short for e in EPS.values()}
    return [by_provider.get(p, p) for p in providers]


def require(name: str) -> Ep:
    """The EP, or a one-line error naming what is available and which package brings it."""
    ep = lookup(name)
    ort = import_ort()
    available = ort.get_available_providers()
    if ep.provider not in available:
        raise UserError(f"execution provider '{ep.short}' ({ep.provider}) is not available in onnxruntime "
                        f"{ort.__version__} (available: {', '.join(short_names(available))}); "
                        f"install {ep.package}")
    return ep


def parse_ep_options(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`key=value` strings from the command line into a provider options mapping."""
    from ...inputs import key_values

    return key_values(pairs, "--ep-option", "device_id=1")


def make_session(path, ep: Ep, opts):
    """A session on `ep` under the spec's options (OrtOptions), and the settings it ended up with."""
    ort = import_ort()
    graph_optimization = opts.graph_optimization or "all"
    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPT[graph_optimization])
    if opts.intra_op_threads:
        so.intra_op_num_threads = opts.intra_op_threads
    so.log_severity_level = 3
    providers = [(ep.provider, dict(opts.ep_options))]
    if ep.short != "cpu":
        providers.append(("CPUExecutionProvider", {}))  # for nodes the EP does not take
    session = ort.InferenceSession(str(path), sess_options=so, providers=providers)
    taken = session.get_provider_options().get(ep.provider, {})
    dropped = sorted(k for k in opts.ep_options if k not in taken)
    # ONNX Runtime warns of an option it does not take only in a log this session silences; a provider that
    # reports no options at all is not judged (what it took cannot be read back)
    if dropped and (taken or ep.short == "cpu"):
        from ...errors import UserError

        raise UserError(f"{ep.provider} does not take the option(s) {', '.join(dropped)} (it takes: "
                        f"{', '.join(sorted(taken)) or 'none'}); drop --ep-option {dropped[0]}")
    options = {"intra_op_num_threads": so.intra_op_num_threads, "graph_optimization_level": graph_optimization,
               "provider_options": session.get_provider_options()}
    return session, options
