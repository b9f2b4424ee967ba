"""The planner against NVIDIA AIConfigurator on the rows of AIConfigurator's silicon sample that both predict.

AIConfigurator composes per-operation kernel timings measured on each part under each engine, and its team
checks every revision against this very sample (its tools/accuracy_regression_testing), so its figures here
are in sample. Its estimates were made once and shipped (workloads/reference/aiconfigurator_predictions.csv,
NOTICE.md says how); this script scores them and the planner on the same rows: the shipped fit (in sample),
and without --quick the planner's leave-one-model-out folds, each fitted from the priors as
planner_accuracy.py fits them (a few minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import planner_accuracy as PA

PREDICTIONS = "aiconfigurator_predictions.csv"


def aic_estimates() -> dict[str, tuple[float, float]]:
    """Row id -> AIConfigurator's (TTFT s, TPOT s), for the rows it gave an estimate."""
    import pandas as pd

    from infra_bench.paths import data_dir

    d = pd.read_csv(data_dir("workloads") / "reference" / PREDICTIONS, comment="#")
    d = d[d.status == "ok"]
    return {r.id: (r.predicted_ttft_ms / 1e3, r.predicted_tpot_ms / 1e3) for r in d.itertuples()}


def _line(label: str, pred_ttft, pred_tpot, ttft, tpot) -> str:
    def m(r):
        return f"{np.median(np.abs(np.expm1(r))):6.1%} (bias {np.median(np.expm1(r)):+6.1%})"
    return f"{label:<44} TTFT {m(np.log(pred_ttft / ttft))}   TPOT {m(np.log(pred_tpot / tpot))}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="seconds: the shipped fit only, no held-out folds")
    a = ap.parse_args()
    from infra_bench.planner import fit as F

    t0 = time.perf_counter()
    problem, _ = PA.reference_problem()
    est = aic_estimates()
    ids = [p.source.rsplit(" ", 1)[-1] for p in problem.points]
    counted = PA.scored(problem)  # a run the sample publishes twice is scored once, as planner_accuracy scores it
    rows = np.array([i for i, k in enumerate(ids) if k in est and counted[i]])
    _, _, _, ttft, tpot = problem.arrays()
    aic = np.array([est[ids[i]] for i in rows])
    engines = np.array([problem.points[i].engine for i in rows])
    print(f"{len(est)} rows with an AIConfigurator estimate, {len(rows)} distinct runs of them modelled by the planner "
          f"(of {counted.sum()} runs); median |predicted / measured - 1| and its bias")
    s, _ = F.predict_problem(F.shipped(), problem.take(rows))
    ours = {"the planner, shipped fit (in sample)": (np.asarray(s.ttft_s), np.asarray(s.tpot_s))}
    if not a.quick:
        res = PA.held_out(problem, "model", 400, None)
        at = {int(i): j for j, i in enumerate(res["index"])}
        j = np.array([at[i] for i in rows])
        ours["the planner, leave one model out"] = (ttft[rows] * np.exp(res["ttft"][j]),
                                                   tpot[rows] * np.exp(res["tpot"][j]))
    for engine in (None, *sorted(set(engines))):
        sel = np.ones(len(rows), bool) if engine is None else engines == engine
        print(f"\n{'all engines' if engine is None else engine} ({sel.sum()} rows)")
        print(_line("AIConfigurator (kernel databases; in sample)", aic[sel, 0], aic[sel, 1], ttft[rows][sel],
                    tpot[rows][sel]))
        for label, (pt, pp) in ours.items():
            print(_line(label, pt[sel], pp[sel], ttft[rows][sel], tpot[rows][sel]))
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
