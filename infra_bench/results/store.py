"""The results store: results/<run_id>/run.json (the manifest) and records.jsonl.

Each record is one line, written with a single O_APPEND write and fsync'd before the next
cell starts, so a killed run keeps every finished cell and concurrent writers never
interleave within a line. Unparseable lines (a torn write) are skipped with a warning.
"""
from __future__ import annotations

import json
import os
import secrets
import sys
from datetime import datetime, timezone
from pathlib import Path

from ..errors import UserError

MANIFEST, RECORDS = "run.json", "records.jsonl"


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _fsync_write(path: Path, data: bytes, append: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


class RunStore:
    """One run's folder. `create` makes it; `open` finds an existing one."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.run_id = folder.name

    @classmethod
    def create(cls, root: Path, run_id: str, manifest: dict) -> RunStore:
        folder = root / run_id
        try:
            folder.mkdir(parents=True, exist_ok=False)
            _fsync_write(folder / MANIFEST, json.dumps(manifest, indent=1).encode(), append=False)
        except FileExistsError:
            raise UserError(f"run folder {folder} already exists; use --resume {run_id}") from None
        except OSError as e:
            raise UserError(f"cannot write results under {root}: {e.strerror}; "
                            f"use --out DIR with a writable folder") from None
        return cls(folder)

    @classmethod
    def open(cls, root: Path, run_id: str) -> RunStore:
        folder = Path(run_id) if Path(run_id).is_dir() and (Path(run_id) / MANIFEST).is_file() else root / run_id
        if not (folder / MANIFEST).is_file():
            known = [r["run_id"] for r in list_runs(root)][-5:]
            hint = f"recent runs: {', '.join(known)}" if known else f"no runs under {root}"
            raise UserError(f"no run '{run_id}' under {root} ({hint}); see `infra-bench results list`")
        return cls(folder)

    def manifest(self) -> dict:
        try:
            return json.loads((self.folder / MANIFEST).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise UserError(f"{self.folder / MANIFEST} is unreadable ({e}); the run cannot be resumed") from None

    def append(self, record: dict) -> None:
        """Write one record line; after a torn last line (a killed writer), start a new line first."""
        path = self.folder / RECORDS
        line = json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n"
        try:
            if path.exists() and path.stat().st_size:
                with open(path, "rb") as f:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        line = "\n" + line
            _fsync_write(path, line.encode(), append=True)
        except OSError as e:
            raise UserError(f"cannot append to {path}: {e.strerror}; "
                            f"free space or use --out DIR") from None

    def records(self, warn: bool = True) -> list[dict]:
        path = self.folder / RECORDS
        if not path.exists():
            return []
        out = []
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    if warn:
                        print(f"warning: {path}:{n}: unreadable record line skipped", file=sys.stderr)
        return out

    def finished_cells(self) -> set[str]:
        return {r["cell_id"] for r in self.records(warn=False) if "cell_id" in r}


def list_runs(root: Path) -> list[dict]:
    """Every run under `root`, oldest first, with counts of ok and failed cells."""
    runs = []
    if not root.is_dir():
        return runs
    for folder in sorted(p for p in root.iterdir() if (p / MANIFEST).is_file()):
        store = RunStore(folder)
        try:
            m = store.manifest()
        except UserError:
            continue
        recs = store.records(warn=False)
        runs.append({"run_id": folder.name, "created_at": m.get("created_at"),
                     "specs": [s.get("name") or s.get("arch") or s.get("model") for s in m.get("specs", [])],
                     "cells_planned": m.get("cells_planned"),
                     "ok": sum(r.get("status") == "ok" for r in recs),
                     "failed": sum(r.get("status") == "failed" for r in recs),
                     "path": str(folder)})
    return runs
