"""How far `plan`'s LLM capacities can be trusted: the simulation's own resolution, and the approximation against it.

`plan` ranks every configuration on a mean-value approximation of a replica's capacity under the TTFT and TPOT p99
SLOs (queueing.approx_capacity) and re-derives the top candidates with the discrete-event simulation
(sizing.simulate_llm), which reads its percentiles over the requests of one seeded run. This prints:

1. The simulation's resolution. For six configurations of Llama-3.1-8B with exponential prompts (mean 1,024) and
   outputs, the simulated capacity over several seeds with 1,500 requests a run (the count shipped until
   2026-12-06) and with sizing.sim_requests (shipped now), as a median, its 10th-90th percentile over seeds, and the
   median over the long run's (the median over seeds of runs of LONG requests). With few requests a run the
   capacity moves with the seed and reads high: a short run drains before a slowly growing queue shows.
2. approx / simulated capacity over every feasible LLM configuration of the two shipped demands (10th, 50th, 90th
   percentile and the extremes): sizing.REACH assumes the approximation reads no more than 1 / REACH below it.
3. With fixed lengths, seven configurations: approx / long-run simulated capacity, and the simulated TPOT p99 at the
   approximated capacity over the SLO.
4. A one-token (prompt-only) service on an L4 under four TTFT p95 SLOs: approx / long-run simulated capacity.
5. Fixed long prompts with short exponential outputs, where the approximation's draw still moves it: the shipped draw
   and ten draws, stratified and independent, against the long run.
6. Services where TTFT binds, or a full batch or saturation does: approx / simulated capacity (the median of a few
   seeds of SIM_MAX requests), with exponential lengths and with fixed ones, with the TTFT p99 SLO just above the idle
   p99 (a knife edge), and under loose SLOs where only saturation stops the load (the approximation must stay below
   the closed loop's offline maximum there).

Run: python benchmarks/llm_capacity.py [--seeds 10] [--quick]
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from infra_bench.paths import data_dir
from infra_bench.planner import sizing
from infra_bench.planner.buckets import Lengths, whole
from infra_bench.planner.demand import demand_from_dict, load_demand
from infra_bench.planner.profiles import load_hardware
from infra_bench.planner.queueing import approx_capacity, capacity_under_slo

OLD_N = 1500
LONG = 40_000
# part, precision, TP, output (a mean: exponential; or a fixed length), TPOT p99 SLO; prompts exponential, mean 1,024,
# up to 8,192, TTFT p95 2 s. The last: one fixed output token (prompts only), its capacity at 0.87 of saturation.
CASES = [("nv_l20", "fp8", 1, 256, 0.05), ("nv_a10", "bf16", 2, 256, 0.05), ("nv_h100_sxm", "fp8", 1, 256, 0.05),
         ("cb_mlu370_s4", "bf16", 4, 256, 0.05), ("nv_l40s", "fp8", 1, 256, 0.03), ("nv_l4", "fp8", 1, 1, 0.05),
         ("nv_l4", "fp8", 1, {"mean": 1}, 0.05)]


def service(precision: str, output: int | dict, tpot_slo: float):
    out = output if isinstance(output, dict) else {
        "mean": output, "distribution": "exponential", **({"max": 2048} if output > 1 else {})}
    return demand_from_dict({"name": "t", "services": [{
        "name": "chat", "model": "llama-3.1-8b", "precision": [precision],
        "traffic": {"requests_per_s": 20, "input_len": {"mean": 1024, "distribution": "exponential", "max": 8192},
                    "output_len": out},
        "slo": {"ttft_p95_s": 2.0, "tpot_p99_s": tpot_slo}}]}).services[0]


def simulated(m, svc, n: int, seed: int) -> float:
    """The simulated capacity of one run (NaN where no load meets the SLOs), lengths drawn where they vary."""
    bucket = whole(svc)
    res = sizing.simulate_llm(m, svc, bucket.sampler() if bucket.variable else None, n=n, seed=seed)
    return res.rate if res else float("nan")


def approximated(m, svc, seed: int, lengths=None) -> float:
    """The approximation's capacity with the service's requests drawn with `seed` (plan draws with 0)."""
    m = replace(m, lengths=lengths or whole(svc).lengths(seed), _steps={})
    q, ttft = svc.slo.ttft
    est = approx_capacity(m.mean_prefill_s(), m.output_len, m.step_s, m.max_batch, ttft, svc.slo.tpot_p99_s, q,
                          m.request_s, m.tails)
    return est.rate if est else float("nan")


def spread(m, svc, seeds: int) -> str:
    """The extremes over draws of the approximation's capacity with each request drawn independently (as until
    2026-12-06), over their median."""
    b = whole(svc)
    k, gen_m = len(m.lengths.own), m.lengths.epochs.shape[1]
    caps = []
    for seed in range(seeds):
        gen = np.random.default_rng(seed)
        own, outputs = b.input.at(gen.random(k)), b.output.at(gen.random(k))
        waits, epochs = gen.exponential(size=k), np.cumsum(gen.exponential(size=(k, gen_m)), axis=1)
        others = b.input.at(gen.random((k, gen_m)))
        prompts, where = np.unique(np.concatenate([own, others.ravel()]), return_inverse=True)
        slots = gen.exponential(size=k)
        caps.append(approximated(m, svc, seed, Lengths(own, outputs, waits, epochs, others, prompts, where, slots)))
    c = np.array(caps)
    return f"extremes {c.min() / np.median(c):.2f}-{c.max() / np.median(c):.2f} of their median"


def resolution(hw: dict, cases: list, seeds: int, long: int) -> None:
    print(f"1. simulated capacity (req/s) over {seeds} seeds: median, 10th-90th percentile / median, median / the "
          f"long run's (median of {max(2, seeds // 2)} seeds at {long:,} requests); time per capacity search")
    for part, precision, tp, out, slo in cases:
        svc = service(precision, out, slo)
        o, m = sizing.llm_option(svc, "chat", hw[part], precision, tp, 0.2, 1, None)
        ref = float(np.nanmedian([simulated(m, svc, long, 100 + s) for s in range(max(2, seeds // 2))]))
        what = f"{out['mean']} fixed output token" if isinstance(out, dict) else f"outputs of mean {out}"
        line = f"   {part} {precision} TP {tp}, {what}, TPOT p99 {slo * 1e3:g} ms: long run {ref:.3g};"
        shipped = sizing.sim_requests(m, svc)
        for label, n in ((f"{OLD_N:,}", OLD_N), (f"sim_requests {shipped:,}", shipped)):
            t = time.perf_counter()
            r = np.array([simulated(m, svc, n, s) for s in range(seeds)])
            per = (time.perf_counter() - t) / seeds
            med = float(np.nanmedian(r))
            lo, hi = np.nanpercentile(r, [10, 90]) / med
            line += f" {label}: {med:.3g}, {lo:.2f}-{hi:.2f}, {med / ref:.2f} of it ({per:.2f} s);"
        print(line + f" approximation {o.capacity:.3g} ({o.capacity / ref:.2f} of the long run)", flush=True)
        drawn = np.array([approximated(m, svc, seed) for seed in range(seeds)])
        med = float(np.median(drawn))
        print(f"     the approximation over {seeds} draws of its {len(m.lengths.own):,} requests: median {med:.3g} "
              f"({med / ref:.2f} of the long run), extremes {drawn.min() / med:.2f}-{drawn.max() / med:.2f} of it; "
              f"drawn independently, not stratified: {spread(m, svc, seeds)}", flush=True)


def demand_ratios(hw: dict, limit: int | None) -> None:
    ratios, seen = [], 0
    for name in ("demand-example.yaml", "demand-bank.yaml"):
        demand = load_demand(data_dir("workloads") / name)
        p = sizing.plan(demand, hw, confirm_top=0)
        for c in [c for c in p.candidates if c.feasible][:limit]:
            for o, svc in zip(c.options, demand.services):
                if o.kind != "llm" or not o.feasible:
                    continue
                _, m = sizing.llm_option(svc, o.service, hw[c.hardware], o.precision, o.tp, demand.headroom_of(svc),
                                         demand.redundancy_of(svc), None)
                draw = whole(svc).sampler() if whole(svc).variable else None
                pair = [sizing.simulate_llm(m, svc, draw, n=n) for n in (OLD_N, sizing.sim_requests(m, svc))]
                seen += 1
                if None not in pair:
                    ratios.append([o.capacity / res.rate for res in pair])
    print(f"2. approx / simulated capacity over {len(ratios)} feasible LLM configurations of the two shipped demands "
          f"({seen - len(ratios)} infeasible simulated), 10th, median, 90th percentile (extremes):")
    for label, r in zip((f"{OLD_N:,} requests a run", "sim_requests"), np.array(ratios).T):
        q10, q50, q90 = np.quantile(r, [0.1, 0.5, 0.9])
        print(f"   simulated with {label}: {q10:.2f}, {q50:.2f}, {q90:.2f} ({r.min():.2f}-{r.max():.2f}); "
              f"below 1 / REACH = {1 / sizing.REACH:.2f}: {np.mean(r < 1 / sizing.REACH):.0%}")


# model, part, TP, prompt and output tokens (fixed), TTFT p95 and TPOT p99 SLOs (bf16, the part's default engine)
FIXED = [("llama-3.1-8b", "nv_h100_sxm", 1, 1024, 128, 2.0, 0.05), ("llama-3.1-8b", "nv_h100_sxm", 1, 1024, 128, 0.3, 0.02),
         ("llama-3.1-70b", "nv_h100_sxm", 4, 1024, 256, 2.0, 0.05), ("llama-3.1-8b", "hw_910b2", 1, 512, 256, 1.0, 0.1),
         ("qwen2.5-7b", "nv_rtx4090", 1, 2048, 256, 2.0, 0.04), ("llama-3.1-8b", "nv_a10", 2, 1024, 256, 2.0, 0.05),
         ("llama-3.1-8b", "nv_l20", 1, 1024, 256, 2.0, 0.05)]


def fixed_lengths(hw: dict, cases: list, seeds: int, long: int) -> None:
    """The approximation with fixed lengths (its TPOT p99 from the count of prompts a request sits through) against
    a long simulation: the capacity, and the simulated TPOT p99 at the approximated capacity over the SLO."""
    from infra_bench.planner import fit as F
    from infra_bench.planner import llm_model
    from infra_bench.planner.engines import default_engine
    from infra_bench.planner.queueing import run_load

    caps, tails = [], []
    for model, part, tp, inp, out, ttft, tpot in cases:
        rep = llm_model.replica(model, hw[part], "bf16", tp=tp, engine=default_engine(hw[part].vendor))
        eff, _ = F.shipped().efficiency([rep.case])
        r = sizing.ServiceModel(rep, eff, inp, out)
        mb = min(256, r.max_batch)
        approx = approx_capacity(r.prefill_s(), out, r.step_s, mb, ttft, tpot)
        runs = [capacity_under_slo(r.prefill_s(), out, r.step_s, mb, ttft, tpot, n=long, seed=s) for s in range(seeds)]
        caps.append(approx.rate / float(np.median([x.rate for x in runs])))
        tails.append(run_load(approx.rate, r.prefill_s(), out, r.step_s, mb, long, 0).tpot_p99_s / tpot)
    print(f"3. fixed lengths, {len(cases)} configurations: approx / long-run simulated capacity "
          f"{min(caps):.2f}-{max(caps):.2f} (median {np.median(caps):.2f}); at the approximated capacity the simulated "
          f"TPOT p99 is {min(tails):.2f}-{max(tails):.2f} x the SLO ({seeds} seeds of {long:,} requests)", flush=True)


def prompt_only(hw: dict, slos: list, seeds: int, long: int) -> None:
    """A service of one output token (exponential prompts, an L4 in fp8) under TTFT p95 SLOs: the approximation's
    wait (none for an arrival that finds the replica idle) against a long simulation."""
    line = []
    for slo in slos:
        svc = demand_from_dict({"name": "t", "services": [{
            "name": "c", "model": "llama-3.1-8b", "precision": ["fp8"],
            "traffic": {"requests_per_s": 5, "input_len": {"mean": 1024, "distribution": "exponential", "max": 8192},
                        "output_len": 1},
            "slo": {"ttft_p95_s": slo, "tpot_p99_s": 0.05}}]}).services[0]
        o, m = sizing.llm_option(svc, "c", hw["nv_l4"], "fp8", 1, 0.2, 1, None)
        ref = float(np.median([simulated(m, svc, long, s) for s in range(seeds)]))
        line.append(f"{slo:g} s: {o.capacity / ref:.2f}")
    print(f"4. one output token on an L4, approx / long-run simulated capacity ({seeds} seeds of {long:,} requests) "
          f"by TTFT p95 SLO: " + ", ".join(line), flush=True)


def joint(hw: dict, seeds: int, long: int) -> None:
    """Fixed 4,000-token prompts of Llama-3.1-70B in fp8 with exponential outputs of mean 100: the TPOT p99 rests
    on a short output meeting a long prefill, a joint coincidence that stratifying single lengths does not cover."""
    for part, tp, slo in (("nv_b200", 1, 0.03), ("nv_b200", 1, 0.05), ("nv_h100_sxm", 2, 0.03), ("nv_h100_sxm", 2, 0.05)):
        svc = demand_from_dict({"name": "t", "services": [{
            "name": "c", "model": "llama-3.1-70b", "precision": ["fp8"],
            "traffic": {"requests_per_s": 20, "input_len": 4000, "output_len": {"mean": 100, "distribution": "exponential"}},
            "slo": {"ttft_p95_s": 2.0, "tpot_p99_s": slo}}]}).services[0]
        o, m = sizing.llm_option(svc, "c", hw[part], "fp8", tp, 0.2, 1, None)
        ref = float(np.median([simulated(m, svc, long, 100 + s) for s in range(max(2, seeds // 2))]))
        drawn = np.array([approximated(m, svc, seed) for seed in range(seeds)])
        med = float(np.median(drawn))
        print(f"5. Llama-3.1-70B fp8, 4,000 fixed prompt tokens, outputs of mean 100, {part} TP {tp}, TPOT p99 "
              f"{slo * 1e3:g} ms: long run {ref:.3g}; the approximation {o.capacity:.3g} ({o.capacity / ref:.2f} of it), "
              f"over {seeds} draws median {med / ref:.2f} of it, extremes {drawn.min() / med:.2f}-{drawn.max() / med:.2f} "
              f"of their median; drawn independently, not stratified: {spread(m, svc, seeds)}", flush=True)


# model, part, precision, TP, prompt and output tokens (a mean: exponential, up to 8x; or fixed), TTFT SLO key and
# seconds, TPOT p99 SLO
TTFT_BOUND = [("llama-3.1-8b", "nv_a10", "bf16", 2, 1024, 256, "ttft_p95_s", 0.5, 0.1),
              ("llama-3.1-8b", "nv_h100_sxm", "fp8", 1, 1024, 256, "ttft_p95_s", 0.15, 0.1),
              ("llama-3.1-8b", "nv_l4", "fp8", 1, 2048, 256, "ttft_p99_s", 1.5, 0.1),
              ("llama-3.1-8b", "nv_l4", "fp8", 1, 512, 1024, "ttft_p95_s", 1.0, 0.2),
              ("llama-3.1-70b", "nv_h100_sxm", "fp8", 2, 4000, 1000, "ttft_p95_s", 3.0, 0.2),
              ("llama-3.1-8b", "nv_rtx4090", "fp8", 1, 1500, 800, "ttft_p99_s", 1.0, 0.2)]
FIXED_TTFT_BOUND = [("llama-3.1-8b", "nv_h100_sxm", "fp8", 1, 1024, 128, "ttft_p95_s", 0.15, 0.1),
                    ("llama-3.1-8b", "nv_l4", "fp8", 1, 2048, 256, "ttft_p95_s", 0.6, 0.1),
                    ("llama-3.1-8b", "nv_l20", "fp8", 1, 1024, 512, "ttft_p99_s", 0.3, 0.1),
                    ("llama-3.1-70b", "nv_h100_sxm", "fp8", 4, 2048, 256, "ttft_p95_s", 0.4, 0.1),
                    ("qwen2.5-7b", "nv_rtx4090", "fp8", 1, 1024, 1024, "ttft_p95_s", 0.5, 0.2),
                    ("llama-3.1-8b", "nv_a10", "bf16", 2, 4096, 256, "ttft_p99_s", 2.0, 0.2)]
LOOSE = [("llama-3.1-8b", "nv_b200", "fp4", 1, 871, 129, "ttft_p99_s", 2.0, 0.2, "trt-llm"),
         ("llama-2-70b", "nv_b200", "fp4", 1, 222, 274, "ttft_p99_s", 2.0, 0.2, "trt-llm"),
         ("llama-3.1-70b", "nv_h100_sxm", "fp8", 2, 1024, 256, "ttft_p99_s", 2.0, 0.2, "vllm")]


def _chat(model: str, precision: str, inp: int, out: int, variable: bool, key: str, ttft: float, tpot: float,
          engine: str = "auto"):
    def length(mean: int):
        return {"mean": mean, "distribution": "exponential", "max": 8 * mean} if variable else mean
    return demand_from_dict({"name": "t", "services": [{
        "name": "c", "model": model, "precision": [precision], "engine": {"name": engine},
        "traffic": {"requests_per_s": 20, "input_len": length(inp), "output_len": length(out)},
        "slo": {key: ttft, "tpot_p99_s": tpot}}]}).services[0]


def _against_simulation(hw: dict, svc, part: str, precision: str, tp: int, seeds: int, n: int) -> str:
    o, m = sizing.llm_option(svc, "c", hw[part], precision, tp, 0.2, 1, None)
    if not o.feasible:
        return f"infeasible ({o.reason})"
    rates = [r for r in (simulated(m, svc, n, s) for s in range(seeds)) if not np.isnan(r)]
    if not rates:
        return "the simulation finds no load"
    return f"{o.capacity / float(np.median(rates)):.2f} ({o.binds})"


def ttft_bound(hw: dict, seeds: int, n: int, limit: int | None = None) -> None:
    """Part 6: where TTFT, a full batch or saturation bounds the capacity."""
    print(f"6. approx / simulated capacity ({seeds} seeds of {n:,} requests) where TTFT, a full batch or saturation "
          f"binds:", flush=True)
    for variable, cases in ((True, TTFT_BOUND[:limit]), (False, FIXED_TTFT_BOUND[:limit])):
        for model, part, precision, tp, inp, out, key, ttft, tpot in cases:
            svc = _chat(model, precision, inp, out, variable, key, ttft, tpot)
            print(f"   {'exponential' if variable else 'fixed'} {inp:,} / {out:,} tokens, {model} {precision} on {part} "
                  f"TP {tp}, TTFT {key.split('_')[1]} {ttft:g} s: "
                  f"{_against_simulation(hw, svc, part, precision, tp, seeds, n)}", flush=True)
    base = _chat("llama-3.1-8b", "fp8", 1500, 300, True, "ttft_p99_s", 100.0, 0.2)
    for part in ("nv_l20", "nv_l4")[:limit]:
        _, m = sizing.llm_option(base, "c", hw[part], "fp8", 1, 0.2, 1, None)
        idle = sizing._idle(m, 99).ttft_s
        line = [f"x{k:g}: " + _against_simulation(hw, _chat("llama-3.1-8b", "fp8", 1500, 300, True, "ttft_p99_s",
                                                                round(k * idle, 4), 0.2), part, "fp8", 1, seeds, n)
                for k in (1.03, 1.06, 1.15)]
        print(f"   the TTFT p99 SLO a factor above the idle p99 ({idle:.3f} s), Llama-3.1-8B fp8 on {part}, exponential "
              f"1,500 / 300 tokens: " + "; ".join(line), flush=True)
    for model, part, precision, tp, inp, out, key, ttft, tpot, engine in LOOSE[:limit]:
        svc = _chat(model, precision, inp, out, False, key, ttft, tpot, engine)
        print(f"   loose SLOs, fixed {inp} / {out} tokens, {model} {precision} on {part} TP {tp} under {engine}: "
              f"{_against_simulation(hw, svc, part, precision, tp, seeds, n)}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="seconds: two configurations, 2 seeds, a shorter long run, "
                                                         "the first 3 candidates of each demand")
    a = ap.parse_args()
    hw = load_hardware()
    t = time.perf_counter()
    if a.quick:
        resolution(hw, CASES[:1] + CASES[-1:], 2, 6000)
        demand_ratios(hw, 3)
        fixed_lengths(hw, FIXED[:1], 1, 6000)
        prompt_only(hw, [0.5], 1, 6000)
        joint(hw, 2, 6000)
        ttft_bound(hw, 1, 3000, limit=1)
    else:
        resolution(hw, CASES, a.seeds, LONG)
        demand_ratios(hw, None)
        fixed_lengths(hw, FIXED, 3, 20_000)
        prompt_only(hw, [0.5, 1.0, 2.0, 4.0], 3, 30_000)
        joint(hw, a.seeds, LONG)
        ttft_bound(hw, 3, sizing.SIM_MAX)
    print(f"done in {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
