"""A plan as terminal text: the ranked feasible candidates, then the infeasible ones with why."""
from __future__ import annotations

from .table import render


def _config(o) -> str:
    tp = f" TP{o.tp}" if o.tp > 1 else ""
    cap = f"{o.capacity:.3g} {o.unit}" if o.capacity is not None else "-"
    mark = "~" if o.method == "approximation" else ""
    return f"{o.service}: {o.replicas}x{tp} {o.precision} @ {mark}{cap}"


def _money(capex: dict | None) -> str:
    return f"{capex['devices'] / 1e3:,.0f}k {capex['currency']}" if capex else "-"


def plan_text(p, top: int = 15) -> str:
    ok = [c for c in p.candidates if c.feasible]
    bad = [c for c in p.candidates if not c.feasible]
    where = ", ".join(x for x in (f"site {p.site}" if p.site else "", f"market {p.market}" if p.market else "") if x)
    lines = [f"plan for '{p.demand}'" + (f" ({where})" if where else "") + f": {len(ok)} of {len(p.candidates)} "
             f"candidates can serve it; ranked by {p.rank_by}"]
    if ok:
        rows = [["#", "hardware", "devices", "servers", "peak kW", "capex", "per service: replicas x config @ capacity"]]
        for i, c in enumerate(ok[:top], 1):
            rows.append([str(i), c.hardware, str(c.devices), str(c.servers),
                         f"{c.peak_kw:.1f}" if c.peak_kw is not None else "-", _money(c.capex),
                         "; ".join(_config(o) for o in c.options)])
        lines.append(render(rows))
        if len(ok) > top:
            lines.append(f"... {len(ok) - top} more feasible (--top N or --json for all)")
        flagged = [f"{c.hardware}: {n}" for c in ok[:top] for n in c.notes]
        lines += [f"note: {n}" for n in flagged]
    if bad:
        lines.append(f"cannot serve it ({len(bad)}):")
        lines += [f"  {c.hardware}: {c.reason}" for c in bad[:top]]
        if len(bad) > top:
            lines.append(f"  ... {len(bad) - top} more (--json for all)")
    lines.append("~ capacity from the queueing approximation (LLM, diffusion); unmarked: confirmed by simulation, "
                 "or TTS streams by processor sharing")
    lines += [f"note: {n}" for n in p.notes]
    return "\n".join(lines)
