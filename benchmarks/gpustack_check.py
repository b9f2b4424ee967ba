"""Acceptance check: the LLM planner against GPUStack's performance lab, never fitted or tuned to.

GPUStack publishes `vllm bench serve` results of Qwen3, gpt-oss, DeepSeek and GLM models under vLLM, SGLang,
TensorRT-LLM, MindIE and vLLM-Ascend on A100, H100, H200 and Ascend 910B
(workloads/reference/acceptance/gpustack_perflab.csv, source and commit per row; the folder's README says how
the rows were read and which were left out). Each row the planner can express (`modelled` = yes) is predicted
with the code `infra-bench predict` runs (`llm_model.replica` and `llm_model.predict`) at the row's model,
part, engine, precision, KV cache type, layout and engine limits, at its mean prompt and output lengths
(total tokens over successful requests).

Which load the runs were:
- With `--max-concurrency C` (the latency documents, the "ShareGPT batch size 4" cases) a run is a closed
  loop of C clients: `predict --concurrency C`.
- Without it, `vllm bench serve` sends every prompt at once (request rate inf). The engine admits them up to
  its running-sequence limit and what its KV memory holds; the rest wait for a slot. That is the closed loop
  at C = the prompts, which the planner runs with its running sequences capped at the engine's limit and its
  memory, the others waiting (their wait counted in TTFT). The offline maximum (`--max-throughput`) is not
  what ran: it picks the best concurrency, where the engine took whatever came. Against the measured run the
  closed loop is a steady state: a burst's prefill comes first and its decode tail thins out, which the
  measured throughput includes. Where fewer run than were sent, a closed loop's waiting clients come back
  and a burst's do not, so the planner's queue wait there is up to twice the burst's.
- The TTFT compared is the one `predict` notes for a benchmark whose first C requests arrive together, with
  the run's own prompt count in place of the default 1,000 (`bench_requests`: the burst's share of the run);
  `predict`'s headline TTFT is a service's steady state, which no row measured.

Compared, each as an error with positive meaning the planner promises more: total token throughput first
(predicted / measured - 1; what GPUStack optimises and a buyer sizes on), then mean TTFT and mean TPOT as
speeds (measured / predicted - 1). ShareGPT rows vary in length and the planner sees their means, so they
are summarised apart from the fixed-length random rows. Printed: each row, then per engine, part, model
(in the fit's AIConfigurator sample or not), run kind and overall the median |error|, bias (median error),
p90 |error| and how often the 80% interval holds the measurement. The three rows the shipped fit used
(`fitted`: published points S1, S2, S14 of workloads/published_measurements.csv) are shown and left out of
the summaries.

With --finite-run each row is also predicted as `predict --num-prompts N` steps the run iteration by iteration
(planner/bench_run.py: the prefill wall and the drain tail the steady state has not; at most C in flight
where the run set --max-concurrency), and those errors are summarised the same way.

With --sharegpt-spread (implies --finite-run) the ShareGPT rows are stepped once more with lengths that vary:
drawn (seed 0) from the built-in `sharegpt-opt-2023` distribution's shape, its input and output medians, p90s
and maxima scaled so that the run's drawn lengths average the row's measured ones, so the run has the row's
token totals and a borrowed spread. A sensitivity, not a fit: that shape is ShareGPT of March 2023 in the OPT
tokenizer under vLLM's length filter (workloads/reference/length_distributions.yaml), not the file nor the
tokenizers these runs used. The fixed-length rows are left as they are.

Run: python benchmarks/gpustack_check.py [--quick] [--finite-run] [--sharegpt-spread]
"""
from __future__ import annotations

import argparse
import csv
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
from acceptance_check import FOLDER, error_stats, first_per, read_rows

DATA = FOLDER / "gpustack_perflab.csv"
SPREAD = "sharegpt-opt-2023"
SAMPLE = Path(__file__).resolve().parent.parent / "workloads" / "reference" / "aiconfigurator_silicon_sample.csv"
METRICS = (("tok", "total tok/s"), ("ttft", "mean TTFT"), ("tpot", "mean TPOT"))


def sample_models() -> set[str]:
    """The catalog models the fit's AIConfigurator sample measured."""
    from infra_bench.planner.measurements import catalog_model

    with open(SAMPLE) as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return {m for m in (catalog_model(r["model_path"]) for r in rows) if m}


def spread_to(shape, isl: float, osl: float, n: int, seed: int = 0):
    """`shape` (a LengthDistribution) scaled so that the `n` requests `predict --num-prompts n` draws with `seed`
    average `isl` input and `osl` output tokens (to a tenth of a token; rounding and the clip at 1 token make the
    factor a few steps of a fixed point rather than one ratio)."""
    k_in = k_out = 1.0
    for _ in range(50):
        d = shape.scaled(k_in, k_out)
        i, o = d.sample(n, seed)
        if abs(i.mean() - isl) < 0.1 and abs(o.mean() - osl) < 0.1:
            return d
        k_in, k_out = k_in * isl / i.mean(), k_out * osl / o.mean()
    raise RuntimeError(f"{shape.name} could not be scaled to {isl:.1f} / {osl:.1f} mean tokens over {n} requests")


def predict_row(r: dict, hw: dict, fit, finite: bool = False, spread=None) -> dict:
    """One row predicted as described above: the planner's figures, 80% intervals and errors, or why not; with
    `finite`, also as `predict --num-prompts` steps the run (under "run"); with `spread` (a LengthDistribution), a
    ShareGPT row also as such a run with lengths of that shape at the row's mean lengths (under "spread")."""
    from infra_bench.errors import UserError
    from infra_bench.planner import llm_model
    from infra_bench.planner.steady import closed_loop

    done = int(r["successful_requests"])
    isl = max(1, round(int(r["total_input_tokens"]) / done))
    osl = max(1, round(int(r["total_generated_tokens"]) / done))
    prompts = int(r["prompts"])
    clients = int(r["max_concurrency"] or prompts)
    try:
        rep = llm_model.replica(r["model"], hw[r["hardware"]], r["precision"], int(r["tp"]), int(r["pp"]), int(r["dp"]),
                                int(r["ep"]), r["engine"], int(r["max_seqs"]) if r["max_seqs"] else None,
                                int(r["token_budget"]) if r["token_budget"] else None, r["kv_cache"] or None)
        p = llm_model.predict(rep, fit, clients, isl, osl)
    except UserError as e:
        return {**r, "isl": isl, "osl": osl, "clients": clients, "fits": False, "why": str(e)}
    if not p.fits:
        return {**r, "isl": isl, "osl": osl, "clients": clients, "fits": False, "why": p.notes[-1]}
    eff = replace(fit.efficiency([rep.case])[0], bench_requests=float(prompts))
    ttft = float(closed_loop(rep.terms, eff, rep.engine_terms, clients / rep.layout.dp, isl, osl).ttft_s)
    per_request = (isl + osl) / osl
    tok_iv = p.intervals.get("output_tokens_per_s")
    predicted = {"tok": p.output_tokens_per_s * per_request, "ttft": ttft, "tpot": p.tpot_s}
    intervals = {"tok": [x * per_request for x in tok_iv] if tok_iv else None,
                 "ttft": fit.interval(fit.tier(rep.case), "ttft", ttft, rep.case.engine),
                 "tpot": p.intervals.get("tpot_s")}
    measured = {"tok": float(r["total_tokens_per_s"]), "ttft": float(r["mean_ttft_ms"]) / 1e3,
                "tpot": float(r["mean_tpot_ms"]) / 1e3}
    out = {**r, "isl": isl, "osl": osl, "clients": clients, "fits": True, "why": "", "predicted": predicted,
           "measured": measured, **judged(predicted, intervals, measured), "running": p.running}
    cap = int(r["max_concurrency"]) if r["max_concurrency"] else None
    if finite:
        out["run"] = run_judged(llm_model.predict_run(rep, fit, prompts, cap, isl, osl), measured)
    if spread and r["dataset"] == "sharegpt":
        lengths = spread_to(spread, int(r["total_input_tokens"]) / done, int(r["total_generated_tokens"]) / done,
                            prompts)
        try:
            out["spread"] = run_judged(llm_model.predict_run(rep, fit, prompts, cap, lengths=lengths), measured)
        except UserError as e:
            out["spread_why"] = str(e)
    return out


def run_judged(f, measured: dict) -> dict:
    """A finite run's prediction (`predict_run`'s) as figures and judged errors, as `predict_row` keeps them."""
    run = {"tok": f.run["total_tokens_per_s"], "ttft": f.ttft_s, "tpot": f.tpot_s}
    run_iv = {"tok": f.run["total_tokens_per_s_interval"], "ttft": f.intervals.get("ttft_s"),
              "tpot": f.intervals.get("tpot_s")}
    return {"predicted": run, **judged(run, run_iv, measured)}


def judged(predicted: dict, intervals: dict, measured: dict) -> dict:
    """Errors (positive: the planner promises more) and whether each 80% interval holds the measurement."""
    errors = {"tok": predicted["tok"] / measured["tok"] - 1}
    for k in ("ttft", "tpot"):
        errors[k] = measured[k] / predicted[k] - 1 if predicted[k] else None
    inside = {k: bool(intervals[k]) and intervals[k][0] <= measured[k] <= intervals[k][1] for k in predicted}
    return {"errors": errors, "inside": inside}


def stats_row(name: str, rows: list[dict]) -> list[str]:
    """A summary line: n, then per metric median |error| / bias / p90 and how often the 80% interval holds."""
    cells = [name, str(len(rows))]
    for k, _ in METRICS:
        errs = [r["errors"][k] for r in rows]
        cells += [" / ".join(error_stats(errs)), f"{np.mean([r['inside'][k] for r in rows]):.0%}" if rows else "-"]
    return cells


def summaries(done: list[dict], in_sample: set[str]) -> list[str]:
    """Per dataset kind (ShareGPT, fixed-length random): the summary lines by engine, part, model, run and overall."""
    from infra_bench.report.table import render

    header = ["rows", "n"] + [c for _, name in METRICS for c in (f"{name}: median |error| / bias / p90", "in 80%")]
    out = []
    for kind, label in (("sharegpt", "ShareGPT (lengths vary; the planner sees their means)"),
                        ("random", "random (fixed lengths)")):
        rows = [r for r in done if r["dataset"] == kind]
        if not rows:
            continue
        table = [header]
        for key in ("engine", "hardware"):
            for v in dict.fromkeys(r[key] for r in rows):
                table.append(stats_row(v, [r for r in rows if r[key] == v]))
        for name, test in (("model in the fit's sample", lambda r: r["model"] in in_sample),
                           ("model not in the sample", lambda r: r["model"] not in in_sample),
                           ("every prompt at once", lambda r: not r["max_concurrency"]),
                           ("--max-concurrency", lambda r: bool(r["max_concurrency"])),
                           ("launched with flags the planner does not represent", lambda r: bool(r["other_flags"]))):
            sub = [r for r in rows if test(r)]
            if sub:
                table.append(stats_row(name, sub))
        table.append(stats_row("all", rows))
        out += [f"{label}:", render(table), ""]
    return out


def _cell(v: float | None, fmt: str) -> str:
    return format(v, fmt) if v is not None else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the first row of each engine only (seconds)")
    ap.add_argument("--finite-run", action="store_true",
                    help="also predict each run as `predict --num-prompts` steps it, and summarise those errors")
    ap.add_argument("--sharegpt-spread", action="store_true",
                    help=f"with --finite-run (implied): the ShareGPT rows again with lengths of {SPREAD}'s shape "
                         f"scaled to each row's mean lengths (a sensitivity with a borrowed shape)")
    args = ap.parse_args()
    args.finite_run = args.finite_run or args.sharegpt_spread
    from infra_bench.endpoints.inputs import distributions
    from infra_bench.planner.fit import shipped
    from infra_bench.planner.profiles import load_hardware
    from infra_bench.report.table import render

    everything = read_rows(DATA)
    rows = [r for r in everything if r["modelled"] == "yes"]
    if args.quick:
        rows = first_per(rows, "engine")
    t0 = time.perf_counter()
    hw, fit, in_sample = load_hardware(), shipped(), sample_models()
    spread = distributions()[SPREAD] if args.sharegpt_spread else None
    done = [predict_row(r, hw, fit, args.finite_run, spread) for r in rows]
    # running: the sequences the planner runs at once (engine limit, KV memory); the other clients wait
    table = [["model", "GPU", "engine", "prec", "TP/PP/DP/EP", "data ISL/OSL", "sent/C", "running", "tok/s", "predicted", "error",
              "in 80%", "TTFT s", "predicted", "error", "TPOT ms", "predicted", "error", "note"]]
    for r in done:
        head = [r["model"], r["hardware"], r["engine"], r["precision"] + (f" kv {r['kv_cache']}" if r["kv_cache"] else ""),
                f"{r['tp']}/{r['pp']}/{r['dp']}/{r['ep']}", f"{r['dataset'][:5]} {r['isl']}/{r['osl']}",
                f"{r['prompts']}/{r['clients']}", f"{r['running']:.0f}" if r["fits"] else "-",
                f"{float(r['total_tokens_per_s']):,.0f}"]
        if not r["fits"]:
            table.append(head + ["-"] * 9 + [r["why"][:90]])
            continue
        p, e = r["predicted"], r["errors"]
        note = "fitted " + r["fitted"] if r["fitted"] else ("flags: " + r["other_flags"][:50] if r["other_flags"] else "")
        table.append(head + [f"{p['tok']:,.0f}", f"{e['tok']:+.0%}", "yes" if r["inside"]["tok"] else "no",
                             f"{float(r['mean_ttft_ms']) / 1e3:.3g}", f"{p['ttft']:.3g}", _cell(e["ttft"], "+.0%"),
                             f"{float(r['mean_tpot_ms']):.3g}", _cell(p["tpot"] * 1e3 if p["tpot"] else None, ".3g"),
                             _cell(e["tpot"], "+.0%"), note])
    print(render(table))
    print()
    judged = [r for r in done if r["fits"] and not r["fitted"]]
    print("\n".join(summaries(judged, in_sample)))
    if args.finite_run:
        print("The same rows as `predict --num-prompts N` (with --concurrency C where the run capped it) steps each run "
              "iteration by iteration, same fit, same intervals:")
        print("\n".join(summaries([{**r, **r["run"]} for r in judged], in_sample)))
    if args.sharegpt_spread:
        print(f"The ShareGPT rows once more as finite runs, each request's lengths drawn (seed 0) from {SPREAD}'s shape "
              f"scaled to the row's mean lengths: a sensitivity with a borrowed shape ({spread.description}):")
        print("\n".join(summaries([{**r, **r["spread"]} for r in judged if "spread" in r], in_sample)))
        for r in judged:
            if "spread_why" in r:
                print(f"not run with the spread: {r['model']} on {r['hardware']} ({r['engine']}): {r['spread_why']}")
    unfit = [r for r in done if not r["fits"]]
    print(f"{len(done)} GPUStack rows predicted ({len(judged)} summarised; {len(done) - len(judged) - len(unfit)} fitted "
          f"points shown apart; {len(unfit)} the planner says do not fit) of {len(everything)} in {DATA.name} "
          f"({len(everything) - len(rows) if not args.quick else 'the rest'} not modelled: see `why_not`); shipped fit; "
          f"{time.perf_counter() - t0:.1f} s; {date.today()}")


if __name__ == "__main__":
    main()
