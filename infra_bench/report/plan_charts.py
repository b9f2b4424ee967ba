"""Charts of a plan: cost per unit against latency with the Pareto front per service, the best part
of each compared group (cost, power, carbon), and the TCO of the top candidates under each
sensitivity scenario. Every figure here is a planner estimate, and the axes say so."""
from __future__ import annotations

import math

from ..kinds import KINDS
from . import charts
from .charts import Bar
from .document import Image
from .plan import APPROXIMATED

SIMULATED = ("simulation", "processor sharing", "LM batching")
LABEL_ALL = 12  # label every point up to this many, else the front only


def _latency(o) -> tuple[str, float] | None:
    """The option's latency to plot and its axis label."""
    # Each kind's plan_latency: (key prefix in Option.latency, axis label). LLM: TTFT at SLO capacity (TPOT
    # there sits at its SLO for most parts); the media kinds: a lone request's latency, since at capacity
    # theirs sits at the SLO by construction and would not tell the parts apart.
    prefix, label = (KINDS[o.kind].plan_latency if o.kind in KINDS else None) or ("", "")
    key = next((k for k in o.latency if k.startswith(prefix)), None) if prefix else None
    if key is None:
        key = next(iter(o.latency), None)
        label = f"{key} ({o.kind})" if key else ""
    return None if key is None else (label.format(p=key.split("_")[1]), o.latency[key])


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower is better), by x."""
    order = sorted(range(len(points)), key=lambda i: points[i])
    front, best = [], math.inf
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return front


def cost_latency(plan) -> Image | None:
    """Per service: each costed feasible candidate's cost per unit against its latency at capacity."""
    ok = [c for c in plan.candidates if c.feasible and c.cost]
    services = list(dict.fromkeys(o.service for c in ok for o in c.options))
    if not services:
        return None
    from matplotlib.ticker import MaxNLocator

    ncols = min(3, len(services))
    fig, axes = charts.figure(ncols=ncols, nrows=math.ceil(len(services) / ncols), height=3.8)
    currency = ok[0].cost["currency"]
    plotted: set[str] = set()
    for ax, svc in zip(axes, services):
        pts, names, simulated, unit_label, axis = [], [], [], "", ""
        for c in ok:
            o = next((o for o in c.options if o.service == svc), None)
            unit = c.cost.get("per_unit", {}).get(svc, {})
            lat = _latency(o) if o else None
            if lat is None or unit.get("cost") is None:
                continue
            axis, unit_label = lat[0], unit["unit"]
            pts.append((lat[1], unit["cost"]))
            names.append(c.hardware)
            simulated.append(o.method in SIMULATED)
        if not pts:
            ax.set_visible(False)
            continue
        front = pareto_front(pts)
        for i, (x, y) in enumerate(pts):
            on = i in front
            color = "C0" if on else "0.55"
            ax.scatter(x, y, s=30 if on else 16, facecolors=color if simulated[i] else "none", edgecolors=color,
                       zorder=3)
            if on or len(pts) <= LABEL_ALL:
                ax.annotate(names[i], (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7, color=color)
        ax.step([pts[i][0] for i in front], [pts[i][1] for i in front], where="post", color="C0", lw=1)
        ax.margins(x=0.25, y=0.15)
        charts.log_if_spread(ax, [p[1] for p in pts], "y", 20)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_title(svc, fontsize=9)
        ax.set_xlabel(axis)
        ax.set_ylabel(f"{currency} per {unit_label}")
        plotted.update(names)
    for ax in axes[len(services):]:
        ax.set_visible(False)
    if not plotted:
        return None
    feasible = sum(c.feasible for c in plan.candidates)
    return Image(charts.png(fig), "cost per unit against latency, Pareto front",
                 f"Estimated by the planner for the {len(plotted)} of {feasible} feasible candidates that carry a "
                 f"price (give others with --price ID=AMOUNT): cost per unit of work ({currency}, from the yearly "
                 f"cost of ownership) against latency (LLM: TTFT at SLO capacity; diffusion and TTS: one request "
                 f"alone, as at capacity they sit at their SLO). The line joins the Pareto front (nothing is both "
                 f"cheaper and faster). Filled: capacity confirmed by simulation or processor sharing; hollow: "
                 f"{APPROXIMATED}.")


def group_bars(rows: list[dict]) -> Image | None:
    """The best part of each group (domestic, nvidia ...): capex, yearly cost, peak power, carbon."""
    rows = [r for r in rows if r.get("hardware")]
    if not rows:
        return None
    cats = [f"{r['group']}: {r['hardware']}" for r in rows]
    currency = next((r["cost"]["currency"] for r in rows if r.get("cost")), "")

    def cost(r: dict, *path: str) -> float | None:
        v = r.get("cost") or {}
        for p in path:
            v = (v or {}).get(p)
        return v

    panels = [
        (f"capex (thousand {currency})", [None if cost(r, "capex", "total") is None else cost(r, "capex", "total") / 1e3
                                          for r in rows]),
        (f"cost of ownership per year (thousand {currency})",
         [None if cost(r, "per_year", "total") is None else cost(r, "per_year", "total") / 1e3 for r in rows]),
        ("peak power (kW, provisioning)", [r.get("peak_kw") for r in rows]),
        ("carbon (tCO2e per year)", [None if cost(r, "carbon", "total_kg_per_year") is None
                                     else cost(r, "carbon", "total_kg_per_year") / 1e3 for r in rows]),
    ]
    fig, axes = charts.figure(ncols=2, nrows=2, height=charts.rows_height(2 * len(rows), 0.45, 2.2), sharey=True)
    for ax, (label, values) in zip(axes, panels):
        charts.hbars(ax, [Bar(c, c, v) for c, v in zip(cats, values)], f"{label}, estimated", series_legend=False)
    return Image(charts.png(fig), "cost, power and carbon of the best part per group",
                 "Estimated by the planner for the whole cluster of each group's top-ranked feasible part: capex, "
                 "yearly cost of ownership, peak power (the servers' hosts plus the accelerators bought, at TDP: "
                 "docs/cost.md) and yearly carbon (operational at the "
                 "site's grid factor + embodied).")


def sensitivity(rows: list[dict], currency: str) -> Image | None:
    """TCO per year of the top costed candidates under each changed assumption."""
    if not rows or not rows[0]["ranking"]:
        return None
    hardware = list(rows[0]["ranking"])
    bars = [Bar(r["scenario"], h, r["tco_per_year"][h] / 1e3 if h in r["tco_per_year"] else None)
            for r in rows for h in hardware]
    fig, (ax,) = charts.figure(height=charts.hbars_height(bars, 0.2))
    charts.hbars(ax, bars, f"cost of ownership per year (thousand {currency}), estimated")
    base = rows[0]["tco_per_year"]
    for j, h in enumerate(hardware):
        ax.axvline(base[h] / 1e3, color=f"C{j % 10}", lw=0.6, ls=":")
    return Image(charts.png(fig), "sensitivity of the cost ranking",
                 "Estimated yearly cost of ownership of the top costed candidates when one assumption changes at a "
                 "time (dotted lines: the base case). Where the bars swap order, the ranking depends on that "
                 "assumption.")
