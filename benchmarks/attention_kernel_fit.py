"""The prefill-attention ceiling the planner uses, fitted to measured FlashAttention-class kernel timings.

NVIDIA's AIConfigurator ships context-attention timings measured on each part under each engine
(`context_attention_perf.parquet`: batch, sequence length, heads, dtypes, latency). As a share of the part's dense
16-bit peak, with causal FLOPs (4 x batch x heads x s^2 / 2 x head_dim), their median per sequence length is shipped
in workloads/reference/attention_kernels.csv (H100, H200, A100 and B200 under vLLM, SGLang and TensorRT-LLM; 8 or
more query heads, head_dim 128, sequences of 256 tokens or more). This script fits `E x s / (s + s_half)` to those
medians, once for a 16-bit KV cache and once for an 8-bit one, and prints them beside the constants
planner/iteration.py uses (PREFILL_ATTENTION).

Why: the serving sample cannot tell the prefill-attention efficiency apart (docs/planner.md, "Prefill attention at
what kernels reach"), and the fit had put it at 0.88 of the 16-bit peak, above every kernel measured here
(0.52-0.77 at 16,384 tokens).

--from-aiconfigurator DIR re-cuts the CSV from a checkout's aic-core/src/aiconfigurator_core/systems/data (needs
pandas with pyarrow). --quick fits the shipped CSV's H100 tables only, to check the script runs.

Run: python benchmarks/attention_kernel_fit.py [--quick] [--from-aiconfigurator DIR]
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import curve_fit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CSV = ROOT / "workloads" / "reference" / "attention_kernels.csv"
# (our profile, AIConfigurator's system folder, engine folder, version): the tables cut into the CSV
TABLES = [("nv_h100_sxm", "h100_sxm", "vllm", "0.14.0"), ("nv_h100_sxm", "h100_sxm", "sglang", "0.5.9"),
          ("nv_h100_sxm", "h100_sxm", "trtllm", "1.2.0rc5"), ("nv_h200_sxm", "h200_sxm", "vllm", "0.14.0"),
          ("nv_a100_80g_sxm", "a100_sxm", "vllm", "0.14.0"), ("nv_b200", "b200_sxm", "vllm", "0.19.0"),
          ("nv_b200", "b200_sxm", "sglang", "0.5.9")]
FIELDS = ["hardware", "engine", "version", "attn_dtype", "kv_cache_dtype", "isl", "timings", "median_efficiency",
          "source"]


def cut(data: Path) -> list[dict]:
    """Median efficiency per table, dtype pair and sequence length, from a checkout's perf databases."""
    import pandas as pd

    from infra_bench.planner.iteration import peak_tflops
    from infra_bench.planner.profiles import load_hardware

    hw = load_hardware()
    rows = []
    for part, system, engine, version in TABLES:
        rel = f"{system}/attention/{engine}/{version}/context_attention_perf.parquet"
        d = pd.read_parquet(data / rel)
        d = d[(d.num_heads >= 8) & (d.isl >= 256) & (d.head_dim == 128)]
        flops = 4.0 * d.batch_size * d.num_heads * d.isl.astype(float) ** 2 / 2 * d.head_dim
        d = d.assign(eff=flops / (d.latency * 1e-3) / (peak_tflops(hw[part], "bf16") * 1e12))
        for (a, kv, isl), g in d.groupby(["attn_dtype", "kv_cache_dtype", "isl"]):
            rows.append({"hardware": part, "engine": engine, "version": version, "attn_dtype": a,
                         "kv_cache_dtype": kv, "isl": int(isl), "timings": len(g),
                         "median_efficiency": round(float(g.eff.median()), 4),
                         "source": f"aic-core/src/aiconfigurator_core/systems/data/{rel}"})
    return rows


def read() -> list[dict]:
    with CSV.open() as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def fit(rows: list[dict]) -> tuple[float, float]:
    """(E, s_half) of E x s / (s + s_half) through the median over tables at each sequence length."""
    isl = np.array([float(r["isl"]) for r in rows])
    eff = np.array([float(r["median_efficiency"]) for r in rows])
    xs = np.unique(isl)
    ys = np.array([np.median(eff[isl == x]) for x in xs])
    (top, half), _ = curve_fit(lambda s, e, h: e * s / (s + h), xs, ys, p0=(0.6, 1000.0))
    return float(top), float(half)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the shipped CSV's H100 tables only: checks the script")
    ap.add_argument("--from-aiconfigurator", type=Path, metavar="DIR",
                    help="re-cut workloads/reference/attention_kernels.csv from this systems/data folder")
    a = ap.parse_args()
    if a.from_aiconfigurator:
        rows = cut(a.from_aiconfigurator)
        header = CSV.read_text().splitlines()[0] if CSV.exists() else "#"
        with CSV.open("w", newline="") as f:
            f.write(header + "\n")
            w = csv.DictWriter(f, FIELDS)
            w.writeheader()
            w.writerows(rows)
        print(f"wrote {len(rows)} rows to {CSV}")
    from infra_bench.planner.iteration import PREFILL_ATTENTION

    rows = [r for r in read() if not a.quick or r["hardware"] == "nv_h100_sxm"]
    print(f"{'KV cache':<9} {'tables':>6} {'E':>6} {'s_half':>7}   in use   at 1,024 / 8,192 / 32,768 tokens")
    for name, kv in (("16-bit", ("bfloat16",)), ("8-bit", ("fp8",))):
        sel = [r for r in rows if r["kv_cache_dtype"] in kv]
        top, half = fit(sel)
        used = PREFILL_ATTENTION[name]
        at = " / ".join(f"{used[0] * s / (s + used[1]):.2f}" for s in (1024, 8192, 32768))
        print(f"{name:<9} {len({(r['hardware'], r['engine'], r['attn_dtype']) for r in sel}):>6} {top:>6.2f} "
              f"{half:>7.0f}   {used[0]:.2f}, {used[1]:.0f}   {at}")


if __name__ == "__main__":
    main()
