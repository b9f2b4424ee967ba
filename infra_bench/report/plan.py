"""A plan as terminal text: the ranked feasible candidates, then the infeasible ones with why."""
from __future__ import annotations

from ..planner.calibration import BUSY_LABEL
from .charts import number
from .table import render

APPROXIMATED = ("a queueing approximation, which reads 0.76-0.97 of the simulated one (so up to a third more devices "
                "than a simulation would size; embeddings 0.86-1.00)")  # what ~ means, in the terminal and the report


def config_text(o, cost: dict | None) -> str:
    """One service's configuration: replicas x TP, precision, capacity (~ approximated), cost per unit."""
    tp = f" TP{o.tp}" if o.tp > 1 else ""
    cap = f"{o.capacity:.3g} {o.unit}" if o.capacity is not None else "-"
    mark = "~" if o.method == "approximation" else ""
    unit = (cost or {}).get("per_unit", {}).get(o.service, {})
    price = f", {unit['cost']:.3g} {cost['currency']}/{unit['unit']}" if unit.get("cost") is not None else ""
    energy = f", {number(o.energy['j_per_token'], 2)} J/tok" if getattr(o, "energy", None) else ""
    fit = f" [{o.engine}, {fit_text(o)}]" if getattr(o, "engine", "") else ""
    return f"{o.service}: {o.replicas}x{tp} {o.precision} @ {mark}{cap}{_range(o)}{price}{energy}{fit}"


def _range(o) -> str:
    """The capacity's 80% range and the replicas its ends would need, where the option has one."""
    rng, reps = getattr(o, "capacity_range", None), getattr(o, "replicas_range", None)
    if not rng or not reps:
        return ""
    most = f"{reps[1]}" if reps[1] is not None else "? (its slow end misses the SLO)"
    return f" ({o.range_label}: {rng[0]:.3g}-{rng[1]:.3g}, {reps[0]}-{most} replicas)"


def thousands(value: float | None) -> str:
    """Money in thousands ('1,404k'), or '-' when unknown."""
    return "-" if value is None else f"{value / 1e3:,.0f}k"


def cost_cells(cost: dict | None) -> list[str]:
    """capex, TCO per year (thousands) and tCO2e per year of a costed candidate; 'unpriced' where the
    part or its server has no price (never shown as free). A TCO is 'unpriced' only where the price is
    all it lacks: without --site (or a TDP) no part has its energy priced, and every TCO reads '-'."""
    cost = cost or {}
    capex, per_year = (cost.get("capex") or {}).get("total"), (cost.get("per_year") or {}).get("total")
    unpriced = bool(cost) and cost.get("capex") is None
    energy_known = "kwh_per_year" in cost.get("energy", {})
    return ["unpriced" if unpriced else thousands(capex), "unpriced" if unpriced and energy_known else thousands(per_year),
            "-" if "total_kg_per_year" not in cost.get("carbon", {}) else f"{cost['carbon']['total_kg_per_year'] / 1e3:,.1f}"]


def _alone(o) -> str:
    """A lone request's latency against the SLO."""
    a = o.alone
    if "ttft_idle_s" in a:  # variable lengths: the mean request, and the percentiles over the lengths, idle
        tpot = (f" (p99 {a['tpot_idle_s'] * 1e3:.3g})" if (a.get("tpot_idle_s") or 0) > 1.01 * a["tpot_s"]
                else "")  # an idle replica interleaves no prompts: shown only where the lengths make it differ
        return (f"TTFT {a['ttft_s']:.3g} (p{a['percentile']:g} {a['ttft_idle_s']:.3g}) of {a['ttft_slo_s']:g} s, "
                f"TPOT {a['tpot_s'] * 1e3:.3g}{tpot} of {a['tpot_slo_s'] * 1e3:g} ms")
    if "ttft_s" in a:
        return (f"TTFT {a['ttft_s']:.3g} of {a['ttft_slo_s']:g} s, TPOT {a['tpot_s'] * 1e3:.3g} of "
                f"{a['tpot_slo_s'] * 1e3:g} ms")
    if "image_s" in a:
        return f"image {a['image_s']:.3g} of {a['latency_slo_s']:g} s"
    if "video_s" in a:
        return f"video {a['video_s']:,.3g} of {a['latency_slo_s']:,g} s"
    if "request_s" in a:
        return f"request {a['request_s'] * 1e3:.3g} ms of {a['latency_slo_s']:g} s"
    if "rtf" in a:
        first = f", first audio {a['first_audio_s']:.2g} of {a['first_audio_slo_s']:g} s" if a["first_audio_slo_s"] else ""
        return f"RTF {a['rtf']:.2g} of {a['rtf_slo']:g}{first}"
    return "-"


def why_rows(cands: list) -> list[list[str]]:
    """Per candidate and service: a lone request against the SLO, the planned load over saturation and over
    the capacity under the SLO, what caps that capacity, how it was found and which fit priced it."""
    rows = [["hardware", "service", "a lone request vs SLO", "load/saturation", "load/capacity", "capacity capped by",
             "capacity", "fit"]]
    for c in cands:
        for o in c.options:
            rows.append([c.hardware, o.service, _alone(o), "-" if o.busy is None else f"{o.busy:.0%}",
                         "-" if o.utilization is None else f"{o.utilization:.0%}", o.binds or "-",
                         "simulated" if o.method == "simulation" else "approximated" if o.method == "approximation"
                         else o.method or "-", (f"{o.engine}, " if o.engine else "") + fit_text(o)])
    return rows


def fit_text(o) -> str:
    """An option's fit as shown: the LLM interval tier or the media fit's label, and whether a calibration of a busy
    machine's records only is behind it."""
    return o.fit.replace("_", " ") + (f" ({BUSY_LABEL})" if getattr(o, "fit_busy", False) else "")


def ranks(cands: list, rank_by: str) -> list[str]:
    """Rank labels of the feasible candidates in plan order: '-' for one the ranking cannot value (a
    money ranking of an unpriced part, or one without TDP for energy), which is listed, never ranked."""
    from ..planner.sizing import rank_value

    out, n = [], 0
    for c in cands:
        valued = rank_value(c, rank_by) is not None
        n += valued
        out.append(str(n) if valued else "-")
    return out


def _lacks(c, rank_by: str) -> str:
    """What keeps a candidate from the ranking: a price (money rankings) and, for anything that needs energy
    or power, a TDP; a part with a price but no TDP must not be told to give a price."""
    cost = c.cost or {}
    lacks = []
    if rank_by in ("tco", "capex") and not cost.get("capex"):
        lacks.append("price")
    if rank_by in ("tco", "carbon", "power") and c.peak_kw is None and "kwh_per_year" not in cost.get("energy", {}):
        lacks.append("TDP")
    return " or ".join(lacks) or "figure"


def unranked_note(cands: list, rank_by: str) -> str | None:
    """Why some feasible candidates carry '-' instead of a rank, part by part, with the fix for each."""
    skipped = [c for c, r in zip(cands, ranks(cands, rank_by)) if r == "-"]
    if not skipped:
        return None
    by: dict[str, list[str]] = {}
    for c in skipped:
        by.setdefault(_lacks(c, rank_by), []).append(c.hardware)
    fixes = {"price": "no public price for the part or its server: give one with --price ID=AMOUNT[CUR] or an "
                      "assumptions file",
             "TDP": "no TDP, so energy, power and operational carbon are unknown: add tdp_w to its profile in a "
                    "--profiles folder",
             "price or TDP": "neither a public price nor a TDP: give a --price and a tdp_w (--profiles folder)"}
    return (f"- not ranked by {rank_by}: "
            + "; ".join(f"{', '.join(ids)}: {fixes.get(why, 'no figure to rank by')}" for why, ids in by.items()))


def plan_text(p, top: int = 15, explain: int = 5) -> str:
    ok = [c for c in p.candidates if c.feasible]
    bad = [c for c in p.candidates if not c.feasible]
    partial = [c for c in bad if c.serves]
    bad = [c for c in bad if not c.serves]
    where = ", ".join(x for x in (f"site {p.site}" if p.site else "", f"market {p.market}" if p.market else "") if x)
    lines = [f"plan for '{p.demand}'" + (f" ({where})" if where else "") + f": {len(ok)} of {len(p.candidates)} "
             f"candidates can serve it; ranked by {p.rank_by}"]
    if ok:
        cur = ok[0].cost["currency"] if ok[0].cost else ""
        rows = [["#", "hardware", "devices", "servers", "peak kW", f"capex {cur}", f"TCO/yr {cur}", "tCO2e/yr",
                 "per service: replicas x config @ capacity, cost per unit"]]
        for rank, c in zip(ranks(ok, p.rank_by), ok[:top]):
            rows.append([rank, c.hardware, str(c.devices), str(c.servers),
                         f"{c.peak_kw:,.1f}" if c.peak_kw is not None else "-", *cost_cells(c.cost),
                         "; ".join(config_text(o, c.cost) for o in c.options)])
        lines.append(render(rows))
        if len(ok) > top:
            lines.append(f"... {len(ok) - top} more feasible (--top N or --json for all)")
        if note := unranked_note(ok[:top], p.rank_by):
            lines.append(note)
        if not p.site:
            lines.append("TCO/yr and tCO2e/yr: - without --site, whose power price, PUE and grid factor price the "
                         "energy (see `infra-bench profiles sites`)")
        flagged = [f"{c.hardware}: {n}" for c in ok[:top] for n in c.notes]
        lines += [f"note: {n}" for n in flagged]
        lines.append(f"why (top {min(explain, len(ok))}; load/saturation = the planned load over the load that would "
                     f"keep every replica fully batched with no SLO, load/capacity = over the capacity under the SLO):")
        lines.append(render(why_rows(ok[:explain])))
    if partial:
        lines.append(f"serves some services only ({len(partial)}):")
        lines += [f"  {c.hardware}: serves {', '.join(c.serves)}; {c.reason}" for c in partial[:top]]
        if len(partial) > top:
            lines.append(f"  ... {len(partial) - top} more (--json for all)")
    if bad:
        lines.append(f"cannot serve it ({len(bad)}):")
        lines += [f"  {c.hardware}: {c.reason}" for c in bad[:top]]
        if len(bad) > top:
            lines.append(f"  ... {len(bad) - top} more (--json for all)")
    if p.coverage and len(p.coverage) > 1:
        lines.append("parts per service: " + "; ".join(f"{s} {len(ids)}" for s, ids in p.coverage.items()))
    lines.append(f"~ capacity from {APPROXIMATED}: `--confirm N` simulates more, and which parts are "
                 "simulated follows the ranking, so it can differ by --site; unmarked: confirmed by simulation, or TTS "
                 "streams by processor sharing or LM batching; [engine (maturity), fit]: fitted = measured on this part under "
                 "this engine, few points = its vendor's only measurements (widest intervals), other engine / other "
                 "hardware = efficiencies carried over (wider intervals), priors = no fit")
    lines += [f"note: {n}" for n in p.notes]
    return "\n".join(lines)


def compare_text(rows: list[dict]) -> str:
    table = [["group", "best", "devices", "peak kW", "capex", "TCO/yr", "tCO2e/yr", "cost per unit", "availability"]]
    why = []
    for r in rows:
        if not r["hardware"]:
            why.append(f"  {r['group']}: {r['reason']}")
            continue
        cost = r["cost"] or {}
        units = "; ".join(f"{k}: {v['cost']:.3g}/{v['unit']}" for k, v in cost.get("per_unit", {}).items()
                          if v["cost"] is not None) or "-"
        table.append([r["group"], r["hardware"], ("~" if r.get("approximated") else "") + str(r["devices"]),
                      f"{r['peak_kw']:,.1f}" if r["peak_kw"] else "-",
                      *cost_cells(cost), units, r["availability"] or "-"])
    currency = next((r["cost"]["currency"] for r in rows if r.get("cost")), "")
    marked = ["~ devices sized on a queueing approximation (not simulated); `--confirm N` simulates more"] \
        if any(r.get("approximated") for r in rows if r["hardware"]) else []
    return "\n".join([f"compared (best of each group; money in {currency}):", render(table), *why, *marked])


def sensitivity_text(rows: list[dict], currency: str) -> str:
    if not rows or not rows[0]["ranking"]:
        return "sensitivity: no costed candidate (prices or TDP missing)"
    table = [["scenario", f"TCO ranking (per year, thousands of {currency})"]]
    for r in rows:
        rough = set(r.get("approximated", ()))
        table.append([r["scenario"], "  ".join(f"{i}. {'~' if h in rough else ''}{h} {r['tco_per_year'][h] / 1e3:,.0f}k"
                                               for i, h in enumerate(r["ranking"], 1))])
    lines = ["sensitivity of the TCO ranking (top costed candidates):", render(table)]
    if any(r.get("approximated") for r in rows):
        lines.append("~ sized on a queueing approximation (not simulated); `--confirm N` simulates more")
    return "\n".join(lines)


def fleet_text(f: dict) -> str:
    """The mixed fleet's table; of a fleet that was not found, only its notes: `plan` says why in its error
    line, once (the reason was printed here too)."""
    notes = [f"note: {n}" for n in f.get("idle_limits", [])]
    if not f["feasible"]:
        return "\n".join(notes)
    table = [["service", "requests", "hardware", "replicas", "devices", "config", "capacity (simulated)"]]
    for r in f["assignments"]:
        pool = "all" if r["pool"] == "whole" else f"{r['pool']} ({r['share']:.0%})"
        table.append([r["service"], pool, r["hardware"], str(r["replicas"]), str(r["devices"]),
                      f"TP{r['tp']} {r['precision']}", f"{r['capacity']:.3g} {r['unit']}"])
    servers = f.get("servers", {})
    bought = ", ".join(f"{h} {n}" + (f" in {servers[h]} server{'s' * (servers[h] != 1)}" if servers.get(h) else "")
                       for h, n in f["devices"].items())
    head = (f"mixed fleet (integer program, whole servers): TCO {f['tco_per_year'] / 1e3:,.0f}k {f['currency']}/yr, "
            f"capex {f['capex'] / 1e3:,.0f}k; devices {bought}")
    lines = [head, render(table)]
    for service, how in f["split"].items():
        lines.append(f"{service}: " + ("served whole (splitting by request size did not pay)" if how == "whole"
                                       else f"split into {len(how)} request-size buckets"))
    if f["best_single"]:
        b = f["best_single"]
        lines.append(f"best single type: {b['hardware']} x {b['devices']}, TCO {b['tco_per_year'] / 1e3:,.0f}k "
                     f"{f['currency']}/yr (devices costed busy at 1 - headroom, as the mix is; the ranked table "
                     f"costs the demand's own load, so its TCO for that type can differ)")
    return "\n".join(lines + notes)
