"""Content hashes of model files, for the record (streamed: checkpoints can be large)."""
from __future__ import annotations

import hashlib
from pathlib import Path


def hash_files(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return "sha256:" + h.hexdigest()


def safetensors_problem(path: Path) -> str | None:
    """Why a .safetensors file cannot be loaded (a truncated copy, a file that is not safetensors),
    read from its header and size alone; None when it is whole."""
    import json

    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return f"{size} bytes, shorter than a safetensors header"
        n = int.from_bytes(head, "little")
        if n > size - 8:
            return f"its header claims {n} bytes but the file has {size}: not a safetensors file, or cut short"
        try:
            header = json.loads(fh.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "its header is not valid JSON: not a safetensors file"
    ends = [v["data_offsets"][1] for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v]
    need = 8 + n + max(ends, default=0)
    if size < need:
        return f"{size} bytes of the {need} its header describes: cut short"
    return None
