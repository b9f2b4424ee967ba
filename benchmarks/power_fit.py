"""Fit the planner's power model to measured GPU power, and say how well it does on GPUs and engines it did
not see.

    P / TDP = static + compute x u_compute + memory x u_memory + network x u_network

u is the achieved fraction of the spec-sheet FLOP rate and memory bandwidth over a run, computed with the
planner's own work counts (infra_bench.planner.iteration.work) for the run's model, batch and lengths and
the run's measured duration. The data (workloads/reference/power_measurements.csv) are Argonne's
LLM-Inference-Bench single-GPU runs: Llama-2-7B and Llama-3-8B on A100 and H100 under vLLM, TensorRT-LLM
and DeepSpeed-MII, batch 1 to 64, 1,024 prompt and 1,024 output tokens. They run on one GPU, so the network
weight cannot be fitted and keeps GenZ's 0.1 (arXiv 2406.01698). The ML.ENERGY leaderboard is kept out: it
is the acceptance check (benchmarks/acceptance_check.py).

Printed: the fitted weights; GenZ's split (0.3 / 0.4 / 0.2, what the planner used before) and the fit on the
same rows; and the fit held out, leaving one GPU out and one engine out (median absolute error, bias, the
10th and 90th percentiles of log(measured / predicted)). `--write` stores the weights and the leave-one-GPU-out
quantiles, which become the interval of every estimated J/token, in workloads/reference/power_fit.json.

Run: python benchmarks/power_fit.py [--quick] [--write]
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "workloads" / "reference" / "power_measurements.csv"
OUT = ROOT / "workloads" / "reference" / "power_fit.json"
GENZ = (0.3, 0.4, 0.2)
NETWORK = 0.1   # GenZ's weight; the data hold no multi-GPU run to fit it
START = (0.3, 0.4)   # static, compute; memory = 1 - network - static - compute, so a device busy in every
#                      respect draws its TDP, as in GenZ's split


def rows() -> list[dict]:
    with open(DATA) as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def utilisation(r: dict) -> tuple[float, float, float]:
    """(u_compute, u_memory, TDP) of one run: its prompts prefilled as one batch, then output_len - 1
    decode steps of the whole batch at the mean context, over the measured duration."""
    from infra_bench.planner import llm_model
    from infra_bench.planner.iteration import work
    from infra_bench.planner.profiles import load_hardware

    hw = load_hardware()[r["hardware"]]
    t = llm_model.replica(r["model"], hw, r["precision"], 1).terms
    b, i, o, seconds = int(r["batch"]), int(r["input_len"]), int(r["output_len"]), float(r["latency_s"])
    c_pf, m_pf = work(t, 0.0, i, b * i, i / 2, b)
    c_dec, m_dec = work(t, b, i + o / 2, 0.0, i / 2, 0.0)
    return (float(c_pf + (o - 1) * c_dec) / seconds, float(m_pf + (o - 1) * m_dec) / (seconds * t.bw), hw.tdp_w)


def predict(weights, uc: np.ndarray, um: np.ndarray) -> np.ndarray:
    s, c, m = weights
    return s + c * np.minimum(uc, 1.0) + m * np.minimum(um, 1.0)


def full(static_compute) -> tuple[float, float, float]:
    s, c = (float(x) for x in static_compute)
    return s, c, 1.0 - NETWORK - s - c


def fit(uc: np.ndarray, um: np.ndarray, frac: np.ndarray) -> tuple[float, float, float]:
    """(static, compute, memory) minimising the log error of P / TDP (scipy least squares), each weight at
    least 0 and the three summing to 1 - network."""
    from scipy.optimize import least_squares

    def residuals(x):
        w = full(x)
        return np.append(np.log(predict(w, uc, um) / frac), 100 * min(w[2], 0.0))
    res = least_squares(residuals, START, bounds=((0.0, 0.0), (1.0 - NETWORK, 1.0 - NETWORK)))
    return full(res.x)


def held_out(table: dict, key: str) -> np.ndarray:
    """log(measured / predicted) of each row, predicted by the weights fitted without its group."""
    out = np.empty(len(table["frac"]))
    for g in sorted(set(table[key])):
        test = table[key] == g
        w = fit(table["uc"][~test], table["um"][~test], table["frac"][~test])
        out[test] = np.log(table["frac"][test] / predict(w, table["uc"][test], table["um"][test]))
    return out


def stats(log_ratio: np.ndarray) -> dict:
    err = np.expm1(-log_ratio)  # predicted / measured - 1
    return {"n": len(err), "median_abs": float(np.median(np.abs(err))), "bias": float(np.median(err)),
            "q10": float(np.quantile(log_ratio, 0.1)), "q90": float(np.quantile(log_ratio, 0.9))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the H100 rows only, fitted and held out by engine (seconds)")
    ap.add_argument("--write", action="store_true", help=f"store the weights and interval in {OUT.name}")
    args = ap.parse_args()
    from infra_bench.report.table import render

    t0 = time.perf_counter()
    data = [r for r in rows() if not args.quick or r["hardware"] == "nv_h100_sxm"]
    u = np.array([utilisation(r) for r in data])
    table = {"uc": u[:, 0], "um": u[:, 1], "frac": np.array([float(r["avg_power_w"]) for r in data]) / u[:, 2],
             "hardware": np.array([r["hardware"] for r in data]), "engine": np.array([r["engine"] for r in data])}
    weights = fit(table["uc"], table["um"], table["frac"])
    print(f"fitted on {len(data)} runs: P / TDP = {weights[0]:.3f} + {weights[1]:.3f} u_compute + {weights[2]:.3f} "
          f"u_memory + {NETWORK} u_network (network: GenZ's)")
    lines = [["model", "rows", "median |error|", "bias", "q10", "q90"]]
    results = {"genz, in sample": np.log(table["frac"] / predict(GENZ, table["uc"], table["um"])),
               "fit, in sample": np.log(table["frac"] / predict(weights, table["uc"], table["um"]))}
    for key in ("hardware", "engine") if not args.quick else ("engine",):
        if len(set(table[key])) > 1:
            results[f"fit, leave one {'GPU' if key == 'hardware' else key} out"] = held_out(table, key)
    summary = {k: stats(v) for k, v in results.items()}
    for k, s in summary.items():
        lines.append([k, str(s["n"]), f"{s['median_abs']:.1%}", f"{s['bias']:+.1%}", f"{s['q10']:+.2f}", f"{s['q90']:+.2f}"])
    print(render(lines))
    print(f"\nerror = predicted / measured - 1; q10/q90 of log(measured / predicted); {DATA.name}; "
          f"{time.perf_counter() - t0:.1f} s; {date.today()}")
    if args.write:
        if args.quick:
            raise SystemExit("--write needs the full fit: run without --quick")
        held = summary["fit, leave one GPU out"]
        OUT.write_text(json.dumps({
            "weights": {"static": round(float(weights[0]), 4), "compute": round(float(weights[1]), 4),
                        "memory": round(max(float(weights[2]), 0.0), 4), "network": NETWORK},
            "interval_log_quantiles": [round(held["q10"], 4), round(held["q90"], 4)],
            "held_out": {k: {m: round(v, 4) if isinstance(v, float) else v for m, v in s.items()}
                         for k, s in summary.items()},
            "source": f"benchmarks/power_fit.py on {DATA.name} (Argonne LLM-Inference-Bench, arXiv 2411.00136), "
                      f"{date.today()}"}, indent=1) + "\n")
        print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
