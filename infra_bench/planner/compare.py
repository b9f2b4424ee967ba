"""Views over a plan: the best candidate per group of parts (domestic vs NVIDIA ...), and how the
cost ranking moves when the assumptions move."""
from __future__ import annotations

from .cost import Assumptions, cost_of
from .profiles import HardwareProfile

SCENARIOS = ("power price", "device price", "lifetime", "utilization")


def in_group(hw: HardwareProfile, group: str) -> bool:
    """'domestic' (Chinese parts), 'imported', or a vendor name (nvidia, huawei, amd ...)."""
    g = group.strip().lower()
    if g == "domestic":
        return hw.domestic
    if g == "imported":
        return not hw.domestic
    return hw.vendor.lower().startswith(g) or hw.id.lower().startswith(g + "_")


def by_group(plan, profiles: dict[str, HardwareProfile], groups: list[str]) -> list[dict]:
    """Per group: the top-ranked feasible candidate (the plan's order), or why none is feasible."""
    rows = []
    for g in groups:
        members = [c for c in plan.candidates if in_group(profiles[c.hardware], g)]
        if not members:
            rows.append({"group": g, "hardware": None, "reason": "no profile in this group"})
            continue
        ok = [c for c in members if c.feasible]
        if not ok:
            rows.append({"group": g, "hardware": None, "reason": f"none of {len(members)} can serve it; "
                         f"e.g. {members[0].hardware}: {members[0].reason}"})
            continue
        c = ok[0]
        avail = profiles[c.hardware].availability.get(plan.market) if plan.market else None
        rows.append({"group": g, "hardware": c.hardware, "name": c.name, "devices": c.devices, "servers": c.servers,
                     "peak_kw": c.peak_kw, "cost": c.cost, "feasible_in_group": len(ok), "in_group": len(members),
                     "availability": (avail.status if avail else None)})
    return rows


def sensitivity(plan, profiles: dict[str, HardwareProfile], services: list, site, base: Assumptions,
                delta: float = 0.2, top: int = 5) -> list[dict]:
    """The TCO ranking of the top costed candidates under one changed assumption at a time:
    power price and device price x(1 -+ delta), depreciation 3 and 6 years, utilization 0.3 and 0.8."""
    cands = [c for c in plan.candidates if c.feasible and c.cost and c.cost.get("per_year")][:top]
    cases = [("base", {}),
             (f"power price -{delta:.0%}", {"power_price_scale": 1 - delta}),
             (f"power price +{delta:.0%}", {"power_price_scale": 1 + delta}),
             (f"device price -{delta:.0%}", {"device_price_scale": 1 - delta}),
             (f"device price +{delta:.0%}", {"device_price_scale": 1 + delta}),
             ("lifetime 3 y", {"depreciation_years": 3.0}), ("lifetime 6 y", {"depreciation_years": 6.0}),
             ("utilization 0.3", {"utilization": 0.3}), ("utilization 0.8", {"utilization": 0.8})]
    rows = []
    for name, change in cases:
        a = base.model_copy(update=change)
        tco = {c.hardware: cost_of(c, profiles[c.hardware], services, site, a).per_year["total"] for c in cands}
        order = sorted(tco, key=tco.get)
        rows.append({"scenario": name, "ranking": order, "tco_per_year": tco})
    return rows
