"""The planner's held-out figures (benchmarks/planner_accuracy.py) must come from fits that never saw
the held-out points, not even as a starting point: a fold warm-started from the full fit stopped
near it and flattered the figures by up to 5 points."""
from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np

from infra_bench.planner import fit as F
from infra_bench.planner import measurements as M

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "planner_accuracy.py"


def _script():
    spec = importlib.util.spec_from_file_location("planner_accuracy", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_held_out_models_measurements_do_not_reach_its_own_prediction():
    """Doubling the held-out model's measured TTFT leaves its predictions as they were: its TTFT
    residuals move by exactly log 2 and its TPOT residuals not at all."""
    pa = _script()
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
