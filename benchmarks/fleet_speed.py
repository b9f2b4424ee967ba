"""How long the mixed-fleet integer program takes on the full catalog (target at most 5 s).

Plans the example demand at a US site (every profile a candidate), then times
fleet.optimise over all costed types x services, median of rounds.

Run: python benchmarks/fleet_speed.py [--rounds 5] [--quick]  (needs the plan extra: scipy)
"""
from __future__ import annotations

import argparse
import statistics
import time

from infra_bench.paths import data_dir
from infra_bench.planner import sizing
from infra_bench.planner.cost import Assumptions
from infra_bench.planner.demand import load_demand
from infra_bench.planner.fleet import optimise
from infra_bench.planner.profiles import load_hardware, load_sites


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="one round (checks the script runs)")
    a = ap.parse_args()
    if a.quick:
        a.rounds = 1
    demand, profiles = load_demand(data_dir("workloads") / "demand-example.yaml"), load_hardware()
    site = load_sites()["us-average"]
    plan = sizing.plan(demand, profiles, site=site, rank_by="tco")
    times = []
    for _ in range(a.rounds):
        t = time.perf_counter()
        fleet = optimise(plan, demand, profiles, site, Assumptions())
        times.append(time.perf_counter() - t)
    types = len({c.hardware for c in plan.candidates if c.cost and c.cost.get("per_year")})
    print(f"{len(plan.candidates)} profiles ({types} costed) x {len(demand.services)} services: optimiser "
          f"{statistics.median(times):.3f} s (target <= 5 s); TCO {fleet.tco_per_year:,.0f} {fleet.currency}/yr "
          f"vs best single type {fleet.best_single['tco_per_year']:,.0f}")


if __name__ == "__main__":
    main()
