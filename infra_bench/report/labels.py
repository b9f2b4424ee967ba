"""How records are named and labelled in reports: cell, series and setup names, the headline
metrics of each workload kind with their units, and measured vs estimated energy.

Names reuse the record's own `cell_id` (workload/backend/device/dtype/shape), the string users see
while a run progresses, so a chart label can be found in records.jsonl as is.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..kinds import KINDS
from ..kinds.base import MIB
from ..results.cells import setup_name, shape_name
from .table import backend_label

MEASURED_ENERGY = frozenset({"nvml_counter", "rapl", "power_integrated"})


def energy_metric(kind: str) -> tuple[str, str]:
    """The record's energy-per-unit metric of this kind and its unit label: ('j_per_token', 'J/token')."""
    unit = KINDS[kind].energy_unit if kind in KINDS else "unit"
    return f"j_per_{unit}", f"J/{unit.replace('_', ' ')}"


def energy_label(source: str | None) -> str:
    """'measured (rapl)' for hardware counters and integrated power; 'estimated' otherwise."""
    if source in MEASURED_ENERGY:
        return f"measured ({source})"
    return "unavailable" if source in (None, "unavailable") else "estimated"


def is_estimated(metrics: dict) -> bool:
    return metrics.get("energy_source") not in MEASURED_ENERGY


def stat(metrics: dict, name: str, which: str = "p50") -> float | None:
    """A summary statistic of a latency metric, or a scalar metric itself; None when absent."""
    v = metrics.get(name)
    return v.get(which) if isinstance(v, dict) else v


def model_id(r: dict) -> str:
    """What was measured, independent of backend: the architecture, voice or checkpoint folder; from the spec where
    the record has no model (a cell that failed before it was built, on a lost Ray node, say)."""
    m = r["model"] or {"arch": (r.get("spec") or {}).get("arch")}
    return m.get("arch") or m.get("voice") or (Path(m["path"]).name if m.get("path") else r["workload"])


def shape(r: dict) -> str:
    """The cell's shape from its fields, as its id writes it: b2-p16-o8."""
    return shape_name(r["kind"], r["cell"])


def _letter(i: int) -> str:
    return chr(ord("A") + i) if i < 26 else f"R{i + 1}"


class Names:
    """Display names for records; with several runs each name starts with its run's letter."""

    def __init__(self, run_ids: Sequence[str]):
        self.letters = {rid: _letter(i) for i, rid in enumerate(run_ids)} if len(run_ids) > 1 else {}

    def letter(self, run_id: str) -> str:
        return self.letters.get(run_id, "")

    def _prefix(self, r: dict) -> str:
        return f"[{self.letters[r['run_id']]}] " if self.letters else ""

    def cell(self, r: dict) -> str:
        return self._prefix(r) + r["cell_id"]

    def series(self, r: dict) -> str:
        """The cell without its batch size: the points of one latency-throughput curve."""
        head = setup_name(r["workload"], r["spec"])
        rest = shape_name(r["kind"], r["cell"], without=("batch_size",))
        return self._prefix(r) + (f"{head}/{rest}" if rest else head)

    def setup(self, r: dict) -> str:
        """Run, backend, device and precision: what differs between compared measurements."""
        d = r["device"]
        model = f" ({d['model']})" if d.get("model") else ""
        threads = r["backend"].get("threads") if d.get("name") == "cpu" else None  # a Ray task gets 1, a run all
        return (f"{self._prefix(r)}{backend_label(r)} on {d.get('name', '?')}{model}, {r['spec'].get('dtype', '?')}"
                + (f", {threads} thread{'s' if threads != 1 else ''}" if threads else ""))


def mib(v: float | None) -> float | None:
    return v / MIB if v else None
