"""The attention ceilings the planner uses, fitted to measured kernel timings: prefill (FlashAttention-class) and MLA decode.

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

MLA decode: AIConfigurator's `generation_mla_perf.parquet` tables time the absorbed-MLA decode kernel (DeepSeek's
shape: 512 latent + 64 rope dims) by batch, context, query heads per device and KV dtype. At 128 heads per device (the
whole model on one rank, as attention data-parallelism runs it) the kernel is compute-bound; its median share of the
16-bit peak (FLOPs 2 x heads x (2 x 512 + 64) per context token), over batches of 64 or more at 1,000-16,500 tokens of
context, per table, is shipped in workloads/reference/mla_decode_kernels.csv (the newest version of each part and
engine). The median over those tables, per KV width, is the decode ceiling planner/iteration.py uses
(DECODE_ATTENTION); the fit had put decode attention at 0.85 of the peak (docs/planner.md, "MLA decode at what kernels
reach").

--from-aiconfigurator DIR re-cuts both CSVs from a checkout's aic-core/src/aiconfigurator_core/systems/data (needs
pandas with pyarrow). --quick fits the shipped CSV's H100 tables only, to check the script runs.

Run: python benchmarks/attention_kernel_fit.py [--quick] [--from-aiconfigurator DIR]
"""
from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import curve_fit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CSV = ROOT / "workloads" / "reference" / "attention_kernels.csv"
DECODE_CSV = ROOT / "workloads" / "reference" / "mla_decode_kernels.csv"
# (our profile, AIConfigurator's system folder, engine folder, version): the tables cut into the CSV
TABLES = [("nv_h100_sxm", "h100_sxm", "vllm", "0.14.0"), ("nv_h100_sxm", "h100_sxm", "sglang", "0.5.9"),
          ("nv_h100_sxm", "h100_sxm", "trtllm", "1.2.0rc5"), ("nv_h200_sxm", "h200_sxm", "vllm", "0.14.0"),
          ("nv_a100_80g_sxm", "a100_sxm", "vllm", "0.14.0"), ("nv_b200", "b200_sxm", "vllm", "0.19.0"),
          ("nv_b200", "b200_sxm", "sglang", "0.5.9")]
FIELDS = ["hardware", "engine", "version", "attn_dtype", "kv_cache_dtype", "isl", "timings", "median_efficiency",
          "source"]
# AIConfigurator's system folders whose MLA decode tables are cut, with our profiles
MLA_SYSTEMS = {"h100_sxm": "nv_h100_sxm", "h200_sxm": "nv_h200_sxm", "b200_sxm": "nv_b200", "b300_sxm": "nv_b300",
               "gb200": "nv_gb200_gpu", "a100_sxm": "nv_a100_80g_sxm"}
MLA_FLOPS_PER_HEAD_CTX = 2 * (2 * 512 + 64)  # scores over latent + rope dims, values over the latent
DECODE_FIELDS = ["hardware", "engine", "version", "kv_cache_dtype", "timings", "median_efficiency", "source"]


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


def _version_key(version: str) -> tuple:
    """Sorts engine versions numerically part by part ('0.5.10' after '0.5.9', '1.3.0rc20' after '1.3.0rc5')."""
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in re.findall(r"\d+|[a-z]+", version))


def cut_decode(data: Path) -> list[dict]:
    """Median share of the 16-bit peak of the MLA decode kernel at 128 heads per device, per table (the newest version
    of each part and engine) and KV dtype, from a checkout's perf databases."""
    import pandas as pd

    from infra_bench.planner.iteration import peak_tflops
    from infra_bench.planner.profiles import load_hardware

    hw = load_hardware()
    newest: dict[tuple[str, str], Path] = {}
    for f in sorted(data.glob("*/mla/*/*/generation_mla_perf.parquet")):
        system, engine, version = f.parts[-5], f.parts[-3], f.parts[-2]
        key = (system, engine)
        if system in MLA_SYSTEMS and (key not in newest or _version_key(version) > _version_key(newest[key].parts[-2])):
            newest[key] = f
    rows = []
    for (system, engine), f in sorted(newest.items()):
        part = MLA_SYSTEMS[system]
        d = pd.read_parquet(f)
        ctx = (d.step + d.isl).astype(float)
        d = d.assign(ctx=ctx, eff=d.batch_size * d.num_heads * ctx * MLA_FLOPS_PER_HEAD_CTX / (d.latency * 1e-3)
                     / (peak_tflops(hw[part], "bf16") * 1e12))
        d = d[(d.num_heads == 128) & (d.batch_size >= 64) & (d.ctx >= 1000) & (d.ctx <= 16500)]
        for kv, g in d.groupby("kv_cache_dtype"):
            rows.append({"hardware": part, "engine": engine, "version": f.parts[-2], "kv_cache_dtype": kv,
                         "timings": len(g), "median_efficiency": round(float(g.eff.median()), 4),
                         "source": f"aic-core/src/aiconfigurator_core/systems/data/{f.relative_to(data)}"})
    return rows


def read(path: Path = CSV) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def _write(path: Path, fields: list[str], rows: list[dict]) -> None:
    """Rewrites a cut CSV, keeping its comment line."""
    header = path.read_text().splitlines()[0] if path.exists() else "#"
    with path.open("w", newline="") as f:
        f.write(header + "\n")
        w = csv.DictWriter(f, fields)
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {len(rows)} rows to {path}")


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
                    help="re-cut workloads/reference/attention_kernels.csv and mla_decode_kernels.csv "
                         "from this systems/data folder")
    a = ap.parse_args()
    if a.from_aiconfigurator:
        _write(CSV, FIELDS, cut(a.from_aiconfigurator))
        _write(DECODE_CSV, DECODE_FIELDS, cut_decode(a.from_aiconfigurator))
    from infra_bench.planner.iteration import DECODE_ATTENTION, PREFILL_ATTENTION

    rows = [r for r in read() if not a.quick or r["hardware"] == "nv_h100_sxm"]
    print(f"{'KV cache':<9} {'tables':>6} {'E':>6} {'s_half':>7}   in use   at 1,024 / 8,192 / 32,768 tokens")
    for name, kv in (("16-bit", ("bfloat16",)), ("8-bit", ("fp8",))):
        sel = [r for r in rows if r["kv_cache_dtype"] in kv]
        top, half = fit(sel)
        used = PREFILL_ATTENTION[name]
        at = " / ".join(f"{used[0] * s / (s + used[1]):.2f}" for s in (1024, 8192, 32768))
        print(f"{name:<9} {len({(r['hardware'], r['engine'], r['attn_dtype']) for r in sel}):>6} {top:>6.2f} "
              f"{half:>7.0f}   {used[0]:.2f}, {used[1]:.0f}   {at}")
    decode = [r for r in read(DECODE_CSV) if not a.quick or r["hardware"] == "nv_h100_sxm"]
    print(f"\nMLA decode at 128 heads per device\n{'KV cache':<9} {'tables':>6} {'median':>6}   in use   range")
    for name, kv in (("16-bit", ("bfloat16",)), ("8-bit", ("fp8",))):
        eff = [float(r["median_efficiency"]) for r in decode if r["kv_cache_dtype"] in kv]
        print(f"{name:<9} {len(eff):>6} {np.median(eff):>6.2f}   {DECODE_ATTENTION[name]:.2f}     "
              f"{min(eff):.2f}-{max(eff):.2f}")


if __name__ == "__main__":
    main()
