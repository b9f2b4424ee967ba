"""The report's sections for a plan: the ranked candidates, cost against latency, the compared
groups (domestic vs NVIDIA ...), the bill of materials, the sensitivity of the ranking, the mixed
fleet, what cannot serve the demand and why, and every label and source the figures rest on.

The ranked table reuses the terminal renderer's cells (report.plan), so both say the same thing.
"""
from __future__ import annotations

from collections import Counter

from . import plan_charts
from .document import Section, Table, Text
from .loaders import PlanData
from .plan import (
    APPROXIMATED,
    config_text,
    cost_cells,
    ranks,
    thousands,
    unranked_note,
    why_rows,
)

ESTIMATES = ("Every figure in a plan is an estimate from the planner's model (hardware profiles, priors for "
             "efficiencies unless a calibration is given, queueing for capacity, docs/cost.md for money and "
             "carbon), not a measurement.")


def _currency(plan) -> str:
    return next((c.cost["currency"] for c in plan.candidates if c.cost), "")


def _ranked(plan) -> Table:
    cur = _currency(plan)
    rows = []
    ok = [c for c in plan.candidates if c.feasible]
    for i, c in zip(ranks(ok, plan.rank_by), ok):
        rows.append([i, c.hardware, c.name, str(c.devices), str(c.servers),
                     f"{c.peak_kw:,.1f}" if c.peak_kw is not None else "-", *cost_cells(c.cost),
                     "; ".join(config_text(o, c.cost) for o in c.options)])
    return Table(["#", "profile", "accelerator", "devices", "servers", "peak kW", f"capex ({cur})",
                  f"TCO/yr ({cur})", "tCO2e/yr", "per service: replicas x TP precision @ capacity per replica, cost "
                                                 "per unit"], rows,
                 f"Ranked by {plan.rank_by}. Estimated. ~ capacity from {APPROXIMATED}; unmarked: confirmed by "
                 f"simulation, or TTS streams by processor sharing or LM batching. "
                 f"k = thousands." + (f" {note}" if (note := unranked_note(ok, plan.rank_by)) else ""))


def _why(plan, top: int = 5) -> Table:
    rows = why_rows([c for c in plan.candidates if c.feasible][:top])
    return Table(rows[0], rows[1:], "Per service: a lone request against the SLO; load/saturation = the planned load "
                 "over the load that would keep every replica fully batched with no SLO; load/capacity = against the "
                 "replicas' capacity under the SLO; what caps that capacity (an SLO within 10% of its target, a "
                 "heuristic); how it was found; the fit that priced it (engine and maturity for LLMs).")


def _partial(plan) -> Table | None:
    rows = [[c.hardware, ", ".join(c.serves), c.reason or "-"] for c in plan.candidates if not c.feasible and c.serves]
    return Table(["profile", "serves", "cannot serve"], rows,
                 "Parts that serve some services only: a mixed fleet (--mixed) can use them for those.") if rows else None


def _infeasible(plan) -> Table | None:
    rows = [[c.hardware, c.name, c.reason or "-"] for c in plan.candidates if not c.feasible and not c.serves]
    return Table(["profile", "accelerator", "why it cannot serve the demand"], rows) if rows else None


def _groups(rows: list[dict]) -> list:
    cur = next((r["cost"]["currency"] for r in rows if r.get("cost")), "")
    table, why = [], []
    for r in rows:
        if not r.get("hardware"):
            why.append(f"{r['group']}: {r['reason']}")
            continue
        per_unit = (r["cost"] or {}).get("per_unit", {})
        units = "; ".join(f"{k}: {v['cost']:.3g} {cur}/{v['unit']}" for k, v in per_unit.items()
                          if v["cost"] is not None) or "-"
        table.append([r["group"], r["hardware"], r.get("name", "-"), ("~" if r.get("approximated") else "") + str(r["devices"]),
                      f"{r['peak_kw']:,.1f}" if r.get("peak_kw") else "-", *cost_cells(r.get("cost")), units,
                      f"{r.get('feasible_in_group', '?')} of {r.get('in_group', '?')}", r.get("availability") or "-"])
    blocks: list = [Table(["group", "best", "accelerator", "devices", "peak kW", f"capex ({cur})", f"TCO/yr ({cur})",
                           "tCO2e/yr", "cost per unit", "feasible in group", "availability"], table,
                          "The top-ranked feasible part of each group; estimated. k = thousands." +
                          (f" ~ devices sized on {APPROXIMATED}." if any(r.get("approximated") for r in rows
                                                                      if r.get("hardware")) else ""))]
    blocks += [Text(w) for w in why]
    chart = plan_charts.group_bars(rows)
    return blocks + ([chart] if chart else [])


def _bom_column(c, cur: str) -> dict[str, str]:
    cost = c.cost or {}
    capex, year, energy, carbon = (cost.get(k) or {} for k in ("capex", "per_year", "energy", "carbon"))

    def money(v) -> str:
        return "-" if v is None else f"{v:,.0f} {cur}"

    bought = capex.get("accelerators_bought")
    col = {"accelerators": f"{c.devices} x {c.name} ({c.hardware})" + (
               f", {bought:.0f} bought (every slot of a baseboard, or in the server price)" if bought and bought > c.devices
               else ""),
           "servers": f"{c.servers} x {c.server or 'server'} ({c.node_size} slots)"}
    for o in c.options:
        col[f"service {o.service}"] = f"{o.replicas} replicas x TP{o.tp} {o.precision}, {o.devices} devices"
    price = capex.get("device_price")
    col["device price (estimate)"] = (capex.get("device_price_source") or "unpriced") if price is None else \
        f"{price:,.0f} {capex.get('device_price_currency', '')}"
    col["server price basis"] = capex.get("server_basis") or ("-" if capex else "unpriced")
    for k in ("devices", "servers", "network", "total"):  # plans before server pricing said "hosts"
        col[f"capex: {k}"] = money(capex.get(k, capex.get("hosts") if k == "servers" else None))
    for k in ("depreciation", "energy", "maintenance", "colocation", "total"):
        col[f"per year: {k}"] = money(year.get(k))
    col["peak power (kW, provisioning)"] = "-" if c.peak_kw is None else f"{c.peak_kw:,.1f}"
    if "it_kw_avg" in energy:  # a site's PUE and power price (--site) price the energy
        col["average IT power (kW), PUE"] = f"{energy['it_kw_avg']:.1f}, PUE {energy['pue']:g}"
        col["energy per year (kWh)"] = f"{energy['kwh_per_year']:,.0f} ({energy['energy_source']})"
    if "operational_kg_per_year" in carbon:  # a site's grid factor (--site)
        col["carbon per year (tCO2e)"] = (f"{carbon['operational_kg_per_year'] / 1e3:,.1f} operational + "
                                          f"{carbon['embodied_kg_per_year'] / 1e3:,.1f} embodied")
        col["grid factor"] = f"{carbon['grid_kgco2_per_kwh']:g} kgCO2e/kWh ({carbon['grid_factor_type']})"
    return col


def _bom(pd: PlanData) -> list:
    plan, extra = pd.plan, pd.extra
    by_id = {c.hardware: c for c in plan.candidates if c.feasible}
    picks: dict[str, list[str]] = {}
    if by_id:
        picks[next(iter(by_id))] = ["top-ranked"]
    for r in extra.get("compare", []):
        if r.get("hardware") in by_id:
            picks.setdefault(r["hardware"], []).append(f"best {r['group']}")
    if not picks:
        return [Text("No feasible candidate: nothing to buy.")]
    cur = _currency(plan)
    cols = [_bom_column(by_id[h], cur) for h in picks]
    rows = list(dict.fromkeys(k for c in cols for k in c))
    blocks: list = [Table(["", *(", ".join(v) for v in picks.values())],
                          [[k, *(c.get(k, "-") for c in cols)] for k in rows],
                          "Estimated. Capex = servers x server price (+ accelerators bought x price when the server "
                          "is priced without them) + network; per year = depreciation + energy + "
                          "maintenance (+ colocation); docs/cost.md. Sources under Labels.")]
    mixed = extra.get("mixed")
    if mixed and mixed.get("feasible"):
        rows = [[a["service"], a["hardware"], str(a["replicas"]), str(a["devices"]), f"TP{a['tp']} {a['precision']}",
                 f"{a['capacity']:.3g} {a['unit']}"] for a in mixed["assignments"]]
        best = mixed.get("best_single") or {}
        single = (f"; best single type {best['hardware']} x {best['devices']}: {thousands(best['tco_per_year'])} "
                  f"{mixed['currency']}/yr") if best else ""
        blocks.append(Table(["service", "profile", "replicas", "devices", "config", "capacity per replica"], rows,
                            f"Mixed fleet (integer program): TCO {thousands(mixed['tco_per_year'])} {mixed['currency']}/yr, "
                            f"capex {thousands(mixed['capex'])}; devices " +
                            ", ".join(f"{h} {n}" + (f" in {mixed['servers'][h]} servers"
                                                    if mixed.get("servers", {}).get(h) else "")
                                      for h, n in mixed["devices"].items()) + single + ". Estimated."))
    elif mixed:
        blocks.append(Text(f"Mixed fleet: none ({mixed.get('reason')})."))
    return blocks


def _sensitivity(pd: PlanData) -> list:
    rows = pd.extra.get("sensitivity")
    if not rows:
        return [Text("Not in this plan: plan with --site and --sensitivity to see how the ranking moves.")]
    rough = any(r.get("approximated") for r in rows)
    table = Table(["scenario", "TCO ranking (per year, estimated)"],
                  [[r["scenario"], "  ".join(f"{i}. {'~' if h in r.get('approximated', ()) else ''}{h} "
                                             f"{thousands(r['tco_per_year'][h])}" for i, h in enumerate(r["ranking"], 1))]
                   for r in rows],
                  f"Currency {_currency(pd.plan)}; k = thousands." + (f" ~ sized on {APPROXIMATED}." if rough else ""))
    chart = plan_charts.sensitivity(rows, _currency(pd.plan))
    return [table] + ([chart] if chart else [])


def _labels(pd: PlanData) -> list:
    plan = pd.plan
    blocks: list = [Text(n) for n in plan.notes]
    flagged = [[c.hardware, n] for c in plan.candidates if c.feasible for n in c.notes]
    if flagged:
        blocks.append(Table(["profile", "note"], flagged, "Flags on feasible candidates (availability and the like)."))
    sources: Counter = Counter()
    for c in plan.candidates:
        capex, carbon, energy = ((c.cost or {}).get(k) or {} for k in ("capex", "carbon", "energy"))
        if capex.get("device_price_source"):
            sources[("device price", capex["device_price_source"])] += 1
        if capex.get("server_basis"):
            sources[("server price", capex["server_basis"])] += 1
        if carbon.get("grid_source"):
            sources[(f"grid carbon factor ({plan.site})", carbon["grid_source"])] += 1
        if energy.get("basis"):
            sources[(f"energy ({energy['energy_source']})", energy["basis"])] += 1
    if sources:
        blocks.append(Table(["figure", "source or basis", "candidates"],
                            [[a, b, str(n)] for (a, b), n in sources.items()]))
    blocks.append(Text(f"Plan input: {pd.source}. Capacity methods: simulation, approximation (~), processor "
                       "sharing. Power is the provisioning peak (the servers' hosts + the accelerators in them at TDP), not the "
                       "average draw."))
    return blocks


def plan_sections(pd: PlanData) -> list[Section]:
    plan = pd.plan
    ok = [c for c in plan.candidates if c.feasible]
    where = ", ".join(x for x in (f"site {plan.site}" if plan.site else "", f"market {plan.market}" if plan.market
                                  else "") if x) or "no site (no costs)"
    overview = Section(f"Plan for '{plan.demand}'", [
        Text(ESTIMATES, note=True),
        Text(f"{where}; {len(ok)} of {len(plan.candidates)} candidate accelerators can serve the demand; ranked by "
             f"{plan.rank_by}" + (f"; money in {_currency(plan)}." if _currency(plan) else "."))])
    pareto = plan_charts.cost_latency(plan)
    groups = pd.extra.get("compare")
    sections = [overview, Section("Ranked candidates", [_ranked(plan)], 3)]
    if ok:
        sections.append(Section("Why these numbers (top 5)", [_why(plan)], 3))
    partial = _partial(plan)
    if partial:
        sections.append(Section("Parts that serve some services", [partial], 3))
    sections += [Section("Cost vs latency (Pareto)", [pareto] if pareto else
                         [Text("No priced candidate: plan with --site (and prices for the parts) to cost them.")], 3),
                 Section("Groups compared: " + " vs ".join(r["group"] for r in groups) if groups else "Groups compared",
                         _groups(groups) if groups else
                         [Text("Not in this plan: plan with --compare domestic,nvidia to set groups side by side.")], 3),
                 Section("Cluster bill of materials", _bom(pd), 3),
                 Section("Sensitivity of the TCO ranking", _sensitivity(pd), 3)]
    infeasible = _infeasible(plan)
    if infeasible:
        sections.append(Section("Candidates that cannot serve the demand", [infeasible], 3))
    sections.append(Section("Labels, assumptions and sources (plan)", _labels(pd), 3))
    return sections
