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


def versions(*packages: str) -> dict[str, str]:
    """Installed versions, for cache keys: a new library version means a new export."""
    return {name: md.version(name) for name in packages}
