"""Acceptance check: the planner against published figures it never saw and is never tuned to.

LLM: offline maximum throughput against NVIDIA's TensorRT-LLM perf-overview tables, and against MLPerf
Inference Offline results (MLCommons v4.1 and v5.1, closed division: NVIDIA H100/H200/B200/GB200/GB300,
NVL72 racks included, under TensorRT-LLM, AMD MI300X/MI325X under vLLM; the planner picks its best layout
on the same parts, as a submission does), and MLPerf's Server results (Poisson arrivals under TTFT and TPOT p99 limits) against the
capacity `plan`'s SLO sizing gives the same parts. Energy: GPU joules per output token, GPU power,
throughput and inter-token latency against the ML.ENERGY Leaderboard v3.0 (vLLM on H100 and B200, bf16, 8
to 256 running sequences).
Diffusion: seconds per SDXL image against the diffusers fast-diffusion tutorial (A100, 30 steps, 1024 px), and
images or videos per second of seven text-to-image and text-to-video models on one H100 or B200, batch 1-32,
against the ML.ENERGY Leaderboard v3.0.

The tables (workloads/reference/acceptance/trtllm_perf_overview.csv, with their source) give total
output tokens/s of `trtllm-bench throughput` (every request queued at once, fixed ISL/OSL, PyTorch
backend, ModelOpt FP8/FP4 checkpoints) per model, GPU, TP and ISL/OSL. Each row is predicted with
`predict --max-throughput --engine trt-llm` at the same layout; the MoE models ran with attention
data parallelism, so their "TP8" is 8 attention-DP ranks with 8-way expert parallelism here.
Llama-3.3-70B has Llama-3.1-70B's architecture and is predicted as that.

Printed: each row's predicted and published figure, then per model and overall the median absolute
error, the bias (median signed error: positive means the planner promises more than was measured),
the 90th percentile, and how often the stated 80% interval holds the published figure.

The diffusion rows (workloads/reference/acceptance/diffusers_fast_diffusion.csv) are one pipeline
made faster step by step; `predict` models diffusers' default eager pipeline (bf16 with SDPA), the
row marked comparable, and the others show how far kernels and compilation move the same chip.

Run: python benchmarks/acceptance_check.py [--quick]
"""
from __future__ import annotations

import argparse
import csv
import time
from datetime import date
from pathlib import Path

import numpy as np

FOLDER = Path(__file__).resolve().parent.parent / "workloads" / "reference" / "acceptance"
DATA = FOLDER / "trtllm_perf_overview.csv"
DIFFUSION = FOLDER / "diffusers_fast_diffusion.csv"
MLPERF = FOLDER / "mlperf_inference_offline.csv"
MLPERF_SERVER = FOLDER / "mlperf_inference_server.csv"
AT_LIMIT = 0.8  # a Server run whose TTFT or TPOT p99 reached this share of its limit was pushed near its capacity
MLENERGY = FOLDER / "mlenergy_v3.csv"
MLENERGY_INPUT_LEN = 256        # the leaderboard publishes no prompt length: assumed, and varied below
MLENERGY_INPUT_SPREAD = (64, 1024)
MLENERGY_TOKEN_BUDGET = 8192    # max-num-batched-tokens in every v3 vLLM config the rows ran with
MLENERGY_MEDIA = FOLDER / "mlenergy_v3_media.csv"
IMAGE_GUIDANCE = 7.5  # `predict`'s default for an image: classifier-free guidance on (FLUX.1, distilled, runs one pass)


def read_rows(path: Path) -> list[dict]:
    """The rows of one acceptance CSV (lines starting with # are its header notes)."""
    with open(path) as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def first_per(rows: list[dict], *keys: str) -> list[dict]:
    """The first row of each distinct value of `keys`, in order: what --quick predicts."""
    first: dict[tuple, dict] = {}
    for r in rows:
        first.setdefault(tuple(r[k] for k in keys), r)
    return list(first.values())


def predict_rows(rows: list[dict]) -> list[dict]:
    from infra_bench.planner import llm_model
    from infra_bench.planner.fit import shipped
    from infra_bench.planner.profiles import load_hardware

    hw, fit, out = load_hardware(), shipped(), []
    for r in rows:
        rep = llm_model.replica(r["model"], hw[r["hardware"]], r["precision"], int(r["tp"]), 1, int(r["dp"]),
                                int(r["ep"]), "trt-llm")
        p = llm_model.predict(rep, fit, None, int(r["input_len"]), int(r["output_len"]), max_throughput=True)
        published = float(r["output_tokens_per_s"])
        lo, hi = p.intervals.get("output_tokens_per_s") or (None, None)
        out.append({**r, "predicted": p.output_tokens_per_s, "fits": p.fits,
                    "error": p.output_tokens_per_s / published - 1 if p.fits else None,
                    "inside": lo is not None and lo <= published <= hi})
    return out


def layouts(model: str, hardware, precision: str, engine: str, accelerators: int, attention_dp: bool):
    """(replica, how many fill the parts, its label) for each TP size `plan` considers that divides
    `accelerators` and builds, and with `attention_dp` for a MoE model also attention-DP ranks with experts
    over them."""
    from infra_bench.errors import UserError
    from infra_bench.planner import llm_model
    from infra_bench.planner.shapes import get_shape
    from infra_bench.planner.sizing import TP_OPTIONS

    moe = attention_dp and get_shape(model).moe
    for g in TP_OPTIONS:
        if accelerators % g:
            continue
        for tp, dp in {(g, 1), (1, g)} if moe and g > 1 else {(g, 1)}:
            try:
                rep = llm_model.replica(model, hardware, precision, tp, 1, dp, dp, engine)
            except UserError:
                continue
            yield rep, accelerators // g, f"{accelerators // g} x TP{tp}" + (f" DP{dp} EP{dp}" if dp > 1 else "")


def best_layout(model: str, hardware, precision: str, engine: str, accelerators: int, isl: int, osl: int):
    """(total output tokens/s, its 80% interval, the layout) of the best way the planner finds to run
    `model` on `accelerators` parts: replicas at each TP size `plan` considers (or, for MoE models,
    attention-DP with expert parallelism) that divides the count, each at its offline maximum. An MLPerf submission
    picks its own layout and tunes it, so the planner gets to pick too; None if nothing fits."""
    from infra_bench.planner import llm_model
    from infra_bench.planner.fit import shipped

    best = None
    for rep, replicas, label in layouts(model, hardware, precision, engine, accelerators, attention_dp=True):
        p = llm_model.predict(rep, shipped(), None, isl, osl, max_throughput=True)
        if not p.fits:
            continue
        lo, hi = p.intervals.get("output_tokens_per_s") or (None, None)
        total = p.output_tokens_per_s * replicas
        if best is None or total > best[0]:
            best = (total, (lo * replicas, hi * replicas) if lo else None, label)
    return best


def mlperf_rows(rows: list[dict]) -> list[dict]:
    """Each MLPerf Inference Offline result (all samples issued at once; output tokens/s of the whole
    system) against the planner's best layout on the same parts, at the dataset's mean lengths."""
    from infra_bench.planner.profiles import load_hardware

    hw, out = load_hardware(), []
    for r in rows:
        best = best_layout(r["model"], hw[r["hardware"]], r["precision"], r["engine"], int(r["accelerators"]),
                           int(r["input_len"]), int(r["output_len"]))
        published = float(r["output_tokens_per_s"])
        total, interval, layout = best or (None, None, "does not fit")
        out.append({**r, "predicted": total, "layout": layout, "fits": best is not None,
                    "error": total / published - 1 if best else None,
                    "inside": bool(interval) and interval[0] <= published <= interval[1]})
    return out


def slo_capacity(model: str, hardware, precision: str, engine: str, accelerators: int, isl: int, osl: int,
                 ttft_s: float, tpot_s: float):
    """(output tokens/s, layout, its 80% range) of the most the planner says `accelerators` parts serve under
    Poisson arrivals with TTFT p99 and TPOT p99 at most the limits: replicas at each TP size `plan` considers
    that divides the count, each at the highest rate `plan`'s SLO sizing finds (sizing.ServiceModel,
    queueing.approx_capacity), with the range plan gives it (sizing.capacity_spread); None if no layout meets
    the limits."""
    from infra_bench.planner.fit import shipped
    from infra_bench.planner.queueing import approx_capacity
    from infra_bench.planner.sizing import ServiceModel, capacity_spread

    best, fit = None, shipped()
    for rep, replicas, label in layouts(model, hardware, precision, engine, accelerators, attention_dp=False):
        eff, _ = fit.efficiency([rep.case])
        m = ServiceModel(rep, eff, isl, osl)
        if m.max_batch < 1:
            continue
        est = approx_capacity(m.prefill_s(), osl, m.step_s, m.max_batch, ttft_s, tpot_s, 99.0, m.request_s)
        if est is None:
            continue
        total = est.rate * osl * replicas
        if best is None or total > best[0]:
            tier = fit.tier(rep.case)
            latency = {k: fit.interval(tier, k, 1.0, rep.engine.name) for k in ("ttft", "tpot")}
            spread = capacity_spread(m, latency, est.rate, ttft_s, tpot_s, 99.0)
            best = (total, label, (total * spread[0], total * spread[1]))
    return best


def mlperf_server_rows(rows: list[dict]) -> list[dict]:
    """Each MLPerf Inference Server result (Poisson arrivals at the highest rate whose TTFT p99 and TPOT p99
    meet the benchmark's limits; output tokens/s of the whole system) against `slo_capacity` on the same
    parts at the same limits."""
    from infra_bench.planner.profiles import load_hardware

    hw, out = load_hardware(), []
    for r in rows:
        best = slo_capacity(r["model"], hw[r["hardware"]], r["precision"], r["engine"], int(r["accelerators"]),
                            int(r["input_len"]), int(r["output_len"]), float(r["ttft_limit_ms"]) / 1e3,
                            float(r["tpot_limit_ms"]) / 1e3)
        published = float(r["output_tokens_per_s"])
        total, layout, (lo, hi) = best or (None, "meets no limit", (None, None))
        out.append({**r, "predicted": total, "layout": layout, "fits": best is not None,
                    "error": total / published - 1 if best else None, "inside": best is not None and lo <= published <= hi,
                    "at_limit": max(float(r["ttft_p99_ms"]) / float(r["ttft_limit_ms"]),
                                    float(r["tpot_p99_ms"]) / float(r["tpot_limit_ms"])) >= AT_LIMIT})
    return out


def render_mlperf_server(quick: bool) -> str:
    """The MLPerf Server rows, predicted, as a table and a summary per benchmark, part and overall, and for the
    rows run close to a latency limit (the others ran below what their systems could take)."""
    from infra_bench.report.table import render

    rows = read_rows(MLPERF_SERVER)
    if quick:
        rows = first_per(rows, "benchmark")
    t0 = time.perf_counter()
    done = mlperf_server_rows(rows)
    table = [["round", "benchmark", "submitter", "GPU", "n", "prec", "published tok/s", "TTFT / TPOT p99, of limit",
              "predicted", "planner's layout", "error", "in 80%"]]
    for r in done:
        table.append([r["round"], r["benchmark"], r["submitter"], r["hardware"], r["accelerators"], r["precision"],
                      f"{float(r['output_tokens_per_s']):,.0f}",
                      (f"{float(r['ttft_p99_ms']) / float(r['ttft_limit_ms']):.0%} / "
                       f"{float(r['tpot_p99_ms']) / float(r['tpot_limit_ms']):.0%}"),
                      f"{r['predicted']:,.0f}" if r["fits"] else "-", r["layout"],
                      f"{r['error']:+.0%}" if r["error"] is not None else "-", "yes" if r["inside"] else "no"])
    stats = [["rows", "n", "median |error|", "bias", "p90 |error|", "mean |error|", "80% range holds"]]
    groups = [(v, [r for r in done if r[key] == v]) for key in ("benchmark", "hardware")
              for v in dict.fromkeys(r[key] for r in done)]
    near = [r for r in done if r["at_limit"]]
    for name, sub in groups + [(f"run at {AT_LIMIT:.0%} or more of a limit", near), ("all", done)]:
        stats.append(summary(name, sub))
    return (f"{render(table)}\n\n{render(stats)}\n\n{len(done)} results (MLCommons inference results "
            f"repositories; sources per row in {MLPERF_SERVER.name}); shipped fit; {time.perf_counter() - t0:.1f} s")


def mlenergy_rows(rows: list[dict], input_len: int = MLENERGY_INPUT_LEN) -> list[dict]:
    """Each ML.ENERGY configuration against `predict` at the same parts, layout and vLLM limits: the
    client sends every request at once and the server keeps `max_num_seqs` running, a closed loop of that
    many clients. Compared: GPU energy per output token (ML.ENERGY sums the GPUs' NVML energy, no host),
    the GPUs' summed power, output tokens/s, and TPOT against the median inter-token latency. Each error is
    predicted / published - 1."""
    from infra_bench.planner import llm_model
    from infra_bench.planner.fit import shipped
    from infra_bench.planner.profiles import load_hardware

    hw, fit, out = load_hardware(), shipped(), []
    for r in rows:
        seqs = int(r["max_num_seqs"])
        rep = llm_model.replica(r["model"], hw[r["hardware"]], "bf16", int(r["tp"]), 1, 1, int(r["ep"]), "vllm",
                                max_seqs=seqs, token_budget=MLENERGY_TOKEN_BUDGET)
        p = llm_model.predict(rep, fit, seqs, input_len, round(float(r["output_len"])))
        e = p.energy or {}
        published = {"j": float(r["j_per_output_token"]), "w": float(r["gpu_power_w"]),
                     "tok": float(r["output_tokens_per_s"]), "itl": float(r["median_itl_ms"]) / 1e3}
        predicted = {"j": e.get("j_per_token"), "w": e["avg_power_w"] * rep.devices if e else None,
                     "tok": p.output_tokens_per_s, "itl": p.tpot_s}
        lo, hi = e.get("interval") or (None, None)
        out.append({**r, "predicted": predicted, "fits": p.fits and bool(e),
                    "errors": {k: predicted[k] / published[k] - 1 if p.fits and predicted[k] else None for k in published},
                    "inside": lo is not None and lo <= published["j"] <= hi})
    return out


def error_stats(errors: list[float | None]) -> list[str]:
    """Median |error|, bias (median error), 90th percentile |error| and mean |error| of the errors given, as cells.
    The mean is there because a median can jump: MLPerf Offline's 50 errors cluster near 10% and near 40%, and one
    refit moved its median from 23% to 30% where the mean moved about 2 points (docs/planner.md)."""
    e = np.array([x for x in errors if x is not None])
    if not len(e):
        return ["-", "-", "-", "-"]
    return [f"{np.median(np.abs(e)):.0%}", f"{np.median(e):+.0%}", f"{np.quantile(np.abs(e), 0.9):.0%}",
            f"{np.mean(np.abs(e)):.1%}"]


def _spread(errors: list[float | None]) -> str:
    return " / ".join(error_stats(errors)) if any(x is not None for x in errors) else "-"


def render_mlenergy(quick: bool) -> str:
    """The ML.ENERGY rows, predicted, as a table; per metric the median |error|, bias and p90 by part, task and
    overall; and, because the prompt length is assumed, the same figures at the other prompt lengths."""
    from infra_bench.report.table import render

    rows = read_rows(MLENERGY)
    if quick:
        rows = first_per(rows, "model", "hardware")[:3]
    t0 = time.perf_counter()
    done = mlenergy_rows(rows)
    metrics = (("j", "J/token (GPUs)"), ("w", "GPU power"), ("tok", "output tok/s"), ("itl", "TPOT vs median ITL"))
    table = [["model", "GPU", "n", "task", "seqs", "OSL", "J/token published", "predicted", "error", "in interval",
              "GPU W published", "predicted", "tok/s error", "ITL error"]]
    for r in done:
        pr, pct = r["predicted"], {k: f"{v:+.0%}" if v is not None else "-" for k, v in r["errors"].items()}
        table.append([r["model"], r["hardware"], r["gpus"], r["task"], r["max_num_seqs"], f"{float(r['output_len']):.0f}",
                      f"{float(r['j_per_output_token']):.3f}", f"{pr['j']:.3f}" if r["fits"] else "-", pct["j"],
                      "yes" if r["inside"] else "no", f"{float(r['gpu_power_w']):,.0f}",
                      f"{pr['w']:,.0f}" if r["fits"] else "-", pct["tok"], pct["itl"]])
    stats = [["rows", "n"] + [f"{name}: median |error| / bias / p90 / mean |error|" for _, name in metrics]
             + ["J interval holds"]]
    groups = [(v, [r for r in done if r[key] == v]) for key in ("hardware", "task") for v in dict.fromkeys(r[key] for r in done)]
    for name, sub in groups + [("all", done)]:
        stats.append([name, str(len(sub))] + [_spread([r["errors"][k] for r in sub]) for k, _ in metrics]
                     + [f"{np.mean([r['inside'] for r in sub]):.0%}"])
    lines = [render(table), "", render(stats)]
    if not quick:
        spread = [["assumed prompt tokens", dict(metrics)["j"], dict(metrics)["tok"]]]
        for isl in sorted({*MLENERGY_INPUT_SPREAD, MLENERGY_INPUT_LEN}):
            other = done if isl == MLENERGY_INPUT_LEN else mlenergy_rows(rows, isl)
            spread.append([str(isl)] + [_spread([r["errors"][k] for r in other]) for k in ("j", "tok")])
        lines += ["", render(spread)]
    lines.append(f"\n{len(done)} configurations (ML.ENERGY Leaderboard v3.0; sources per row in {MLENERGY.name}); prompt "
                 f"length assumed {MLENERGY_INPUT_LEN} tokens (not published); shipped fit; {time.perf_counter() - t0:.1f} s")
    return "\n".join(lines)


def mlenergy_media_rows(rows: list[dict]) -> list[dict]:
    """Each ML.ENERGY text-to-image or text-to-video configuration on one GPU against `predict --batch B` at the
    same size, frames and steps, bf16, with `predict`'s default guidance (images: classifier-free guidance on,
    as SD3.5 and HunyuanDiT run by default; videos: the model's own). Compared: images (videos) per second,
    error = predicted / published - 1 (positive: the planner promises more), and whether the prediction's
    interval holds the published figure."""
    from infra_bench.kinds.video import planner as video
    from infra_bench.planner import media_model
    from infra_bench.planner.profiles import load_hardware

    hw, out = load_hardware(), []
    for r in rows:
        part, batch, steps = hw[r["hardware"]], int(r["batch"]), int(r["steps"])
        w, h = int(r["width"]), int(r["height"])
        is_video = r["task"] == "text-to-video"
        if is_video:
            frames = int(r["frames"])
            guidance = video.settings(r["model"], f"{w}x{h}", frames, steps, None)[4]
            p = video.predict(r["model"], part, "bf16", w, h, frames, steps, guidance)
        else:
            p = media_model.predict_diffusion(r["model"], part, "bf16", w, steps, IMAGE_GUIDANCE)
        if batch > 1:
            p = media_model.at_batch(p, r["model"], w, h, steps, batch, video=is_video)
        published = float(r["units_per_s"])
        rate = p.units_per_s_per_device if p.fits else None
        # the interval is on the latency, pred x (1 -+ interval); as a rate it is its reciprocal
        lo, hi = (rate / (1 + p.interval), rate / (1 - p.interval)) if rate and p.interval < 1 else (None, None)
        out.append({**r, "predicted": rate, "fits": p.fits, "error": rate / published - 1 if rate else None,
                    "inside": lo is not None and lo <= published <= hi,
                    "power_of_tdp": float(r["gpu_power_w"]) / part.tdp_w if part.tdp_w else None})
    return out


def render_mlenergy_media(quick: bool) -> str:
    """The ML.ENERGY diffusion rows, predicted, as a table and a summary per task, model, part and batch."""
    from infra_bench.report.table import render

    rows = read_rows(MLENERGY_MEDIA)
    if quick:
        rows = first_per(rows, "task")
    t0 = time.perf_counter()
    done = mlenergy_media_rows(rows)
    table = [["model", "GPU", "batch", "size", "steps", "published /s", "predicted", "error", "in interval",
              "GPU W of TDP"]]
    for r in done:
        size = f"{r['width']}x{r['height']}" + (f"x{r['frames']}" if r["frames"] else "")
        table.append([r["model"], r["hardware"], r["batch"], size, r["steps"], f"{float(r['units_per_s']):.3g}",
                      f"{r['predicted']:.3g}" if r["fits"] else "does not fit",
                      f"{r['error']:+.0%}" if r["error"] is not None else "-", "yes" if r["inside"] else "no",
                      f"{r['power_of_tdp']:.0%}" if r["power_of_tdp"] else "-"])
    stats = [["rows", "n", "median |error|", "bias", "p90 |error|", "mean |error|", "interval holds"]]
    groups = [(v, [r for r in done if r[key] == v]) for key in ("task", "model", "hardware")
              for v in dict.fromkeys(r[key] for r in done)]
    groups += [("batch 1", [r for r in done if r["batch"] == "1"]), ("batch 2-32", [r for r in done if r["batch"] != "1"])]
    for name, sub in groups + [("all", done)]:
        stats.append(summary(name, sub))
    return (f"{render(table)}\n\n{render(stats)}\n\n{len(done)} configurations (ML.ENERGY Leaderboard v3.0; sources per "
            f"row in {MLENERGY_MEDIA.name}); priors (no diffusion fit ships); {time.perf_counter() - t0:.1f} s")


def diffusion_rows() -> list[list[str]]:
    """Each published SDXL setup against `predict` at its precision, resolution, steps and guidance."""
    from infra_bench.planner import media_model
    from infra_bench.planner.profiles import load_hardware

    hw = load_hardware()
    rows = read_rows(DIFFUSION)
    table = [["published setup", "GPU", "prec", "s/image published", "predicted (80% interval)", "error",
              "comparable"]]
    for r in rows:
        p = media_model.predict_diffusion(r["model"], hw[r["hardware"]], r["precision"], int(r["resolution"]),
                                          int(r["steps"]), float(r["guidance_scale"]))
        published = float(r["seconds_per_image"])
        lo, hi = p.latency_s * (1 - p.interval), p.latency_s * (1 + p.interval)
        table.append([r["published_setup"], r["hardware"], r["precision"], f"{published:.2f}",
                      f"{p.latency_s:.2f} ({lo:.2f}-{hi:.2f})", f"{p.latency_s / published - 1:+.0%}",
                      r["comparable"]])
    return table


def summary(name: str, rows: list[dict]) -> list[str]:
    judged = [r for r in rows if r["error"] is not None]
    if not judged:
        return [name, "0", "-", "-", "-", "-", "-"]
    return [name, str(len(judged)), *error_stats([r["error"] for r in judged]),
            f"{np.mean([r['inside'] for r in judged]):.0%}"]


def render_mlperf(quick: bool) -> str:
    """The MLPerf rows, predicted, as a table and a summary per benchmark, part and overall."""
    from infra_bench.report.table import render

    rows = read_rows(MLPERF)
    if quick:
        rows = first_per(rows, "benchmark")
    t0 = time.perf_counter()
    done = mlperf_rows(rows)
    table = [["round", "benchmark", "submitter", "GPU", "n", "prec", "engine", "published tok/s", "predicted",
              "planner's layout", "error", "in 80%"]]
    for r in done:
        table.append([r["round"], r["benchmark"], r["submitter"], r["hardware"], r["accelerators"], r["precision"],
                      r["engine"], f"{float(r['output_tokens_per_s']):,.0f}",
                      f"{r['predicted']:,.0f}" if r["fits"] else "-", r["layout"],
                      f"{r['error']:+.0%}" if r["error"] is not None else "-", "yes" if r["inside"] else "no"])
    stats = [["rows", "n", "median |error|", "bias", "p90 |error|", "mean |error|", "80% interval holds"]]
    for key in ("benchmark", "hardware"):
        for value in dict.fromkeys(r[key] for r in done):
            stats.append(summary(value, [r for r in done if r[key] == value]))
    stats.append(summary("all", done))
    return (f"{render(table)}\n\n{render(stats)}\n\n{len(done)} results (MLCommons inference results "
            f"repositories; sources per row in {MLPERF.name}); shipped fit; {time.perf_counter() - t0:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the first row of each model or benchmark only (seconds)")
    args = ap.parse_args()
    from infra_bench.report.table import render

    rows = read_rows(DATA)
    if args.quick:
        rows = first_per(rows, "model")
    t0 = time.perf_counter()
    done = predict_rows(rows)
    table = [["model", "GPU", "prec", "TP/DP/EP", "ISL/OSL", "published tok/s", "predicted", "error", "in 80%"]]
    for r in done:
        table.append([r["model"], r["hardware"], r["precision"], f"{r['tp']}/{r['dp']}/{r['ep']}",
                      f"{r['input_len']}/{r['output_len']}", f"{float(r['output_tokens_per_s']):,.0f}",
                      f"{r['predicted']:,.0f}" if r["fits"] else "does not fit",
                      f"{r['error']:+.0%}" if r["error"] is not None else "-", "yes" if r["inside"] else "no"])
    print(render(table))
    print()
    stats = [["rows", "n", "median |error|", "bias", "p90 |error|", "mean |error|", "80% interval holds"]]
    for model in dict.fromkeys(r["model"] for r in done):
        stats.append(summary(model, [r for r in done if r["model"] == model]))
    for gpu in dict.fromkeys(r["hardware"] for r in done):
        stats.append(summary(gpu, [r for r in done if r["hardware"] == gpu]))
    stats.append(summary("all", done))
    print(render(stats))
    print(f"\n{len(done)} published rows ({rows[0]['source'] if rows else '-'}); shipped fit; "
          f"{time.perf_counter() - t0:.1f} s; {date.today()}")
    print("\nMLPerf Inference, Offline (positive error: the planner promises more than was measured):")
    print(render_mlperf(args.quick))
    print("\nMLPerf Inference, Server: Poisson arrivals under TTFT and TPOT p99 limits, against plan's SLO sizing "
          "(positive error: the planner promises more than was measured):")
    print(render_mlperf_server(args.quick))
    print("\nML.ENERGY Leaderboard v3.0, vLLM (error = predicted / published - 1; negative J/token: the planner "
          "promises less energy than was measured):")
    print(render_mlenergy(args.quick))
    print("\nML.ENERGY Leaderboard v3.0, text-to-image and text-to-video on one GPU (error = predicted / published - 1 "
          "in images or videos per second: positive, the planner promises more):")
    print(render_mlenergy_media(args.quick))
    print("\nDiffusion (a positive error means the planner is slower than published; diffusers' tutorial):")
    print(render(diffusion_rows()))


if __name__ == "__main__":
    main()
