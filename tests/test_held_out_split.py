"""The planner's held-out figures (benchmarks/planner_accuracy.py) must come from fits that never saw
the held-out points, not even as a starting point: a fold warm-started from the full fit stopped
near it and flattered the figures by up to 5 points."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from infra_bench.planner import fit as F
from infra_bench.planner import measurements as M

from .conftest import benchmark_script


def test_a_held_out_models_measurements_do_not_reach_its_own_prediction():
    """Doubling the held-out model's measured TTFT leaves its predictions as they were: its TTFT
    residuals move by exactly log 2 and its TPOT residuals not at all."""
    pa = benchmark_script("planner_accuracy")
    problem, _ = pa.reference_problem(quick=True)
    fold_of = pa.architecture_of()
    first = min({fold_of[m.model] for m in problem.points})  # the fold held_out takes first

    def doubled(m: M.Measurement) -> M.Measurement:
        return replace(m, ttft_s=2 * m.ttft_s) if fold_of[m.model] == first and m.ttft_s else m
    other = F.Problem([doubled(m) for m in problem.points], problem.terms, problem.engines, problem.cases)
    a = pa.held_out(problem, "model", 5, 1)
    b = pa.held_out(other, "model", 5, 1)
    assert set(a["fold"]) == {first} and len(a["index"]) > 10
    ok = np.isfinite(a["ttft"])
    assert ok.sum() > 10
    np.testing.assert_allclose(b["ttft"][ok], a["ttft"][ok] - np.log(2), atol=1e-9)
    np.testing.assert_allclose(b["tpot"], a["tpot"], atol=1e-9)


def test_interval_quantiles_per_engine_hold_each_engines_points():
    """Residuals of one engine four times as wide as another's: quantiles shared by both would hold too
    many of the narrow engine's points and too few of the wide one's; per-engine quantiles from the
    other folds hold about 80% of each. The engine split keeps none (no fold leaves an engine's
    points elsewhere)."""
    pa = benchmark_script("planner_accuracy")
    rng = np.random.default_rng(7)
    folds, engines, r = [], [], []
    for fold in "abcde":
        for engine, spread in (("narrow", 0.1), ("wide", 0.4)):
            folds += [fold] * 300
            engines += [engine] * 300
            r += list(rng.normal(0.0, spread, 300))
    res = {"fold": np.array(folds), "engine": np.array(engines), "ttft": np.array(r)}
    own = pa.summary(res, "ttft")
    shared = pa.summary(res, "ttft", by_engine=False)
    assert set(own["by_engine"]) == {"narrow", "wide"} and "by_engine" not in shared
    for engine in ("narrow", "wide"):
        assert 0.75 <= own["by_engine"][engine]["coverage_80"] <= 0.85, engine
    assert own["by_engine"]["wide"]["q90"] > 3 * own["by_engine"]["narrow"]["q90"]
    narrow = res["ttft"][res["engine"] == "narrow"]
    lo, hi = np.quantile(res["ttft"], [0.1, 0.9])
    assert np.mean((narrow >= lo) & (narrow <= hi)) > 0.95  # what one shared interval would do


def test_the_per_model_lines_give_each_held_out_models_own_error_and_bias():
    """One fold predicted 25% slow in TTFT and 10% fast in TPOT, another exact and with no TTFT measured: each line
    carries its own model's figures, not the split's."""
    pa = benchmark_script("planner_accuracy")
    res = {"fold": np.array(["slow"] * 3 + ["exact"] * 2),
           "ttft": np.array([np.log(1.25)] * 3 + [np.nan] * 2),
           "tpot": np.array([np.log(0.9)] * 3 + [0.0] * 2)}
    lines = dict(line.split(maxsplit=1) for line in pa.fold_lines(res))
    assert lines["slow"].split() == ["3", "25%", "+25%", "10%", "-10%"]
    assert lines["exact"].split() == ["2", "-", "0%", "+0%"]
