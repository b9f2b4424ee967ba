"""Where the data shipped with the project lives, in a source checkout or an installed wheel."""
from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """`workloads` etc.: the packaged copy in a wheel, else the top-level folder of a checkout."""
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"data folder '{name}' is missing from this installation")


def reference_rows(name: str) -> list[dict]:
    """The rows of a shipped CSV of public figures (workloads/reference/<name>), as dicts of strings."""
    import csv

    with open(data_dir("workloads") / "reference" / name, newline="") as f:
        return list(csv.DictReader(f))


def cache_dir(name: str) -> Path:
    """A per-user cache folder (`onnx`, `flops`): $INFRA_BENCH_CACHE/<name>, else ~/.cache/infra-bench/<name>."""
    import os

    if os.environ.get("INFRA_BENCH_CACHE"):
        return Path(os.environ["INFRA_BENCH_CACHE"]) / name
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "infra-bench" / name


def cached_json(folder: str, name: str, compute):
    """`compute()`'s JSON value, kept in cache_dir(folder)/name: read back when there (a file that does not parse
    is computed again), else computed and written atomically (two processes at once: each its own temp file).
    What `compute` raises is raised and nothing is kept."""
    import json
    import os

    path = cache_dir(folder) / name
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            path.unlink(missing_ok=True)
    value = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(value))
        tmp.replace(path)
    except OSError:  # a read-only or full cache folder costs the next call its time, not this answer
        pass
    return value

