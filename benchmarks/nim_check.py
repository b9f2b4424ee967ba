"""The LLM planner against NVIDIA NIM's published benchmark tables, which the shipped fit reads since FIT_VERSION 17.

NVIDIA's NIM benchmarking guide (docs.nvidia.com/nim/benchmarking/llm/1.0.0/performance) publishes closed-loop runs of
Llama 3.1 8B, Llama 3.1 70B and Llama 3.3 70B (the 3.1 70B architecture) under NIM's TensorRT-LLM engines: C
streaming clients at fixed prompt and output lengths, C from 1 to 250, TTFT, ITL and output tokens/s per point
(workloads/reference/nim_llm_benchmarks.csv; NOTICE.md says which figures were read from NVIDIA's page here and which
come from a third-party transcription of it, and what could not be read). It is a campaign of its own: other engine
builds and another harness than the AIConfigurator sample's Llama rows.

Each row is predicted as the fit sees a sample row (`planner.measurements.nim_measurements`, `fit.predict_problem`):
the closed loop at the row's clients and lengths, its TTFT a benchmark's whose first C requests start together (the
run's request count is not published, so the fit's `bench_requests` stands in). Errors, positive where the planner
promises more: TTFT and TPOT as speeds (measured / predicted - 1), throughput as predicted / measured - 1 with the
predicted throughput C x O / (TTFT + (O - 1) x TPOT). Each row's 80% intervals are the ones `predict` states for it
(the fit's held-out quantiles for the row's tier and engine), and the summary says how often they hold the measurement:
about 80% where the intervals are honest for a campaign the fit never saw. Since FIT_VERSION 17 the rows are part of the
fit, so these figures are in sample; how the rows come out with their model held out is
`benchmarks/planner_accuracy.py`'s (docs/planner.md, "NVIDIA NIM's benchmark tables").

Run: python benchmarks/nim_check.py [--quick]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


METRICS = ("ttft", "tpot", "throughput")


def _summary(name: str, e: dict[str, np.ndarray], held: dict[str, np.ndarray]) -> str:
    cells = [f"{np.median(np.abs(e[k])):>6.0%} {np.median(e[k]):>+6.0%} {held[k].mean():>5.0%}" for k in METRICS]
    return f"{name:<34} {len(e['ttft']):>4}  " + "   ".join(cells)


def held(fit, problem, predicted: dict[str, np.ndarray], measured: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per metric, whether each row's measurement lies in the 80% interval `predict` states around its prediction
    (throughput's mirrors TPOT's, as in `predict`)."""
    from infra_bench.planner.llm_model import throughput_interval

    out = {k: np.zeros(len(problem.points), dtype=bool) for k in METRICS}
    for i, case in enumerate(problem.cases):
        tier = fit.tier(case)
        for k in METRICS:
            value = float(predicted[k][i])
            iv = (throughput_interval(fit, tier, value, case.engine) if k == "throughput"
                  else fit.interval(tier, k, value, case.engine))
            out[k][i] = iv is not None and iv[0] <= measured[k][i] <= iv[1]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the rows read from NVIDIA's page at 1 and 25 clients only")
    args = ap.parse_args()
    from planner_accuracy import throughput

    from infra_bench.planner import fit as F
    from infra_bench.planner import measurements as M
    from infra_bench.planner.profiles import load_hardware

    points = M.nim_measurements(("nvidia",) if args.quick else ("nvidia", "transcription"))
    if args.quick:
        points = [m for m in points if m.concurrency in (1, 25)]
    problem, skipped = F.Problem.build(points, load_hardware())
    fit = F.shipped()
    s, _ = F.predict_problem(fit, problem)
    b, isl, osl, ttft, tpot = problem.arrays()
    dp = np.ones_like(b)
    predicted = {"ttft": s.ttft_s, "tpot": s.tpot_s, "throughput": throughput(b, dp, isl, osl, s.ttft_s, s.tpot_s)}
    measured = {"ttft": ttft, "tpot": tpot, "throughput": throughput(b, dp, isl, osl, ttft, tpot)}
    errors = {"ttft": ttft / s.ttft_s - 1, "tpot": tpot / s.tpot_s - 1,
              "throughput": predicted["throughput"] / measured["throughput"] - 1}
    inside = held(fit, problem, predicted, measured)
    tables = [m.source.split()[2] for m in problem.points]
    by_nvidia = {m.source for m in M.nim_measurements(("nvidia",))}

    print(f"{'table':<6} {'model':<14} {'part':<12} {'prec':<5} {'TP':>2} {'ISL/OSL':>10} {'C':>4} "
          f"{'TTFT ms meas/pred':>18} {'TPOT ms meas/pred':>18}")
    for i, m in enumerate(problem.points):
        print(f"{tables[i]:<6} {m.model:<14} {m.hardware:<12} {m.precision:<5} {m.tp:>2} "
              f"{f'{m.input_len:.0f}/{m.output_len:.0f}':>10} {m.concurrency:>4.0f} "
              f"{ttft[i] * 1e3:>8.1f}/{s.ttft_s[i] * 1e3:<9.1f} {tpot[i] * 1e3:>8.2f}/{s.tpot_s[i] * 1e3:<9.2f}")
    for line in skipped:
        print(f"not modelled: {line}")

    print(f"\n{'rows':<34} {'n':>4}  {'TTFT |err| bias held':>19}   {'TPOT |err| bias held':>19}   "
          f"{'tok/s |err| bias held':>20}")
    groups: dict[str, list[int]] = {}
    for i, m in enumerate(problem.points):
        for g in (f"{m.model} {m.hardware} {m.precision}",
                  f"numbers from {'NVIDIA' if m.source in by_nvidia else 'a transcription'}",
                  "clients <= 50" if m.concurrency <= 50 else "clients > 50"):
            groups.setdefault(g, []).append(i)
    for g, idx in sorted(groups.items()):
        print(_summary(g, {k: v[idx] for k, v in errors.items()}, {k: v[idx] for k, v in inside.items()}))
    print(_summary("all", errors, inside))
    print(f"\nNIM benchmark rows predicted ({len(problem.points)}): shipped fit, positive error: the planner promises "
          f"more; held: how often predict's 80% interval holds the measurement")


if __name__ == "__main__":
    main()
