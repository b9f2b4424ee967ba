"""The terminal table of a load test's points (`kind: endpoint` records), one row per record, with
the columns of the API the run measured (read from the record's own fields)."""
from __future__ import annotations

from collections.abc import Callable

from ..kinds.base import fixed
from .table import render


def _p(m: dict, key: str, stat: str, scale: float, fmt: str) -> str:
    s = m.get(key)
    return fixed(s[stat] * scale, fmt) if s else "-"


def _n(v, fmt: str) -> str:
    return "-" if v is None else fixed(v, fmt)


def point_label(r: dict) -> str:
    """`conc 4`, `rate 2`, `rate inf max 8`: the point a record is."""
    c = r["cell"]
    if c["load"] == "concurrency":
        return f"conc {c['concurrency']}"
    rate = c["rate"] if c["rate"] == "inf" else f"{c['rate']:.4g}"
    return f"rate {rate}" + (f" max {c['concurrency']}" if c["concurrency"] else "")


def _slo(m: dict) -> str:
    if "slo_met" not in m:
        return "-"
    return "met" if m["slo_met"] else "missed"


Col = tuple[str, Callable[[dict, dict], str]]
COMMON: list[Col] = [
    ("point", lambda r, m: point_label(r)),
    ("sent", lambda r, m: str(m.get("sent", m.get("requests")))),   # "requests" before 2026-12
    ("ok", lambda r, m: str(m["completed"])),
    ("not ok", lambda r, m: str(m["failed"] + m["cancelled"])),
    ("req/s", lambda r, m: _n(m["requests_per_s"], ".2f")),
]
TAIL: list[Col] = [
    ("goodput", lambda r, m: _n(m.get("goodput"), ".2f")),
    ("SLO", lambda r, m: _slo(m)),
    ("stop", lambda r, m: "stopped" if m.get("stopped_early") else "saturated" if m["saturated"] else "-"),
]
BY_API: dict[str, list[Col]] = {
    "llm": [
        ("out tok/s", lambda r, m: _n(m["output_tokens_per_s"], ".1f")),
        ("TTFT p50 ms", lambda r, m: _p(m, "ttft_s", "p50", 1e3, ".1f")),
        ("TTFT p99 ms", lambda r, m: _p(m, "ttft_s", "p99", 1e3, ".1f")),
        ("TPOT p50 ms", lambda r, m: _p(m, "tpot_s", "p50", 1e3, ".2f")),
        ("TPOT p99 ms", lambda r, m: _p(m, "tpot_s", "p99", 1e3, ".2f")),
        ("ITL p50 ms", lambda r, m: _p(m, "itl_s", "p50", 1e3, ".2f")),
        ("E2E p50 s", lambda r, m: _p(m, "e2e_s", "p50", 1, ".3f")),
    ],
    "speech": [
        ("first audio p50 ms", lambda r, m: _p(m, "first_audio_s", "p50", 1e3, ".1f")),
        ("E2E p50 ms", lambda r, m: _p(m, "e2e_s", "p50", 1e3, ".1f")),
        ("E2E p99 ms", lambda r, m: _p(m, "e2e_s", "p99", 1e3, ".1f")),
        ("RTF p50", lambda r, m: _p(m, "rtf", "p50", 1, ".3f")),
        ("audio s/s", lambda r, m: _n(m["audio_s_per_s"], ".2f")),
    ],
    "vectors": [
        ("E2E p50 ms", lambda r, m: _p(m, "e2e_s", "p50", 1e3, ".1f")),
        ("E2E p99 ms", lambda r, m: _p(m, "e2e_s", "p99", 1e3, ".1f")),
        ("seq/s", lambda r, m: _n(m["sequences_per_s"], ".1f")),
        ("in tok/s", lambda r, m: _n(m.get("input_tokens_per_s"), ".0f")),
    ],
    "images": [
        ("TTFB p50 ms", lambda r, m: _p(m, "ttfb_s", "p50", 1e3, ".1f")),
        ("E2E p50 s", lambda r, m: _p(m, "e2e_s", "p50", 1, ".3f")),
        ("E2E p99 s", lambda r, m: _p(m, "e2e_s", "p99", 1, ".3f")),
        ("images/s", lambda r, m: _n(m["images_per_s"], ".2f")),
    ],
}


def _group(api: str, m: dict) -> str:
    """Which API's columns: token streams (completions, chat, TGI) by their TTFT, embeddings and rerank by
    their sequences."""
    if "ttft_s" in m:
        return "llm"
    return "vectors" if "sequences_per_s" in m else api


def format_points(records: list[dict]) -> str:
    """One table for the run's records (one API per run), then the errors per point."""
    if not records:
        return "no load point finished"
    api = records[0]["spec"]["api"]
    cols = COMMON + BY_API[_group(api, records[0]["metrics"])] + TAIL
    lines = [render([[h for h, _ in cols]] + [[f(r, r["metrics"]) for _, f in cols] for r in records])]
    for r in records:
        for text, count in r["metrics"]["errors"].items():
            lines.append(f"errors at {point_label(r)}: {count} x {text}")
        m = r["metrics"]
        if m.get("stopped_early"):
            lines.append(f"stopped at {point_label(r)}: {r['settings']['stop_reason']}"
                         + (f"; {m['not_sent']} never sent" if m.get("not_sent") else ""))
        elif m["saturated"]:
            lines.append(f"saturated at {point_label(r)} (every request was still sent): {r['settings']['saturation']}")
    return "\n".join(lines)
