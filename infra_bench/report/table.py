"""The terminal summary table of a run's records."""
from __future__ import annotations

MIB = 1024 * 1024


def _ms(summary: dict | None, stat: str = "p50") -> str:
    return f"{summary[stat] * 1000:.2f}" if summary else "-"


def _num(v, fmt: str) -> str:
    return format(v, fmt) if v is not None else "-"


def _bytes(v) -> str:
    return f"{v / MIB:.0f}" if v else "-"


COLUMNS = ("workload", "backend", "device", "dtype", "batch", "prompt", "out", "TTFT p50 ms", "TPOT p50 ms",
           "out tok/s", "n", "RSS MiB", "dev MiB", "J/token", "energy source", "status")


def record_cells(r: dict) -> list[str]:
    m, c = r.get("metrics") or {}, r["cell"]
    status = r["status"] if r["status"] == "ok" else f"failed: {r.get('error', '')[:60]}"
    backend = r["backend"].get("name", "?")
    if r["spec"].get("backend") == "onnxruntime":
        backend = f"ort:{r['spec'].get('ep') or 'cpu'}"
    return [r["spec"].get("name") or r["model"].get("arch") or "?", backend, r["device"].get("name", "?"),
            r["spec"].get("dtype", "?"), str(c["batch_size"]), str(c["prompt_len"]), str(c["output_len"]),
            _ms(m.get("ttft_s")), _ms(m.get("tpot_s")), _num(m.get("output_tokens_per_s"), ".1f"),
            str(m.get("iterations", "-")), _bytes(m.get("host_peak_rss_bytes")),
            _bytes(m.get("device_peak_allocated_bytes")), _num(m.get("j_per_token"), ".4f"),
            m.get("energy_source", "-"), status]


def format_table(records: list[dict]) -> str:
    rows = [list(COLUMNS)] + [record_cells(r) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_notes(records: list[dict]) -> str:
    """Labels a reader needs next to the numbers: random weights, estimated energy."""
    notes = []
    if any(r["model"].get("weights") == "random" for r in records):
        notes.append("weights: random (built from architecture configs; timing only, outputs meaningless)")
    energy = {(r.get("metrics") or {}).get("energy_note") for r in records} - {None}
    notes += sorted(energy)
    notes += sorted({n for r in records for n in r.get("notes", []) if n.startswith("quantized")})
    return "\n".join(f"note: {n}" for n in notes)
