"""What your own runs of a model buy: a model the fit never saw, calibrated with k of its own points.

For each model of the reference data (one fold of benchmarks/planner_accuracy.py's leave-one-model-out split), the
fit is made from the priors on the other models, then refined as `infra-bench calibrate` refines the shipped fit
(`fit(anchor=...)`, then `fit_own`) with k of the held-out model's points per category it ran (part, engine,
precision): one configuration (the layout and lengths with the most points), at its fewest clients (k = 1), its
fewest and most (k = 2), and the middle one (k = 3), as a user would run `loadtest` at a few concurrencies. Every k
is scored on the same points (those none of them used), split into the calibrated configuration at other client
counts and the other configurations (other TP, lengths) of the same categories. Printed: TTFT and TPOT median
absolute error per model and overall, k = 0 being the held-out prediction.

Run: python benchmarks/calibration_gain.py [--quick]
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import planner_accuracy as PA

KS = (0, 1, 2, 3)


def calibration_points(problem, idx: np.ndarray, k: int) -> list[int]:
    """Per category of the held-out model, k points of its best-measured configuration (see the module's doc)."""
    configs: dict = {}
    for i in idx:
        m = problem.points[i]
        if m.ttft_s is not None and m.tpot_s is not None:
            configs.setdefault((m.hardware, m.engine, m.precision), {}).setdefault(
                (m.tp, m.dp, m.ep, m.input_len, m.output_len), []).append(int(i))
    out: list[int] = []
    for by_config in configs.values():
        rows = sorted(max(by_config.values(), key=len), key=lambda i: problem.points[i].concurrency)
        out += list(dict.fromkeys([rows[0], rows[-1], rows[len(rows) // 2]][:k]))
    return out


def fold(args: tuple) -> dict:
    """One held-out model: its predictions before calibration and after, per k, and the points each k used."""
    from infra_bench.planner import fit as F

    name, quick, evals = args
    problem, _ = PA.reference_problem(quick)
    groups = PA.folds_of(problem, "model")
    train, held = np.where(groups != name)[0], np.where(groups == name)[0]
    base = F.fit(problem.take(train), max_evals=evals)
    out = {"held": held, "used": {}, "pred": {}}
    for k in KS:
        used = calibration_points(problem, held, k)
        fitted = base
        if used:
            own = problem.take(np.array(used))
            fitted = F.fit_own(F.fit(own, anchor=base, max_evals=evals // 2), own)
        s, _ = F.predict_problem(fitted, problem.take(held))
        out["used"][k], out["pred"][k] = used, (s.ttft_s, s.tpot_s)
    return out


def _abs(r: list[np.ndarray]) -> str:
    r = np.concatenate(r)
    r = r[np.isfinite(r)]
    return f"{np.median(np.abs(np.expm1(r))):5.1%}" if len(r) else "    -"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="seconds: two models, every 12th point, few fit iterations "
                                                         "(checks the script runs; figures are not the published ones)")
    a = ap.parse_args()
    t0 = time.perf_counter()
    problem, _ = PA.reference_problem(a.quick)
    counts = Counter(PA.folds_of(problem, "model"))
    names = sorted(n for n, c in counts.items() if c > 10)[:2 if a.quick else None]
    with ProcessPoolExecutor(2) as pool:
        folds = list(pool.map(fold, [(n, a.quick, 10 if a.quick else 400) for n in names]))
    _, _, _, ttft, tpot = problem.arrays()
    config = {i: (m.hardware, m.engine, m.precision, m.tp, m.dp, m.ep, m.input_len, m.output_len)
              for i, m in enumerate(problem.points)}
    parts = {"all": {k: ([], []) for k in KS}, "same": {k: ([], []) for k in KS}, "other": {k: ([], []) for k in KS}}
    print(f"{'held-out model':<28} {'points':>6}  " + "  ".join(f"k={k}: TTFT / TPOT" for k in KS))
    for name, f in zip(names, folds):
        held = f["held"]
        used = set().union(*(f["used"][k] for k in KS))
        calibrated = {config[u] for u in used}
        scored = np.array([i not in used for i in held])
        same = np.array([config[i] in calibrated for i in held])
        line = []
        for k in KS:
            rt, rp = np.log(f["pred"][k][0] / ttft[held]), np.log(f["pred"][k][1] / tpot[held])
            for part, sel in (("all", scored), ("same", scored & same), ("other", scored & ~same)):
                parts[part][k][0].append(rt[sel])
                parts[part][k][1].append(rp[sel])
            line.append(f"{_abs([rt[scored]])} / {_abs([rp[scored]])}")
        print(f"{name:<28} {scored.sum():>6}  " + "  ".join(f"{c:>15}" for c in line))
    for part, label in (("all", "all"), ("same", "the calibrated configuration"), ("other", "other configurations")):
        n = sum(len(r) for r in parts[part][0][0])
        print(f"{label:<28} {n:>6}  " + "  ".join(f"{_abs(parts[part][k][0]) + ' / ' + _abs(parts[part][k][1]):>15}"
                                                 for k in KS))
    print(f"calibration gain measured in {time.perf_counter() - t0:.0f} s (k = own points per category; k = 0: held out)")


if __name__ == "__main__":
    main()
