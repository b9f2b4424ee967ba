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
