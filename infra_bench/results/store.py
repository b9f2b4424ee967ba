"""The results store: results/<run_id>/run.json (the manifest) and records.jsonl.

Each record is one line, written with a single O_APPEND write and fsync'd before the next
cell starts, so a killed run keeps every finished cell and concurrent writers never
interleave within a line. A write that fails part way (a full disk) is cut back off, so no
partial record stays behind. A run has one writer at a time: creating or resuming it takes an
exclusive lock on `.lock` in its folder, released when the process ends (killed included).
Unparseable lines (a torn write), and lines of JSON that are not records, are skipped with a warning.
"""
from __future__ import annotations

import fcntl
import json
import os
import secrets
import sys
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from ..errors import UserError
from .schema import Manifest, Record


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    return f"{'.'.join(str(x) for x in err['loc']) or 'file'}: {err['msg']}"

MANIFEST, RECORDS, LOCK = "run.json", "records.jsonl", ".lock"


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _fsync_write(path: Path, data: bytes, append: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, 0o644)
    size = os.fstat(fd).st_size
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError:
        os.ftruncate(fd, size)  # leave the file as it was, not with half a record
        raise
    finally:
        os.close(fd)


class RunStore:
    """One run's folder. `create` makes it; `open` finds an existing one."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.run_id = folder.name
        self._lock_fd: int | None = None

    def lock(self) -> RunStore:
        """Become the run's only writer, or fail in one line if another process is writing it."""
        fd = os.open(self.folder / LOCK, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError(f"run {self.run_id} is being written by another process; wait for it to end "
                            f"(or stop it), then retry") from None
        self._lock_fd = fd
        return self

    @classmethod
    def create(cls, root: Path, run_id: str, manifest: Manifest) -> RunStore:
        folder = root / run_id
        try:
            folder.mkdir(parents=True, exist_ok=False)
            _fsync_write(folder / MANIFEST, manifest.model_dump_json(indent=1).encode(), append=False)
        except FileExistsError:
            raise UserError(f"run folder {folder} already exists; use --resume {run_id}") from None
        except OSError as e:
            raise UserError(f"cannot write results under {root}: {e.strerror}; "
                            f"use --out DIR with a writable folder") from None
        return cls(folder).lock()

    @classmethod
    def open(cls, root: Path, run_id: str) -> RunStore:
        given = Path(run_id)
        folder = given if given.is_dir() and (given / MANIFEST).is_file() else root / run_id
        orphan = next((f for f in (given, root / run_id) if (f / RECORDS).is_file() and not (f / MANIFEST).is_file()),
                      None)
        if orphan is not None:  # it was 'no run' or 'holds no records', which it does
            raise UserError(f"{orphan} has {RECORDS} but no {MANIFEST} (the manifest the run wrote when it started); "
                            f"copy {MANIFEST} back from a copy of the run folder, or run the specs again")
        if not (folder / MANIFEST).is_file() and given.is_dir():  # a folder given, and no run of that name
            inside = [r["run_id"] for r in list_runs(given)][-3:]
            hint = (f"it is a results folder; give one of its runs, e.g. {given / inside[-1]} (recent: "
                    f"{', '.join(inside)})" if inside else "give a run folder made by `infra-bench run` "
                    "(results/<run_id>) or a run id")
            raise UserError(f"{given} holds no records (no {MANIFEST}); {hint}")
        if not (folder / MANIFEST).is_file() and given.is_file():
            raise UserError(f"{given} is a file; give a run id or a run folder (results/<run_id>, holding "
                            f"{MANIFEST} and {RECORDS})")
        if not (folder / MANIFEST).is_file():
            known = [r["run_id"] for r in list_runs(root)][-5:]
            hint = f"recent runs: {', '.join(known)}" if known else f"no runs under {root}"
            raise UserError(f"no run '{run_id}' under {root} ({hint}); see `infra-bench results list`")
        return cls(folder)

    def manifest(self) -> Manifest:
        try:
            return Manifest.model_validate_json((self.folder / MANIFEST).read_text())
        except OSError as e:
            raise UserError(f"{self.folder / MANIFEST} is unreadable ({e.strerror}); the run cannot be resumed") from None
        except ValidationError as e:
            raise UserError(f"{self.folder / MANIFEST} is not a run manifest ({_first_error(e)}); "
                            f"the run cannot be resumed") from None

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

    def records(self, warn: bool = True, checked: bool = True) -> list[dict]:
        """The run's records; a torn line is skipped with a warning, and so (when `checked`) is a line of JSON that
        is not a record (hand-edited or foreign: `results list`, `show` and `report` stopped on it with an internal
        error). `calibrate` reads unchecked, to refuse such a line by its number."""
        path = self.folder / RECORDS
        if not path.exists():
            return []
        out = []
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    if checked:
                        Record.model_validate(record)
                    out.append(record)
                except json.JSONDecodeError:
                    if warn:
                        print(f"warning: {path}:{n}: unreadable record line skipped", file=sys.stderr)
                except ValidationError as e:
                    why = _first_error(e) if isinstance(record, dict) else f"a JSON {type(record).__name__}"
                    if warn:
                        print(f"warning: {path}:{n}: not an infra-bench record ({why}); line skipped", file=sys.stderr)
        return out

    def finished_cells(self) -> set[str]:
        return {r["cell_id"] for r in self.records(warn=False) if "cell_id" in r}


def list_runs(root: Path, warn: bool = False) -> list[dict]:
    """Every run under `root`, oldest first, with counts of ok and failed cells; with `warn`, a warning for each
    folder of records that cannot be listed (its run.json missing or broken), which `results list` left out
    without a word."""
    runs = []
    if not root.is_dir():
        return runs
    for folder in sorted(p for p in root.iterdir() if (p / MANIFEST).is_file() or (p / RECORDS).is_file()):
        store = RunStore(folder)
        try:
            if not (folder / MANIFEST).is_file():
                raise UserError(f"{folder} has {RECORDS} but no {MANIFEST}")
            m = store.manifest()
        except UserError as e:
            if warn:
                print(f"warning: not listed: {e}", file=sys.stderr)
            continue
        recs = store.records(warn=False)
        runs.append({"run_id": folder.name, "kind": {"run": "run", "endpoint": "loadtest"}.get(m.kind, m.kind),
                     "created_at": m.created_at, "specs": m.labels(),
                     "cells_planned": m.cells_planned,
                     "ok": sum(r.get("status") == "ok" for r in recs),
                     "failed": sum(r.get("status") == "failed" for r in recs),
                     # a load test's point is ok as a measurement even when requests in it failed: count those too
                     "requests_sent": sum((r.get("metrics") or {}).get("sent") or 0 for r in recs),
                     "requests_failed": sum((r.get("metrics") or {}).get("failed") or 0 for r in recs),
                     "path": str(folder)})
    return runs
