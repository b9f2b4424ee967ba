"""Check: the LLM planner against AMD's vLLM latency tables for the MI300X, which the shipped fit never saw.

AMD published, with each release of its vLLM container for ROCm from January to July 2025, how long one static
batch takes: Llama-3.1-70B and Llama-3.1-405B in fp8 on eight MI300X at TP 8, B prompts of 128 or 2,048 tokens sent
together and run to 2,048 output tokens (vLLM's `benchmark_latency.py`; workloads/reference/rocm_vllm_latency.csv,
commit per row, provenance in its NOTICE.md). They are the only dense model on an AMD part, and the only AMD part
under vLLM, that the planner has measurements of: the fit's own AMD data are DeepSeek-R1 under SGLang. Each
configuration is predicted as `infra-bench predict --num-prompts B` steps such a run (`llm_model.predict_run`: every
prompt sent at once, prefilled in the engine's token budget, then decoded together), and its duration compared with
the measured latency of each release. Error: measured / predicted - 1, the planner's speed against the measurement
(positive: it promises more than was measured).

Fitting these rows was tried and not shipped (docs/planner.md, "AMD's vLLM latency tables"): they are kept as a
check of what the planner says of a dense model on an AMD part.

Run: python benchmarks/amd_vllm_check.py [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="Llama-3.1-70B at batches 1 and 128 only (seconds)")
    args = ap.parse_args()
    from infra_bench.paths import reference_rows
    from infra_bench.planner import fit as F
    from infra_bench.planner import llm_model
    from infra_bench.planner.profiles import load_hardware

    hw, fit = load_hardware(), F.shipped()
    measured: dict[tuple, list[float]] = {}
    for r in reference_rows("rocm_vllm_latency.csv"):
        key = (r["model"], r["hardware"], int(r["tp"]), r["precision"], int(r["isl"]), int(r["osl"]), int(r["batch"]))
        if args.quick and (key[0] != "llama-3.1-70b" or key[-1] not in (1, 128)):
            continue
        measured.setdefault(key, []).append(float(r["latency_s"]))
    print(f"{'model':<15} {'ISL':>5} {'batch':>5} {'releases':>8} {'measured s (min-max)':>22} {'predicted s':>11} "
          f"{'error':>6}  {'pred. TPOT ms':>13}")
    errors: dict[int, list[float]] = {}
    for (model, part, tp, precision, isl, osl, batch), lat in sorted(measured.items()):
        rep = llm_model.replica(model, hw[part], precision, tp, engine="vllm")
        p = llm_model.predict_run(rep, fit, batch, batch, isl, osl)
        predicted = p.run["duration_s"]
        errs = [m / predicted - 1 for m in lat]
        errors.setdefault(isl, []).extend(errs)
        mid = statistics.median(lat)
        print(f"{model:<15} {isl:>5} {batch:>5} {len(lat):>8} {mid:>9.1f} ({min(lat):.1f}-{max(lat):.1f}) "
              f"{predicted:>11.1f} {mid / predicted - 1:>+6.0%}  {p.run['mean_tpot_s'] * 1e3:>13.1f}")
    print(f"\n{'rows':<22} {'n':>4} {'median |error|':>14} {'bias':>6}")
    every = [e for v in errors.values() for e in v]
    for name, errs in [*((f"{isl}-token prompts", errors[isl]) for isl in sorted(errors)), ("all", every)]:
        print(f"{name:<22} {len(errs):>4} {statistics.median(abs(e) for e in errs):>14.0%} "
              f"{statistics.median(errs):>+6.0%}")
    print(f"\nAMD vLLM latency rows predicted ({len(every)}): shipped fit, positive error: the planner promises more")


if __name__ == "__main__":
    main()
