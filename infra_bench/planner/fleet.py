"""The cheapest mix of accelerator types for a demand: an integer program over services x types.

    minimise    sum_{s,h} x[s,h] x TP[s,h] x yearly cost per device[h]
    subject to  sum_h x[s,h] x capacity[s,h] x (1 - headroom_s) >= load_s + redundancy_s x max_h capacity[s,h] x (1 - headroom_s)
                sum_s x[s,h] x TP[s,h] <= limit[h]                    (devices that can be bought)
                sum_{s,h} x[s,h] x TP[s,h] x capex per device[h] <= budget
                x[s,h] integer >= 0                                      (replicas of service s on type h)

Capacities are the plan's per-replica SLO capacities for each service's best configuration on
each type (types infeasible for one service can still serve another). N+1 is kept by covering
the load after losing the largest replica. The yearly cost per device is the cost model's for one
device busy at (1 - headroom). Solved with scipy.optimize.milp (HiGHS).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import MissingDependency, UserError
from .cost import Assumptions, cost_of
from .sizing import Candidate


@dataclass
class Fleet:
    feasible: bool
    reason: str | None
    assignments: list[dict]       # service, hardware, replicas, devices
    devices: dict                 # hardware -> devices
    tco_per_year: float | None
    capex: float | None
    currency: str
    best_single: dict | None      # the cheapest one-type candidate, for comparison
    excluded: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def _per_device(c, hw, services, site, a: Assumptions, headroom: float) -> tuple[float, float] | None:
    """(yearly cost, capex) of one device of this type, busy at 1 - headroom."""
    one = Candidate(c.hardware, c.name, True, None, [], devices=1)
    cost = cost_of(one, hw, services, site, a.model_copy(update={"utilization": 1 - headroom}))
    if not cost.per_year:
        return None
    return cost.per_year["total"], cost.capex["total"]


def optimise(plan, demand, profiles, site, a: Assumptions, limits: dict[str, int] | None = None,
             budget: float | None = None) -> Fleet:
    try:
        import numpy as np
        from scipy.optimize import Bounds, LinearConstraint, milp
    except ImportError:
        raise MissingDependency("--mixed solves an integer program with scipy: pip install 'infra-bench[plan]'") from None
    limits = limits or {}
    for hid in limits:
        if hid not in profiles:
            raise UserError(f"--limit: unknown profile '{hid}'")
    services = demand.services
    cols, unit_cost, excluded = [], {}, []
    for c in plan.candidates:
        hw = profiles[c.hardware]
        usable = [(i, o) for i, o in enumerate(c.options) if o.feasible]
        if not usable or limits.get(c.hardware, 1) == 0:
            continue
        per = _per_device(c, hw, services, site, a, demand.headroom)
        if per is None:
            excluded.append(f"{c.hardware}: no price or TDP, or no site")
            continue
        unit_cost[c.hardware] = per
        cols += [(i, c.hardware, o) for i, o in usable]
    if not cols:
        return Fleet(False, "no costed type can serve any service (need prices, TDP and --site)", [], {}, None, None,
                     a.currency or "", None, excluded)
    n = len(cols)
    obj = np.array([o.tp * unit_cost[h][0] for _, h, o in cols])
    rows, lo, hi = [], [], []
    for i, svc in enumerate(services):
        head, red = demand.headroom_of(svc), demand.redundancy_of(svc)
        caps = [o.capacity * (1 - head) if k == i else 0.0 for k, _, o in cols]
        if not any(caps):
            return Fleet(False, f"service {demand.label(i)}: no costed type can serve it", [], {}, None, None,
                         a.currency or "", None, excluded)
        load = svc.traffic.streams if svc.kind == "tts" else svc.traffic.rate
        rows.append(caps)
        lo.append(load + red * max(caps))
        hi.append(np.inf)
    for h, limit in limits.items():
        rows.append([o.tp if hh == h else 0 for _, hh, o in cols])
        lo.append(0)
        hi.append(limit)
    if budget is not None:
        rows.append([o.tp * unit_cost[h][1] for _, h, o in cols])
        lo.append(0)
        hi.append(budget)
    res = milp(obj, constraints=LinearConstraint(np.array(rows), lo, hi), integrality=np.ones(n),
               bounds=Bounds(0, np.inf), options={"time_limit": 10})
    currency = next((c.cost["currency"] for c in plan.candidates if c.cost), a.currency or "USD")
    single = next(({"hardware": c.hardware, "tco_per_year": c.cost["per_year"]["total"], "devices": c.devices}
                   for c in sorted((c for c in plan.candidates if c.feasible and c.cost and c.cost["per_year"]),
                                   key=lambda c: c.cost["per_year"]["total"])), None)
    if res.x is None:
        return Fleet(False, f"no mix meets the demand within the limits and budget ({res.message})", [], {}, None, None,
                     currency, single, excluded)
    assignments, devices = [], {}
    for (i, h, o), x in zip(cols, np.round(res.x).astype(int)):
        if x > 0:
            assignments.append({"service": demand.label(i), "hardware": h, "precision": o.precision, "tp": o.tp,
                                "replicas": int(x), "devices": int(x * o.tp), "capacity": o.capacity, "unit": o.unit})
            devices[h] = devices.get(h, 0) + int(x * o.tp)
    capex = sum(unit_cost[h][1] * d for h, d in devices.items())
    return Fleet(True, None, assignments, devices, float(res.fun), capex, currency, single, excluded)
