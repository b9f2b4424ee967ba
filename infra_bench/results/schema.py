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
