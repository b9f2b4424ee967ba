"""The expert-GEMM ceiling the planner uses, fitted to measured fused-MoE kernel timings.

NVIDIA's AIConfigurator ships fused-MoE timings measured on each part under each engine (`moe_perf.parquet`: tokens,
hidden and intermediate size, experts, top-k, MoE TP and EP, routing distribution, kernel, latency). Only whole experts
on one device (MoE TP 1, EP 1) and balanced routing are cut: with EP the measured kernel still routes every token of
the batch, so its time per local expert grows with EP and is not a GEMM's. For each shape the fastest kernel the table
holds is taken (an engine picks its MoE backend), and its share of the part's dense peak at the weights' compute type
(FLOPs 6 x hidden x intermediate x tokens x top-k: gate, up and down projections) is binned by the tokens each expert
sees (tokens x top-k / experts, powers of two). The median per table (the newest version of each part, engine and
dtype) and bin is shipped in workloads/reference/moe_kernels.csv (H100, H200, B200, B300, GB200 and GB300 under vLLM,
SGLang and TensorRT-LLM). From 1,024 tokens per expert the kernels are compute-bound (below, a share of the peak
computed this way mostly measures the weights' reads, which the planner prices with the bandwidth). This script takes
each table's median there and prints the median over tables per width of the GEMMs' inputs (bf16; fp8 and fp8-block;
nvfp4) beside the ceilings planner/iteration.py puts on the fitted expert efficiency (EXPERT_GEMM).

Why: the serving sample cannot tell the expert GEMMs from the rest of a MoE model's time (docs/planner.md, "Expert
GEMMs at what kernels reach"); left free, the fit put Blackwell's fp4 experts at 0.45 of the fp4 peak, and at 0.71 in
a trial, where the median kernel here reaches 0.32.

--from-aiconfigurator DIR re-cuts the CSV from a checkout's aic-core/src/aiconfigurator_core/systems/data (needs
pandas with pyarrow). --quick fits the shipped CSV's H100 tables only, to check the script runs.

Run: python benchmarks/moe_kernel_fit.py [--quick] [--from-aiconfigurator DIR]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.attention_kernel_fit import _version_key, _write, read

CSV = ROOT / "workloads" / "reference" / "moe_kernels.csv"
# AIConfigurator's system folders whose MoE tables are cut, with our profiles
SYSTEMS = {"h100_sxm": "nv_h100_sxm", "h200_sxm": "nv_h200_sxm", "b200_sxm": "nv_b200", "b300_sxm": "nv_b300",
           "gb200": "nv_gb200_gpu", "gb300": "nv_gb300_gpu"}
# AIConfigurator's MoE dtypes: (the peak they run at, the width of the GEMMs' inputs)
DTYPES = {"bfloat16": ("bf16", "16-bit"), "fp8": ("fp8", "8-bit"), "fp8_block": ("fp8", "8-bit"),
          "nvfp4": ("fp4", "4-bit")}
WIDTHS = {"16-bit": "bf16", "8-bit": "fp8", "4-bit": "fp4"}  # the precision whose ceiling each width sets
COMPUTE_BOUND = 1024  # tokens per expert from which a kernel's time is its FLOPs
FIELDS = ["hardware", "engine", "version", "moe_dtype", "width", "tokens_per_expert", "shapes", "median_efficiency",
          "source"]


def cut(data: Path) -> list[dict]:
    """Median efficiency of the fastest kernel per table, dtype and tokens-per-expert bin."""
    import pandas as pd

    from infra_bench.planner.iteration import peak_tflops
    from infra_bench.planner.profiles import load_hardware

    hw = load_hardware()
    frames = []
    for f in sorted(data.glob("*/moe/*/*/moe_perf.parquet")):
        system, engine, version = f.parts[-5], f.parts[-3], f.parts[-2]
        if system not in SYSTEMS:
            continue
        d = pd.read_parquet(f)
        d = d[(d.distribution == "balanced") & (d.moe_tp_size == 1) & (d.moe_ep_size == 1) & d.moe_dtype.isin(DTYPES)]
        frames.append(d.assign(system=system, engine=engine, version=version,
                               source=f"aic-core/src/aiconfigurator_core/systems/data/{f.relative_to(data)}"))
    d = pd.concat(frames)
    newest = d.groupby(["system", "engine", "moe_dtype"]).version.transform(lambda v: max(v, key=_version_key))
    d = d[d.version == newest]
    peak = [peak_tflops(hw[SYSTEMS[s]], DTYPES[t][0]) * 1e12 for s, t in zip(d.system, d.moe_dtype)]
    flops = 6.0 * d.hidden_size * d.inter_size * d.num_tokens * d.topk
    d = d.assign(eff=flops / (d.latency * 1e-3) / peak, per_expert=d.num_tokens * d.topk / d.num_experts)
    shape = ["system", "engine", "version", "moe_dtype", "source", "hidden_size", "inter_size", "topk", "num_experts",
             "num_tokens"]
    best = d.groupby(shape, as_index=False).agg(eff=("eff", "max"), per_expert=("per_expert", "first"))
    best = best.assign(bin=(2.0 ** np.round(np.log2(best.per_expert.clip(lower=1)))).astype(int))
    rows = []
    for (system, engine, version, dtype, source, n), g in best.groupby(
            ["system", "engine", "version", "moe_dtype", "source", "bin"]):
        rows.append({"hardware": SYSTEMS[system], "engine": engine, "version": version, "moe_dtype": dtype,
                     "width": DTYPES[dtype][1], "tokens_per_expert": int(n), "shapes": len(g),
                     "median_efficiency": round(float(g.eff.median()), 4), "source": source})
    return rows


def ceiling(rows: list[dict]) -> tuple[float, list[float]]:
    """The median over tables of each table's median share of the peak at COMPUTE_BOUND tokens per expert or more,
    and the tables' medians."""
    per: dict[tuple, list[float]] = {}
    for r in rows:
        if int(r["tokens_per_expert"]) >= COMPUTE_BOUND:
            per.setdefault((r["hardware"], r["engine"], r["moe_dtype"]), []).append(float(r["median_efficiency"]))
    tables = [float(np.median(v)) for v in per.values()]
    return float(np.median(tables)), tables


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the shipped CSV's H100 tables only: checks the script")
    ap.add_argument("--from-aiconfigurator", type=Path, metavar="DIR",
                    help="re-cut workloads/reference/moe_kernels.csv from this systems/data folder")
    a = ap.parse_args()
    if a.from_aiconfigurator:
        _write(CSV, FIELDS, cut(a.from_aiconfigurator))
    from infra_bench.planner.iteration import EXPERT_GEMM

    rows = [r for r in read(CSV) if not a.quick or r["hardware"] == "nv_h100_sxm"]
    print(f"{'width':<7} {'tables':>6} {'median':>6}   {'range':<9}   in use")
    for width, precision in WIDTHS.items():
        sel = [r for r in rows if r["width"] == width]
        if not sel:
            continue
        top, tables = ceiling(sel)
        print(f"{width:<7} {len(tables):>6} {top:>6.2f}   {min(tables):.2f}-{max(tables):.2f}   "
              f"{EXPERT_GEMM[precision]:.2f} ({precision})")


if __name__ == "__main__":
    main()
