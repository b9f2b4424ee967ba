"""The cheapest mix of accelerator types for a demand: an integer program over request-size
buckets x types.

Each service is served either whole (one pool sized for its full length distributions) or, for
an LLM service with variable lengths, split into request-size buckets (buckets.py) with a pool
each, so short requests can go to a cheap part that misses the SLO on the long tail:

    minimise    sum_{p,h} x[p,h] x TP[p,h] x yearly cost per device[p,h] + sum_h y[h] x yearly cost per server[h]
                (a device of column p,h draws the busy power of its option there: what it serves in the mix)
    subject to  for a pool p of service s, with z_s = 1 when s is split:
                  sum_h x[p,h] x cap[p,h] x (1 - headroom_s) + M_p x (z_s or 1 - z_s) >= load_p + N x s_p
                s_p >= cap[p,h] x u[p,h],  x[p,h] <= big x u[p,h]              (the spare: a replica of the largest
                                                                            type the pool uses, u binary)
                sum_p x[p,h] x TP[p,h] <= slots[h] x y[h]                  (whole servers, y[h] integer)
                sum_p x[p,h] x TP[p,h] <= limit[h]                         (devices that can be bought)
                devices' and servers' capex <= budget
                x[p,h] integer >= 0 (replicas of pool p on type h),  z_s binary

M_p is the pool's right-hand side at its largest spare, so the unused form of a service is unconstrained. Every pool
keeps its own N+1 (a replica lost in one pool is not covered by another). Capacities start as
the mean-value approximation (or the plan's simulated figure); every column the solution uses is
then simulated with its pool's length distribution and the program re-solved, until the
solution rests on simulated capacities only. Solved with scipy.optimize.milp (HiGHS).
"""
from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ..errors import MissingDependency, UserError, install_hint
from ..kinds import KINDS
from . import sizing
from .buckets import Bucket, split, whole
from .cost import Assumptions, DevicePower, cost_of
from .demand import LlmService
from .profiles import load_servers
from .sizing import Candidate, Option

MAX_ROUNDS = 12  # solve, simulate the columns used, re-solve


@dataclass
class Fleet:
    feasible: bool
    reason: str | None
    assignments: list[dict]       # service, pool, hardware, replicas, devices
    devices: dict                 # hardware -> devices
    tco_per_year: float | None
    capex: float | None
    currency: str
    best_single: dict | None      # the cheapest one-type candidate, for comparison
    excluded: list[str]
    split: dict = field(default_factory=dict)  # service -> its buckets when it is split, else "whole"
    rounds: int = 0
    servers: dict = field(default_factory=dict)  # hardware -> whole servers bought (0: no server profile)
    idle_limits: list[str] = field(default_factory=list)  # each --limit on a type the program never had, and why

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Column:
    """Replicas of one pool (a whole service or one of its buckets) on one type."""
    service: int
    pool: str                     # "whole" or the bucket's label
    share: float                  # of the service's requests
    hardware: str
    option: Option
    capacity: float | None
    simulate: Callable[[], float | None] | None  # None once the capacity is simulated
    device_year: float | None = None  # a device's yearly cost drawing this column's busy power; None: the type's


@dataclass(frozen=True)
class UnitCost:
    """A type's yearly cost and capex per device and per server (costs are linear in both), and its slots:
    the program buys whole servers, as a single-type plan does."""
    device_year: float
    device_capex: float
    server_year: float
    server_capex: float
    slots: int


def _unit_cost(c, hw, services, site, a: Assumptions, headroom: float, servers: dict) -> UnitCost | None:
    """One device and one server of this type apart, devices busy at 1 - headroom; None when unpriced. A device
    of a card of several (the 300I Duo's chips) is that card's share, as cards are bought whole."""
    server = servers.get(c.server) if c.server else None
    busy = a.model_copy(update={"utilization": 1 - headroom})
    k = hw.devices_per_card
    # the options come along for the devices' busy power (the power model's), so a fleet of one type costs
    # what the single-type plan does
    parts = [cost_of(Candidate(c.hardware, c.name, True, None, c.options, devices=d, servers=n), hw, services, site, busy,
                     server) for d, n in ((k, 0), (0, 1))]
    if not all(p.per_year for p in parts):
        return None
    (dev, srv) = parts
    return UnitCost(dev.per_year["total"] / k, dev.capex["total"] / k, srv.per_year["total"], srv.capex["total"],
                    server.slots if server else 0)


def _column_year(c: Column, hw, services, site, a: Assumptions, headroom: float, servers: dict, server_id) -> float | None:
    """A device's yearly cost in this column, drawing the busy power of what it serves here (the power model's at
    the option's capacity, TDP for services it does not cover), as a plan's devices do for theirs; None where the
    device's power is given (measured or assumed) and so the same in every column."""
    if hw.id in a.device_power or not hw.tdp_w:
        return None
    energy = getattr(c.option, "energy", None)
    watts = energy["avg_power_w"] if energy else hw.tdp_w
    own = a.model_copy(update={"utilization": 1 - headroom, "device_power": {
        **a.device_power, hw.id: DevicePower(busy_w=watts, source="the power of what it serves in the mix")}})
    k = hw.devices_per_card  # a card's share, as in _unit_cost
    cost = cost_of(Candidate(hw.id, hw.id, True, None, [], devices=k, servers=0), hw, services, site, own,
                   servers.get(server_id) if server_id else None)
    return cost.per_year["total"] / k if cost.per_year else None


def _rate(res) -> float | None:
    return res.rate if res is not None else None


def _whole_column(i: int, svc, c: Candidate, hw, calibration) -> Column | None:
    o = c.options[i]
    if not o.feasible:
        return None
    return Column(i, "whole", 1.0, c.hardware, o, o.capacity,
                  _whole_simulation(svc, o, hw, calibration) if o.method == "approximation" else None)


def _whole_simulation(svc, o: Option, hw, calibration) -> Callable[[], float | None] | None:
    """The simulated capacity of a whole-service replica whose plan figure is an approximation."""
    if o.kind in ("diffusion", "video"):  # one unit at a time: the simulated M/D/1 capacity
        return lambda: _rate(sizing.simulate_diffusion(o.latency[KINDS[o.kind].plan_latency[0]], svc))
    if o.kind == "embedding":  # requests merged into passes
        return lambda: _rate(svc.simulate(hw, o.precision, calibration))
    if not isinstance(svc, LlmService):
        return None

    def sim() -> float | None:
        _, r = sizing.llm_option(svc, o.service, hw, o.precision, o.tp, 0.0, 0, calibration)
        variable = {svc.traffic.input_len.distribution, svc.traffic.output_len.distribution} != {"fixed"}
        return _rate(sizing.simulate_llm(r, svc, whole(svc).sampler() if variable else None))
    return sim


def _bucket_column(b: Bucket, svc: LlmService, label: str, hw, calibration) -> Column | None:
    """The bucket's cheapest configuration on this type (fewest devices per request/s)."""
    bsvc, node = b.service_for(svc), sizing.node_size(hw)
    best = None
    for precision in svc.precisions_on(hw):
        for tp in sizing.TP_OPTIONS:
            if tp > node or node % tp:
                continue
            o, r = sizing.llm_option(bsvc, label, hw, precision, tp, 0.0, 0, calibration, b)
            if o.feasible and (best is None or tp / o.capacity < best[0].tp / best[0].capacity):
                best = (o, r)
    if best is None:
        return None
    o, r = best
    return Column(b.service, b.label, b.share, hw.id, o, o.capacity,
                  lambda: _rate(sizing.simulate_llm(r, bsvc, b.sampler())))


def _columns(plan, demand, profiles, types: set[str], calibration, use_buckets: bool) -> tuple[list[Column], dict]:
    cols, pools = [], {}
    cands = [c for c in plan.candidates if c.hardware in types]
    for i, svc in enumerate(demand.services):
        cols += [col for c in cands if (col := _whole_column(i, svc, c, profiles[c.hardware], calibration))]
        buckets = split(i, svc) if use_buckets and isinstance(svc, LlmService) else []
        if len(buckets) > 1:
            pools[i] = buckets
            for b in buckets:
                cols += [col for c in cands
                         if (col := _bucket_column(b, svc, demand.label(i), profiles[c.hardware], calibration))]
    return cols, pools


def _capex(devices: dict[str, int], servers: dict[str, int], unit_cost: dict[str, UnitCost]) -> float:
    """A mix's capex: each type's devices and whole servers at their unit capex."""
    return sum(unit_cost[h].device_capex * d + unit_cost[h].server_capex * servers.get(h, 0) for h, d in devices.items())


def _devices(cols: list[Column], x) -> dict[str, int]:
    """Devices per type of a solution's replica counts."""
    out: dict[str, int] = {}
    for c, n in zip(cols, x):
        if n > 0:
            out[c.hardware] = out.get(c.hardware, 0) + int(n * c.option.tp)
    return out


def _solve(cols: list[Column], pools: dict, demand, unit_cost: dict[str, UnitCost], limits: dict,
           budget: float | None):
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp

    split_ids = sorted(pools)
    types = sorted({c.hardware for c in cols if unit_cost[c.hardware].slots})  # bought in whole servers
    groups = [(i, pool, share) for i, svc in enumerate(demand.services)
              for pool, share in [("whole", 1.0)] + [(b.label, b.share) for b in pools.get(i, [])]]
    n, nz, ny, ns = len(cols), len(split_ids), len(types), len(groups)
    # variables: replicas x per column | z per split service | servers y per type | u: column used | spare s per pool
    width = n + nz + ny + n + ns
    obj = np.array([c.option.tp * (unit_cost[c.hardware].device_year if c.device_year is None else c.device_year)
                    for c in cols] + [0.0] * nz
                   + [unit_cost[h].server_year for h in types] + [0.0] * (n + ns))
    rows, lo, hi = [], [], []

    def row(x=None, z=None, y=None, u=None, s=None) -> list[float]:
        return (list(x or [0.0] * n) + list(z or [0.0] * nz) + list(y or [0.0] * ny) + list(u or [0.0] * n)
                + list(s or [0.0] * ns))

    spare_hi = []
    for g, (i, pool, share) in enumerate(groups):
        svc = demand.services[i]
        head, red = demand.headroom_of(svc), demand.redundancy_of(svc)
        caps = [c.capacity * (1 - head) if c.service == i and c.pool == pool else 0.0 for c in cols]
        top = max(caps, default=0.0)
        spare_hi.append(top)
        base, most = svc.load * share, svc.load * share + red * top  # most: the pool's need at its largest spare
        spare = [-red if k == g else 0.0 for k in range(ns)]
        z = [0.0] * nz
        if i in pools:
            k = split_ids.index(i)
            if pool == "whole":  # caps.x - N s + most z >= load: void once the service is split
                z[k], bound = most, base
            else:                # caps.x - N s - most z >= load - most: void while it is served whole
                z[k], bound = -most, base - most
        elif not any(caps):
            return None, f"service {demand.label(i)}: no costed type can serve it" + (
                " under these --limit caps; raise or drop a --limit" if limits else "")
        else:
            bound = base
        rows.append(row(x=caps, z=z, s=spare))
        lo.append(bound)
        hi.append(np.inf)
        # the spare is a replica of the largest type the pool uses: s >= cap_c u_c, and x_c > 0 only where u_c = 1
        for c, cap in enumerate(caps):
            if cap:
                rows.append(row(u=[-cap if k == c else 0.0 for k in range(n)], s=[1.0 if k == g else 0.0 for k in range(ns)]))
                lo.append(0.0)
                hi.append(np.inf)
                big = -(-most // cap) + red + 1  # more replicas than the pool could ever want
                rows.append(row(x=[1.0 if k == c else 0.0 for k in range(n)], u=[-big if k == c else 0.0 for k in range(n)]))
                lo.append(-np.inf)
                hi.append(0.0)
    for j, h in enumerate(types):  # devices of a type fit in its servers: sum TP x - slots y <= 0
        rows.append(row(x=[c.option.tp if c.hardware == h else 0 for c in cols],
                        y=[-unit_cost[h].slots if k == j else 0.0 for k in range(ny)]))
        lo.append(-np.inf)
        hi.append(0)
    for h, limit in limits.items():
        rows.append(row(x=[c.option.tp if c.hardware == h else 0 for c in cols]))
        lo.append(0)
        hi.append(limit)
    if budget is not None:
        rows.append(row(x=[c.option.tp * unit_cost[c.hardware].device_capex for c in cols],
                        y=[unit_cost[h].server_capex for h in types]))
        lo.append(0)
        hi.append(budget)
    integral = np.array([1] * (n + nz + ny + n) + [0] * ns)
    upper = [np.inf] * n + [1] * nz + [np.inf] * ny + [1] * n + spare_hi
    res = milp(obj, constraints=LinearConstraint(np.array(rows), lo, hi), integrality=integral,
               bounds=Bounds([0] * width, upper), options={"time_limit": 10})
    if res.x is None:
        return None, ("no mix meets the demand within the --limit caps: the capped types' devices cannot carry it; "
                      "raise or drop a --limit" if limits else "no mix meets the demand") + f" (solver: {res.message})"
    x = np.round(res.x[:n + nz + ny]).astype(int)
    return (x[:n], {i: bool(x[n + k]) for k, i in enumerate(split_ids)}, float(res.fun),
            {h: int(x[n + nz + j]) for j, h in enumerate(types)}), None


def require_solver() -> None:
    """The integer program needs scipy (the `plan` extra)."""
    if importlib.util.find_spec("scipy") is None:
        raise MissingDependency(f"--mixed solves an integer program with scipy: {install_hint('plan')}")


def optimise(plan, demand, profiles, site, a: Assumptions, limits: dict[str, int] | None = None,
             budget: float | None = None, calibration: dict | None = None, use_buckets: bool = True,
             servers: dict | None = None) -> Fleet:
    require_solver()
    limits = limits or {}
    servers = load_servers() if servers is None else servers
    for hid in limits:
        if hid not in profiles:
            raise UserError(f"--limit: unknown profile '{hid}'")
    unit_cost, excluded = {}, []
    for c in plan.candidates:
        if not c.options or limits.get(c.hardware, 1) == 0:
            continue
        per = _unit_cost(c, profiles[c.hardware], demand.services, site, a, demand.headroom, servers)
        if per is None:
            excluded.append(f"{c.hardware}: no price or TDP, or no site")
        else:
            unit_cost[c.hardware] = per
    currency = next((c.cost["currency"] for c in plan.candidates if c.cost), a.currency or "USD")
    busy = a.model_copy(update={"utilization": 1 - demand.headroom})
    singles = [{"hardware": c.hardware, "devices": c.devices, "tco_per_year": cost_of(
        c, profiles[c.hardware], demand.services, site, busy, servers.get(c.server) if c.server else None
    ).per_year["total"]} for c in plan.candidates if c.feasible and c.cost and c.cost["per_year"]
        and c.devices <= limits.get(c.hardware, c.devices)]  # a type --limit rules out is no comparison
    # on the program's basis (devices busy at 1 - headroom), so the two compare like for like
    single = min(singles, key=lambda x: x["tco_per_year"], default=None)

    idle = idle_limits(plan, limits)

    def none(reason: str) -> Fleet:
        return Fleet(False, reason, [], {}, None, None, currency, single, excluded, idle_limits=idle)

    cols, pools = _columns(plan, demand, profiles, set(unit_cost), calibration, use_buckets)
    server_of = {c.hardware: c.server for c in plan.candidates}
    for col in cols:  # each device draws what it serves in the mix, not what its single-type plan gave it
        col.device_year = _column_year(col, profiles[col.hardware], demand.services, site, a, demand.headroom, servers,
                                       server_of[col.hardware])
    if not cols:
        return none("no costed type can serve any service (need prices, TDP and --site)")
    for rounds in range(1, MAX_ROUNDS + 1):
        solved, reason = _solve(cols, pools, demand, unit_cost, limits, budget)
        if solved is None and budget is not None:  # say by how much the budget is short, if it is the budget
            free, _ = _solve(cols, pools, demand, unit_cost, limits, None)
            if free is not None:
                need = _capex(_devices(cols, free[0]), free[3], unit_cost)
                reason = (f"the budget {budget:,.0f} {currency} is below the cheapest mix's capex of {need:,.0f} "
                          f"{currency} under these limits; raise --budget")
        if solved is None:
            return none(reason)
        x, is_split, tco, bought = solved
        pending = [c for c, n in zip(cols, x) if n > 0 and c.simulate is not None]
        if not pending:
            break
        for c in pending:  # the solution leans on approximations: simulate them, drop what fails
            c.capacity, c.simulate = c.simulate(), None
        keep = [k for k, c in enumerate(cols) if c.capacity]
        cols = [cols[k] for k in keep]
    else:
        return none(f"capacities still unconfirmed after {MAX_ROUNDS} rounds of simulation")
    assignments = [{"service": demand.label(c.service), "pool": c.pool, "share": c.share, "hardware": c.hardware,
                    "precision": c.option.precision, "tp": c.option.tp, "replicas": int(n), "devices": int(n * c.option.tp),
                    "capacity": c.capacity, "unit": c.option.unit} for c, n in zip(cols, x) if n > 0]
    devices = _devices(cols, x)
    servers_of = {h: bought.get(h, 0) for h in devices}
    capex = _capex(devices, servers_of, unit_cost)
    splits = {demand.label(i): [b.label for b in pools[i]] if is_split.get(i) else "whole" for i in pools}
    return Fleet(True, None, assignments, devices, tco, capex, currency, single, excluded, splits, rounds,
                 servers_of, idle)


def idle_limits(plan, limits: dict[str, int]) -> list[str]:
    """A --limit on a part the plan left out, or that serves nothing (not sold in the market ...), caps
    nothing: said, not dropped without a word."""
    by_id = {c.hardware: c for c in plan.candidates}
    return [f"--limit {h}={n} caps nothing: {h} " + (
        "is not among the candidates (left out by --hardware, --domestic, --vendor or --exclude)" if h not in by_id
        else f"serves no service here: {by_id[h].reason}") for h, n in limits.items()
        if h not in by_id or not by_id[h].options]
