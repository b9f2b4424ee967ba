"""Records as a pandas DataFrame: one row per cell, metrics flattened into columns."""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .store import RECORDS, RunStore

DEFAULT_ROOT = Path("results")


def _flatten(prefix: str, value, row: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else k, v, row)
    elif isinstance(value, list) and len(value) == 2 and prefix.endswith("_ci95"):
        row[f"{prefix}_low"], row[f"{prefix}_high"] = value
    else:
        row[prefix] = value


def record_row(r: dict) -> dict:
    """One flat row: identity columns, the cell shape, then every metric (`ttft_s.p50`, ...)."""
    row = {"run_id": r["run_id"], "cell_id": r["cell_id"], "kind": r["kind"], "status": r["status"],
           "error": r.get("error"), "workload": r["workload"],
           "arch": r["model"].get("arch"), "weights": r["model"].get("weights"),
           "backend": r["backend"].get("name"), "device": r["device"].get("name"),
           "device_model": r["device"].get("model"), "dtype": r["spec"].get("dtype"),
           "started_at": r["started_at"], **r["cell"]}
    _flatten("", r.get("metrics") or {}, row)
    return row


def load_results(path_or_run_id: str | Path, root: str | Path = DEFAULT_ROOT):
    """A DataFrame of a run (its folder, its records.jsonl, or its id under `root`)."""
    import pandas as pd

    p = Path(path_or_run_id)
    if p.is_file() and p.name == RECORDS:
        store = RunStore(p.parent)
    elif p.is_dir() and (p / RECORDS).exists():
        store = RunStore(p)
    else:
        store = RunStore.open(Path(root), str(path_or_run_id))
    records = store.records()
    if not records:
        raise UserError(f"run {store.run_id} has no records yet")
    return pd.DataFrame([record_row(r) for r in records])
