"""Refusing a model whose weights cannot be made in this host's free memory, before it is built: a
checkpoint, an ONNX export and a CPU model are all made in host memory, and the kernel's OOM killer
would end the run without a record or a word. Sizes are parameter counts (the catalogs' shipped
counts, or a count on the meta device: nothing is allocated)."""
from __future__ import annotations

from ..devices.torch_probe import DTYPES
from ..errors import UserError


def free_bytes() -> int:
    import psutil

    return psutil.virtual_memory().available + psutil.swap_memory().free


def on_host(spec, checkpoint: bool = False) -> bool:
    """Whether the spec's model is made in host memory: ONNX Runtime exports from a model built on the
    host, a checkpoint is read there, a CPU model lives there; random weights for an accelerator are
    made on the accelerator itself."""
    return spec.backend == "onnxruntime" or checkpoint or spec.device == "cpu"


GRAPH_IN_MEMORY = 2**31  # protobuf's limit: the exporter builds and serializes a smaller ONNX graph whole in memory


def ort_build_peak(fp32_bytes: int, dtype: str) -> int:
    """Estimated host bytes at the peak of building an LLM for ONNX Runtime from its fp32 torch model of
    `fp32_bytes` weights: the model, its ONNX export (a fresh one: a cached export peaks lower) and the session.
    Measured as ru_maxrss over the imports in a process of its own (2026-12, torch 2.13, onnxruntime 1.32, random
    Llama shapes, CPU): the export peaks at 4.2-4.3x the weights while the graph is under protobuf's 2 GiB
    (0.95 GiB: 4.25x TorchScript exporter, 4.31x torch.export-based, 4.33x with int8; 1.6 GiB: 4.17x; a cache
    hit 2.7x), the session at 2.0-2.1x above it, where the exporter writes the weights to external data
    (2.5 GiB: 2.06x; 4.2 GiB: 2.04x). fp16 adds its half-precision copy and exports half the bytes (derived from
    the same figures, not measured)."""
    graph = fp32_bytes // 2 if dtype == "fp16" else fp32_bytes
    copy = graph if dtype == "fp16" else 0
    return fp32_bytes + copy + int(graph * (3.3 if graph < GRAPH_IN_MEMORY else 1.1))


def peak(components: list[int], dtype: str, cast: str) -> int:
    """Bytes held at the peak of building `components` (parameter counts, in build order) in fp32 and
    casting to `dtype`: cast "each" (a component is cast before the next is built) or "all" (every
    component is built first: the fp32 total)."""
    size = DTYPES[dtype].itemsize if dtype in DTYPES else 4
    if cast == "all" or size == 4:
        return sum(components) * 4
    return max(sum(components[:i]) * size + p * 4 for i, p in enumerate(components))


def refuse(label: str, params: int, need: int, what: str, verb: str = "load", hint: str = "",
           free: int | None = None) -> None:
    """UserError when `need` bytes exceed `free` (default: this host's available memory and free swap)."""
    free = free_bytes() if free is None else free
    if need > free:
        raise UserError(f"spec '{label}': its {params / 1e9:.1f} B parameters need {need / 2**30:.1f} GiB in "
                        f"{what} to {verb}, but this host has {free / 2**30:.1f} GiB of memory free; run it on a "
                        f"machine with more memory{hint}")


def check_components(spec, components: list[int], cast: str, checkpoint: bool = False,
                     free: int | None = None) -> None:
    """The check for a pipeline whose `components` (parameter counts, in build order) are made in fp32,
    then cast to the spec's dtype; ONNX Runtime exports from fp32 and keeps a second copy for fp16."""
    if not on_host(spec, checkpoint):
        return
    verb = "load" if checkpoint else "build"
    if spec.backend == "onnxruntime":
        need = sum(components) * 4 * (2 if spec.dtype == "fp16" else 1)
        what = "fp32 for the ONNX export" + (" plus an fp16 copy" if spec.dtype == "fp16" else "")
        return refuse(spec.label, sum(components), need, what, verb, free=free)
    need = peak(components, spec.dtype, cast)
    what = spec.dtype if spec.dtype == "fp32" else f"{spec.dtype} (made in fp32, then cast)"
    hint = ""
    if cast == "each" and spec.dtype == "fp32":
        hint = f"; in bf16 it needs {peak(components, 'bf16', cast) / 2**30:.1f} GiB"
    refuse(spec.label, sum(components), need, what, verb, hint, free)


def catalog_counts(components: dict) -> list[int]:
    """Parameter counts of a catalog entry's components, in build order: the shipped count, or a count
    on the meta device where the entry has none (the tiny test shapes)."""
    from ..catalog import build_component

    return [c.get("params") or sum(p.numel() for p in build_component(c, "meta").parameters())
            for c in components.values()]
