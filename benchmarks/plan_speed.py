"""How long `plan` takes to rank every shipped accelerator profile x TP option x precision.

Target: at most 1 s for one demand. Times the ranking alone (approximation for every
configuration, no simulation) and the full plan with the top 3 confirmed by simulation, for an
LLM-only demand over all five LLM precisions, for the mixed example demand (FLOP counts of the
diffusion and TTS models cached, as after the first plan) and for a RAG demand (an embedding and a
reranker service, each ranked on the merging queue's approximation). Medians over rounds. Then the whole
command as a user meets it: `infra-bench plan workloads/demand-example.yaml --site cn-east` from a
cold process (interpreter start, imports, demand and profiles read, plan, table), target 1.5 s.

Run: python benchmarks/plan_speed.py [--rounds 5] [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from infra_bench.paths import data_dir
from infra_bench.planner import sizing
from infra_bench.planner.demand import LLM_PRECISIONS, demand_from_dict, load_demand
from infra_bench.planner.profiles import load_hardware

LLM_ONLY = {"name": "llm-all-precisions", "services": [{
    "model": "llama-3.1-70b", "precision": [p for p in LLM_PRECISIONS if p != "fp16"],
    "traffic": {"requests_per_s": 30, "input_len": 2048, "output_len": 256},
    "slo": {"ttft_p95_s": 3.0, "tpot_p99_s": 0.06}}]}
RAG = {"name": "rag", "services": [
    {"name": "retrieve", "model": "bge-m3", "traffic": {"requests_per_s": 300, "seq_len": 512},
     "slo": {"latency_p95_s": 0.2}},
    {"name": "rerank", "model": "bge-reranker-v2-m3", "traffic": {"requests_per_s": 10, "seq_len": 512, "batch": 20},
     "slo": {"latency_p95_s": 0.5}}]}


def timed(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="one round (checks the script runs)")
    a = ap.parse_args()
    if a.quick:
        a.rounds = 1
    profiles = load_hardware()
    n_acc = sum(p.kind == "accelerator" for p in profiles.values())
    for demand in (demand_from_dict(LLM_ONLY), load_demand(data_dir("workloads") / "demand-example.yaml"),
                   demand_from_dict(RAG)):
        sizing.plan(demand, profiles, confirm_top=0)  # warm: catalogs, FLOP counts
        configs = sum(len(s.precision or [None]) * (len(sizing.TP_OPTIONS) if s.kind == "llm" else 1) for s in demand.services)
        rank = timed(lambda: sizing.plan(demand, profiles, confirm_top=0), a.rounds)
        full = timed(lambda: sizing.plan(demand, profiles, confirm_top=3), a.rounds)
        print(f"{demand.name}: {n_acc} profiles x {configs} configurations per profile; "
              f"ranking {rank:.3f} s, with the top 3 simulated {full:.3f} s (target <= 1 s)")
    example = data_dir("workloads") / "demand-example.yaml"
    command = [sys.executable, "-m", "infra_bench", "plan", str(example), "--site", "cn-east"]
    cold = timed(lambda: subprocess.run(command, capture_output=True, check=True), a.rounds)
    print(f"whole command, cold process: `infra-bench plan demand-example.yaml --site cn-east` {cold:.2f} s "
          f"(target <= 1.5 s)")


if __name__ == "__main__":
    main()
