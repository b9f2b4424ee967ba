"""A content-keyed, on-disk cache of exported ONNX models, for any model kind.

An entry is a folder named by the SHA-256 of its key (a JSON-able dict: what was exported,
how, and the library versions). It is built under a temporary name and renamed into place
when complete; `meta.json`, written last, holds the key and the model file's size and hash.
An entry whose meta is missing or whose model no longer matches it (a partial write, a
truncated file) is removed and rebuilt.
"""
from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...paths import cache_dir

MODEL_FILE, META_FILE = "model.onnx", "meta.json"


def default_cache_dir() -> Path:
    return cache_dir("onnx")


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class CachedModel:
    path: Path
    key: dict
    cache_hit: bool
    build_s: float | None  # seconds spent exporting now; None on a cache hit
    rebuilt_reason: str | None = None


def _valid(folder: Path) -> str | None:
    """None when the entry is complete and intact, else what is wrong with it."""
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return "meta.json missing or unreadable"
    for name, info in meta.get("files", {}).items():
        f = folder / name
        if not f.is_file() or f.stat().st_size != info["size"]:
            return f"{name} has the wrong size"
        if _file_hash(f) != info["sha256"]:
            return f"{name} does not match its hash"
    return None


def cached_export(key: dict, build: Callable[[Path], None], cache_dir: Path | None = None) -> CachedModel:
    """The model for `key`, exported by `build(path)` into a fresh folder unless cached and intact."""
    root = cache_dir or default_cache_dir()
    folder = root / key_digest(key)
    reason = None
    if folder.is_dir():
        reason = _valid(folder)
        if reason is None:
            return CachedModel(folder / MODEL_FILE, key, True, None)
        shutil.rmtree(folder, ignore_errors=True)
    tmp = root / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        t0 = time.perf_counter()
        build(tmp / MODEL_FILE)
        build_s = time.perf_counter() - t0
        files = {p.name: {"size": p.stat().st_size, "sha256": _file_hash(p)} for p in tmp.iterdir() if p.is_file()}
        (tmp / META_FILE).write_text(json.dumps({"key": key, "files": files, "build_s": build_s}, indent=1,
                                                default=str))
        try:
            tmp.rename(folder)
        except OSError:  # another process finished the same entry first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return CachedModel(folder / MODEL_FILE, key, False, build_s, reason)


def entry_info(entry: CachedModel) -> dict:
    """What a record says about an export: where, which key, cached or built now, and why rebuilt."""
    return {"path": str(entry.path), "cache_key": key_digest(entry.key), "cache_hit": entry.cache_hit,
            "export_s": entry.build_s, "rebuilt_reason": entry.rebuilt_reason}


@dataclass(frozen=True)
class Exporter:
    """Which torch.onnx exporter traces our models, and at which opset.

    The TorchScript-based exporter (`dynamo=False`) is used while torch still ships it: it traces
    our wrappers 5-10x faster than the torch.export-based one on a small CPU (llama-tiny 1.2 s
    against 8.7 s), and torch has deprecated but not removed it. Where it is gone, or when
    INFRA_BENCH_ONNX_EXPORTER=dynamo asks for it, the torch.export-based exporter (`dynamo=True`,
    needs onnxscript) takes over; the tests run the LLM export through both."""
    dynamo: bool

    @property
    def name(self) -> str:
        return f"torch.onnx.export(dynamo={self.dynamo})"

    @property
    def opset(self) -> int:
        return 18 if self.dynamo else 17

    def key(self) -> dict:
        return {"exporter": self.name, "opset": self.opset}

    def export(self, module, args: tuple, path: Path, inputs: list[str], outputs: list[str], axes: dict) -> None:
        """Trace `module` on `args` into `path`, with `axes` ({name: {dim: label}}) left dynamic."""
        import warnings

        import torch

        with warnings.catch_warnings(), torch.no_grad():
            # tracer warnings about shape-dependent branches and the exporter's own deprecation notice;
            # the parity gate checks what the export produced
            warnings.simplefilter("ignore")
            if self.dynamo:
                _quiet_torch_export_logs()
                torch.onnx.export(module, args, str(path), dynamo=True, input_names=inputs, output_names=outputs,
                                  dynamic_shapes=_dynamic_shapes(module, inputs, axes), opset_version=self.opset,
                                  external_data=_over_protobuf_limit(module), verbose=False)  # no progress lines
            else:
                torch.onnx.export(module, args, str(path), dynamo=False, input_names=inputs,
                                  output_names=outputs, dynamic_axes=axes, opset_version=self.opset)


def _dynamic_shapes(module, inputs: list[str], axes: dict) -> tuple:
    """torch.export's form of `axes`: one {dim: Dim} (or None) per forward() argument, the inputs
    taken by a `*args` parameter grouped into one tuple; a label names the same Dim everywhere."""
    import inspect

    import torch

    dims = {label: torch.export.Dim(label) for name in inputs for label in axes.get(name, {}).values()}
    per_input = [{d: dims[label] for d, label in axes[name].items()} if name in axes else None for name in inputs]
    params = list(inspect.signature(module.forward).parameters.values())
    fixed = sum(p.kind is not inspect.Parameter.VAR_POSITIONAL for p in params)
    if len(per_input) > fixed:
        return (*per_input[:fixed], tuple(per_input[fixed:]))
    return tuple(per_input)


def _over_protobuf_limit(module) -> bool:
    """Whether the weights need an external data file (a single ONNX file holds under 2 GB)."""
    return sum(p.numel() * p.element_size() for p in module.parameters()) > 1.8e9


def _quiet_torch_export_logs() -> None:
    """The torch.export-based exporter logs progress and skipped optional ops at WARNING level."""
    import logging

    for name in ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx.experimental.symbolic_shapes"):
        logging.getLogger(name).setLevel(logging.ERROR)


def torchscript_exporter_available() -> bool:
    """Whether this torch still ships the TorchScript-based exporter."""
    import importlib.util

    try:
        return importlib.util.find_spec("torch.onnx._internal.torchscript_exporter") is not None or \
            importlib.util.find_spec("torch.onnx.utils") is not None
    except ModuleNotFoundError:
        return False


def exporter() -> Exporter:
    """The exporter to use (see Exporter); INFRA_BENCH_ONNX_EXPORTER=dynamo|torchscript overrides the choice."""
    from ...errors import MissingDependency, UserError, install_hint

    choice = os.environ.get("INFRA_BENCH_ONNX_EXPORTER", "").strip().lower()
    if choice not in ("", "dynamo", "torchscript"):
        raise UserError(f"INFRA_BENCH_ONNX_EXPORTER={choice!r} is not an exporter; use dynamo or torchscript, "
                        f"or unset it")
    dynamo = choice == "dynamo" or (choice == "" and not torchscript_exporter_available())
    if dynamo:
        import importlib.util
        if importlib.util.find_spec("onnxscript") is None:
            raise MissingDependency("the torch.export-based ONNX exporter needs onnxscript: "
                                    f"{install_hint('onnx')}")
    return Exporter(dynamo)


def versions(*packages: str) -> dict[str, str]:
    """Installed versions, for cache keys: a new library version means a new export."""
    return {name: md.version(name) for name in packages}
