"""Terminal summary tables of a run's records, one table per workload kind."""
from __future__ import annotations

from ..kinds import KINDS
from ..kinds.base import MIB, Column, fixed
from ..measure.contention import BUSY_FRACTION
from ..results.cells import execution_provider


def _num(v, fmt: str) -> str:
    return fixed(v, fmt) if v is not None else "-"


def _mib(v) -> str:
    return f"{v / MIB:.0f}" if v else "-"


def backend_label(r: dict) -> str:
    """'torch', 'torch+compile:<mode>' for a compiled decode step, or 'ort:<execution provider>'."""
    if r["spec"].get("backend") == "onnxruntime":
        return f"ort:{execution_provider(r['spec'])}"
    mode = r["spec"].get("compile") or "none"
    return r["backend"].get("name", "?") + ("" if mode == "none" else f"+compile:{mode}")


PROBE_COLUMNS: list[Column] = [
    ("device", lambda r, m, c: r["device"].get("name", "?")),
    ("model", lambda r, m, c: str(r["device"].get("model", "?"))[:40]),
    ("test", lambda r, m, c: c["test"]),
    ("dtype", lambda r, m, c: c["dtype"]),
    ("measured", lambda r, m, c: _num(m.get("value"), ".3g")),
    ("unit", lambda r, m, c: m.get("unit", "-")),
    ("spec", lambda r, m, c: _num(m.get("spec"), ".4g")),
    ("measured/spec", lambda r, m, c: _num(m.get("measured_over_spec"), ".2f")),
    ("profile", lambda r, m, c: m.get("profile") or "none matched"),
    ("status", lambda r, m, c: status_label(r)),
]


def columns_for(kind: str) -> list[Column]:
    """The table columns for a kind of record: common, kind-specific, memory and energy."""
    if kind == "probe":
        return PROBE_COLUMNS
    unit = KINDS[kind].energy_unit if kind in KINDS else "unit"
    return [
        ("workload", lambda r, m, c: r["workload"]),
        ("backend", lambda r, m, c: backend_label(r)),
        ("device", lambda r, m, c: r["device"].get("name", "?")),
        ("dtype", lambda r, m, c: r["spec"].get("dtype", "?")),
        ("batch", lambda r, m, c: str(c["batch_size"])),
        *(KINDS[kind].columns if kind in KINDS else ()),
        ("n", lambda r, m, c: str(m.get("iterations", "-"))),
        ("RSS MiB", lambda r, m, c: _mib(m.get("host_peak_rss_bytes"))),
        ("dev MiB", lambda r, m, c: _mib(m.get("device_peak_allocated_bytes"))),
        (f"J/{unit}", lambda r, m, c: _num(m.get(f"j_per_{unit}"), ".4f")),
        ("energy source", lambda r, m, c: m.get("energy_source", "-")),
        ("status", lambda r, m, c: status_label(r)),
    ]


def _busy(r: dict) -> bool:
    return any(n.startswith("machine busy") for n in r.get("notes", []))


def ok_label(r: dict) -> str:
    """ok, with what weakens it: a busy machine, or a cell cut short by max_time_s."""
    return ", ".join(["ok"] + (["busy"] if _busy(r) else [])
                     + (["cut short"] if any(n.startswith("cut short") for n in r.get("notes", [])) else []))


def status_label(r: dict) -> str:
    """`ok` (with what weakens it), or `failed: ` and the start of the error."""
    return ok_label(r) if r["status"] == "ok" else f"failed: {(r.get('error') or '')[:60]}"


def render(rows: list[list[str]], rule: bool = True) -> str:
    """Left-aligned text columns; the first row is the header, ruled off when `rule`."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    if rule:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _one_table(kind: str, records: list[dict]) -> str:
    cols = columns_for(kind)
    return render([[h for h, _ in cols]] + [[f(r, r.get("metrics") or {}, r["cell"]) for _, f in cols]
                                           for r in records])


def format_table(records: list[dict]) -> str:
    """One table per kind of record; endpoint load points in the load test's own table."""
    from .endpoint_table import format_points

    kinds = list(dict.fromkeys(r["kind"] for r in records))
    return "\n\n".join(format_points([r for r in records if r["kind"] == k]) if k == "endpoint"
                        else _one_table(k, [r for r in records if r["kind"] == k]) for k in kinds)


def format_errors(records: list[dict]) -> str:
    """Each failed cell's whole error, one line each: the status column keeps 60 characters, which cut torch's
    out-of-memory error before it said so. Load points list their request errors in their own table."""
    return "\n".join(f"error at {r['cell_id']}: {' '.join((r.get('error') or '-').split())}" for r in records
                     if r["status"] == "failed" and r["kind"] != "endpoint")


def format_notes(records: list[dict]) -> str:
    """Labels a reader needs next to the numbers: random weights, estimated energy, quantization, a user .onnx
    file's unchecked outputs, a load test's output tokens counted from chunks (its tok/s and TPOT estimates)."""
    notes = []
    if any(r["model"].get("weights") == "random" for r in records):
        notes.append("weights: random (built from architecture configs; timing only, outputs meaningless)")
    energy = {(r.get("metrics") or {}).get("energy_note") for r in records} - {None}
    notes += sorted(energy)
    notes += sorted({n for r in records for n in r.get("notes", [])
                     if n.startswith(("quantized", "real voice", "steps:", "parity: not checked", "prompt token ids",
                                      "output tokens: estimated"))})
    notes += sorted({n for r in records for n in r.get("notes", []) if n.startswith("--")})  # options with no effect
    busy = sum(_busy(r) for r in records)
    if busy:
        notes.append(f"{busy} cell(s) 'ok, busy': other processes used over {BUSY_FRACTION:.0%} of the host's CPU time "
                     f"while they ran, so their timings are likely slower than on an idle machine; re-run them idle")
    return "\n".join(f"note: {n}" for n in notes)
