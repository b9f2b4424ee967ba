"""Summary statistics for latency samples, with 95% confidence intervals.

The mean's interval uses Student's t; the median's is the distribution-free interval between
two order statistics, whose exact coverage (from the binomial distribution) is reported.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import numpy as np

# Two-sided 95% Student t quantiles t(0.975, df) for df = 1..30, then by 1/df interpolation
# towards the normal 1.959964 (error below 1e-3 for every df).
_T975 = [12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004,
         2.262157, 2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905,
         2.109816, 2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899,
         2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272]
_T975_TAIL = [(40, 2.021075), (60, 2.000298), (120, 1.979930), (math.inf, 1.959964)]

PERCENTILES = (50, 90, 95, 99)


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom."""
    if df < 1:
        raise ValueError("df must be >= 1")
    if df <= 30:
        return _T975[df - 1]
    lo_df, lo_t = 30, _T975[-1]
    for hi_df, hi_t in _T975_TAIL:
        if df <= hi_df:
            inv = lambda d: 0.0 if d == math.inf else 1.0 / d  # noqa: E731
            w = (inv(lo_df) - inv(df)) / (inv(lo_df) - inv(hi_df))
            return lo_t + w * (hi_t - lo_t)
        lo_df, lo_t = hi_df, hi_t
    return _T975_TAIL[-1][1]


EXACT_MEDIAN_CI_MAX_N = 300  # above this, the normal approximation (coverage off by < 1e-3)


def median_ci_ranks(n: int, level: float = 0.95) -> tuple[int, int, float]:
    """1-based ranks (j, n+1-j) of the narrowest symmetric order-statistic interval for the
    median whose coverage reaches `level`, and that coverage. For n < 6 no interval reaches
    95%; the full range is returned with the coverage it has. Exact (binomial, integer
    arithmetic) up to EXACT_MEDIAN_CI_MAX_N values; above, from the normal approximation to
    Binomial(n, 1/2) (a serving point easily has 10^4 inter-token latencies)."""
    if n > EXACT_MEDIAN_CI_MAX_N:
        z = statistics.NormalDist().inv_cdf((1 + level) / 2)
        j = max(1, math.floor((n - z * math.sqrt(n)) / 2))
        at = lambda r: (r - 0.5 - n / 2) / (math.sqrt(n) / 2) / math.sqrt(2)  # noqa: E731
        return j, n + 1 - j, 0.5 * (math.erf(at(n + 1 - j)) - math.erf(at(j)))
    total, below, comb = 1 << n, 0, 1  # below = sum of C(n, k) for k < j; comb = C(n, j - 1)
    best = (1, n, 1 - 2 / total)
    for j in range(1, n // 2 + 1):
        below += comb
        comb = comb * (n - j + 1) // j
        c = 1 - 2 * below / total  # P(j <= #samples below the median <= n - j)
        if c < level:
            break
        best = (j, n + 1 - j, c)
    return best


def summarize(values: Sequence[float]) -> dict | None:
    """mean, stdev, cv, p50/p90/p95/p99, min, max, n and 95% CIs of mean and median."""
    if len(values) == 0:
        return None
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    mean = float(x.mean())
    stdev = float(x.std(ddof=1)) if n > 1 else 0.0
    out: dict = {"n": n, "mean": mean, "stdev": stdev,
                 "cv": stdev / mean if mean else None,
                 "min": float(x.min()), "max": float(x.max())}
    for p in PERCENTILES:
        out[f"p{p}"] = float(np.percentile(x, p))
    if n > 1:
        half = t975(n - 1) * stdev / math.sqrt(n)
        low = mean - half  # a latency cannot be negative: with few, spread samples the interval is floored at 0
        out["mean_ci95"] = [max(low, 0.0) if out["min"] >= 0 else low, mean + half]
    else:
        out["mean_ci95"] = None
    xs = np.sort(x)
    j, k, cov = median_ci_ranks(n)
    out["median_ci95"] = [float(xs[j - 1]), float(xs[k - 1])]
    out["median_ci_coverage"] = cov
    return out
