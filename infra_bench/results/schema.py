"""The record: one measured (or failed) cell, with everything needed to audit it later."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

SCHEMA_VERSION = 1


class Record(BaseModel):
    """Schema version 1. `metrics` uses the names of docs/metrics.md; `samples` holds the raw
    per-iteration timings (ttft_s, e2e_s, itl_s) the metrics were computed from."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    run_id: str
    cell_id: str
    kind: str
    workload: str
    status: Literal["ok", "failed"]
    error: str | None = None
    started_at: str
    ended_at: str
    duration_s: float
    spec: dict
    model: dict
    cell: dict
    backend: dict
    device: dict
    settings: dict
    environment: dict
    metrics: dict | None = None
    samples: list[dict] | None = None
    notes: list[str] = []

    @model_validator(mode="after")
    def _status_consistent(self) -> Record:
        if self.status == "ok" and (self.metrics is None or self.error is not None):
            raise ValueError("an ok record has metrics and no error")
        if self.status == "failed" and not self.error:
            raise ValueError("a failed record carries its error text")
        return self


class RunSettings(BaseModel):
    """The options a run was started with, which `--resume` reuses."""
    model_config = ConfigDict(extra="forbid")
    cpu_watts_per_core: float | None = None
    trust_remote_code: bool = False


class SweepSettings(BaseModel):
    """A sweep's matrix settings: its name, node types per spec label, retries, and where cells ran."""
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    node_types: dict[str, dict | None] = {}
    max_retries: int = 0
    max_in_flight: int | None = None
    executor: str = "local"


class Manifest(BaseModel):
    """A run folder's run.json, written when the run starts: what it will measure and how.
    `kind` is "endpoint" for a load test and "probe" for a roofline probe (of `device`, `quick` or
    full); `seed` is a load test's request seed; `matrix` marks a sweep."""
    model_config = ConfigDict(extra="forbid")
    run_id: str
    created_at: str
    infra_bench: str
    kind: Literal["run", "endpoint", "probe"] = "run"
    specs: list[dict]
    cells_planned: int | None = None
    options: RunSettings = RunSettings()
    seed: int | None = None
    matrix: SweepSettings | None = None
    device: str | None = None
    quick: bool | None = None

    def labels(self) -> list[str]:
        """The specs' names, as `results list` shows them."""
        return [str(s.get("name") or s.get("arch") or s.get("model") or s.get("voice") or "?") for s in self.specs]
