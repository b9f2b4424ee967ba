"""How well the LLM serving model predicts measurements it never saw.

The reference measurements (NVIDIA's AIConfigurator silicon sample, aggregated serving, InferenceX's runs on AMD
parts, the published points in workloads/published_measurements.csv, and NVIDIA NIM's benchmark tables) are split
three ways: leave one model out, leave one engine out, leave one GPU out. For each fold the model is fitted on the
rest, from the priors (nothing of the fold reaches its fit, not even as a starting point), and predicts the fold's
TTFT, TPOT and throughput (C x OSL / (TTFT + (OSL - 1) x TPOT), from the predicted and from the
measured latencies). A run the sample publishes in more than one dump counts once (scored()). Printed per split
and metric: median absolute error, bias (median signed error), 90th percentile of the absolute error, and how often
the 80% interval holds the measurement, with the interval's quantiles taken from the other folds only (an honest
coverage).

--write stores the fit on all measurements, with the held-out residual quantiles of each split as
the interval tiers predictions use, in workloads/reference/llm_fit.json.

Run: python benchmarks/planner_accuracy.py [--write] [--quick]
"""
from __future__ import annotations

import argparse
import json
import time
from datetime import date

import numpy as np

from infra_bench.planner.llm_model import FEW_POINTS_ABOVE

# leaving one model out takes one architecture at a time: see architecture_of
SPLITS = {"model": "leave one model out", "engine": "leave one engine out", "hardware": "leave one GPU out"}
TIERS = {"model": "fitted", "engine": "other_engine", "hardware": "other_hardware"}
MIN_ENGINE_POINTS = 100  # an engine's own interval quantiles need this many held-out residuals


def throughput(b, dp, isl, osl, ttft, tpot):
    return b * dp * osl / (ttft + np.maximum(osl - 1, 0) * np.nan_to_num(tpot))


def _median_abs(log_ratios, digits: int = 0) -> str:
    r = np.asarray(log_ratios, dtype=float)
    r = r[np.isfinite(r)]
    return f"{np.median(np.abs(np.expm1(r))):.{digits}%}" if len(r) else "-"


def architecture_of() -> dict[str, str]:
    """Model id -> its fold in the leave-one-model-out split: its architecture (shapes.architectures). Models with
    the same architecture (DeepSeek-R1 and DeepSeek-V3, measured with identical figures in many rows of the sample)
    are one fold: leaving one out while the other stays would be predicting points the fit has seen."""
    from infra_bench.planner.shapes import architectures

    return architectures()


def folds_of(problem, key: str) -> np.ndarray:
    """Each point's fold in a split: its architecture leaving one model out (architecture_of), else its engine or
    hardware."""
    fold_of = architecture_of() if key == "model" else None
    return np.array([fold_of[m.model] if fold_of else getattr(m, key) for m in problem.points])


def reference_problem(quick: bool = False):
    """(the reference measurements as one fit problem, the rows it could not model); `quick` keeps
    every 12th point."""
    from infra_bench.planner import fit as F
    from infra_bench.planner import measurements as M
    from infra_bench.planner.profiles import load_hardware

    points, _ = M.aic_measurements()
    published, _ = M.published_measurements()
    problem, skipped = F.Problem.build(points + published + M.inferencex_measurements() + M.nim_measurements(),
                                       load_hardware())
    return (problem.take(np.arange(0, len(problem.points), 12)) if quick else problem), skipped


def scored(problem) -> np.ndarray:
    """Which points the figures count: each run once. The sample publishes many runs in two or three of its dumps
    (measurements.repeated_runs); the fit reads every row, the scores count a run once (counted as often as
    published, leaving one model out read 14.1% in TPOT where each run once reads 14.9%: docs/planner.md)."""
    from infra_bench.planner.measurements import repeated_runs

    return ~np.array(repeated_runs(problem.points), dtype=bool)


def held_out(problem, key: str, evals: int, folds: int | None):
    """Each fold fitted from the priors, as the full fit is, and scored on its runs (scored()). A fold warm-started
    from the full fit begins at factors the held-out points helped set, and the fit stops on its tolerance close to
    them: that leaked the held-out model into its own prediction (leaving one model out, TPOT came
    out 12.2% warm-started and 15.6% from the priors, the same form; docs/planner.md)."""
    from infra_bench.planner import fit as F

    groups = folds_of(problem, key)
    names = sorted(set(groups))[:folds] if folds else sorted(set(groups))
    b, isl, osl, ttft, tpot = problem.arrays()
    dp = np.array([m.dp for m in problem.points], dtype=float)
    counted = scored(problem)
    out = {"fold": [], "index": [], "engine": [], "ttft": [], "tpot": [], "throughput": []}
    for name in names:
        tr, te = np.where(groups != name)[0], np.where((groups == name) & counted)[0]
        f = F.fit(problem.take(tr), max_evals=evals)
        s, _ = F.predict_problem(f, problem.take(te))
        out["fold"] += [name] * len(te)
        out["index"] += list(te)
        out["engine"] += [problem.points[i].engine for i in te]
        out["ttft"] += list(np.log(s.ttft_s / ttft[te]))
        out["tpot"] += list(np.log(s.tpot_s / tpot[te]))
        meas = throughput(b[te], dp[te], isl[te], osl[te], ttft[te], tpot[te])
        pred = throughput(b[te], dp[te], isl[te], osl[te], s.ttft_s, s.tpot_s)
        out["throughput"] += list(np.log(pred / meas))
        print(f"  {key} fold {name}: {len(te)} points, TPOT {_median_abs(out['tpot'][-len(te):])}, "
              f"TTFT {_median_abs(out['ttft'][-len(te):])}", flush=True)
    return {k: np.array(v) for k, v in out.items()}


def _clients(problem, res: dict) -> np.ndarray:
    """Clients per replica of each held-out point of a split's results."""
    return np.array([m.concurrency * m.dp for m in problem.points])[res["index"].astype(int)]


def clients_lines(problem, split: str, res: dict) -> list[str]:
    """Held-out throughput error by the clients a point ran per replica: few points of the sample ran more than
    256, and there the planner is optimistic (predict and plan say so: llm_model.FEW_POINTS_ABOVE)."""
    clients, r = _clients(problem, res), res["throughput"]
    out = []
    for lo, hi in ((0, 64), (64, FEW_POINTS_ABOVE), (FEW_POINTS_ABOVE, np.inf)):
        sel = (clients > lo) & (clients <= hi) & np.isfinite(r)
        if sel.any():
            err = np.expm1(r[sel])
            out.append(f"{split:<22} {f'{lo:g}-{hi:g}':<11} {sel.sum():>5} {np.median(np.abs(err)):>8.1%} "
                       f"{np.median(err):>+7.1%}")
    return out


def beyond(problem, res: dict) -> dict:
    """The split's held-out throughput beyond llm_model.FEW_POINTS_ABOVE clients per replica, stored with the fit
    so that predict's and plan's upper-bound notes quote the figures of the fit they use."""
    clients, r = _clients(problem, res), res["throughput"]
    sel = (clients > FEW_POINTS_ABOVE) & np.isfinite(r)
    err = np.expm1(r[sel])
    return {"clients": FEW_POINTS_ABOVE, "points": int(sel.sum()), "of": int(np.isfinite(r).sum()),
            "bias": float(np.median(err)) if len(err) else None,
            "median_abs": float(np.median(np.abs(err))) if len(err) else None}


def fold_lines(res: dict) -> list[str]:
    """Per held-out model (a fold of the model split): points, then TTFT and TPOT median |error| and bias. The
    errors differ by model far more than by anything shared (anatomy()), so docs/planner.md gives them per model."""
    folds = np.asarray(res["fold"])
    out = []
    for name in sorted(set(folds)):
        cells = []
        for metric in ("ttft", "tpot"):
            r = res[metric][(folds == name) & np.isfinite(res[metric])]
            cells.append(f"{_median_abs(r):>5} {np.expm1(np.median(r)):>+6.0%}" if len(r) else f"{'-':>5} {'':>6}")
        out.append(f"{name:<26} {(folds == name).sum():>5}  {cells[0]}  {cells[1]}")
    return out


def _bins(problem) -> dict[str, np.ndarray]:
    """Per point: its replicate key, and the coarse features a shared correction could use (engine,
    clients, prompt and output length bins)."""
    fold_of = architecture_of()
    pts = problem.points

    def log2(k: str) -> np.ndarray:
        return np.log2([getattr(m, k) for m in pts])
    return {"config": np.array(["|".join(map(str, (fold_of[m.model], m.hardware, m.engine, m.precision, m.layout,
                                                   m.input_len, m.output_len, m.concurrency))) for m in pts]),
            "shared": np.array([f"{m.engine}|{c}|{i}|{o}" for m, c, i, o in zip(
                pts, np.digitize(log2("concurrency"), [2, 4, 6, 8]), np.digitize(log2("input_len"), [10.5, 11.5, 12.5]),
                np.digitize(log2("output_len"), [8.5, 10.5, 12]))])}


def anatomy(problem, in_sample: dict, held: dict) -> list[str]:
    """What the leave-one-model-out error is made of, as printed lines:
    - replicates: rows of one configuration (model, part, engine, precision, layout, lengths, clients) with
      different figures: how far apart they are (the noise a perfect model would still show);
    - per-model offset: the held-out error once each model's median bias is taken off (what a model's
      own campaign adds: engine version, harness, a kernel path);
    - shared structure: a correction by (engine, clients, prompt length, output length) bins, learnt as
      the median residual of the other models and applied to the held-out one. If the residuals held
      a pattern common to models, it would lower the error;
    - measured parts: the held-out points whose part and engine the other folds measured, the case `predict` calls a
      new model on a measured part (a fold's own part, such as the AMD parts measured on DeepSeek-R1 alone, is one
      the fit never saw when that model is held out)."""
    import pandas as pd

    b = _bins(problem)
    _, _, _, ttft, tpot = problem.arrays()
    lines = []
    idx, fold = np.asarray(held["index"]).astype(int), np.asarray(held["fold"])
    pair = np.array([f"{problem.points[i].hardware}|{problem.points[i].engine}" for i in idx])
    measured_part = np.zeros(len(idx), dtype=bool)
    for f in np.unique(fold):
        te = fold == f
        measured_part[te] = np.isin(pair[te], pair[~te])
    for metric, measured in (("ttft", ttft), ("tpot", tpot)):
        frame = pd.DataFrame({"config": b["config"], "v": measured}).dropna().drop_duplicates()
        pairs = []
        for values in frame.groupby("config")["v"]:
            v = np.log(values[1].to_numpy())
            pairs += [abs(x - y) for j, x in enumerate(v) for y in v[j + 1:]]
        rep = f"{np.median(np.expm1(pairs)):.0%} over {len(pairs)} pairs" if pairs else "-"
        r_out = held[metric]
        off = pd.Series(r_out).groupby(fold).transform("median").to_numpy()
        bins = b["shared"][idx]
        shared = {}
        for name, r in (("in sample", in_sample[metric][idx]), ("held out", r_out)):
            corr = np.zeros(len(r))
            for f in np.unique(fold):
                te = fold == f
                med = pd.Series(r[~te]).groupby(bins[~te]).median()
                corr[te] = np.nan_to_num(med.reindex(bins[te]).to_numpy())
            shared[name] = f"{_median_abs(r, 1)} -> {_median_abs(r - corr, 1)}"
        on_part = measured_part & np.isfinite(r_out)
        lines.append(f"{metric.upper():<5} replicates differ by a median {rep}; held out {_median_abs(r_out, 1)}, "
                     f"less each model's own offset {_median_abs(r_out - off, 1)}; a shared correction learnt from "
                     f"the other models: in sample {shared['in sample']}, held out {shared['held out']}; on parts and "
                     f"engines the other folds measured ({on_part.sum()} points) {_median_abs(r_out[on_part], 1)}")
    return lines


def _spread(r: np.ndarray) -> dict:
    """Count, median absolute error and the 10th/50th/90th percentiles of log residuals."""
    q10, q50, q90 = np.quantile(r, [0.1, 0.5, 0.9])
    return {"n": len(r), "median_abs": float(np.median(np.abs(np.expm1(r)))), "q10": float(q10), "q50": float(q50),
            "q90": float(q90)}


def summary(res: dict, metric: str, by_engine: bool = True) -> dict:
    """Errors of one split and metric, the 10th/50th/90th percentiles of its log residuals, and with
    `by_engine` the same per engine with at least MIN_ENGINE_POINTS residuals (predictions use an
    engine's own quantiles: vLLM's residuals are half as wide as SGLang's and TensorRT-LLM's, so one
    set for all over-covers vLLM and under-covers the others). Coverage is honest: each fold's points
    are judged against quantiles of the other folds only, the engine's own where the other folds hold
    enough of its points, as a prediction would get them. Only the model split keeps per-engine
    quantiles: leaving an engine out leaves none of its points in the other folds, and leaving a GPU
    out, an engine's residuals on the other GPUs held fewer of its points on the held-out one (61-79%)
    than all engines' together did (2026-12-04, docs/planner.md)."""
    r, folds, engines = res[metric], res["fold"], np.asarray(res["engine"])
    ok = np.isfinite(r)
    err = np.expm1(r[ok])
    cover, judged = [], []
    for name in set(folds):
        mine, others = (folds == name) & ok, (folds != name) & ok
        if not others.any() or not mine.any():
            continue
        for engine in set(engines[mine]):
            own = others & (engines == engine)
            lo, hi = np.quantile(r[own] if by_engine and own.sum() >= MIN_ENGINE_POINTS else r[others], [0.1, 0.9])
            sel = r[mine & (engines == engine)]
            cover += list((sel >= lo) & (sel <= hi))
            judged += [engine] * len(sel)
    cover, judged = np.array(cover, dtype=bool), np.array(judged)
    out = {**_spread(r[ok]), "bias": float(np.median(err)), "p90_abs": float(np.quantile(np.abs(err), 0.9)),
           "coverage_80": float(np.mean(cover)) if len(cover) else None}
    if by_engine:
        mine = {engine: ok & (engines == engine) for engine in sorted(set(engines[ok]))}
        out["by_engine"] = {engine: {**_spread(r[sel]), "coverage_80": float(np.mean(cover[judged == engine]))}
                            for engine, sel in mine.items() if sel.sum() >= MIN_ENGINE_POINTS}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="store the fit and its interval tiers in the package data")
    ap.add_argument("--quick", action="store_true", help="seconds: two folds per split, few fit iterations "
                                                         "(checks the script runs; figures are not the published ones)")
    ap.add_argument("--evals", type=int, default=400,
                    help="fit evaluations per fold at most (each fold is fitted from the priors)")
    a = ap.parse_args()
    from infra_bench.paths import data_dir
    from infra_bench.planner import fit as F

    t0 = time.perf_counter()
    problem, skipped = reference_problem(a.quick)
    full = F.fit(problem, max_evals=40 if a.quick else 400)
    print(f"{len(problem.points)} measurements ({len(skipped)} not modelled), "
          f"{len({m.model for m in problem.points})} models, {len({m.hardware for m in problem.points})} GPUs, "
          f"{len({m.engine for m in problem.points})} engines; full fit in {time.perf_counter() - t0:.0f} s")
    s_all, _ = F.predict_problem(full, problem)
    _, _, _, ttft_all, tpot_all = problem.arrays()
    in_sample = {"ttft": np.log(s_all.ttft_s / ttft_all), "tpot": np.log(s_all.tpot_s / tpot_all)}
    counted = scored(problem)
    print(f"{counted.sum()} runs scored (a run the sample publishes more than once counts once); in sample (the full "
          f"fit scored on its own runs, the floor the held-out splits start from): "
          f"TTFT {_median_abs(in_sample['ttft'][counted], 1)}, TPOT {_median_abs(in_sample['tpot'][counted], 1)}",
          flush=True)
    tiers, rows, parts, by_clients, by_model = {}, [], [], [], []
    for key in SPLITS:
        res = held_out(problem, key, 10 if a.quick else a.evals, 2 if a.quick else None)
        by_clients += clients_lines(problem, SPLITS[key], res)
        if key == "model":
            parts, by_model = anatomy(problem, in_sample, res), fold_lines(res)
        tiers[TIERS[key]] = {}
        for metric in ("ttft", "tpot", "throughput"):
            s = summary(res, metric, by_engine=key == "model")
            tiers[TIERS[key]][metric] = s
            rows.append((SPLITS[key], metric, s))
        tiers[TIERS[key]]["throughput"]["beyond"] = beyond(problem, res)
    print(f"\nheld-out errors ({time.perf_counter() - t0:.0f} s in all)")
    print(f"{'split':<22} {'metric':<11} {'n':>5} {'median |err|':>12} {'bias':>7} {'p90 |err|':>9} {'80% interval holds':>19}")
    for split, metric, s in rows:
        cov = "-" if s["coverage_80"] is None else f"{s['coverage_80']:.0%}"
        print(f"{split:<22} {metric:<11} {s['n']:>5} {s['median_abs']:>12.1%} {s['bias']:>+7.1%} "
              f"{s['p90_abs']:>9.0%} {cov:>19}")
    print("\nper engine (intervals use an engine's own quantiles): median |err|, 80% interval, how often it holds")
    for split, metric, s in rows:
        for engine, e in s.get("by_engine", {}).items():
            print(f"{split:<22} {metric:<11} {engine:<8} {e['n']:>5} {e['median_abs']:>8.1%} "
                  f"{np.expm1(-e['q90']):>+5.0%}..{np.expm1(-e['q10']):>+5.0%} {e['coverage_80']:>6.0%}")
    print(f"\nthroughput by clients per replica (the fit's data thin out beyond {FEW_POINTS_ABOVE}: "
          "llm_model.FEW_POINTS_ABOVE): "
          "points, median |err|, bias")
    print("\n".join(by_clients))
    if by_model:
        print("\nper held-out model (leave one model out): points, median |err| and bias of TTFT and TPOT")
        print(f"{'model':<26} {'n':>5}  {'TTFT':>5} {'bias':>6}  {'TPOT':>5} {'bias':>6}")
        print("\n".join(by_model))
    if parts:
        print("\nwhat the leave-one-model-out error is made of (see anatomy()):")
        print("\n".join(parts))
    if a.write and not a.quick:
        full.residuals = tiers
        full.meta.update({"source": "infra-bench shipped fit: AIConfigurator silicon sample (aggregated) + "
                                    "published_measurements.csv + InferenceX's AMD runs + "
                                    "NVIDIA NIM's benchmark tables",
                          "date": date.today().isoformat(),
                          "command": "python benchmarks/planner_accuracy.py --write"})
        path = data_dir("workloads") / "reference" / F.FIT_FILE
        path.write_text(json.dumps(full.to_dict(), indent=1, sort_keys=True))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
