"""Views over a plan: the best candidate per group of parts (domestic vs NVIDIA ...), and how the
cost ranking moves when the assumptions move."""
from __future__ import annotations

from collections import Counter

from .cost import Assumptions, cost_of
from .profiles import HardwareProfile, load_servers
from .selection import Catalog

SCENARIOS = ("power price", "device price", "lifetime", "utilization")


def by_group(plan, parts: Catalog, groups: list[str]) -> list[dict]:
    """Per group: the top-ranked feasible candidate (the plan's order), or exactly why none is: how many
    of its parts were left out of the plan, and how many were stopped by each blocker, with the reason
    of the part that got furthest."""
    rows = []
    for g in groups:
        ids = parts.resolve(g, "--compare")
        members = [c for c in plan.candidates if c.hardware in ids]
        left_out = len(ids) - len(members)
        if not members:
            rows.append({"group": g, "hardware": None, "reason": f"its {len(ids)} part(s) are not among the "
                         f"candidates (left out by --hardware, --domestic, --vendor or --exclude)"})
            continue
        ok = [c for c in members if c.feasible]
        if not ok:
            rows.append({"group": g, "hardware": None, "reason": _why_none(members, left_out)})
            continue
        c = ok[0]
        avail = parts.profiles[c.hardware].availability.get(plan.market) if plan.market else None
        rows.append({"group": g, "hardware": c.hardware, "name": c.name, "devices": c.devices, "servers": c.servers,
                     "approximated": any(o.method == "approximation" for o in c.options),
                     "peak_kw": c.peak_kw, "cost": c.cost, "feasible_in_group": len(ok), "in_group": len(members),
                     "availability": (avail.status if avail else None)})
    return rows


def _why_none(members: list, left_out: int) -> str:
    counts = Counter(c.blocker or "cannot serve it" for c in members)
    nearest = max(members, key=lambda c: (len(c.serves), sum(o.stage for o in c.options)))
    parts = [f"{why} ({n})" for why, n in counts.most_common()]
    if left_out:
        parts.append(f"left out of the candidates ({left_out})")
    serves = f" (serves {', '.join(nearest.serves)})" if nearest.serves else ""
    return f"none of {len(members)} can serve it: {'; '.join(parts)}. Closest: {nearest.hardware}{serves}: {nearest.reason}"


REMEDIES = {0: "add its published figures with --profiles DIR", 1: "allow a lower precision (the service's "
             "`precision:`), shorter requests or a part with more memory",
            2: "relax the SLO to what that part reaches alone"}


def why_no_candidate(plan, profiles: dict[str, HardwareProfile]) -> str:
    """What would work when no candidate serves the whole demand: per service that no part serves, the part that
    came closest (furthest stage, smallest miss of the SLOs, largest TP, most memory), its reason and the remedy;
    or, where every service has some part, the mixed fleet that combines them."""
    from .sizing import closeness

    priced = [c for c in plan.candidates if c.options]
    if not priced:
        return (f"no candidate is available{f' in market {plan.market}' if plan.market else ''}; allow another "
                f"market (--market) or add hardware profiles")
    out = []
    for i, service in enumerate(o.service for o in priced[0].options):
        if any(c.options[i].feasible for c in priced):
            continue
        c = max(priced, key=lambda c: (*closeness(c.options[i]), profiles[c.hardware].memory_gb or 0))
        out.append(f"{service}: closest {c.hardware}, {c.options[i].reason}: {REMEDIES[c.options[i].stage]}")
    return "; ".join(out) or ("each service has a part that serves it but no part serves all: plan with --mixed "
                              "--site SITE to combine them")


def sensitivity(plan, profiles: dict[str, HardwareProfile], services: list, site, base: Assumptions,
                delta: float = 0.2, top: int = 5, servers: dict | None = None) -> list[dict]:
    """The TCO ranking of the top costed candidates under one changed assumption at a time:
    power price and device price x(1 -+ delta) (the accelerators' price; the whole server's for a part
    sold only in priced servers), depreciation 3 and 6 years, utilization 0.3 and 0.8."""
    cands = [c for c in plan.candidates if c.feasible and c.cost and c.cost.get("per_year")][:top]
    cases = [("base", {}),
             (f"power price -{delta:.0%}", {"power_price_scale": 1 - delta}),
             (f"power price +{delta:.0%}", {"power_price_scale": 1 + delta}),
             (f"device price -{delta:.0%}", {"device_price_scale": 1 - delta}),
             (f"device price +{delta:.0%}", {"device_price_scale": 1 + delta}),
             ("lifetime 3 y", {"depreciation_years": 3.0}), ("lifetime 6 y", {"depreciation_years": 6.0}),
             ("utilization 0.3", {"utilization": 0.3}), ("utilization 0.8", {"utilization": 0.8})]
    servers = load_servers() if servers is None else servers
    rows = []
    for name, change in cases:
        a = base.model_copy(update=change)
        tco = {c.hardware: cost_of(c, profiles[c.hardware], services, site, a,
                                   servers.get(c.server) if c.server else None).per_year["total"] for c in cands}
        order = sorted(tco, key=tco.get)
        rows.append({"scenario": name, "ranking": order, "tco_per_year": tco, "approximated": sorted(
            c.hardware for c in cands if any(o.method == "approximation" for o in c.options))})
    return rows
