import math
import numpy as np
import pytest

from infra_bench.measure.stats import median_ci_ranks, summarize, t975
from infra_bench.measure.stopping import StoppingRule


def test_summary_fields_match_numpy():
    x = np.random.default_rng(1).lognormal(size=101)
    s = summarize(x)
    assert s["n"] == 101
    assert s["mean"] == pytest.approx(x.mean())
    assert s["stdev"] == pytest.approx(x.std(ddof=1))
    assert s["cv"] == pytest.approx(x.std(ddof=1) / x.mean())
    for p in (50, 90, 95, 99):
        assert s[f"p{p}"] == pytest.approx(np.percentile(x, p))
    assert s["min"] == x.min() and s["max"] == x.max()


def test_confidence_intervals_contain_their_estimates():
    x = np.random.default_rng(2).normal(10, 2, size=40)
    s = summarize(x)
    lo, hi = s["mean_ci95"]
    assert lo < s["mean"] < hi
    mlo, mhi = s["median_ci95"]
    assert mlo <= s["p50"] <= mhi
    assert s["median_ci_coverage"] >= 0.95


def test_mean_interval_covers_true_mean_about_95_percent():
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(2000):
        lo, hi = summarize(rng.normal(5.0, 1.0, size=8))["mean_ci95"]
        hits += lo <= 5.0 <= hi
    assert 0.93 < hits / 2000 < 0.97


def test_t_quantiles_against_published_values():
    assert t975(1) == pytest.approx(12.706, abs=1e-3)
    assert t975(10) == pytest.approx(2.228, abs=1e-3)
    assert t975(50) == pytest.approx(2.009, abs=1e-3)
    assert t975(100) == pytest.approx(1.984, abs=1e-3)
    assert t975(10**6) == pytest.approx(1.960, abs=1e-3)


def test_median_ranks_small_and_large_samples():
    j, k, cov = median_ci_ranks(5)  # no interval reaches 95% with 5 samples
    assert (j, k) == (1, 5) and cov == pytest.approx(1 - 2 / 32)
    j, k, cov = median_ci_ranks(100)
    assert cov >= 0.95 and (j, k) == (40, 61)


def test_single_sample_has_no_mean_interval():
    s = summarize([0.5])
    assert s["n"] == 1 and s["mean_ci95"] is None and s["stdev"] == 0.0
    assert summarize([]) is None


def test_stopping_rule_needs_both_minimums():
    r = StoppingRule(warmup=0, min_iters=3, min_time_s=1.0)
    assert not r.done(5, 0.5) and not r.done(2, 2.0) and r.done(3, 1.0)
    capped = StoppingRule(min_iters=100, min_time_s=100, max_time_s=2.0)
    assert capped.done(4, 2.5) and capped.reason(4, 2.5) == "max_time"
    with pytest.raises(ValueError):
        StoppingRule(min_iters=0)


def test_median_interval_for_large_samples():
    """Exact binomial ranks up to 300 values (against a brute-force sum), the normal approximation
    above; 20,000 values (a serving point's inter-token latencies) neither overflow nor crawl."""
    def cover(n: int, j: int) -> float:
        return sum(math.comb(n, k) for k in range(j, n + 1 - j)) / 2 ** n

    def brute(n: int) -> tuple[int, int, float]:
        best = (1, n, cover(n, 1))
        for j in range(1, n // 2 + 1):
            if cover(n, j) < 0.95:
                break
            best = (j, n + 1 - j, cover(n, j))
        return best
    for n in (1, 5, 6, 17, 100, 300):
        j, k, c = median_ci_ranks(n)
        assert (j, k) == brute(n)[:2] and c == pytest.approx(brute(n)[2], abs=1e-12)
    for n in (301, 450):  # approximate: at most one rank wider, its coverage close to the exact one
        j, k, c = median_ci_ranks(n)
        assert brute(n)[0] - 1 <= j <= brute(n)[0] and cover(n, j) >= 0.95
        assert c == pytest.approx(cover(n, j), abs=0.005)
    s = summarize(list(np.random.default_rng(0).random(20000)))
    assert 0.95 <= s["median_ci_coverage"] < 0.952 and s["median_ci95"][0] < 0.5 < s["median_ci95"][1]


def test_the_mean_interval_of_a_latency_stops_at_zero():
    s = summarize([0.01, 0.01, 0.5])  # three spread samples: mean - t x s / sqrt(n) is below zero
    assert s["mean_ci95"][0] == 0.0 and s["mean_ci95"][1] > s["mean"]
    signed = summarize([-1.0, 0.0, 4.0])  # a quantity that can be negative keeps its interval
    assert signed["mean_ci95"][0] < 0
